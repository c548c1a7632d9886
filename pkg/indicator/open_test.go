package indicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio/gpioreg"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/indicator/indicatortest"
)

// stubHost replaces host.Init for the test and counts the calls. Tests
// that use it must not run in parallel.
func stubHost(t *testing.T, err error) *int {
	t.Helper()
	calls := new(int)
	orig := hostInit
	hostInit = func() (*driverreg.State, error) {
		*calls++
		return &driverreg.State{}, err
	}
	t.Cleanup(func() { hostInit = orig })
	return calls
}

// register adds fake pins to periph's registry under names unique to the
// test, and removes them when it ends.
func register(t *testing.T, names ...string) map[string]*indicatortest.Pin {
	t.Helper()
	pins := map[string]*indicatortest.Pin{}
	for i, n := range names {
		p := indicatortest.NewPin(n, 900+i)
		if err := gpioreg.Register(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gpioreg.Unregister(n) })
		pins[n] = p
	}
	return pins
}

// uniq makes pin names that do not collide across tests and -count runs.
var pinSeq int

func uniq(base string) string {
	pinSeq++
	return fmt.Sprintf("IND_%s_%d", base, pinSeq)
}

func TestOpenNoPins(t *testing.T) {
	calls := stubHost(t, errors.New("must not be called"))
	for _, p := range []Pins{{}, {ActiveLow: true}, {Green: "  ", BuzzerActiveLow: true}} {
		ind, err := Open(p, nil)
		if err != nil {
			t.Fatalf("Open(%+v) = %v", p, err)
		}
		if ind == nil || ind.Enabled() {
			t.Errorf("Open(%+v): want a disabled indicator", p)
		}
		ind.Show(Denied) // harmless
	}
	if *calls != 0 {
		t.Errorf("host.Init called %d times with no pins configured, want 0", *calls)
	}
}

func TestOpenByName(t *testing.T) {
	calls := stubHost(t, nil)
	g, b := uniq("GREEN"), uniq("BUZZER")
	pins := register(t, g, b)
	synctest.Test(t, func(t *testing.T) {
		ind, err := Open(Pins{Green: g, Buzzer: " " + b + " ", ActiveLow: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ind.Enabled() || !ind.Has(Green) || ind.Has(Red) || !ind.HasBuzzer() {
			t.Errorf("green and buzzer fitted: green %v, red %v, buzzer %v", ind.Has(Green), ind.Has(Red), ind.HasBuzzer())
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- ind.Run(ctx) }()
		time.Sleep(time.Second)
		t0 := time.Now()
		ind.Show(CardRead)
		time.Sleep(time.Second)
		if got, want := pins[g].Timeline(t0, true), "+0s on +100ms off"; got != want {
			t.Errorf("green %q, want %q", got, want)
		}
		if got, want := pins[b].Timeline(t0, false), "+0s on +60ms off"; got != want {
			t.Errorf("buzzer %q, want %q", got, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if *calls != 1 {
		t.Errorf("host.Init called %d times, want 1", *calls)
	}
}

func TestOpenErrors(t *testing.T) {
	g := uniq("GREEN")
	register(t, g)
	alias := uniq("ALIAS")
	if err := gpioreg.RegisterAlias(alias, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister(alias) })
	for _, tc := range []struct {
		name    string
		pins    Pins
		initErr error
		want    []string
		is      error
	}{
		{
			name: "missing red",
			pins: Pins{Green: g, Red: "GPIO_NOPE"},
			want: []string{`indicator: LED_RED_PIN="GPIO_NOPE": no such GPIO pin (this host has`, g},
			is:   ErrNoSuchPin,
		},
		{
			name: "missing buzzer",
			pins: Pins{Buzzer: "GPIO99"},
			want: []string{`indicator: BUZZER_PIN="GPIO99": no such GPIO pin`},
			is:   ErrNoSuchPin,
		},
		{
			name: "same pin twice",
			pins: Pins{Green: g, Buzzer: g},
			want: []string{fmt.Sprintf(`indicator: LED_GREEN_PIN=%q and BUZZER_PIN=%q are the same pin %s`, g, g, g)},
		},
		{
			name: "same pin through an alias",
			pins: Pins{Green: g, Red: alias},
			want: []string{fmt.Sprintf(`LED_GREEN_PIN=%q and LED_RED_PIN=%q are the same pin %s`, g, alias, g)},
		},
		{
			name:    "host init fails",
			pins:    Pins{Green: g},
			initErr: errors.New("no drivers"),
			want:    []string{"indicator: periph.io host init: no drivers"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubHost(t, tc.initErr)
			ind, err := Open(tc.pins, nil)
			if err == nil {
				t.Fatalf("Open(%+v) = %v, nil; want an error", tc.pins, ind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.initErr != nil && !errors.Is(err, tc.initErr) {
				t.Errorf("error %v does not wrap %v", err, tc.initErr)
			}
		})
	}
}

func TestHintListsFailedDrivers(t *testing.T) {
	h := hint(&driverreg.State{
		Failed: []driverreg.DriverFailure{{D: fakeDriver("ioctl-gpio"), Err: errors.New("open /dev/gpiochip0: permission denied")}},
		Skipped: []driverreg.DriverFailure{
			{D: fakeDriver("sysfs-gpio"), Err: errors.New(`dependency not loaded: "ioctl-gpio"`)},
			{D: fakeDriver("sysfs-spi"), Err: errors.New("no SPI port found")},
		},
	})
	for _, want := range []string{
		"; driver ioctl-gpio failed: open /dev/gpiochip0: permission denied",
		`; driver sysfs-gpio skipped: dependency not loaded: "ioctl-gpio"`,
	} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q lacks %q", h, want)
		}
	}
	if strings.Contains(h, "SPI") {
		t.Errorf("hint %q names a driver that has nothing to do with GPIO", h)
	}
}

type fakeDriver string

func (d fakeDriver) String() string          { return string(d) }
func (d fakeDriver) Prerequisites() []string { return nil }
func (d fakeDriver) After() []string         { return nil }
func (d fakeDriver) Init() (bool, error)     { return false, nil }
