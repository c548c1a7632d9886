// Command sesame2mqtt makes CANDY HOUSE Sesame locks Home Assistant devices
// over MQTT. Configuration comes from the environment (see -help); -demo runs
// it against a simulated lock and, without MQTT_URL, an embedded broker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/addon"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/bridge"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/budget"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/config"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// shutdownGrace bounds everything after SIGTERM: the will, the last write of
// the request count, the loops.
const shutdownGrace = 4500 * time.Millisecond

func main() {
	// A small daemon that runs for months, often on a Pi Zero's 512 MB:
	// half Go's default heap headroom costs a little GC time and keeps the
	// resident set about 2.5 MiB smaller with the access page in use
	// (BenchmarkPageRSS). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// gcPercent is the GOGC the binary runs with unless the environment sets one.
const gcPercent = 50

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sesame2mqtt", flag.ContinueOnError)
	fs.SetOutput(stderr) // the flag package's own error line
	demo := fs.Bool("demo", false, "run against a simulated Sesame lock (and an embedded MQTT broker when MQTT_URL is not set)")
	demoListen := fs.String("demo-listen", "127.0.0.1:1883", "address of the embedded demo broker")
	demoReader := fs.String("demo-reader", demoPN532, "the demo's simulated card reader: pn532 (through libnfc) or rcs380 (a Sony RC-S380, pure Go)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {} // printed below: -help to stdout, mistakes to stderr
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(fs, stdout)
			return 0
		}
		fmt.Fprintf(stderr, "%s\nRun sesame2mqtt -help for the flags and the configuration.\n", usageLine)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q (the configuration comes from the environment)\n%s\n", fs.Arg(0), usageLine)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	if *demo {
		done, err := startDemo(*demoListen, *demoReader, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		cleanup = append(cleanup, done)
	}

	// As a Home Assistant add-on, the options and the Supervisor's MQTT
	// broker become environment variables (the environment wins); outside
	// an add-on this changes nothing.
	level := new(slog.LevelVar) // info until the configuration is read
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := addon.Prepare(ctx, log, addon.ProcessEnv()); err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	level.Set(cfg.LogLevel)
	logConfigWarnings(log, cfg.Warnings)
	if err := serve(ctx, cfg, log); err != nil {
		if ce, ok := errors.AsType[configError](err); ok {
			printConfigErrors(stderr, ce.err)
			return 2
		}
		log.Error("sesame2mqtt stopped", "err", err)
		return 1
	}
	return 0
}

const usageLine = "Usage: sesame2mqtt [-demo [-demo-listen ADDR] [-demo-reader pn532|rcs380]] [-version] [-help]"

// printHelp writes the flags and the configuration table: to stdout, so
// that `sesame2mqtt -help | less` works.
func printHelp(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", usageLine)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nConfiguration (environment):\n")
	_ = config.Usage(w)
}

// configError is a configuration problem found only when a part starts
// (a GPIO pin the machine does not have): reported like the others.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// The bounds of printConfigErrors: a configuration of garbage prints a
// screenful, not megabytes.
const (
	maxConfigLines    = config.MaxErrors // then "and N more problems"
	maxConfigLineSize = 512              // bytes; longer lines are cut, with their length
)

// printConfigErrors writes one line per configuration problem: the first
// 20, then how many more there are (config.Load counts its own), each line
// at most 512 bytes.
func printConfigErrors(w io.Writer, err error) {
	var lines []string
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			lines = append(lines, strings.Split(e.Error(), "\n")...)
		}
	} else {
		lines = strings.Split(err.Error(), "\n")
	}
	more := 0
	if len(lines) > maxConfigLines+1 { // config's own "and N more problems" may be line 21
		more = len(lines) - maxConfigLines
		lines = lines[:maxConfigLines]
	}
	_, asAddon := os.LookupEnv(addon.EnvSupervisorToken)
	for _, l := range lines {
		l = cutLine(l)
		if asAddon {
			l = withOption(l)
		}
		fmt.Fprintf(w, "configuration: %s\n", l)
	}
	if more > 0 {
		fmt.Fprintf(w, "configuration: and %d more problems\n", more)
	}
}

