//go:build !linux

package pn532sim

import (
	"errors"
	"os"
)

func openPTY() (master, slave *os.File, err error) {
	return nil, nil, errors.New("pn532sim: only supported on Linux")
}
