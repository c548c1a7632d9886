package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
)

// The limits checked at configuration time, so that a deployment that
// cannot work stops at once with exit status 2 instead of failing later.
const (
	// MaxLocks is the most locks one bridge takes. Every start reads each
	// lock once, and the free tier's 3,000 requests a month (80 % of them
	// for background reads) leave 500 locks fewer than 5 background reads
	// each a month: beyond that a lock's state is effectively never read
	// again, and one restart spends more than a sixth of the month.
	MaxLocks = 500
	// maxTopicBytes is MQTT's limit: a topic is a UTF-8 string with a
	// 16-bit length.
	maxTopicBytes = 65535
	// maxTopicSeparators: Mosquitto refuses (and disconnects on) a
	// subscription whose filter has more than 200 '/' (checked with
	// Mosquitto 2.0.11).
	maxTopicSeparators = 200

	// MaxErrors is the most problems an error from Load lists; the rest
	// are counted in one more line.
	MaxErrors = 20
	// maxErrorsPerVariable is the most problems listed for one variable
	// made of entries (SESAME_LOCKS, NFC_CARDS), so that garbage in one
	// does not hide the problems of the others.
	maxErrorsPerVariable = 5
	// maxQuoted is the most of a value an error message repeats.
	maxQuoted = 64
)

// quote repeats a value in an error message: quoted, escaped, and cut
// after 64 bytes with its full length, so that 128 KiB of garbage in a
// variable does not become 128 KiB of error.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > maxQuoted-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s…(%d bytes)", strconv.Quote(s[:n]), len(s))
}

// capErrors keeps the first problems of one variable and counts the rest.
func capErrors(key string, errs []error) []error {
	if len(errs) <= maxErrorsPerVariable {
		return errs
	}
	more := len(errs) - maxErrorsPerVariable
	return append(errs[:maxErrorsPerVariable:maxErrorsPerVariable],
		fmt.Errorf("%s: and %d more %s in later entries", key, more, plural(more, "problem", "problems")))
}

// capTotal keeps the first MaxErrors problems and counts the rest.
func capTotal(errs []error) []error {
	if len(errs) <= MaxErrors {
		return errs
	}
	more := len(errs) - MaxErrors
	return append(errs[:MaxErrors:MaxErrors], fmt.Errorf("and %d more %s", more, plural(more, "problem", "problems")))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countEntries counts the non-empty comma-separated entries of s.
func countEntries(s string) int {
	n := 0
	for entry := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(entry) != "" {
			n++
		}
	}
	return n
}

// checkTopicLimits checks that every topic the bridge derives from the
// base topic and the discovery prefix fits MQTT and Mosquitto. Both are
// assumed to have passed checkTopic.
func checkTopicLimits(base, prefix string, locks []Lock) error {
	ids := make([]string, 0, len(locks))
	for _, l := range locks {
		ids = append(ids, l.ID())
	}
	longest := hass.Topics{Base: base, Prefix: prefix}.LongestTopic(ids)
	var errs []error
	if len(longest) > maxTopicBytes {
		errs = append(errs, fmt.Errorf("MQTT_BASE_TOPIC (%d bytes), MQTT_DISCOVERY_PREFIX (%d bytes): the longest topic the bridge uses would be %d bytes, and MQTT allows %d",
			len(base), len(prefix), len(longest), maxTopicBytes))
	}
	// The deepest filters subscribed to: <base>/+/set, <prefix>/device/+/config.
	if strings.Count(base, "/")+2 > maxTopicSeparators || strings.Count(prefix, "/")+3 > maxTopicSeparators {
		errs = append(errs, fmt.Errorf("MQTT_BASE_TOPIC (%d levels), MQTT_DISCOVERY_PREFIX (%d levels): too many levels; the topic filters the bridge subscribes to would have more than %d '/', which Mosquitto refuses",
			strings.Count(base, "/")+1, strings.Count(prefix, "/")+1, maxTopicSeparators))
	}
	return errors.Join(errs...)
}

// warnings are the settings that have no effect as configured: a variable
// of the reader set without a reader, LED_ACTIVE_LOW without LEDs. They do
// not stop the bridge. A variable left at its default says nothing (the
// add-on passes every option, set or not).
func warnings(r raw) []string {
	var out []string
	if r.NFCDevice == "" {
		for _, v := range []struct{ key, val, def string }{
			{"NFC_CARDS", r.NFCCards, ""},
			{"NFC_ACTION", r.NFCAction, ActionToggle},
			{"NFC_LOCK", r.NFCLock, ""},
			{"NFC_TAG_SCANNER", r.NFCTagScanner, TagScannerAll},
			{"NFC_HOLD_OFF", r.NFCHoldOff, "3s"},
		} {
			if v.val != "" && !strings.EqualFold(v.val, v.def) {
				out = append(out, v.key+" is set but NFC_DEVICE is not: without a card reader it has no effect; set NFC_DEVICE (a libnfc connstring, or auto)")
			}
		}
		var pins []string
		for _, p := range []struct{ key, val string }{{"LED_GREEN_PIN", r.LEDGreenPin}, {"LED_RED_PIN", r.LEDRedPin}, {"BUZZER_PIN", r.BuzzerPin}} {
			if p.val != "" {
				pins = append(pins, p.key)
			}
		}
		if len(pins) > 0 {
			out = append(out, strings.Join(pins, ", ")+plural(len(pins), " is", " are")+" set but NFC_DEVICE is not: without a card reader the outputs show only the bridge's state (offline, jammed) and the patterns Home Assistant plays, never a card tap")
		}
	}
	if r.LEDGreenPin == "" && r.LEDRedPin == "" && isTrue(r.LEDActiveLow) {
		out = append(out, "LED_ACTIVE_LOW is set but neither LED_GREEN_PIN nor LED_RED_PIN is: it applies to the LEDs only (the buzzer is always driven active-high), so it has no effect")
	}
	return out
}
