package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/logcapture"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/pn532sim/pn532simtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	apiKey     = "0123456789abcdef0123456789abcdef01234567"
	lockUUID   = "488E1234-ABCD-4EF0-A1B2-C3D4E5F60718"
	lockID     = "488e1234abcd4ef0a1b2c3d4e5f60718"
	lockSecret = "a13d4b890111676ba8fb36ece7e94f7d"
	avail      = "sesame2mqtt/bridge/availability"
)

// binary is the sesame2mqtt executable built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sesame2mqtt-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sesame2mqtt")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running sesame2mqtt.
type proc struct {
	cmd    *exec.Cmd
	stderr *logcapture.Buffer
	stdout *logcapture.Buffer
	stdin  io.WriteCloser // nil unless started with startProcStdin
	waited chan error
}

// cleanEnv is the environment of a child: nothing of ours leaks in.
func cleanEnv(t testing.TB, vars ...string) []string {
	// Push off unless a test turns it on (a later entry wins): the tests
	// do not reach the real AWS IoT endpoint.
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SESAME_PUSH=off"}, vars...)
}

func startProc(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return start(t, false, env, args...)
}

// startProcStdin is startProc with a pipe to the process's stdin (a
// terminal's typing, for the demo).
func startProcStdin(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return start(t, true, env, args...)
}

func start(t testing.TB, withStdin bool, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stderr: &logcapture.Buffer{}, stdout: &logcapture.Buffer{}, waited: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stdout
	if withStdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.waited
		if t.Failed() {
			t.Logf("sesame2mqtt stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// terminate sends SIGTERM and fails the test unless the process exits
// cleanly within the bound (the shutdown promise is 5 s).
func (p *proc) terminate(t testing.TB, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.waited:
		p.waited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("still running %s after SIGTERM", within)
	}
}

// waitExit fails the test unless the process exits with code within d.
func (p *proc) waitExit(t testing.TB, code int, d time.Duration) {
	t.Helper()
	select {
	case err := <-p.waited:
		p.waited <- err
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if got != code {
			t.Fatalf("exit status %d, want %d; stderr:\n%s", got, code, p.stderr.String())
		}
	case <-time.After(d):
		t.Fatalf("still running %s after start, want exit status %d", d, code)
	}
}

// waitStdout fails the test unless the process has printed want within d.
func (p *proc) waitStdout(t testing.TB, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never said %q:\n%s\nstderr:\n%s", want, p.stdout.String(), p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectDemo connects a test client to the demo's embedded broker on addr,
// retrying while the demo starts; it is disconnected in t.Cleanup.
func connectDemo(t testing.TB, p *proc, addr, clientID string) paho.Client {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		client := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID))
		tok := client.Connect()
		if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
			t.Cleanup(func() { client.Disconnect(100) })
			return client
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo broker never accepted a connection; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// is matches a payload exactly.
func is(want string) func(string) bool { return func(s string) bool { return s == want } }

func bridgeEnv(t testing.TB, broker *mosquittotest.Broker, fake *sesametest.Server) []string {
	return cleanEnv(t,
		"SESAME_API_KEY="+apiKey,
		"SESAME_API_URL="+fake.URL(),
		"SESAME_LOCKS="+lockUUID+":"+lockSecret+":Front door",
		"STATE_DIR="+t.TempDir(),
		"MQTT_URL="+broker.URL(),
		"LOG_LEVEL=debug",
	)
}

func newFake(t testing.TB) *sesametest.Server {
	fake := sesametest.NewServer(apiKey, sesametest.Lock{UUID: lockUUID, Secret: lockSecret, State: sesame.StateLocked})
	fake.SetMoveDelay(100 * time.Millisecond)
	t.Cleanup(fake.Close)
	return fake
}

func TestInvalidConfigurationExitsBeforeAnyTraffic(t *testing.T) {
	var conns atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { conns.Add(1) }))
	defer api.Close()

	env := cleanEnv(t,
		"SESAME_API_URL="+api.URL,
		"SESAME_LOCKS=not-a-uuid:"+lockSecret+","+lockUUID+":abc",
		"API_MONTHLY_BUDGET=0",
		"MQTT_URL=tcp://"+ln.Addr().String(),
	)
	p := startProc(t, env)
	p.waitExit(t, 2, 10*time.Second)
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	for _, want := range []string{"SESAME_API_KEY", "UUID", "32 hex", "API_MONTHLY_BUDGET"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "configuration: ") && strings.Contains(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line about %s in:\n%s", want, p.stderr.String())
		}
	}
	if strings.Contains(p.stderr.String(), "goroutine") || strings.Contains(p.stderr.String(), lockSecret) {
		t.Errorf("stack trace or secret in the output:\n%s", p.stderr.String())
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections made with an invalid configuration", n)
	}
}

