package client

import (
	"testing"

	"github.com/backchannel/backchannel/internal/link/wire"
	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// versionedLink is a link of a given version that carries nothing.
type versionedLink struct {
	recordingLink
	version int
}

func (l *versionedLink) Version() int { return l.version }

// TestProviderLinkVersionRemembered: once the provider has made a
// post-quantum link with the client, the client remembers it in its state
// and no longer lets a classical answer through (a downgrade); before,
// a provider of the previous release is reached over a classical link.
func TestProviderLinkVersionRemembered(t *testing.T) {
	pair := newOfflinePair(t, offline{seed: 50, aliceRand: testrand.New(50, 'a'), bobRand: testrand.New(50, 'b')})
	alice := pair.alice
	saved := func() bool {
		var p profileRecord
		if err := alice.store.get(profileLabel, &p); err != nil {
			t.Fatal(err)
		}
		return p.Network.Provider.PostQuantum
	}
	if err := alice.linkMade(&versionedLink{version: wire.VersionClassical}); err != nil {
		t.Fatal(err)
	}
	if saved() || alice.Stats().LinkVersion != wire.VersionClassical {
		t.Fatalf("after a classical link: remembered %v, link version %d", saved(), alice.Stats().LinkVersion)
	}
	if err := alice.linkMade(&versionedLink{version: wire.VersionPostQuantum}); err != nil {
		t.Fatal(err)
	}
	if !saved() || alice.Stats().LinkVersion != wire.VersionPostQuantum {
		t.Fatalf("after a post-quantum link: remembered %v, link version %d", saved(), alice.Stats().LinkVersion)
	}
	// dialProvider is given the remembered state: no classical fallback.
	if !alice.profile.Network.Provider.PostQuantum {
		t.Fatal("the profile in memory does not say the provider speaks post-quantum links")
	}
}
