package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/usbfs"
)

// rcs380Dialer gives the way to the RC-S380s: the machine's USB. The demo
// replaces it with its simulated RC-S380.
var rcs380Dialer = func(log *slog.Logger) rcs380.Dialer {
	return rcs380.USB{Tree: usbfs.System, Logger: log}.Dial
}

// openReader opens the reader a connstring names: rcs380[:BBB:DDD] is the
// pure-Go RC-S380 driver, anything else libnfc's; auto is the first reader
// libnfc finds and else the first RC-S380. The demo and the tests use it as
// is (against a simulated PN532 or RC-S380).
func openReader(log *slog.Logger) nfc.Opener {
	dial := rcs380Dialer(log)
	openRCS380 := func(conn string) (nfc.Device, error) {
		d, err := rcs380.Open(conn, dial, log)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return d, nil
	}
	return func(conn string) (nfc.Device, error) {
		if rcs380.IsConnstring(conn) {
			return openRCS380(conn)
		}
		if conn != "auto" {
			d, err := libnfc.Open(conn)
			if err != nil {
				return nil, err
			}
			return d, nil
		}
		var lerr error = libnfc.ErrNoCgo
		if libnfc.Available {
			d, err := libnfc.Open(conn)
			if err == nil {
				return d, nil
			}
			lerr = err
		}
		d, err := openRCS380(rcs380.Prefix)
		if err == nil {
			return d, nil
		}
		return nil, fmt.Errorf("no reader: %w; %w", lerr, err)
	}
}

// checkReader finds at start what the machine's setup must fix before an
// RC-S380 can work (the node's permissions, the port100 kernel driver): a
// configuration error that says what to do, not a reader that silently
// never opens. A reader that is not plugged in is no error: the reader
// loop waits for it.
func checkReader(conn string, log *slog.Logger) error {
	if !rcs380.IsConnstring(conn) {
		return nil
	}
	t, _, err := rcs380Dialer(log)(conn)
	if err != nil {
		if errors.Is(err, rcs380.ErrSetup) {
			return configError{fmt.Errorf("NFC_DEVICE %s: %w", conn, err)}
		}
		log.Debug("the RC-S380 is not there yet", "err", err)
		return nil
	}
	if err := t.Close(); err != nil {
		log.Debug("closing the RC-S380 after the start-up check", "err", err)
	}
	return nil
}

// readerParts builds the bridge's reader options and the reader loop from
// the configuration; both nil without a reader.
func readerParts(cfg config.Config, log *slog.Logger) (*bridge.Reader, *access.Hasher, error) {
	if !cfg.NFC.Enabled() {
		return nil, nil, nil
	}
	switch dev := cfg.NFC.Device; {
	case rcs380.IsConnstring(dev):
		if err := checkReader(dev, log); err != nil {
			return nil, nil, err
		}
	case !libnfc.Available && dev == "auto":
		log.Info("built without cgo: NFC_DEVICE=auto looks for a Sony RC-S380 only (libnfc's readers need cgo)")
	case !libnfc.Available:
		// Found at start, not as a reader that never opens.
		return nil, nil, configError{fmt.Errorf("NFC_DEVICE is set, but this binary was built without cgo: %s "+
			"(a Sony RC-S380, NFC_DEVICE=rcs380, needs no cgo)", libnfc.Install)}
	}
	hasher, err := access.LoadHasher(cfg.StateDir)
	if err != nil {
		return nil, nil, err
	}
	managed := make([]access.Entry, 0, len(cfg.NFC.Cards))
	for _, c := range cfg.NFC.Cards {
		managed = append(managed, access.Entry{UID: hex.EncodeToString(c.UID), Name: c.Name})
	}
	lo := access.ListOptions{Logger: log.With("component", "access")}
	if cfg.Access.Shared {
		lo.Node = cfg.BaseTopic // unique per bridge on one broker
	}
	list, err := access.OpenList(filepath.Join(cfg.StateDir, access.ListFile), managed, lo)
	if err != nil {
		return nil, nil, err
	}
	accessLog, err := access.OpenLog(cfg.StateDir, log.With("component", "access"))
	if err != nil {
		return nil, nil, err
	}
	action := map[string]bridge.CardAction{
		config.ActionToggle: bridge.CardToggle,
		config.ActionUnlock: bridge.CardUnlock,
		config.ActionLock:   bridge.CardLock,
		config.ActionNone:   bridge.CardNone,
	}[cfg.NFC.Action]
	log.Info("card reader configured", "device", cfg.NFC.Device, "cards_from_options", len(managed),
		"cards", list.Len(), "action", action.String(), "tag_scanner", cfg.NFC.TagScanner,
		"shared_list", cfg.Access.Shared, "time_zone", list.Location().String())
	if list.Len() == 0 && action != bridge.CardNone {
		log.Warn("the access list is empty: every card is refused until one is enrolled; taps still reach Home Assistant")
	}
	return &bridge.Reader{
		Policy:  access.NewPolicy(list),
		Log:     accessLog,
		Action:  action,
		LockID:  cfg.NFC.LockID,
		AllTags: cfg.NFC.TagScanner == config.TagScannerAll,
		Hash:    hasher.Hash,
	}, hasher, nil
}

// leds adapts the indicator to the bridge's Feedback by name.
type leds struct {
	ind        *indicator.Indicator
	conditions map[string]indicator.Condition
	log        *slog.Logger
}

func openLEDs(cfg config.Config, log *slog.Logger) (*leds, error) {
	if !cfg.LED.Enabled() {
		return nil, nil
	}
	ind, err := indicator.Open(indicator.Pins{
		Green: cfg.LED.Green, Red: cfg.LED.Red, Buzzer: cfg.LED.Buzzer, ActiveLow: cfg.LED.ActiveLow,
	}, log)
	if err != nil {
		return nil, err
	}
	l := &leds{ind: ind, conditions: map[string]indicator.Condition{}, log: log}
	for _, c := range indicator.Conditions() {
		l.conditions[c.Sequence().Name] = c
	}
	return l, nil
}

func (l *leds) Show(name string) {
	p, err := indicator.Parse(name)
	if err != nil {
		l.log.Error("no such LED pattern", "err", err)
		return
	}
	l.ind.Show(p)
}

func (l *leds) Set(name string, on bool) {
	c, ok := l.conditions[name]
	if !ok {
		l.log.Error("no such LED condition", "condition", name)
		return
	}
	l.ind.Set(c, on)
}
