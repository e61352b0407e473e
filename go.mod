module github.com/backchannel/backchannel

go 1.26.8

require (
	filippo.io/edwards25519 v1.2.0
	github.com/flynn/noise v1.1.0
)

require go.etcd.io/bbolt v1.5.0

require (
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0 // indirect
)
