package nfc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Status is the reader's connectivity as Home Assistant shows it.
type Status string

const (
	StatusConnected Status = "connected"
	// StatusNotFound: the reader could not be opened since start-up.
	StatusNotFound Status = "not_found"
	// StatusUnplugged: the reader worked and then failed (unplugged, I/O
	// error); it is being opened again.
	StatusUnplugged Status = "unplugged"
)

// Opener opens the reader named by a libnfc connstring.
type Opener func(connstring string) (Device, error)

// Options configure a Reader.
type Options struct {
	Connstring string
	Open       Opener
	// HoldOff: after a tap the same card counts again only once it was
	// removed and has not been seen for HoldOff.
	HoldOff time.Duration
	// PresenceInterval is how often a card held on the reader is checked.
	PresenceInterval time.Duration
	// RetryMin and RetryMax bound the wait before re-opening a reader.
	RetryMin, RetryMax time.Duration
	// OnTap and OnStatus run on the reader's goroutine and must not block.
	OnTap    func(c Card, at time.Time)
	OnStatus func(s Status, name string, err error)
	// Hash gives the log form of a UID; raw UIDs never reach the log.
	Hash   func(uid []byte) string
	Logger *slog.Logger
}

// Defaults for Options' zero fields.
const (
	DefaultHoldOff          = 3 * time.Second
	DefaultPresenceInterval = 200 * time.Millisecond
	DefaultRetryMin         = time.Second
	DefaultRetryMax         = 30 * time.Second
)

// Reader owns one card reader: one goroutine (Run's) opens it, polls it and
// closes it.
type Reader struct {
	o   Options
	log *slog.Logger

	status Status // last status reported
	last   []byte // UID of the last card seen
	seenAt time.Time
}

// NewReader checks the options.
func NewReader(o Options) (*Reader, error) {
	if o.Open == nil || o.OnTap == nil {
		return nil, errors.New("nfc: Open and OnTap are required")
	}
	if o.HoldOff < 0 {
		return nil, errors.New("nfc: negative hold-off")
	}
	if o.PresenceInterval <= 0 {
		o.PresenceInterval = DefaultPresenceInterval
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.OnStatus == nil {
		o.OnStatus = func(Status, string, error) {}
	}
	if o.Hash == nil {
		o.Hash = func([]byte) string { return "?" }
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reader{o: o, log: log.With("reader", o.Connstring)}, nil
}

// Run opens the reader and reads cards until ctx is done, re-opening the
// reader with capped backoff whenever it fails. It returns nil at shutdown,
// after the device was closed.
func (r *Reader) Run(ctx context.Context) error {
	wait := r.o.RetryMin
	for ctx.Err() == nil {
		dev, err := r.o.Open(r.o.Connstring)
		if err != nil {
			st := StatusNotFound
			if r.status == StatusUnplugged {
				st = StatusUnplugged
			}
			r.setStatus(st, "", fmt.Errorf("open: %w", err))
			if !sleep(ctx, wait) {
				return nil
			}
			wait = min(2*wait, r.o.RetryMax)
			continue
		}
		wait = r.o.RetryMin
		r.setStatus(StatusConnected, dev.Name(), nil)
		err = r.session(ctx, dev)
		if cerr := dev.Close(); cerr != nil {
			r.log.Debug("closing the reader", "err", cerr)
		}
		if ctx.Err() != nil {
			return nil
		}
		r.setStatus(StatusUnplugged, dev.Name(), err)
		if !sleep(ctx, wait) {
			return nil
		}
	}
	return nil
}

func (r *Reader) setStatus(s Status, name string, err error) {
	if s == r.status {
		if err != nil {
			r.log.Debug("reader still unavailable", "status", s, "err", err)
		}
		return
	}
	r.status = s
	switch s {
	case StatusConnected:
		r.log.Info("card reader ready", "device", name)
	default:
		r.log.Warn("card reader unavailable; retrying", "status", s, "err", err)
	}
	r.o.OnStatus(s, name, err)
}

// session polls an open device until it fails or ctx is done. At shutdown
// Abort interrupts the call in progress; Close happens in Run only after the
// call returned (closing during a C call frees memory still in use).
func (r *Reader) session(ctx context.Context, dev Device) error {
	stop := context.AfterFunc(ctx, func() {
		if err := dev.Abort(); err != nil {
			r.log.Debug("aborting the reader", "err", err)
		}
	})
	defer stop()
	for ctx.Err() == nil {
		card, err := dev.Poll()
		switch {
		case errors.Is(err, ErrNoCard), errors.Is(err, ErrAborted):
			continue
		case err != nil:
			return fmt.Errorf("poll: %w", err)
		}
		now := time.Now()
		if bytes.Equal(card.UID, r.last) && now.Sub(r.seenAt) < r.o.HoldOff {
			r.log.Debug("same card again within the hold-off; not a new tap", "card", r.o.Hash(card.UID))
		} else {
			r.log.Debug("card tapped", "card", r.o.Hash(card.UID), "kind", card.Kind.String())
			r.o.OnTap(card, now)
		}
		r.last = append(r.last[:0], card.UID...)
		r.seenAt = now
		r.waitRemoval(ctx, dev)
	}
	return nil
}

// waitRemoval returns once the card left the field, keeping seenAt at the
// last moment the card was seen. When the reader cannot tell (or fails: the
// next poll will say so), the next poll is the presence check: finding the
// same card within HoldOff of seeing it last is not a new tap.
func (r *Reader) waitRemoval(ctx context.Context, dev Device) {
	for {
		if !sleep(ctx, r.o.PresenceInterval) {
			return
		}
		present, err := dev.Present()
		switch {
		case errors.Is(err, ErrAborted):
			return
		case err != nil:
			r.log.Debug("presence check failed; polling instead", "err", err)
			return
		case !present:
			return
		}
		r.seenAt = time.Now()
	}
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
