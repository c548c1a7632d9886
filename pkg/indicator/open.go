package indicator

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// The configuration variables, named in Open's errors.
const (
	EnvGreen  = "LED_GREEN_PIN"
	EnvRed    = "LED_RED_PIN"
	EnvBuzzer = "BUZZER_PIN"
)

// Pins is the configuration: periph.io pin names such as "GPIO23" (any
// name gpioreg knows: "GPIO23", "23", "P1_16"); empty means not fitted.
type Pins struct {
	Green, Red, Buzzer string
	// ActiveLow applies to the LEDs (LED_ACTIVE_LOW).
	ActiveLow bool
	// BuzzerActiveLow applies to the buzzer; most buzzers, and every one
	// behind an NPN transistor, are active-high.
	BuzzerActiveLow bool
}

// ErrNoSuchPin is wrapped by Open's error for a pin name the host does not
// know.
var ErrNoSuchPin = errors.New("no such GPIO pin")

// hostInit loads periph.io's drivers; tests replace it.
var hostInit = host.Init

// Open looks the configured pins up and returns an indicator for them
// (not yet running: call Run). With no pin configured it returns a
// disabled indicator (Enabled reports false) without touching periph.io
// at all, so a machine without GPIO stays silent. A name the host does
// not know is an error naming the variable and the pin. log may be nil.
func Open(p Pins, log *slog.Logger) (*Indicator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	names := [numOutputs]string{strings.TrimSpace(p.Green), strings.TrimSpace(p.Red), strings.TrimSpace(p.Buzzer)}
	envs := [numOutputs]string{EnvGreen, EnvRed, EnvBuzzer}
	if names == [numOutputs]string{} {
		log.Info("indicator disabled: no LED or buzzer pin configured")
		return New(Outputs{}, log), nil
	}
	state, err := hostInit()
	if err != nil {
		return nil, fmt.Errorf("indicator: periph.io host init: %w", err)
	}
	var pins [numOutputs]Pin
	var real [numOutputs]string
	for o, name := range names {
		if name == "" {
			continue
		}
		pin := gpioreg.ByName(name)
		if pin == nil {
			return nil, fmt.Errorf("indicator: %s=%q: %w%s", envs[o], name, ErrNoSuchPin, hint(state))
		}
		real[o] = realName(pin)
		for prev := range o {
			if real[prev] != "" && real[prev] == real[o] {
				return nil, fmt.Errorf("indicator: %s=%q and %s=%q are the same pin %s",
					envs[prev], names[prev], envs[o], name, real[o])
			}
		}
		pins[o] = pin
	}
	log.Info("indicator pins", "green", names[Green], "red", names[Red], "buzzer", names[Buzzer],
		"led_active_low", p.ActiveLow, "buzzer_active_low", p.BuzzerActiveLow)
	return New(Outputs{
		Green: pins[Green], Red: pins[Red], Buzzer: pins[Buzzer],
		LEDActiveLow: p.ActiveLow, BuzzerActiveLow: p.BuzzerActiveLow,
	}, log), nil
}

// realName sees through aliases ("P1_16" → "GPIO23").
func realName(p gpio.PinIO) string {
	for range 8 { // aliases may point at aliases; a bound guards against a loop
		r, ok := p.(gpio.RealPin)
		if !ok {
			break
		}
		next := r.Real()
		if next == nil {
			break
		}
		p = next
	}
	return p.Name()
}

// hint says what the host does have, for the missing-pin error.
func hint(state *driverreg.State) string {
	all := gpioreg.All()
	var b strings.Builder
	if len(all) == 0 {
		b.WriteString(" (this host has no GPIO pins")
	} else {
		fmt.Fprintf(&b, " (this host has %d pins:", len(all))
		const shown = 6
		for i, p := range all[:min(len(all), shown)] {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" " + p.Name())
		}
		if len(all) > shown {
			b.WriteString(", …")
		}
	}
	if state != nil {
		for _, f := range state.Failed {
			fmt.Fprintf(&b, "; driver %s failed: %v", f.D, f.Err)
		}
		for _, f := range state.Skipped {
			if strings.Contains(f.D.String(), "gpio") {
				fmt.Fprintf(&b, "; driver %s skipped: %v", f.D, f.Err)
			}
		}
	}
	if len(all) == 0 {
		b.WriteString("; in a container, pass the /dev/gpiochip* device")
	}
	b.WriteString(")")
	return b.String()
}