func TestSIGTERMPublishesOfflineAndExits(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, bridgeEnv(t, broker, fake))
	rec.WaitFor(t, avail, is("online"), 10*time.Second)
	rec.WaitFor(t, "sesame2mqtt/"+lockID+"/state", is("LOCKED"), 10*time.Second)

	since := time.Now()
	p.terminate(t, 5*time.Second)
	rec.WaitForAfter(t, since, avail, is("offline"), 2*time.Second)
	// The whole debug log of a run, configuration included, holds no secret.
	logs := p.stderr.String()
	if !strings.Contains(logs, `msg=configuration`) || !strings.Contains(logs, "REDACTED") {
		t.Errorf("no redacted configuration line in the debug log")
	}
	for _, secret := range []string{apiKey, lockSecret} {
		if strings.Contains(logs, secret) {
			t.Error("a secret appears in the log")
		}
		for _, m := range rec.Messages() {
			if strings.Contains(m.Payload, secret) {
				t.Errorf("a secret appears on MQTT topic %s", m.Topic)
			}
		}
	}
	// Retained: a subscriber arriving later sees the bridge offline.
	late := broker.Subscribe(t, avail)
	m := late.WaitFor(t, avail, nil, 2*time.Second)
	if !m.Retained || m.Payload != "offline" {
		t.Errorf("availability after shutdown: %+v", m)
	}
}

