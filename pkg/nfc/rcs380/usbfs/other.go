//go:build !linux

package usbfs

import (
	"errors"
	"time"
)

// Tree is where the kernel shows USB devices; usbfs is Linux's.
type Tree struct{ Dev, Sys string }

// System is the machine's own tree.
var System = Tree{}

// Info is one USB device.
type Info struct {
	Bus, Dev                  int
	Vendor, Product           uint16
	Manufacturer, ProductName string
	Node, Driver              string
	In, Out                   uint8
	MaxPacket                 int
}

var errNotLinux = errors.New("usbfs: USB devices are reached through Linux's usbfs only")

// Find fails: not Linux.
func (t Tree) Find(func(Info) bool) ([]Info, error) { return nil, errNotLinux }

// Conn is an open device.
type Conn struct{ Detached string }

// Open fails: not Linux.
func Open(Info, Options) (*Conn, error) { return nil, errNotLinux }

// Write fails: not Linux.
func (c *Conn) Write([]byte, time.Duration) error { return errNotLinux }

// Read fails: not Linux.
func (c *Conn) Read([]byte, time.Duration) (int, error) { return 0, errNotLinux }

// Close does nothing.
func (c *Conn) Close() error { return nil }
