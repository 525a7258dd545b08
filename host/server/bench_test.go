package server

import (
	"testing"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
)

// BenchmarkSSEPerToken is host/engine's BenchmarkEngineDirectPerToken
// through HTTP and SSE (chat completions, streaming, loopback): the
// difference is the server's per-token overhead.
func BenchmarkSSEPerToken(b *testing.B) {
	f := newFixture(b, enginetest.NewRunner(), engine.Config{PrefixCacheBytes: -1}, Config{})
	const toks = 256
	body := map[string]any{"prompt": "abc", "max_tokens": toks, "seed": 1, "temperature": 1, "ignore_eos": true, "stream": true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, out := f.post(b, "/v1/completions", body)
		if resp.StatusCode != 200 {
			b.Fatalf("%d", resp.StatusCode)
		}
		evs, _ := parseSSE(b, out)
		if len(evs) < toks {
			b.Fatalf("%d events", len(evs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*toks), "ns/token")
}