func TestKilledBridgeGoesOfflineThroughItsWill(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, avail)
	p := startProc(t, bridgeEnv(t, broker, fake))
	rec.WaitFor(t, avail, is("online"), 10*time.Second)
	since := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.WaitForAfter(t, since, avail, is("offline"), 10*time.Second)
	late := broker.Subscribe(t, avail)
	if m := late.WaitFor(t, avail, nil, 2*time.Second); !m.Retained || m.Payload != "offline" {
		t.Errorf("the will must be retained: %+v", m)
	}
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDemo runs -demo as a newcomer would, with nothing else: the simulated
// lock and the embedded broker, then commands it over MQTT.
func TestDemo(t *testing.T) {
	addr := freePort(t)
	p := startProcStdin(t, cleanEnv(t), "-demo", "-demo-listen", addr)
	client := connectDemo(t, p, addr, "demo-test")

	id := strings.ToLower(strings.ReplaceAll(demoUUID, "-", ""))
	states := make(chan string, 64)
	tok := client.Subscribe("sesame2mqtt/"+id+"/state", 1, func(_ paho.Client, m paho.Message) { states <- string(m.Payload()) })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	waitState := func(want string) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case s := <-states:
				if s == want {
					return
				}
			case <-timeout:
				t.Fatalf("demo lock never reported %s; stderr:\n%s", want, p.stderr.String())
			}
		}
	}
	waitStdout := func(want string) { t.Helper(); p.waitStdout(t, want, 10*time.Second) }
	waitState("LOCKED")
	pub := client.Publish("sesame2mqtt/"+id+"/set", 1, false, "UNLOCK")
	if !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
		t.Fatalf("publish: %v", pub.Error())
	}
	waitState("UNLOCKED")
	// The terminal shows what happened, as it happened.
	waitStdout("Demo door: UNLOCKING")
	waitStdout("Demo door: UNLOCKED")
	waitStdout("Demo door: unlock success")

	out := p.stdout.String()
	for _, want := range []string{"mosquitto_sub", "mosquitto_pub", "-p " + addr[strings.LastIndex(addr, ":")+1:], "sesame2mqtt/" + id + "/set", "UNLOCK"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo instructions lack %q:\n%s", want, out)
		}
	}

	if !libnfc.Available {
		// Without cgo there is no simulated reader; the demo says what to
		// install, and a typed tap gets the same answer instead of silence.
		if strings.Contains(out, "sesame2mqtt/demo/tap") || !strings.Contains(out, "No simulated card reader: "+libnfc.Install) {
			t.Errorf("a demo without cgo must say the reader needs cgo and libnfc, and offer no taps:\n%s", out)
		}
		if _, err := io.WriteString(p.stdin, "alice\n"); err != nil {
			t.Fatal(err)
		}
		waitStdout("no tap: " + libnfc.Install)
		return
	}

	// The simulated reader: Alice's card, tapped over MQTT, locks it again
	// (toggle) through the real libnfc driver; typed in the terminal, it
	// unlocks it.
	if !strings.Contains(out, "sesame2mqtt/demo/tap") {
		t.Errorf("demo instructions lack the tap topic:\n%s", out)
	}
	events := make(chan string, 16)
	tok = client.Subscribe("sesame2mqtt/reader/event", 1, func(_ paho.Client, m paho.Message) { events <- string(m.Payload()) })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	granted := func(how string) {
		t.Helper()
		select {
		case e := <-events:
			if !strings.Contains(e, `"event_type":"access_granted"`) || !strings.Contains(e, `"holder":"Alice"`) {
				t.Errorf("first reader event after a tap %s = %s, want Alice granted", how, e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reader event after a demo tap %s; stderr:\n%s", how, p.stderr.String())
		}
	}
	pub = client.Publish("sesame2mqtt/demo/tap", 1, false, "alice")
	if !pub.WaitTimeout(5*time.Second) || pub.Error() != nil {
		t.Fatalf("publish: %v", pub.Error())
	}
	granted("over MQTT")
	waitState("LOCKED")
	waitStdout("reader: access_granted, Alice (toggle)")
	waitStdout("Demo door: toggle success")

	drain := func() {
		for {
			select {
			case <-events:
			default:
				return
			}
		}
	}
	// The first card has left the field, and the hold-off (NFC_HOLD_OFF,
	// 3 s) after it has passed: with the push feed the toggle is confirmed
	// within about a second, well before that.
	time.Sleep(demoTapTime + 3*time.Second + 200*time.Millisecond)
	drain()
	if _, err := io.WriteString(p.stdin, "alice\n"); err != nil {
		t.Fatal(err)
	}
	granted("in the terminal")
	waitState("UNLOCKED")
}

// TestHelpGoesToStdout: `sesame2mqtt -help | less` shows the help; a wrong
// flag is an error on stderr with exit 2.
func TestHelpGoesToStdout(t *testing.T) {
	p := startProc(t, cleanEnv(t), "-help")
	p.waitExit(t, 0, 10*time.Second)
	out := p.stdout.String()
	for _, want := range []string{"Usage: sesame2mqtt [-demo [-demo-listen ADDR] [-demo-reader pn532|rcs380]] [-version] [-help]", "-demo-listen", "-demo-reader", "SESAME_API_KEY", "MQTT_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("-help output on stdout lacks %q:\n%s", want, out)
		}
	}
	if p.stderr.String() != "" {
		t.Errorf("-help wrote to stderr: %q", p.stderr.String())
	}

	p = startProc(t, cleanEnv(t), "-bogus")
	p.waitExit(t, 2, 10*time.Second)
	if p.stdout.String() != "" || !strings.Contains(p.stderr.String(), "-bogus") || !strings.Contains(p.stderr.String(), "Usage:") {
		t.Errorf("a wrong flag: stdout %q, stderr %q; want the error and the usage line on stderr only", p.stdout.String(), p.stderr.String())
	}
}

// TestDemoBannerNamesTheBrokerInUse: with MQTT_URL set, the demo's
// instructions point at that broker, with its login's user.
func TestDemoBannerNamesTheBrokerInUse(t *testing.T) {
	for _, tc := range []struct {
		url, user string
		want      []string
	}{
		{"tcp://127.0.0.1:1883", "", []string{"The MQTT broker is 127.0.0.1:1883.", "mosquitto_pub -h 127.0.0.1 -p 1883 -t"}},
		{"tcp://broker.lan:11883", "ha", []string{"The MQTT broker is broker.lan:11883.", "mosquitto_sub -h broker.lan -p 11883 -u ha -P '<password>' -v"}},
		{"ssl://broker.lan", "", []string{"The MQTT broker is broker.lan:8883."}},
		{"tcp://homeassistant.local", "", []string{"The MQTT broker is homeassistant.local:1883."}},
	} {
		got := demoBanner(tc.url, tc.user, "sesame2mqtt", "abc", "", false)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("banner for %s lacks %q:\n%s", tc.url, w, got)
			}
		}
	}
}

// BenchmarkIdleRSS reports the resident memory of the running binary once it
// has connected, read its lock and settled.
func BenchmarkIdleRSS(b *testing.B) {
	b.Run("locks", func(b *testing.B) { idleRSS(b, false, false) })
	// With a reader polling (the simulated PN532, through libnfc) and the
	// UID hash key loaded.
	b.Run("locks+reader", func(b *testing.B) { idleRSS(b, true, false) })
	// With the push feed connected (the simulated Cognito and AWS IoT
	// endpoint, MQTT over a WebSocket).
	b.Run("locks+push", func(b *testing.B) { idleRSS(b, false, true) })
}

