package protocol

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestAppendSampleRequestF32: the direct encoding decodes, strictly and with
// the plain library, to the request the library would have encoded, for
// every bin and array size class, handle width and id width.
func TestAppendSampleRequestF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		handle      Handle
		vocab, hist int
	}{
		{1, 1, 0}, {127, 63, 1}, {128, 64, 15}, {255, 16383, 16}, {256, 16384, 65535}, {65536, 129280, 65536}, {math.MaxUint32, 5, 3},
	} {
		logits := make([]float32, tc.vocab)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 3)
		}
		logits[0] = float32(math.Inf(-1))
		var hist []int32
		for i := 0; i < tc.hist; i++ {
			hist = append(hist, []int32{0, 127, 128, 255, 256, 65535, 65536, 129279}[rng.IntN(8)])
		}
		b := AppendSampleRequestF32([]byte{0xAA}, tc.handle, logits, hist)
		if b[0] != 0xAA {
			t.Fatal("prefix overwritten")
		}
		want := SampleRequest{Handle: tc.handle, F32: make([]byte, 4*len(logits)), History: hist}
		for i, v := range logits {
			binary.LittleEndian.PutUint32(want.F32[4*i:], math.Float32bits(v))
		}
		var strict, plain SampleRequest
		if err := Unmarshal(b[1:], &strict); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if err := msgpack.Unmarshal(b[1:], &plain); err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		for _, got := range []SampleRequest{strict, plain} {
			if got.Handle != want.Handle || string(got.F32) != string(want.F32) || !slices.Equal(got.History, want.History) || got.F16 != nil {
				t.Fatalf("%+v: decoded handle %d, %d logit bytes, %d history ids; want %d, %d, %d",
					tc, got.Handle, len(got.F32), len(got.History), want.Handle, len(want.F32), len(want.History))
			}
		}
	}
}

// TestMarshalRaw: a Raw message goes through Marshal unchanged, and an
// oversized one is refused.
func TestMarshalRaw(t *testing.T) {
	b := AppendSampleRequestF32(nil, 3, []float32{1, 2}, nil)
	got, err := Marshal(Raw(b))
	if err != nil || string(got) != string(b) {
		t.Fatalf("Marshal(Raw) = %x, %v; want %x", got, err, b)
	}
	if _, err := Marshal(Raw(make([]byte, MaxFrameSize+1))); err == nil {
		t.Fatal("an oversized Raw message was accepted")
	}
}
