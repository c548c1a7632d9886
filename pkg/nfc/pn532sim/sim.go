// Package pn532sim plays an NXP PN532 NFC reader on a pseudo-terminal, so
// that libnfc's unchanged pn532_uart driver (and so the whole cgo reader
// path) can be tested without hardware: open "pn532_uart:"+Path().
//
// The simulated chip speaks the PN532 frame protocol (normal and extended
// frames, ACK, NACK, the error frame, the wake-up preamble) and the
// commands libnfc sends to open, initialise, poll, check presence and close
// a reader; unknown commands get the error frame and a log line. A host ACK
// while a command waits for a card (InAutoPoll, an InListPassiveTarget with
// infinite retries) aborts it, as libnfc's nfc_abort_command does.
//
// InAutoPoll keeps the PN532's timing: each target type of each poll is a
// slot of Period×SlotTime; a card in the field when a slot of its type
// starts is answered at once, so a card put in mid-cycle is found at the
// next slot of its type (within one poll), and a cycle that ends empty
// answers "no target" after PollNr×types×Period×SlotTime.
//
// One goroutine owns the chip and the pty master; a helper goroutine per
// pty only copies bytes from the master to it. Close stops both. The
// simulator keeps the slave side open itself, so that the host never reads
// EIO between its sessions — only after Unplug.
//
// The libnfc command-line tools work too:
//
//	LIBNFC_DEVICE=pn532_uart:/tmp/pn532sim-123/pn532 nfc-list
//
// Linux only (Start fails elsewhere). No cgo, no libnfc.
package pn532sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LinkName is the name of the symlink in Options.Dir that points to the
// current pty slave.
const LinkName = "pn532"

// writeTimeout bounds a write to a host that does not read.
const writeTimeout = time.Second

// ErrClosed is returned by calls on a closed simulator.
var ErrClosed = errors.New("pn532sim: closed")

// Options configure a simulator.
type Options struct {
	// Logger receives the simulator's logs (frames at debug level); nil
	// discards them.
	Logger *slog.Logger
	// Dir holds the stable symlink (Dir/LinkName); one simulator per Dir.
	// Empty: a new temporary directory, removed by Close. It must not
	// contain ':' (libnfc splits connstrings there).
	Dir string
}

// Stats counts what the simulated chip saw. All counters start at zero at
// Start and survive Unplug/Replug.
type Stats struct {
	Frames         int // command frames from the host (valid checksums)
	Acks           int // ACK frames from the host (aborts, or stray ones)
	Nacks          int // NACK frames from the host
	BadFrames      int // frames with a bad data checksum (answered with NACK)
	CommTests      int // Diagnose communication tests (one per nfc_open)
	Polls          int // InAutoPoll commands started
	PollHits       int // InAutoPoll commands answered with a card
	PollsEmpty     int // InAutoPoll cycles that ended without a card
	Aborts         int // waiting commands aborted by a host ACK
	Lists          int // InListPassiveTarget commands
	PresenceChecks int // InDataExchange, InCommunicateThru, Diagnose 06, re-selects by UID
	Unknown        int // commands answered with the error frame
}

// Sim is a running simulated PN532. Its methods are safe for concurrent use.
type Sim struct {
	log    *slog.Logger
	dir    string
	ownDir bool
	link   string

	mu      sync.Mutex
	card    Card
	hasCard bool
	gen     uint64 // incremented by every Put and Remove
	stats   Stats
	polling bool
	pollCh  chan struct{} // closed when an InAutoPoll starts

	in        chan chunk   // bytes read from the current master
	ctl       chan request // Unplug and Replug, run by the owner goroutine
	wake      chan struct{}
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the owner goroutine returned
	closeOnce sync.Once
	closeErr  error
}

// port is one pseudo-terminal: the reader's "USB serial adapter".
type port struct {
	master, slave *os.File
	quit          chan struct{} // stops the reader goroutine
	done          chan struct{} // closed when the reader goroutine returned
}

type chunk struct {
	p   *port
	b   []byte
	err error
}

type request struct {
	replug bool // false: unplug
	reply  chan error
}

// Start opens a pty, points Dir/LinkName at its slave and starts the chip.
func Start(o Options) (*Sim, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		log:    log.With("component", "pn532sim"),
		dir:    o.Dir,
		pollCh: make(chan struct{}),
		in:     make(chan chunk),
		ctl:    make(chan request),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "pn532sim-")
		if err != nil {
			return nil, fmt.Errorf("pn532sim: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("pn532sim: %w", err)
	}
	s.link = filepath.Join(s.dir, LinkName)
	if strings.Contains(s.link, ":") {
		s.removeDir()
		return nil, fmt.Errorf("pn532sim: path %q contains ':', which libnfc connstrings cannot carry", s.link)
	}
	p, err := s.openPort()
	if err != nil {
		s.removeDir()
		return nil, err
	}
	go s.run(p)
	return s, nil
}

// Path is the stable path of the simulated serial port: a symlink to the
// current pty slave that survives Unplug/Replug (it is absent while
// unplugged).
func (s *Sim) Path() string { return s.link }

// Connstring is the libnfc connstring of the simulated reader.
func (s *Sim) Connstring() string { return "pn532_uart:" + s.link }

// Put puts c in the field, replacing any card there. A card that the chip
// cannot present (see ISO14443A) is refused with an error log.
func (s *Sim) Put(c Card) {
	if err := c.validate(); err != nil {
		s.log.Error("card refused", "err", err)
		return
	}
	s.mu.Lock()
	s.card, s.hasCard = c.clone(), true
	s.gen++
	s.mu.Unlock()
	s.log.Debug("card put in the field", "kind", c.Kind)
	s.notify()
}

