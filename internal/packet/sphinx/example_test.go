package sphinx_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/backchannel/backchannel/internal/packet/sphinx"
)

// A client sends a message over three nodes; each node removes its layer
// and forwards the packet, and the last one delivers it.
func Example() {
	f, err := sphinx.New(sphinx.DefaultGeometry)
	if err != nil {
		panic(err)
	}

	type node struct {
		id   sphinx.NodeID
		priv *sphinx.PrivateKey
	}
	nodes := make([]node, 3)
	for i := range nodes {
		nodes[i].id[0] = byte(i + 1)
		// A node makes a new key for every epoch and publishes its
		// public half in the network document.
		var secret [sphinx.SecretLength]byte
		rand.Read(secret[:])
		if nodes[i].priv, err = sphinx.NewPrivateKey(f.Geometry().Scheme, &secret); err != nil {
			panic(err)
		}
	}
	mailbox := sphinx.Recipient{ID: [32]byte{0xbb}}
	path := []sphinx.PathHop{
		{ID: nodes[0].id, PublicKey: nodes[0].priv.Public(), Commands: sphinx.Commands{sphinx.NodeDelay{Milliseconds: 40}}},
		{ID: nodes[1].id, PublicKey: nodes[1].priv.Public(), Commands: sphinx.Commands{sphinx.NodeDelay{Milliseconds: 25}}},
		{ID: nodes[2].id, PublicKey: nodes[2].priv.Public(), Commands: sphinx.Commands{mailbox}},
	}

	packet, err := f.NewPacket(rand.Reader, path, []byte("open to talks"))
	if err != nil {
		panic(err)
	}
	fmt.Println("packet bytes:", len(packet))

	for i := range nodes {
		res, err := f.Unwrap(nodes[i].priv, packet)
		if err != nil {
			panic(err)
		}
		if next, ok := res.Commands.NextHop(); ok {
			delay, _ := res.Commands.Delay()
			fmt.Printf("node %d: hold %v, forward to node %d\n", i+1, delay.Duration(), next.ID[0])
			continue
		}
		rcpt, _ := res.Commands.Recipient()
		fmt.Printf("node %d: deliver to mailbox %x…: %q\n", i+1, rcpt.ID[:1], bytes.TrimRight(res.Payload, "\x00"))
	}
	// Output:
	// packet bytes: 10396
	// node 1: hold 40ms, forward to node 2
	// node 2: hold 25ms, forward to node 3
	// node 3: deliver to mailbox bb…: "open to talks"
}

// A client makes a SURB; whoever holds it replies without learning the path,
// and only the client can read the reply.
func ExampleFormat_NewSURB() {
	f, err := sphinx.New(sphinx.DefaultGeometry)
	if err != nil {
		panic(err)
	}
	var secret [sphinx.SecretLength]byte
	rand.Read(secret[:])
	priv, err := sphinx.NewPrivateKey(f.Geometry().Scheme, &secret)
	if err != nil {
		panic(err)
	}
	path := []sphinx.PathHop{{
		ID:        sphinx.NodeID{1},
		PublicKey: priv.Public(),
		Commands:  sphinx.Commands{sphinx.Recipient{ID: [32]byte{0xaa}}, sphinx.SURBReply{ID: [16]byte{7}}},
	}}
	surb, token, err := f.NewSURB(rand.Reader, path)
	if err != nil {
		panic(err)
	}

	reply, firstHop, err := f.NewPacketFromSURB(surb, []byte("yes"))
	if err != nil {
		panic(err)
	}
	res, err := f.Unwrap(priv, reply)
	if err != nil {
		panic(err)
	}
	id, _ := res.Commands.SURBReply()
	message, err := f.DecryptSURBPayload(token, res.Payload)
	if err != nil {
		panic(err)
	}
	fmt.Printf("sent to node %d; reply to SURB %d: %q\n", firstHop[0], id.ID[0], bytes.TrimRight(message, "\x00"))
	// Output:
	// sent to node 1; reply to SURB 7: "yes"
}
