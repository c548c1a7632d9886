package sesame

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/aead/cmac"
)

// keySize is the length of a device secret: AES-128.
const keySize = 16

// maxHistoryBytes is the longest history tag the service takes.
const maxHistoryBytes = 21

// Sign returns the command signature for time t: AES-128-CMAC (RFC 4493)
// keyed with the device secret over bytes 1..3 of the Unix time in seconds
// written as 4 bytes little-endian, as lowercase hex. Byte 0 is dropped, so
// the signature changes every 256 seconds.
func Sign(key []byte, t time.Time) (string, error) {
	if len(key) != keySize {
		return "", fmt.Errorf("sign: device key is %d bytes, want %d", len(key), keySize)
	}
	sec := t.Unix()
	if sec < 0 || sec > math.MaxUint32 {
		return "", fmt.Errorf("sign: time %s outside the 32-bit Unix range", t.UTC().Format(time.RFC3339))
	}
	var buf [4]byte
	binary.LittleEndian.PutUint32(buf[:], uint32(sec))
	tag, err := cmacAES(key, buf[1:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return hex.EncodeToString(tag), nil
}

// cmacAES computes the full 16-byte AES-CMAC of msg. Sign and the RFC 4493
// test vectors both go through it.
func cmacAES(key, msg []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cmac.Sum(msg, block, block.BlockSize())
}

// DecodeDeviceSecret turns a device secret (32 hex characters) into the
// 16-byte signing key. The error never quotes the secret.
func DecodeDeviceSecret(s Secret) ([]byte, error) {
	v := s.Reveal()
	if len(v) != 2*keySize {
		return nil, fmt.Errorf("device secret: %d characters, want %d hex characters", len(v), 2*keySize)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		// hex's error names the offending character; do not pass it on.
		return nil, errors.New("device secret: not hexadecimal")
	}
	return key, nil
}

// HistoryTag returns the history field of a command: the tag cut to at most
// 21 bytes without splitting a UTF-8 sequence, in standard base64.
func HistoryTag(tag string) string {
	n := 0
	for n < len(tag) {
		_, size := utf8.DecodeRuneInString(tag[n:])
		if n+size > maxHistoryBytes {
			break
		}
		n += size
	}
	return base64.StdEncoding.EncodeToString([]byte(tag[:n]))
}
