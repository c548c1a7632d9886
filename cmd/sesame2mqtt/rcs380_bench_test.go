package main

import (
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

// BenchmarkCardToSignedPOSTRCS380 measures a card entering the field of
// the simulated RC-S380 to the signed POST at the Sesame fake: the pure-Go
// driver's poll, our reader loop, the allowlist, the lock's worker, signing
// and the HTTP client, with the bridge publishing to a real Mosquitto
// meanwhile. It reports the whole (bounded by where in the poll period the
// card arrives), ours-from-chip (from the simulated chip's answer that
// completes the card's activation to the POST: everything the bridge does,
// the driver included) and ours (from the tap handed to the bridge to the
// POST, as the PN532's benchmark reports).
func BenchmarkCardToSignedPOSTRCS380(b *testing.B) {
	sim := rcs380sim.New(rcs380sim.Options{})
	useRCS380Sim(b, sim)
	cardToSignedPOST(b, benchReader{
		connstring:  rcs380.Prefix,
		waitPolling: sim.WaitSense,
		put:         func(uid []byte) { sim.Put(rcs380sim.ISO14443A(uid)) },
		remove:      sim.Remove,
		foundAt:     sim.FoundAt,
		pollPeriod:  rcs380.PollPeriod,
		landStep:    rcs380.PollPeriod / 8,
	})
}