// cutLine bounds one line of an error.
func cutLine(l string) string {
	if len(l) <= maxConfigLineSize {
		return l
	}
	n := maxConfigLineSize
	for n > 0 && !utf8.RuneStart(l[n]) {
		n--
	}
	return fmt.Sprintf("%s…(%d bytes)", l[:n], len(l))
}

// logConfigWarnings logs the settings that have no effect as configured.
func logConfigWarnings(log *slog.Logger, warnings []string) {
	_, asAddon := os.LookupEnv(addon.EnvSupervisorToken)
	for _, w := range warnings {
		if asAddon {
			w = withOption(w)
		}
		log.Warn("configuration: " + w)
	}
}

// withOption names the add-on option behind the variable an error line
// starts with: "SESAME_LOCKS entry 2: ..." gets " (add-on option locks)".
func withOption(line string) string {
	name := line
	if i := strings.IndexAny(line, " :,"); i >= 0 {
		name = line[:i]
	}
	if opt, ok := addon.OptionFor(name); ok {
		return line + " (add-on option " + opt + ")"
	}
	return line
}

// serve wires the parts and runs them until ctx is done.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := config.EnsureStateDir(cfg.StateDir); err != nil {
		return err
	}
	// The pins are checked first: a pin the machine does not have is a
	// configuration error, found before anything else is touched.
	lights, err := openLEDs(cfg, log.With("component", "indicator"))
	if err != nil {
		return configError{err}
	}
	meter, err := budget.Open(filepath.Join(cfg.StateDir, "api-usage.json"), cfg.MonthlyBudget, time.Now, log.With("component", "budget"))
	if err != nil {
		return err
	}
	cloud, err := sesame.New(sesame.Options{
		BaseURL: cfg.APIURL,
		APIKey:  cfg.APIKey,
		Counter: meter,
		Logger:  log.With("component", "sesame"),
	})
	if err != nil {
		return err
	}
	readerOpts, hasher, err := readerParts(cfg, log.With("component", "reader"))
	if err != nil {
		return err
	}
	topics := hass.Topics{Base: cfg.BaseTopic, Prefix: cfg.DiscoveryPrefix}
	locks := make([]bridge.Lock, 0, len(cfg.Locks))
	for _, l := range cfg.Locks {
		locks = append(locks, bridge.Lock{ID: l.ID(), UUID: l.UUID, Name: l.Name, Secret: l.Secret})
	}

	// The MQTT client and the bridge need each other: the client delivers to
	// the bridge, the bridge publishes through the client.
	var br *bridge.Bridge
	subs := bridge.Subscriptions(topics)
	var sharedAccess string
	if cfg.Access.Shared && readerOpts != nil {
		sharedAccess = cfg.Access.SharedTopic
		subs = append(subs, bridge.SharedCardsFilter(sharedAccess))
	}
	mq, err := mqtt.New(mqtt.Options{
		URL:              cfg.MQTTURL,
		Username:         cfg.MQTTUsername,
		Password:         cfg.MQTTPassword.Reveal(),
		WillTopic:        topics.Availability(),
		WillPayload:      "offline",
		Subscriptions:    subs,
		OnMessage:        func(m mqtt.Message) { br.HandleMessage(m) },
		OnConnect:        func() { br.OnConnect(); br.MQTTConnected(true) },
		OnConnectionLost: func(error) { br.MQTTConnected(false) },
		Timeout:          3 * time.Second,
		Logger:           log.With("component", "mqtt"),
		TLSConfig:        cfg.MQTTTLS.Config(), // nil: system roots; for MQTT only, never the Sesame cloud's HTTPS
	})
	if err != nil {
		return err
	}
	bo := bridge.Options{
		Locks:     locks,
		Topics:    topics,
		Version:   version,
		Cloud:     cloud,
		Publisher: mq,
		Budget:    meter,
		Logger:    log.With("component", "bridge"),
		Reader:    readerOpts,
		StateFile: filepath.Join(cfg.StateDir, "locks.json"),

		SharedAccess: sharedAccess,
	}
	if lights != nil {
		bo.Feedback, bo.FeedbackNames = lights, indicator.Names()
	}
	// The push feed: documents and health go to the bridge (which exists
	// before the client runs), and its free shadow read confirms commands.
	var pushClient *push.Client
	if cfg.Push.Enabled {
		uuids := make([]string, 0, len(cfg.Locks))
		for _, l := range cfg.Locks {
			uuids = append(uuids, l.UUID)
		}
		pushClient, err = push.New(push.Options{
			Locks:      uuids,
			PoolID:     cfg.Push.PoolID,
			Region:     cfg.Push.Region,
			Endpoint:   cfg.Push.Endpoint,
			CognitoURL: cfg.Push.CognitoURL,
			ShadowURL:  cfg.Push.ShadowURL,
			OnDocument: func(d push.Document) { br.PushDocument(bridgeDocument(d)) },
			OnHealth: func(h push.Health) {
				br.PushHealth(bridge.PushHealth{Connected: h.Connected, Reason: h.Reason})
			},
			Logger: log.With("component", "push"),
		})
		if err != nil {
			return err
		}
		bo.Push, bo.Shadow = true, shadowReader{pushClient}
	}
	br, err = bridge.New(bo)
	if err != nil {
		return err
	}
	var reader *nfc.Reader
	if readerOpts != nil {
		reader, err = nfc.NewReader(nfc.Options{
			Connstring: cfg.NFC.Device,
			Open:       openReader(log.With("component", "reader")),
			HoldOff:    cfg.NFC.HoldOff,
			OnTap:      br.Tap,
			OnStatus:   br.ReaderStatus,
			Hash:       hasher.Hash,
			Logger:     log.With("component", "reader"),
		})
		if err != nil {
			return err
		}
	}

	log.Debug("configuration", "config", cfg) // Config.LogValue redacts the secrets
	u := meter.Usage()
	log.Info("sesame2mqtt starting", "version", version, "locks", len(locks), "mqtt", cfg.MQTTURL,
		"base_topic", cfg.BaseTopic, "requests_this_month", u.Used, "budget", u.Budget)

	// Shutdown order: the bridge's loops stop first and queue their last
	// words (an interrupted command publishes its outcome as unknown) and
	// write the lock state file; then the MQTT client drains its outbox,
	// publishes "offline" and disconnects.
	br.MQTTConnected(false) // the LEDs show offline until the first connect
	g, gctx := errgroup.WithContext(ctx)
	// The access page first: a port in use stops the start before anything runs.
	if err := startWeb(gctx, g, cfg, br.Access(), log.With("component", "web")); err != nil {
		return err
	}
	mqttCtx, stopMQTT := context.WithCancel(context.WithoutCancel(gctx))
	defer stopMQTT()
	g.Go(func() error { return mq.Run(mqttCtx) })
	g.Go(func() error { defer stopMQTT(); return br.Run(gctx) })
	g.Go(func() error { meter.Run(gctx); return nil })
	if reader != nil {
		g.Go(func() error { return reader.Run(gctx) })
	}
	if pushClient != nil {
		// Run holds the feed until ctx ends (it reports trouble through
		// OnHealth, and the bridge polls meanwhile); it never gives up.
		g.Go(func() error { return pushClient.Run(gctx) })
	}
	if lights != nil {
		g.Go(func() error { return lights.ind.Run(gctx) })
	}

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("shutdown took longer than %s; exiting anyway", shutdownGrace)
	}
}

// bridgeDocument is the bridge's view of a push document.
func bridgeDocument(d push.Document) bridge.Document { return bridge.Document(d) }

// shadowReader gives the bridge the push client's free shadow read.
type shadowReader struct{ c *push.Client }

func (s shadowReader) ReadShadow(ctx context.Context, uuid string) (bridge.Document, error) {
	d, err := s.c.ReadShadow(ctx, uuid)
	if err != nil {
		return bridge.Document{}, err
	}
	return bridgeDocument(d), nil
}
