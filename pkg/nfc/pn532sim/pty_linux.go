//go:build linux

package pn532sim

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/creack/pty"
)

// openPTY opens a pseudo-terminal pair: a pollable master (reads and writes
// honour deadlines, and Close interrupts a blocked Read) and the slave, set
// to raw mode so that nothing is echoed or translated between host
// sessions.
//
// pty.Open leaves the master in blocking mode (it calls Fd), where Close
// would not interrupt a Read; the master is therefore duplicated into a
// non-blocking descriptor, which os.NewFile registers with the poller.
func openPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	defer m.Close()
	nb, err := pollableDup(m)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := makeRaw(s); err != nil {
		nb.Close()
		s.Close()
		return nil, nil, err
	}
	return nb, s, nil
}

func pollableDup(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pty master: %w", err)
	}
	var fd uintptr
	var errno syscall.Errno
	if err := sc.Control(func(old uintptr) {
		fd, _, errno = syscall.Syscall(syscall.SYS_FCNTL, old, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("pty master: %w", err)
	}
	if errno != 0 {
		return nil, fmt.Errorf("pty master: dup: %w", errno)
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("pty master: non-blocking: %w", err)
	}
	return os.NewFile(fd, "/dev/ptmx"), nil
}

// makeRaw is cfmakeraw(3) on f.
func makeRaw(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pty slave: %w", err)
	}
	var errno syscall.Errno
	if err := sc.Control(func(fd uintptr) {
		var t syscall.Termios
		if _, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); errno != 0 {
			return
		}
		t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
		t.Oflag &^= syscall.OPOST
		t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		t.Cflag &^= syscall.CSIZE | syscall.PARENB
		t.Cflag |= syscall.CS8
		t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&t)))
	}); err != nil {
		return fmt.Errorf("pty slave: %w", err)
	}
	if errno != 0 {
		return fmt.Errorf("pty slave: raw mode: %w", errno)
	}
	return nil
}
