package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

var (
	uuidRe   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	secretRe = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
)

// parseLocks parses SESAME_LOCKS: comma-separated UUID:SECRET[:NAME].
// Entries are numbered from 1 by their position between commas, so the
// number in a message is the one a user counts; empty entries (a trailing
// comma) are skipped. Each entry splits on the first two colons only, so a
// name may contain ':'. Messages name the entry, never the secret, and do
// not repeat a malformed UUID either (a swapped UUID and SECRET would
// otherwise print the secret).
func parseLocks(s string) ([]Lock, []error) {
	const key = "SESAME_LOCKS"
	if s == "" {
		return nil, []error{fmt.Errorf("%s: required, not set (want UUID:SECRET[:NAME],...)", key)}
	}
	if n := countEntries(s); n > MaxLocks {
		return nil, []error{fmt.Errorf("%s: %d entries, at most %d locks per bridge (each start reads every lock, and the month's requests would not go round)", key, n, MaxLocks)}
	}
	var (
		locks  []Lock
		errs   []error
		byUUID = map[string]int{} // uppercase UUID -> entry number
		byName = map[string]int{} // lowercase name -> entry number
	)
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.SplitN(entry, ":", 3)
		uuid := strings.TrimSpace(parts[0])
		var secret, name string
		if len(parts) > 1 {
			secret = strings.TrimSpace(parts[1])
		}
		if len(parts) > 2 {
			name = strings.TrimSpace(parts[2])
		}

		ok := true
		if !uuidRe.MatchString(uuid) {
			errs = append(errs, fmt.Errorf("%s entry %d: UUID must be 8-4-4-4-12 hex digits, like 01234567-89AB-CDEF-0123-456789ABCDEF", key, n))
			ok = false
		}
		switch {
		case secret == "":
			errs = append(errs, fmt.Errorf("%s entry %d: missing secret (want UUID:SECRET[:NAME])", key, n))
			ok = false
		case !secretRe.MatchString(secret):
			errs = append(errs, fmt.Errorf("%s entry %d: secret must be 32 hex characters (got %d characters)", key, n, len(secret)))
			ok = false
		}
		if !ok {
			continue
		}

		uuid = strings.ToUpper(uuid)
		if first, dup := byUUID[uuid]; dup {
			errs = append(errs, fmt.Errorf("%s entry %d: UUID %s is already used by entry %d", key, n, uuid, first))
			continue
		}
		byUUID[uuid] = n

		defaulted := name == ""
		if defaulted {
			name = "Sesame " + uuid[:4]
		}
		if first, dup := byName[strings.ToLower(name)]; dup {
			hint := ""
			if defaulted {
				hint = " (a default name; give one of them a name: UUID:SECRET:NAME)"
			}
			errs = append(errs, fmt.Errorf("%s entry %d: name %s is already used by entry %d, names are compared case-insensitively%s", key, n, quote(name), first, hint))
			continue
		}
		byName[strings.ToLower(name)] = n

		locks = append(locks, Lock{UUID: uuid, Secret: sesame.NewSecret(strings.ToLower(secret)), Name: name})
	}
	if len(locks) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no locks given (want UUID:SECRET[:NAME],...)", key))
	}
	return locks, errs
}
