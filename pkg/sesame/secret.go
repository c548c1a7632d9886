package sesame

import (
	"fmt"
	"log/slog"
)

// redacted is what every printing path shows instead of a secret's value.
const redacted = "REDACTED"

// Secret holds a credential (the account's API key or a device secret).
// Every way of printing it — fmt verbs, slog, JSON — shows REDACTED; only
// Reveal returns the value, and only the code that signs or authenticates
// calls it.
type Secret struct{ v string }

// NewSecret wraps a credential.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no credential is set.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, so %#v does not print the field.
func (s Secret) GoString() string { return redacted }

// Format covers every fmt verb, including %x and %q.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps the value out of any JSON document.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps the value out of text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
