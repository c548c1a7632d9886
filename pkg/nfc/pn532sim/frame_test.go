package pn532sim

import (
	"bytes"
	"slices"
	"testing"
)

func TestEncodeFrame(t *testing.T) {
	tests := []struct {
		name string
		tfi  byte
		data []byte
		want []byte
	}{
		{"firmware answer", tfiChip, []byte{0x03, 0x32, 0x01, 0x06, 0x07},
			[]byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}},
		{"SAMConfiguration", tfiHost, []byte{0x14, 0x01},
			[]byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x17, 0x00}},
		{"largest normal", tfiChip, make([]byte, 254),
			append(append([]byte{0x00, 0x00, 0xFF, 0xFF, 0x01, 0xD5}, make([]byte, 254)...), 0x2B, 0x00)},
		{"smallest extended", tfiChip, make([]byte, 255),
			append(append([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0xFF, 0xD5}, make([]byte, 255)...), 0x2B, 0x00)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeFrame(tt.tfi, tt.data)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("encodeFrame = % X\nwant          % X", got, tt.want)
			}
		})
	}
}

func TestParser(t *testing.T) {
	wakeup := []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	badLCS := []byte{0x00, 0x00, 0xFF, 0x03, 0xFC, 0xD4, 0x14, 0x01, 0x17, 0x00}
	badDCS := []byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD4, 0x14, 0x01, 0x18, 0x00}
	big := bytes.Repeat([]byte{0xA5}, 260) // an extended frame

	var stream []byte
	stream = append(stream, wakeup...)
	stream = append(stream, encodeFrame(tfiHost, []byte{0x14, 0x01})...)
	stream = append(stream, ackFrame...)
	stream = append(stream, 0x42, 0x13) // line noise
	stream = append(stream, nackFrame...)
	stream = append(stream, badLCS...)
	stream = append(stream, badDCS...)
	stream = append(stream, encodeFrame(tfiHost, append([]byte{0x00, 0x00}, big...))...)
	stream = append(stream, errorFrame...)
	want := []frame{
		{kind: frameData, tfi: tfiHost, data: []byte{0x14, 0x01}},
		{kind: frameAck},
		{kind: frameNack},
		{kind: frameBad, tfi: tfiHost, data: []byte{0x14, 0x01}},
		{kind: frameData, tfi: tfiHost, data: append([]byte{0x00, 0x00}, big...)},
		{kind: frameData, tfi: 0x7F, data: []byte{}},
	}
	for _, chunk := range []int{1, 2, 3, 7, len(stream)} {
		var p parser
		var got []frame
		for b := range slices.Chunk(stream, chunk) {
			got = append(got, p.feed(b)...)
		}
		if len(got) != len(want) {
			t.Fatalf("chunks of %d: %d frames %v, want %d", chunk, len(got), got, len(want))
		}
		for i := range want {
			if got[i].kind != want[i].kind || got[i].tfi != want[i].tfi || !bytes.Equal(got[i].data, want[i].data) {
				t.Errorf("chunks of %d: frame %d = %v % X, want %v % X", chunk, i, got[i].kind, got[i].data, want[i].kind, want[i].data)
			}
		}
		if p.skipped < 2 {
			t.Errorf("chunks of %d: %d noise bytes skipped, want at least the 2 of line noise", chunk, p.skipped)
		}
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte{0x14, 0x01}, []byte{0x55, 0x55, 0x00})
	f.Add(make([]byte, 300), []byte{0x00, 0xFF})
	f.Fuzz(func(t *testing.T, data, noise []byte) {
		if len(data) == 0 || len(data) >= maxExtendedLen {
			return
		}
		var p parser
		p.feed(noise) // must not panic; may or may not yield frames
		p = parser{}
		got := p.feed(encodeFrame(tfiHost, data))
		if len(got) != 1 || got[0].kind != frameData || got[0].tfi != tfiHost || !bytes.Equal(got[0].data, data) {
			t.Fatalf("round trip of % X: %v", data, got)
		}
	})
}
