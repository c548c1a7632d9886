//go:build linux

package usbfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tree is where the kernel shows USB devices: the nodes and sysfs.
type Tree struct {
	Dev string // /dev/bus/usb
	Sys string // /sys/bus/usb/devices
}

// System is the machine's own tree.
var System = Tree{Dev: "/dev/bus/usb", Sys: "/sys/bus/usb/devices"}

// Info is one USB device as sysfs describes it, with what a bulk driver
// needs of its interface 0.
type Info struct {
	Bus, Dev        int
	Vendor, Product uint16
	Manufacturer    string // may be empty
	ProductName     string // may be empty
	Node            string // /dev/bus/usb/BBB/DDD
	// Driver is the kernel driver bound to interface 0, "" when none.
	Driver string
	// In and Out are the first bulk endpoints of interface 0, 0 when it has
	// none; MaxPacket is Out's packet size.
	In, Out   uint8
	MaxPacket int
}

// Find lists the devices match accepts, ordered by bus and device number.
// Devices whose sysfs entry is incomplete (being plugged in or out) are
// skipped.
func (t Tree) Find(match func(Info) bool) ([]Info, error) {
	entries, err := os.ReadDir(t.Sys)
	if err != nil {
		return nil, fmt.Errorf("usbfs: list %s: %w", t.Sys, err)
	}
	var out []Info
	for _, e := range entries {
		name := e.Name()
		if strings.Contains(name, ":") {
			continue // an interface, not a device
		}
		info, ok := t.device(filepath.Join(t.Sys, name))
		if ok && match(info) {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bus != out[j].Bus {
			return out[i].Bus < out[j].Bus
		}
		return out[i].Dev < out[j].Dev
	})
	return out, nil
}

func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (t Tree) device(dir string) (Info, bool) {
	vid, err1 := strconv.ParseUint(readAttr(dir, "idVendor"), 16, 16)
	pid, err2 := strconv.ParseUint(readAttr(dir, "idProduct"), 16, 16)
	bus, err3 := strconv.Atoi(readAttr(dir, "busnum"))
	dev, err4 := strconv.Atoi(readAttr(dir, "devnum"))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Info{}, false
	}
	info := Info{
		Bus: bus, Dev: dev, Vendor: uint16(vid), Product: uint16(pid),
		Manufacturer: readAttr(dir, "manufacturer"), ProductName: readAttr(dir, "product"),
		Node: filepath.Join(t.Dev, fmt.Sprintf("%03d", bus), fmt.Sprintf("%03d", dev)),
	}
	cfg := readAttr(dir, "bConfigurationValue")
	if cfg == "" {
		cfg = "1"
	}
	ifdir := dir + ":" + cfg + ".0"
	if link, err := os.Readlink(filepath.Join(ifdir, "driver")); err == nil {
		info.Driver = filepath.Base(link)
	}
	eps, _ := filepath.Glob(filepath.Join(ifdir, "ep_*"))
	sort.Strings(eps)
	for _, ep := range eps {
		if readAttr(ep, "type") != "Bulk" {
			continue
		}
		addr, err := strconv.ParseUint(readAttr(ep, "bEndpointAddress"), 16, 8)
		if err != nil {
			continue
		}
		switch {
		case readAttr(ep, "direction") == "in" && info.In == 0:
			info.In = uint8(addr)
		case readAttr(ep, "direction") == "out" && info.Out == 0:
			info.Out = uint8(addr)
			if n, err := strconv.ParseUint(readAttr(ep, "wMaxPacketSize"), 16, 16); err == nil {
				info.MaxPacket = int(n)
			}
		}
	}
	return info, true
}

// Conn is an open device with interface 0 claimed.
type Conn struct {
	fd        int
	in, out   uint8
	maxPacket int
	// Detached is the kernel driver Open disconnected, "" when none.
	Detached string
}

// openNode opens a device node; the tests replace it.
var openNode = func(path string) (int, error) {
	return unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
}

