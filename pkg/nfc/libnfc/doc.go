// Package libnfc is the card reader driver: it implements nfc.Device on
// top of libnfc (through github.com/clausecker/nfc/v2) and is the only
// package of the repository that uses cgo.
//
// Built without cgo (CGO_ENABLED=0) the package keeps its API, but Open and
// ListDevices fail with ErrNoCgo, so the rest of the bridge still builds
// and runs without a reader.
//
// Threading: a Device belongs to one goroutine, which calls Poll, Present
// and finally Close. Abort is the only method another goroutine may call,
// at any time, even concurrently with Close. The owner must never call
// Close while its own Poll or Present is running (libnfc would free memory
// the running C call uses); Abort, then Close once the call returned.
//
// Tests run the real libnfc against a simulated PN532 on a pseudo-terminal
// (package pn532sim): that is the project's standard for code that needs a
// card reader.
package libnfc

import (
	"errors"
	"time"
)

// ErrNoCgo is what Open and ListDevices return in a build without cgo.
var ErrNoCgo = errors.New("libnfc: built without cgo: no NFC reader support")

// Install says what a build without cgo lacks and how to get it: one line
// for configuration errors and the demo.
const Install = "the card reader needs a build with cgo and libnfc: install a C compiler and libnfc " +
	"(Debian/Ubuntu: apt-get install gcc libc6-dev pkg-config libnfc-dev) and build again " +
	"(go enables cgo by itself once gcc is there; unset CGO_ENABLED=0 if you set it)"

// The poll cycle. Poll runs one InitiatorPollTarget (on a PN532 one
// InAutoPoll) over ISO14443A at 106 kbit/s and FeliCa at 212 and 424
// kbit/s, PollNr times, PollPeriod per target type. libnfc polls ISO14443A
// as two target types (ISO14443-4A, to get the ATS, then generic MIFARE), so
// a cycle has PollNr×4 slots of PollPeriod: PollCycle = 2×4×150 ms = 1.2 s.
// A card entering the field is seen at the next slot of its type: within
// 4×PollPeriod = 600 ms.
const (
	PollNr     = 2
	PollPeriod = 150 * time.Millisecond // the PN532's minimum and step
	PollTypes  = 4                      // target types per poll, see above
	PollCycle  = PollNr * PollTypes * PollPeriod
)
