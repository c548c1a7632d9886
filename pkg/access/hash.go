package access

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the UID hashing key in the state directory.
const KeyFile = "uid-hash.key"

const keySize = 32

// Hasher turns a UID into a short keyed hash for logs: the same card gives
// the same tag in every log line of an installation, and nobody who reads
// the log can turn it back into the UID or match it against another
// installation's logs.
type Hasher struct{ key []byte }

// LoadHasher reads the key from dir, creating it (0600) on first use.
func LoadHasher(dir string) (*Hasher, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	switch {
	case err == nil && len(key) == keySize:
		return &Hasher{key: key}, nil
	case err == nil:
		return nil, fmt.Errorf("uid hash key %s: %d bytes, want %d (delete it to make a new one)", path, len(key), keySize)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadHasher(dir) // another process made it first
		}
		return nil, fmt.Errorf("uid hash key: %w", err)
	}
	return &Hasher{key: key}, nil
}

// NewHasher uses key as is (tests, the demo).
func NewHasher(key []byte) *Hasher { return &Hasher{key: append([]byte(nil), key...)} }

// Hash is the log form of a UID: 12 hex digits of HMAC-SHA256.
func (h *Hasher) Hash(uid []byte) string {
	m := hmac.New(sha256.New, h.key)
	m.Write(uid)
	return hex.EncodeToString(m.Sum(nil)[:6])
}
