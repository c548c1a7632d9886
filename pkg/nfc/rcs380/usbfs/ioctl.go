//go:build linux

// Package usbfs is the part of the Linux kernel's usbfs that a bulk-only
// USB device needs, in pure Go: finding devices in sysfs, opening their
// node under /dev/bus/usb, detaching a kernel driver from an interface,
// claiming it, and bulk transfers with timeouts. The ioctls go through
// golang.org/x/sys/unix; no cgo, no libusb.
//
// No maintained pure-Go usbfs library fits: google/gousb and the other
// common ones wrap libusb through cgo, which the project keeps to the one
// libnfc package, and the pure-Go ones seen are unmaintained or pull in far
// more than five ioctls.
package usbfs

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctl request encoding of asm-generic/ioctl.h (amd64, 386, arm,
// arm64, riscv64, loong64): dir in bits 30-31, size in 16-29, type in 8-15,
// number in 0-7.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | typ<<8 | nr
}

// bulkTransfer is struct usbdevfs_bulktransfer.
type bulkTransfer struct {
	ep      uint32
	len     uint32
	timeout uint32 // milliseconds
	data    unsafe.Pointer
}

// ioctlArg is struct usbdevfs_ioctl: an ioctl for the driver of an
// interface.
type ioctlArg struct {
	ifno int32
	code int32
	data unsafe.Pointer
}

// getDriver is struct usbdevfs_getdriver.
type getDriver struct {
	iface  uint32
	driver [256]byte
}

// The usbfs requests (linux/usbdevice_fs.h), 'U' = 0x55.
var (
	reqBulk             = ioc(iocRead|iocWrite, 'U', 2, unsafe.Sizeof(bulkTransfer{}))
	reqGetDriver        = ioc(iocWrite, 'U', 8, unsafe.Sizeof(getDriver{}))
	reqClaimInterface   = ioc(iocRead, 'U', 15, unsafe.Sizeof(uint32(0)))
	reqReleaseInterface = ioc(iocRead, 'U', 16, unsafe.Sizeof(uint32(0)))
	reqIoctl            = ioc(iocRead|iocWrite, 'U', 18, unsafe.Sizeof(ioctlArg{}))
	reqDisconnect       = ioc(iocNone, 'U', 22, 0)
)

// ioctl is the system call; the tests replace it to see the arguments.
var ioctl = func(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return int(r), errno
	}
	return int(r), nil
}