// Open opens info's node, detaches a kernel driver from interface 0 when
// allowed and claims the interface. A node the user may not open returns
// an error wrapping os.ErrPermission (EACCES); a driver that stays bound,
// a *DriverError (errors.Is ErrDriverBound); a device that is gone, ENODEV.
func Open(info Info, o Options) (*Conn, error) {
	if info.In == 0 || info.Out == 0 {
		return nil, fmt.Errorf("usbfs: %s has no bulk endpoints on interface 0", info.Node)
	}
	fd, err := openNode(info.Node)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: info.Node, Err: err}
	}
	c := &Conn{fd: fd, in: info.In, out: info.Out, maxPacket: info.MaxPacket}
	if err := c.claim(o); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *Conn) claim(o Options) error {
	drv, err := c.driver(0)
	if err != nil {
		return fmt.Errorf("usbfs: driver of interface 0: %w", err)
	}
	if drv != "" && drv != "usbfs" {
		if !o.Detach {
			return &DriverError{Driver: drv}
		}
		if err := c.disconnect(0); err != nil {
			return &DriverError{Driver: drv, Err: err}
		}
		c.Detached = drv
	}
	iface := uint32(0)
	if _, err := ioctl(c.fd, reqClaimInterface, unsafe.Pointer(&iface)); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return &DriverError{Driver: "another program or driver", Err: err}
		}
		return fmt.Errorf("usbfs: claim interface 0: %w", err)
	}
	return nil
}

// driver names the kernel driver bound to the interface, "" for none.
func (c *Conn) driver(iface uint32) (string, error) {
	g := getDriver{iface: iface}
	_, err := ioctl(c.fd, reqGetDriver, unsafe.Pointer(&g))
	switch {
	case errors.Is(err, unix.ENODATA):
		return "", nil
	case err != nil:
		return "", err
	}
	n := bytes.IndexByte(g.driver[:], 0)
	if n < 0 {
		n = len(g.driver)
	}
	return string(g.driver[:n]), nil
}

// disconnect detaches the kernel driver from the interface.
func (c *Conn) disconnect(iface int32) error {
	a := ioctlArg{ifno: iface, code: int32(reqDisconnect)}
	_, err := ioctl(c.fd, reqIoctl, unsafe.Pointer(&a))
	return err
}

func (c *Conn) bulk(ep uint8, p []byte, timeout time.Duration) (int, error) {
	ms := uint32(max(timeout.Milliseconds(), 1))
	bt := bulkTransfer{ep: uint32(ep), len: uint32(len(p)), timeout: ms}
	if len(p) > 0 {
		bt.data = unsafe.Pointer(&p[0])
	}
	n, err := ioctl(c.fd, reqBulk, unsafe.Pointer(&bt))
	runtime.KeepAlive(p)
	return n, err
}

// Write sends p to the bulk OUT endpoint, with a zero-length packet after
// it when it fills its last packet exactly (as nfcpy does).
func (c *Conn) Write(p []byte, timeout time.Duration) error {
	n, err := c.bulk(c.out, p, timeout)
	if err != nil {
		return fmt.Errorf("usbfs: bulk out: %w", err)
	}
	if n != len(p) {
		return fmt.Errorf("usbfs: bulk out: %d of %d bytes: %w", n, len(p), unix.EIO)
	}
	if c.maxPacket > 0 && len(p)%c.maxPacket == 0 {
		if _, err := c.bulk(c.out, nil, timeout); err != nil {
			return fmt.Errorf("usbfs: bulk out (zero-length packet): %w", err)
		}
	}
	return nil
}

// Read receives one transfer from the bulk IN endpoint. ETIMEDOUT when
// nothing came within timeout.
func (c *Conn) Read(p []byte, timeout time.Duration) (int, error) {
	n, err := c.bulk(c.in, p, timeout)
	if err != nil {
		return 0, fmt.Errorf("usbfs: bulk in: %w", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("usbfs: bulk in: no data: %w", unix.EIO)
	}
	return n, nil
}

// Close releases the interface and closes the node. The kernel driver
// Open detached stays detached until the device is plugged in again.
func (c *Conn) Close() error {
	iface := uint32(0)
	_, rerr := ioctl(c.fd, reqReleaseInterface, unsafe.Pointer(&iface))
	if errors.Is(rerr, unix.ENODEV) {
		rerr = nil // unplugged: nothing to release
	}
	cerr := unix.Close(c.fd)
	if err := errors.Join(rerr, cerr); err != nil {
		return fmt.Errorf("usbfs: close: %w", err)
	}
	return nil
}
