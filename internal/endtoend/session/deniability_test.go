package session

import (
	"crypto/ecdh"
	"testing"

	"github.com/backchannel/backchannel/internal/tools/testrand"
)

// TestTranscriptDeniability: Bob, with only Alice's public card and his own
// keys, makes an initial message "from Alice" and a first ratchet message
// under it, which his side accepts exactly as it accepts Alice's real ones.
// So a transcript Bob shows proves nothing about Alice: nothing in it is
// signed by her, and everything in it Bob could have computed himself.
func TestTranscriptDeniability(t *testing.T) {
	alice, bob := newIdentity(t, 30), newIdentity(t, 31)
	aliceCard := alice.Card()

	// Bob forges: his own ephemeral key for "Alice", DH1 from his prekey and
	// her public identity key, and an encapsulation to his own ML-KEM key.
	seed := make([]byte, 32)
	testrand.New(34).Read(seed)
	ek, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	ikA, _ := ecdh.X25519().NewPublicKey(aliceCard.DHKey[:])
	ss, ct := bob.PQPrekey.Key.EncapsulationKey().Encapsulate()
	skForged, err := agree([]dhPair{
		{bob.Prekey.Key, ikA},            // DH1 = DH(IK_A, SPK_B), from Bob's side
		{ek, bob.DH.PublicKey()},         // DH2 = DH(EK_A, IK_B)
		{ek, bob.Prekey.Key.PublicKey()}, // DH3 = DH(EK_A, SPK_B)
	}, ss)
	if err != nil {
		t.Fatal(err)
	}
	var forged Initial
	forged.IdentityKey = aliceCard.DHKey
	copy(forged.EphemeralKey[:], ek.PublicKey().Bytes())
	forged.PrekeyID, forged.PQPrekeyID = bob.Prekey.ID, bob.PQPrekey.ID
	copy(forged.KEMCiphertext[:], ct)

	// Bob's ordinary receiving code accepts it and agrees on the key.
	var guard Guard
	sk, ad, err := Respond(bob, &forged, &guard)
	if err != nil || sk != skForged {
		t.Fatalf("the forged initial message was not accepted like a real one: %v", err)
	}
	// And a "message from Alice" in the session, made by Bob alone.
	fakeAlice, err := NewInitiatorRatchet(testrand.New(32), skForged, bob.Card().Prekey.Key[:])
	if err != nil {
		t.Fatal(err)
	}
	bobSide, err := NewResponderRatchet(testrand.New(33), sk, bob.Prekey.Key)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, bobSide, ad, send(t, fakeAlice, ad, "I agree to talks"), "I agree to talks")
}
