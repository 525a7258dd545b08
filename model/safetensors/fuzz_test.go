package safetensors

import (
	"testing"
)

// FuzzParseHeader checks that no header, however malformed, panics, and that
// every accepted header describes non-overlapping in-range tensors whose
// sizes match their shapes.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), int64(8))
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`), int64(8))
	f.Fuzz(func(t *testing.T, header []byte, dataLen int64) {
		h, err := ParseHeader(header, dataLen)
		if err != nil {
			return
		}
		for _, e := range h.Entries {
			if e.Begin < 0 || e.End < e.Begin || e.End > dataLen {
				t.Fatalf("%s: accepted range [%d,%d) of %d", e.Name, e.Begin, e.End, dataLen)
			}
			n := int64(e.DType.Size())
			for _, d := range e.Shape {
				n *= int64(d)
			}
			if n != e.End-e.Begin {
				t.Fatalf("%s: %d bytes for shape %v", e.Name, e.End-e.Begin, e.Shape)
			}
		}
	})
}
