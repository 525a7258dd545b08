package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
)

// BenchmarkEngineDirectPerToken measures the engine's own per-token cost
// (scheduling, sampling, detokenizing, events) on a model that costs
// nothing: compare with host/server's BenchmarkSSEPerToken.
func BenchmarkEngineDirectPerToken(b *testing.B) {
	e := newEngine(b, enginetest.NewRunner(), engine.Config{PrefixCacheBytes: -1})
	const toks = 256
	req := engine.Request{Prompt: []int{0, 5, 6, 7}, MaxTokens: toks, IgnoreEOS: true, Sampling: engine.SamplerParams{Temperature: 1, Seed: 1}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := run(b, e, req)
		if len(o.ids) != toks {
			b.Fatalf("%d tokens", len(o.ids))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*toks), "ns/token")
}

// BenchmarkTinyAggregate measures aggregate decode throughput with 1, 8
// and 32 concurrent sessions on the tiny synth V4 model.
func BenchmarkTinyAggregate(b *testing.B) {
	r := tinyRunner(b)
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			e := newEngine(b, r, engine.Config{PrefixCacheBytes: -1})
			const toks = 32
			total := 0
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				var mu sync.Mutex
				for s := 0; s < n; s++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						st, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 10 + s, 20, 30}, MaxTokens: toks,
							IgnoreEOS: true, Sampling: engine.SamplerParams{Temperature: 1, Seed: uint64(s)}})
						if err != nil {
							b.Error(err)
							return
						}
						o := collect(b, st)
						mu.Lock()
						total += len(o.ids)
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "tok/s")
		})
	}
}
