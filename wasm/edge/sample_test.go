package edge

import (
	"math"
	"reflect"
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
)

// sampleRequests are encodings the fast decoder must accept or refuse
// exactly like protocol.Unmarshal.
func sampleRequests(t testing.TB) [][]byte {
	var out [][]byte
	for _, r := range []protocol.SampleRequest{
		{Handle: 1, F32: EncodeF32([]float32{1, 2, 3})},
		{Handle: 200, F32: EncodeF32(randLogits(300, 1)), History: []int32{1, 2, 127, 128, 70000}},
		{Handle: 70000, F16: protocol.EncodeFloat16([]float32{1, 2})},
		{Handle: 1 << 31, F32: EncodeF32([]float32{1})},
		{Handle: 3, F32: EncodeF32(randLogits(20000, 2)), History: make([]int32, 20)},
	} {
		b, err := protocol.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	raw := func(m map[string]any) []byte {
		b, err := protocol.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out = append(out,
		raw(map[string]any{"handle": 0, "f32": []byte{0, 0, 128, 63}}),                      // handle 0
		raw(map[string]any{"handle": 1, "f32": []byte{0, 0, 128}}),                          // not whole floats
		raw(map[string]any{"handle": 1, "f32": []byte{0, 0, 128, 63}, "f16": []byte{0, 1}}), // both
		raw(map[string]any{"handle": 1, "f32": []byte{0, 0, 128, 63}, "extra": 1}),          // unknown field
		raw(map[string]any{"handle": 1, "f32": []byte{0, 0, 128, 63}, "history": []int{-1}}),
		raw(map[string]any{"handle": -1, "f32": []byte{0, 0, 128, 63}}),
		raw(map[string]any{"handle": 1, "f32": "abcd"}),
		raw(map[string]any{"handle": 1, "f32": nil}),
		append(raw(map[string]any{"handle": 1, "f32": []byte{0, 0, 128, 63}}), 0),                        // trailing byte
		[]byte{0x82, 0xa6, 'h', 'a', 'n', 'd', 'l', 'e', 0x01, 0xa6, 'h', 'a', 'n', 'd', 'l', 'e', 0x02}, // duplicate
		[]byte{0x81, 0xa3, 'f', '3', '2', 0xc6, 0, 0, 0, 8, 1, 2},                                        // truncated bin
		[]byte{},
	)
	return out
}

// TestDecodeSampleRequest checks the in-place decoder against
// protocol.Unmarshal, and sampleHandler's responses against the generic
// handler's.
func TestDecodeSampleRequest(t *testing.T) {
	for i, b := range sampleRequests(t) {
		checkSampleDecode(t, i, b)
	}
}

func checkSampleDecode(t *testing.T, i int, b []byte) {
	var want protocol.SampleRequest
	werr := protocol.Unmarshal(b, &want)
	if got, ok := decodeSampleRequest(b); ok && got.Validate() == nil {
		if werr != nil {
			t.Fatalf("request %d: fast decoder accepts what Unmarshal rejects: %v", i, werr)
		}
		norm := func(r protocol.SampleRequest) protocol.SampleRequest {
			if len(r.F32) == 0 {
				r.F32 = nil
			}
			if len(r.F16) == 0 {
				r.F16 = nil
			}
			if len(r.History) == 0 {
				r.History = nil
			}
			return r
		}
		if !reflect.DeepEqual(norm(*got), norm(want)) {
			t.Fatalf("request %d: decoded %+v, Unmarshal %+v", i, got, want)
		}
	}
	// Same response through both handlers, on fresh edges with one sampler.
	respond := func(h handler) []byte {
		e := New()
		if _, err := e.SamplerNew(&protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.7, TopP: 0.9, FrequencyPenalty: 0.5, Seed: 9}}); err != nil {
			t.Fatal(err)
		}
		handlers[protocol.FnSample] = h
		defer func() { handlers[protocol.FnSample] = sampleHandler }()
		return e.Call(protocol.FnSample, b)
	}
	if fast, slow := respond(sampleHandler), respond(typed((*Edge).Sample)); string(fast) != string(slow) {
		t.Fatalf("request %d: response %q, generic handler %q", i, fast, slow)
	}
}

func FuzzDecodeSampleRequest(f *testing.F) {
	for _, b := range sampleRequests(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkSampleDecode(t, 0, b) })
}

// TestDecodeDirectSampleRequest: what the host sends (protocol's direct
// encoder) takes the in-place path and decodes as Unmarshal decodes it.
func TestDecodeDirectSampleRequest(t *testing.T) {
	logits := []float32{1, -2, 3.5, float32(math.Inf(-1)), 0}
	for i, hist := range [][]int32{nil, {0, 4, 4}, make([]int32, 300)} {
		b := protocol.AppendSampleRequestF32(nil, 7, logits, hist)
		got, ok := decodeSampleRequest(b)
		if !ok || got.Handle != 7 || len(got.F32) != 4*len(logits) || len(got.History) != len(hist) {
			t.Fatalf("request %d: in-place decoder: ok %v, %+v", i, ok, got)
		}
		checkSampleDecode(t, i, b)
	}
}
