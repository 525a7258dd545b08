package edge

import (
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/sampler"
)

// Benchmarks of the sampling path's parts, to run natively and under a
// WebAssembly engine (GOOS=js GOARCH=wasm go test -exec go_js_wasm_exec).

func BenchmarkUnmarshalSampleRequest(b *testing.B) {
	req, _ := protocol.Marshal(&protocol.SampleRequest{Handle: 1, F32: EncodeF32(randLogits(129280, 5))})
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		var r protocol.SampleRequest
		if err := protocol.Unmarshal(req, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSampleTopP(b *testing.B) {
	e := New()
	h, err := e.SamplerNew(&protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}})
	if err != nil {
		b.Fatal(err)
	}
	req := &protocol.SampleRequest{Handle: h.Handle, F32: EncodeF32(randLogits(129280, 5))}
	for b.Loop() {
		if _, err := e.Sample(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampleTopPPeaked is BenchmarkSampleTopP on logits shaped like a
// confident model step (sampler.PeakedLogits).
func BenchmarkSampleTopPPeaked(b *testing.B) {
	e := New()
	h, err := e.SamplerNew(&protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}})
	if err != nil {
		b.Fatal(err)
	}
	req := &protocol.SampleRequest{Handle: h.Handle, F32: EncodeF32(sampler.PeakedLogits(129280, 5))}
	for b.Loop() {
		if _, err := e.Sample(req); err != nil {
			b.Fatal(err)
		}
	}
}
