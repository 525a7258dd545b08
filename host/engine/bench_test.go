package engine_test

import (
	"context"
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

// unbatched hides a runner's batching: every item runs alone, as the
// scheduler did before it batched rounds.
type unbatched struct{ engine.Runner }

func (u unbatched) ForwardBatch(items []engine.BatchItem) ([][]float32, error) {
	out := make([][]float32, len(items))
	for i, it := range items {
		l, err := u.Forward(it.Seq, it.Tokens, it.Engram)
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// BenchmarkTinyAggregate measures aggregate decode throughput with 1, 8
// and 32 concurrent sessions on the tiny synth V4 model, with rounds run as
// one batched pass and, for comparison, one pass per session.
func BenchmarkTinyAggregate(b *testing.B) {
	tiny := tinyRunner(b)
	for _, c := range []struct {
		name string
		n    int
		r    engine.Runner
	}{
		{"sessions=1/batched", 1, tiny}, {"sessions=1/unbatched", 1, unbatched{tiny}},
		{"sessions=8/batched", 8, tiny}, {"sessions=8/unbatched", 8, unbatched{tiny}},
		{"sessions=32/batched", 32, tiny}, {"sessions=32/unbatched", 32, unbatched{tiny}},
	} {
		n, r := c.n, c.r
		b.Run(c.name, func(b *testing.B) {
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