// Remove takes the card out of the field.
func (s *Sim) Remove() {
	s.mu.Lock()
	had := s.hasCard
	s.card, s.hasCard = Card{}, false
	s.gen++
	s.mu.Unlock()
	if had {
		s.log.Debug("card removed from the field")
	}
	s.notify()
}

func (s *Sim) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// field returns the card in the field and its generation.
func (s *Sim) field() (Card, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.card, s.gen, s.hasCard
}

// Unplug makes the reader disappear: the symlink is removed and the pty
// closed, so the host's open descriptor fails with EIO and Path no longer
// opens. A no-op when unplugged or closed.
func (s *Sim) Unplug() {
	if err := s.do(false); err != nil && !errors.Is(err, ErrClosed) {
		s.log.Error("unplug", "err", err)
	}
}

// Replug brings the reader back: a new pty, with the symlink at Path
// pointing to it and a chip fresh from power-on. It fails when the reader
// is plugged in.
func (s *Sim) Replug() error { return s.do(true) }

func (s *Sim) do(replug bool) error {
	r := request{replug: replug, reply: make(chan error, 1)}
	select {
	case s.ctl <- r:
	case <-s.done:
		return ErrClosed
	}
	select {
	case err := <-r.reply:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// WaitPolling returns once the host is inside an InAutoPoll: at once if
// one is running, else when the chip acknowledges the next one (the host
// may still be reading that ACK for a moment). A card put after it returns
// is found at the next slot of its type.
func (s *Sim) WaitPolling(ctx context.Context) error {
	s.mu.Lock()
	polling, ch := s.polling, s.pollCh
	s.mu.Unlock()
	if polling {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pn532sim: waiting for a poll: %w", ctx.Err())
	case <-s.done:
		return ErrClosed
	}
}

func (s *Sim) setPolling(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polling = on
	if on {
		close(s.pollCh)
		s.pollCh = make(chan struct{})
	}
}

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Close stops the chip, closes the pty and removes the symlink (and the
// directory it made). It is idempotent.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		if err := os.Remove(s.link); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.closeErr = fmt.Errorf("pn532sim: %w", err)
		}
		s.removeDir()
	})
	return s.closeErr
}

func (s *Sim) removeDir() {
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			s.log.Warn("removing the temporary directory", "err", err)
		}
	}
}

// run is the owner goroutine: it alone writes to the master and drives the
// chip.
func (s *Sim) run(cur *port) {
	defer close(s.done)
	write := func(b []byte) {
		if cur != nil {
			s.writePort(cur, b)
		}
	}
	newChip := func() *chip { return newChip(s.log, s.field, write, s.count, s.setPolling) }
	c := newChip()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var tick <-chan time.Time
		if at, ok := c.next(); ok {
			timer.Reset(time.Until(at))
			tick = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-s.quit:
			c.cancel()
			if cur != nil {
				s.closePort(cur)
			}
			return
		case ch := <-s.in:
			switch {
			case ch.p != cur: // from an unplugged pty
			case ch.err != nil:
				s.log.Error("reading the pty master", "err", ch.err)
			default:
				c.feed(time.Now(), ch.b)
			}
		case <-tick:
			c.tick(time.Now())
		case <-s.wake:
			c.fieldChanged()
		case r := <-s.ctl:
			switch {
			case !r.replug && cur != nil:
				c.cancel()
				s.closePort(cur)
				cur = nil
				s.log.Info("reader unplugged")
			case r.replug && cur != nil:
				r.reply <- errors.New("pn532sim: replug: the reader is plugged in")
				continue
			case r.replug:
				p, err := s.openPort()
				if err != nil {
					r.reply <- err
					continue
				}
				cur, c = p, newChip()
				s.log.Info("reader plugged in again")
			}
			r.reply <- nil
		}
	}
}

// openPort opens a pty, re-points the symlink and starts its reader.
func (s *Sim) openPort() (*port, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("pn532sim: %w", err)
	}
	p := &port{master: master, slave: slave, quit: make(chan struct{}), done: make(chan struct{})}
	tmp := s.link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("pn532sim: %w", err)
	}
	if err := os.Rename(tmp, s.link); err != nil {
		os.Remove(tmp)
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("pn532sim: %w", err)
	}
	s.log.Debug("pty open", "path", s.link, "slave", slave.Name())
	go s.readPort(p)
	return p, nil
}

// closePort removes the symlink, then closes the master (the host's
// descriptor now fails with EIO) and the simulator's own slave descriptor.
func (s *Sim) closePort(p *port) {
	if err := os.Remove(s.link); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("removing the symlink", "err", err)
	}
	close(p.quit)
	p.master.Close()
	<-p.done
	p.slave.Close()
}

// readPort copies bytes from the master to the owner goroutine until the
// master is closed.
func (s *Sim) readPort(p *port) {
	defer close(p.done)
	for {
		buf := make([]byte, 512)
		n, err := p.master.Read(buf)
		if n > 0 {
			select {
			case s.in <- chunk{p: p, b: buf[:n]}:
			case <-p.quit:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				select {
				case s.in <- chunk{p: p, err: err}:
				case <-p.quit:
				}
			}
			return
		}
	}
}

func (s *Sim) writePort(p *port, b []byte) {
	if err := p.master.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		s.log.Warn("write deadline on the pty master", "err", err)
	}
	if _, err := p.master.Write(b); err != nil {
		s.log.Warn("writing to the host", "err", err)
	}
}
