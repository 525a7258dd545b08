package npy

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{3}, {2, 3}, {1, 1, 4}} {
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*1.5 - 2
		}
		var b bytes.Buffer
		if err := Write(&b, data, shape...); err != nil {
			t.Fatal(err)
		}
		if (b.Len()-4*n)%64 != 0 {
			t.Errorf("header not 64-byte aligned: %d", b.Len()-4*n)
		}
		a, err := Read(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Shape) != len(shape) {
			t.Fatalf("shape %v, want %v", a.Shape, shape)
		}
		for i, v := range data {
			if a.Data[i] != float64(v) {
				t.Fatalf("value %d: %v want %v", i, a.Data[i], v)
			}
		}
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{"", "hello world", "\x93NUMPY\x01\x00\xff\xff{}"} {
		if _, err := Read([]byte(in)); err == nil {
			t.Errorf("Read(%q) accepted", in)
		}
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	Write(&b, []float32{1, 2, 3}, 3)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) { Read(data) })
}
