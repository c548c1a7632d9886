//go:build linux

package usbfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestRequestNumbers: the requests as linux/usbdevice_fs.h makes them on
// this architecture (the values from the kernel headers, for 64- and 32-bit).
func TestRequestNumbers(t *testing.T) {
	want64 := map[string]uintptr{"BULK": 0xC0185502, "IOCTL": 0xC0105512}
	want32 := map[string]uintptr{"BULK": 0xC0105502, "IOCTL": 0xC00C5512}
	want := want64
	if unsafe.Sizeof(uintptr(0)) == 4 {
		want = want32
	}
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"CLAIMINTERFACE", reqClaimInterface, 0x8004550F},
		{"RELEASEINTERFACE", reqReleaseInterface, 0x80045510},
		{"GETDRIVER", reqGetDriver, 0x41045508},
		{"DISCONNECT", reqDisconnect, 0x5516},
		{"BULK", reqBulk, want["BULK"]},
		{"IOCTL", reqIoctl, want["IOCTL"]},
	} {
		if c.got != c.want {
			t.Errorf("USBDEVFS_%s = %#x, want %#x (%s)", c.name, c.got, c.want, runtime.GOARCH)
		}
	}
}

// call is one ioctl a fake saw.
type call struct {
	req uintptr
	// decoded arguments
	ep, length, timeout uint32
	data                []byte
	iface               uint32
	ifno, code          int32
}

// fakeIoctl replaces the system call for a test: it decodes each argument
// as the kernel would and answers with answer.
func fakeIoctl(t *testing.T, answer func(c *call, arg unsafe.Pointer) (int, error)) *[]call {
	t.Helper()
	var calls []call
	old := ioctl
	ioctl = func(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
		c := call{req: req}
		switch req {
		case reqBulk:
			bt := (*bulkTransfer)(arg)
			c.ep, c.length, c.timeout = bt.ep, bt.len, bt.timeout
			if bt.len > 0 {
				c.data = append([]byte(nil), unsafe.Slice((*byte)(bt.data), bt.len)...)
			}
		case reqClaimInterface, reqReleaseInterface:
			c.iface = *(*uint32)(arg)
		case reqGetDriver:
			c.iface = (*getDriver)(arg).iface
		case reqIoctl:
			a := (*ioctlArg)(arg)
			c.ifno, c.code = a.ifno, a.code
		}
		n, err := answer(&c, arg)
		calls = append(calls, c)
		return n, err
	}
	oldOpen := openNode
	openNode = func(string) (int, error) { return unix.Open(os.DevNull, unix.O_RDWR, 0) }
	t.Cleanup(func() { ioctl, openNode = old, oldOpen })
	return &calls
}

var rcs380 = Info{Bus: 1, Dev: 4, Node: "/dev/bus/usb/001/004", In: 0x81, Out: 0x02, MaxPacket: 64}

