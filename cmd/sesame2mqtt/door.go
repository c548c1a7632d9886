package main

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
)

// openReader is the libnfc driver; the demo and tests use it as is (against
// a simulated PN532), so it is a variable only for symmetry with the rest
// of the wiring.
var openReader nfc.Opener = func(connstring string) (nfc.Device, error) {
	d, err := libnfc.Open(connstring)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return d, nil
}

// readerParts builds the bridge's reader options and the reader loop from
// the configuration; both nil without a reader.
func readerParts(cfg config.Config, log *slog.Logger) (*bridge.Reader, *access.Hasher, error) {
	if !cfg.NFC.Enabled() {
		return nil, nil, nil
	}
	if !libnfc.Available {
		// Found at start, not as a reader that never opens.
		return nil, nil, configError{fmt.Errorf("NFC_DEVICE is set, but this binary was built without cgo: %s", libnfc.Install)}
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
