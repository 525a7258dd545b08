package engine

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// EdgeLatencyBuckets are the upper bounds, in seconds, of the edge call
// latency histogram.
var EdgeLatencyBuckets = []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1}

// Histogram is a snapshot of a latency histogram: Counts[i] calls took at
// most Buckets[i] seconds (not cumulative); Count and Sum cover all calls.
type Histogram struct {
	Buckets []float64
	Counts  []uint64
	Count   uint64
	Sum     float64 // seconds
}

type histogram struct {
	mu sync.Mutex
	h  Histogram
}

func (h *histogram) observe(d time.Duration) {
	sec := d.Seconds()
	h.mu.Lock()
	if h.h.Counts == nil {
		h.h.Buckets = EdgeLatencyBuckets
		h.h.Counts = make([]uint64, len(EdgeLatencyBuckets))
	}
	if i := sort.SearchFloat64s(h.h.Buckets, sec); i < len(h.h.Counts) {
		h.h.Counts[i]++
	}
	h.h.Count++
	h.h.Sum += sec
	h.mu.Unlock()
}

func (h *histogram) snapshot() Histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.h
	out.Buckets = EdgeLatencyBuckets
	out.Counts = append([]uint64(nil), h.h.Counts...)
	if out.Counts == nil {
		out.Counts = make([]uint64, len(EdgeLatencyBuckets))
	}
	return out
}

// Stats is a snapshot of the engine's gauges and counters.
type Stats struct {
	ActiveSessions   int
	QueueDepth       int   // requests waiting for admission
	CacheBytes       int64 // held by active sequences and the prefix cache
	ReservedBytes    int64 // reserved by active sessions (their maximum size)
	PrefixCacheBytes int64
	PrefixEntries    int
	BudgetBytes      int64

	RequestsTotal        uint64
	RefusedTotal         uint64
	CancelledTotal       uint64
	FailedTotal          uint64
	PromptTokensTotal    uint64 // computed by prefill
	CachedTokensTotal    uint64 // taken from the prefix cache
	GeneratedTokensTotal uint64
	PrefillSeconds       float64 // forward time spent on prompts
	DecodeSeconds        float64 // forward time spent on decode steps

	EdgeLatency Histogram
}

type statsBox struct {
	requests, refused, cancelled, failed atomic.Uint64
	prompt, cachedTokens, generated      atomic.Uint64
	prefillNanos, decodeNanos            atomic.Int64
	edge                                 histogram

	mu    sync.Mutex
	gauge Stats // gauges published by the scheduler
}

func (b *statsBox) init(budget int64) { b.gauge.BudgetBytes = budget }

func (b *statsBox) addPrefill(n int, d time.Duration) {
	b.prompt.Add(uint64(n))
	b.prefillNanos.Add(int64(d))
}

func (b *statsBox) addDecode(d time.Duration) { b.decodeNanos.Add(int64(d)) }

// publish copies the scheduler's gauges for Stats; scheduler goroutine only.
func (e *Engine) publish() {
	var cache int64
	active := 0
	for _, s := range e.active {
		if s.out == nil {
			continue // finished this round
		}
		active++
		if s.seq != nil {
			cache += int64(s.seq.Bytes())
		}
	}
	e.stats.mu.Lock()
	g := &e.stats.gauge
	g.ActiveSessions = active
	g.ReservedBytes = e.reserved
	g.PrefixCacheBytes = e.prefix.bytes
	g.PrefixEntries = e.prefix.lru.Len()
	g.CacheBytes = cache + e.prefix.bytes
	e.stats.mu.Unlock()
}

// Stats returns a snapshot of the engine's metrics.
func (e *Engine) Stats() Stats {
	b := &e.stats
	b.mu.Lock()
	s := b.gauge
	b.mu.Unlock()
	s.QueueDepth = int(e.queued.Load())
	s.RequestsTotal = b.requests.Load()
	s.RefusedTotal = b.refused.Load()
	s.CancelledTotal = b.cancelled.Load()
	s.FailedTotal = b.failed.Load()
	s.PromptTokensTotal = b.prompt.Load()
	s.CachedTokensTotal = b.cachedTokens.Load()
	s.GeneratedTokensTotal = b.generated.Load()
	s.PrefillSeconds = time.Duration(b.prefillNanos.Load()).Seconds()
	s.DecodeSeconds = time.Duration(b.decodeNanos.Load()).Seconds()
	s.EdgeLatency = b.edge.snapshot()
	return s
}

// ObserveEdgeCall records the latency of an edge call made outside the
// engine (tokenization in a server), for the edge latency histogram.
func (e *Engine) ObserveEdgeCall(d time.Duration) { e.stats.edge.observe(d) }