func idleRSS(b *testing.B, reader, withPush bool) {
	broker := mosquittotest.Start(b)
	fake := newFake(b)
	rec := broker.Subscribe(b, "sesame2mqtt/#")
	env := bridgeEnv(b, broker, fake)
	if withPush {
		feed := pushtest.Start(b)
		env = pushEnv(b, broker, fake, feed)
	}
	if reader {
		needLibnfc(b)
		sim := pn532simtest.Start(b, "")
		env = append(env, "NFC_DEVICE="+sim.Connstring(), "NFC_CARDS=04A22B1CD35E80:Alice")
	}
	var worst float64
	for i := 0; i < b.N; i++ {
		p := startProc(b, env)
		rec.WaitForAfter(b, time.Now().Add(-time.Second), "sesame2mqtt/"+lockID+"/state", nil, 10*time.Second)
		if withPush {
			rec.WaitFor(b, "sesame2mqtt/bridge/state_source", func(s string) bool { return strings.Contains(s, `"source":"push"`) }, 15*time.Second)
		}
		time.Sleep(3 * time.Second)
		rss, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		worst = max(worst, rss)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.waited
		p.waited <- nil
	}
	b.ReportMetric(worst, "idle-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

func vmRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				return 0, err
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// TestSIGTERMDuringCommandLeavesNoUnconfirmedState: a command cut short by
// shutdown while its POST is in flight must not leave UNLOCKING retained on
// the broker, nor the old LOCKED (the cloud may have taken the command): its
// outcome is unknown, and that is what the state and the result say.
func TestSIGTERMDuringCommandLeavesNoUnconfirmedState(t *testing.T) {
	broker := mosquittotest.Start(t)
	fake := newFake(t)
	rec := broker.Subscribe(t, "sesame2mqtt/#")
	p := startProc(t, bridgeEnv(t, broker, fake))
	state := "sesame2mqtt/" + lockID + "/state"
	rec.WaitFor(t, state, is("LOCKED"), 10*time.Second)

	fake.SetLatency(3 * time.Second) // the POST is in flight when the signal comes
	since := time.Now()
	broker.Publish(t, "sesame2mqtt/"+lockID+"/set", "UNLOCK", false)
	rec.WaitForAfter(t, since, state, is("UNLOCKING"), 5*time.Second)
	p.terminate(t, 5*time.Second)
	res := rec.WaitForAfter(t, since, "sesame2mqtt/"+lockID+"/result", nil, 2*time.Second)
	if !strings.Contains(res.Payload, `"result":"unknown"`) || !strings.Contains(res.Payload, "shutting down") {
		t.Errorf("result %s", res.Payload)
	}
	late := broker.Subscribe(t, state)
	if m := late.WaitFor(t, state, nil, 2*time.Second); m.Payload != "None" {
		t.Errorf("retained state after shutdown mid-command: %q, want None (unknown)", m.Payload)
	}
	if m := broker.Subscribe(t, avail).WaitFor(t, avail, nil, 2*time.Second); m.Payload != "offline" {
		t.Errorf("availability %q", m.Payload)
	}
}

// TestMissingGPIOPinIsAConfigurationError: a pin the machine does not have
// (this one has no GPIO at all) stops the bridge at start-up like any other
// configuration problem, before any network traffic.
func TestMissingGPIOPinIsAConfigurationError(t *testing.T) {
	var conns atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { conns.Add(1) }))
	defer api.Close()
	p := startProc(t, cleanEnv(t,
		"SESAME_API_KEY="+apiKey,
		"SESAME_API_URL="+api.URL,
		"SESAME_LOCKS="+lockUUID+":"+lockSecret,
		"STATE_DIR="+t.TempDir(),
		"LED_RED_PIN=GPIO_NO_SUCH_PIN",
	))
	p.waitExit(t, 2, 10*time.Second)
	out := strings.TrimSpace(p.stderr.String())
	// Log lines (the warning that LEDs without a reader show no taps) aside.
	if lines := configLines(out); len(lines) != 1 || !strings.Contains(lines[0], `LED_RED_PIN="GPIO_NO_SUCH_PIN": no such GPIO pin`) {
		t.Errorf("want one configuration line naming the variable and the pin, got:\n%s", out)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d requests made before the pin was checked", n)
	}
}