func TestOpenClaimsAndTransfers(t *testing.T) {
	calls := fakeIoctl(t, func(c *call, arg unsafe.Pointer) (int, error) {
		switch c.req {
		case reqGetDriver:
			return 0, unix.ENODATA
		case reqBulk:
			if c.ep&0x80 != 0 {
				bt := (*bulkTransfer)(arg)
				copy(unsafe.Slice((*byte)(bt.data), bt.len), []byte{0, 0, 0xFF, 0, 0xFF, 0})
				return 6, nil
			}
			return int(c.length), nil
		}
		return 0, nil
	})
	conn, err := Open(rcs380, Options{Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Write([]byte{1, 2, 3}, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(make([]byte, 64), 2500*time.Microsecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 300)
	n, err := conn.Read(buf, 250*time.Millisecond)
	if err != nil || n != 6 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	got := *calls
	want := []call{
		{req: reqGetDriver},
		{req: reqClaimInterface},
		{req: reqBulk, ep: 0x02, length: 3, timeout: 100, data: []byte{1, 2, 3}},
		{req: reqBulk, ep: 0x02, length: 64, timeout: 2, data: make([]byte, 64)},
		{req: reqBulk, ep: 0x02, length: 0, timeout: 2}, // the zero-length packet after a full one
		{req: reqBulk, ep: 0x81, length: 300, timeout: 250, data: make([]byte, 300)},
		{req: reqReleaseInterface},
	}
	if len(got) != len(want) {
		t.Fatalf("%d ioctls, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.req != w.req || g.ep != w.ep || g.length != w.length || g.timeout != w.timeout || g.iface != 0 || string(g.data) != string(w.data) {
			t.Errorf("ioctl %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestOpenDetachesKernelDriver(t *testing.T) {
	calls := fakeIoctl(t, func(c *call, arg unsafe.Pointer) (int, error) {
		if c.req == reqGetDriver {
			copy((*getDriver)(arg).driver[:], "port100")
		}
		return 0, nil
	})
	conn, err := Open(rcs380, Options{Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Detached != "port100" {
		t.Errorf("Detached = %q", conn.Detached)
	}
	c := (*calls)[1]
	if c.req != reqIoctl || c.ifno != 0 || uintptr(c.code) != reqDisconnect {
		t.Errorf("second ioctl = %+v, want USBDEVFS_IOCTL(ifno 0, USBDEVFS_DISCONNECT)", c)
	}
	if (*calls)[2].req != reqClaimInterface {
		t.Errorf("no claim after the disconnect: %+v", *calls)
	}
}

func TestOpenKernelDriverStays(t *testing.T) {
	for _, detach := range []bool{false, true} {
		fakeIoctl(t, func(c *call, arg unsafe.Pointer) (int, error) {
			switch c.req {
			case reqGetDriver:
				copy((*getDriver)(arg).driver[:], "port100")
			case reqIoctl:
				return 0, unix.EPERM
			}
			return 0, nil
		})
		_, err := Open(rcs380, Options{Detach: detach})
		var de *DriverError
		if !errors.Is(err, ErrDriverBound) || !errors.As(err, &de) || de.Driver != "port100" {
			t.Errorf("detach %v: %v, want a DriverError naming port100", detach, err)
		}
		if detach && !errors.Is(err, unix.EPERM) {
			t.Errorf("detach refused: %v, want the EPERM", err)
		}
	}
}

func TestOpenPermissionDenied(t *testing.T) {
	fakeIoctl(t, func(*call, unsafe.Pointer) (int, error) { return 0, nil })
	openNode = func(string) (int, error) { return -1, unix.EACCES }
	_, err := Open(rcs380, Options{})
	if !errors.Is(err, os.ErrPermission) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("%v, want EACCES", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != rcs380.Node {
		t.Errorf("%v does not name the node", err)
	}
}

func TestTransferErrors(t *testing.T) {
	fakeIoctl(t, func(c *call, arg unsafe.Pointer) (int, error) {
		if c.req == reqBulk {
			if c.ep&0x80 != 0 {
				return 0, unix.ETIMEDOUT
			}
			return 0, unix.ENODEV
		}
		return 0, nil
	})
	conn, err := Open(rcs380, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 10), time.Millisecond); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("Read: %v, want ETIMEDOUT", err)
	}
	if err := conn.Write([]byte{1}, time.Millisecond); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("Write: %v, want ENODEV", err)
	}
}

// writeTree makes a fake /dev/bus/usb and sysfs with an RC-S380 (held by
// port100), a root hub, an unrelated device and a half-gone one.
func writeTree(t *testing.T) Tree {
	t.Helper()
	root := t.TempDir()
	tr := Tree{Dev: filepath.Join(root, "dev/bus/usb"), Sys: filepath.Join(root, "sys/bus/usb/devices")}
	file := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev := func(name, vid, pid, bus, devnum, product string) string {
		d := filepath.Join(tr.Sys, name)
		file(filepath.Join(d, "idVendor"), vid)
		file(filepath.Join(d, "idProduct"), pid)
		file(filepath.Join(d, "busnum"), bus)
		file(filepath.Join(d, "devnum"), devnum)
		file(filepath.Join(d, "bConfigurationValue"), "1")
		if product != "" {
			file(filepath.Join(d, "product"), product)
			file(filepath.Join(d, "manufacturer"), "SONY")
		}
		b, _ := pad3(bus)
		n, _ := pad3(devnum)
		file(filepath.Join(tr.Dev, b, n), "")
		return d
	}
	ep := func(ifdir, name, typ, dir, addr, maxp string) {
		e := filepath.Join(ifdir, name)
		file(filepath.Join(e, "type"), typ)
		file(filepath.Join(e, "direction"), dir)
		file(filepath.Join(e, "bEndpointAddress"), addr)
		file(filepath.Join(e, "wMaxPacketSize"), maxp)
	}
	dev("usb1", "1d6b", "0002", "1", "1", "xHCI Host Controller")
	d := dev("1-1", "054c", "06c3", "1", "4", "RC-S380/P")
	ifdir := d + ":1.0"
	ep(ifdir, "ep_02", "Bulk", "out", "02", "0040")
	ep(ifdir, "ep_81", "Bulk", "in", "81", "0040")
	drv := filepath.Join(root, "sys/bus/usb/drivers/port100")
	if err := os.MkdirAll(drv, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(drv, filepath.Join(ifdir, "driver")); err != nil {
		t.Fatal(err)
	}
	e := dev("3-2", "054c", "06c1", "3", "12", "")
	ep(e+":1.0", "ep_81", "Bulk", "in", "81", "0040")
	ep(e+":1.0", "ep_02", "Bulk", "out", "02", "0040")
	ep(e+":1.0", "ep_83", "Interrupt", "in", "83", "0008")
	dev("1-2", "072f", "2200", "1", "5", "ACR122U")
	// A device going away: no devnum any more.
	g := filepath.Join(tr.Sys, "2-1")
	file(filepath.Join(g, "idVendor"), "054c")
	file(filepath.Join(g, "idProduct"), "06c1")
	return tr
}

func pad3(s string) (string, error) {
	n, err := strconv.Atoi(s)
	return fmt.Sprintf("%03d", n), err
}

func TestFind(t *testing.T) {
	tr := writeTree(t)
	sony := func(i Info) bool { return i.Vendor == 0x054c && (i.Product == 0x06c1 || i.Product == 0x06c3) }
	got, err := tr.Find(sony)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("found %+v, want the two RC-S380s", got)
	}
	a, b := got[0], got[1]
	if a.Bus != 1 || a.Dev != 4 || a.Product != 0x06c3 || a.Node != filepath.Join(tr.Dev, "001", "004") ||
		a.Driver != "port100" || a.In != 0x81 || a.Out != 0x02 || a.MaxPacket != 64 || a.ProductName != "RC-S380/P" || a.Manufacturer != "SONY" {
		t.Errorf("first = %+v", a)
	}
	if b.Bus != 3 || b.Dev != 12 || b.Driver != "" || b.In != 0x81 || b.Out != 0x02 || b.ProductName != "" {
		t.Errorf("second = %+v", b)
	}
	all, err := tr.Find(func(Info) bool { return true })
	if err != nil || len(all) != 4 {
		t.Errorf("all devices: %d, %v; want 4 (the half-gone one skipped)", len(all), err)
	}
	if _, err := (Tree{Sys: filepath.Join(t.TempDir(), "none")}).Find(sony); err == nil {
		t.Error("a missing sysfs is no error")
	}
}
