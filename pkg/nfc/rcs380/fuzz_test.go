package rcs380_test

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/port100"
)

// chaos is a chip that ACKs every command and then answers with the next
// piece of the fuzzer's bytes.
type chaos struct {
	answers [][]byte
	acked   bool
	drain   bool // after the host's ACK: nothing to read
}

func (c *chaos) Write(p []byte, _ time.Duration) error {
	c.acked, c.drain = false, bytes.Equal(p, port100.ACK)
	return nil
}
func (c *chaos) Close() error { return nil }
func (c *chaos) Read(p []byte, _ time.Duration) (int, error) {
	if c.drain {
		c.drain = false
		return 0, syscall.ETIMEDOUT
	}
	if !c.acked {
		c.acked = true
		return copy(p, port100.ACK), nil
	}
	if len(c.answers) == 0 {
		return 0, syscall.ETIMEDOUT
	}
	a := c.answers[0]
	c.answers = c.answers[1:]
	c.acked = false
	return copy(p, a), nil
}

// FuzzDriverAnswers: whatever the chip answers, the driver neither panics
// nor returns a card without a UID.
func FuzzDriverAnswers(f *testing.F) {
	ok := port100.Response(port100.SwitchRF, []byte{0})
	f.Add(ok, port100.Response(port100.InCommRF, []byte{0, 0, 0, 0, 0, 0x04, 0x00}), []byte{0x00})
	f.Add(port100.Response(port100.InCommRF, []byte{0, 0, 0, 0, 0, 0x88, 1, 2, 3, 0x88 ^ 1 ^ 2 ^ 3}), ok, []byte{0xFF})
	f.Add(port100.Response(port100.InCommRF, []byte{0, 0, 0, 0, 0, 20, 1, 1, 2, 3, 4, 5, 6, 7, 8}), ok, []byte{0x13})
	f.Fuzz(func(t *testing.T, a, b, pattern []byte) {
		if len(pattern) == 0 || len(pattern) > 64 {
			return
		}
		c := &chaos{}
		// The chip initialises properly, then answers a, b or a valid
		// status in the fuzzer's pattern.
		c.answers = append(c.answers, port100.Response(port100.SetCommandType, []byte{0}),
			port100.Response(port100.GetFirmwareVersion, []byte{0x11, 0x01}),
			port100.Response(port100.GetPDDataVersion, []byte{0, 1}), ok)
		for _, p := range pattern {
			switch p % 3 {
			case 0:
				c.answers = append(c.answers, a)
			case 1:
				c.answers = append(c.answers, b)
			default:
				c.answers = append(c.answers, ok)
			}
		}
		synctest.Test(t, func(t *testing.T) {
			d, err := rcs380.New(c, rcs380.Options{Name: "fuzz"})
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				card, err := d.Poll()
				if err == nil && len(card.UID) == 0 {
					t.Fatalf("a card without a UID: %+v", card)
				}
				if err == nil {
					_, _ = d.Present()
				}
				if err != nil && !errors.Is(err, nfc.ErrNoCard) {
					break
				}
			}
		})
	})
}
