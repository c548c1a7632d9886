package rcs380

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/usbfs"
)

func TestParseConnstring(t *testing.T) {
	for _, c := range []struct {
		in       string
		bus, dev int
		ok       bool
	}{
		{"rcs380", 0, 0, true}, {"RCS380", 0, 0, true}, {"rcs380:001:004", 1, 4, true}, {"rcs380:3:12", 3, 12, true},
		{"rcs380:", 0, 0, false}, {"rcs380:1", 0, 0, false}, {"rcs380:1:2:3", 0, 0, false}, {"rcs380:0:4", 0, 0, false},
		{"rcs380:1:128", 0, 0, false}, {"rcs380:x:4", 0, 0, false}, {"rcs380:0001:004", 0, 0, false}, {"pn53x_usb", 0, 0, false},
	} {
		bus, dev, err := ParseConnstring(c.in)
		if (err == nil) != c.ok || bus != c.bus || dev != c.dev {
			t.Errorf("ParseConnstring(%q) = %d, %d, %v", c.in, bus, dev, err)
		}
	}
	if IsConnstring("auto") || IsConnstring("rcs380x") || !IsConnstring("rcs380:1:2") {
		t.Error("IsConnstring")
	}
}

// tree is a fake sysfs with two RC-S380s and an ACR122U.
func tree(t *testing.T) usbfs.Tree {
	t.Helper()
	root := t.TempDir()
	tr := usbfs.Tree{Dev: filepath.Join(root, "dev"), Sys: filepath.Join(root, "sys")}
	for _, d := range []struct{ name, vid, pid, bus, dev string }{
		{"1-1", "054c", "06c3", "1", "4"}, {"3-2", "054c", "06c1", "3", "12"}, {"1-2", "072f", "2200", "1", "5"},
	} {
		dir := filepath.Join(tr.Sys, d.name)
		for k, v := range map[string]string{"idVendor": d.vid, "idProduct": d.pid, "busnum": d.bus, "devnum": d.dev} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tr
}

func TestFind(t *testing.T) {
	u := USB{Tree: tree(t)}
	all, err := u.Find("rcs380")
	if err != nil || len(all) != 2 || all[0].Bus != 1 || all[1].Bus != 3 {
		t.Fatalf("rcs380: %+v %v, want both RC-S380s in bus order", all, err)
	}
	one, err := u.Find("rcs380:003:012")
	if err != nil || len(one) != 1 || one[0].Product != ProductS {
		t.Fatalf("rcs380:003:012: %+v %v", one, err)
	}
	if none, err := u.Find("rcs380:001:005"); err != nil || len(none) != 0 {
		t.Fatalf("the ACR122U's address: %+v %v, want nothing", none, err)
	}
	if _, _, err := u.Dial("rcs380:002:002"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "lsusb") {
		t.Errorf("Dial of a missing reader: %v, want ErrNotFound mentioning lsusb", err)
	}
	noUSB := USB{Tree: usbfs.Tree{Sys: filepath.Join(t.TempDir(), "none")}}
	if _, _, err := noUSB.Dial("rcs380"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no USB devices") {
		t.Errorf("Dial without a sysfs: %v", err)
	}
}

func TestOpenErrorsSayWhatToDo(t *testing.T) {
	info := usbfs.Info{Node: "/dev/bus/usb/001/004"}
	perm := openError(info, "Sony RC-S380/P (rcs380:001:004)", &os.PathError{Op: "open", Path: info.Node, Err: syscall.EACCES})
	if !errors.Is(perm, ErrSetup) || !errors.Is(perm, os.ErrPermission) {
		t.Errorf("permission: %v, want ErrSetup", perm)
	}
	for _, want := range []string{info.Node, UdevRule, "/etc/udev/rules.d/60-nfc-reader.rules", "plugdev"} {
		if !strings.Contains(perm.Error(), want) {
			t.Errorf("permission error %q lacks %q", perm, want)
		}
	}
	drv := openError(info, "Sony RC-S380/P (rcs380:001:004)", &usbfs.DriverError{Driver: "port100", Err: syscall.EPERM})
	if !errors.Is(drv, ErrSetup) || !errors.Is(drv, usbfs.ErrDriverBound) {
		t.Errorf("driver: %v, want ErrSetup", drv)
	}
	for _, want := range []string{"port100", "modprobe -r port100", "blacklist port100", "/etc/modprobe.d/"} {
		if !strings.Contains(drv.Error(), want) {
			t.Errorf("driver error %q lacks %q", drv, want)
		}
	}
	if gone := openError(info, "x", &os.PathError{Op: "open", Path: info.Node, Err: syscall.ENOENT}); !errors.Is(gone, ErrNotFound) || errors.Is(gone, ErrSetup) {
		t.Errorf("a node that vanished: %v, want ErrNotFound", gone)
	}
}
