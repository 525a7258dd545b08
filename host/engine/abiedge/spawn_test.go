package abiedge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/abiedge"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

// spawner hands out native Go edges prepared like an edgehost.Template's
// instances (tokenizer session open), counting them; sample calls take a
// little time and record how many ran at once.
type spawner struct {
	tok             []byte
	info            protocol.SessionInfo
	spawned, closed atomic.Int64
	running, maxRun atomic.Int64
	live, maxLive   atomic.Int64 // instances open now, and at most
	failNext        atomic.Bool  // the next call of any conn fails as a trapped module
	failSeed        uint64       // the instance whose sampler has this seed traps at its third sample
	sampleSleep     time.Duration
}

type conn struct {
	native
	s       *spawner
	seed    uint64 // of the last sampler created
	samples int
	closed  bool
	mu      sync.Mutex
}

func (c *conn) Invoke(ctx context.Context, fn string, req, rep any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("closed instance: %w", edgehost.ErrModuleFailed)
	}
	if c.s.failNext.CompareAndSwap(true, false) {
		return fmt.Errorf("%w: trapped: unreachable", edgehost.ErrModuleFailed)
	}
	if sn, ok := req.(*protocol.SamplerNew); ok {
		c.seed = sn.Params.Seed
	}
	if fn == protocol.FnSample {
		if c.samples++; c.s.failSeed != 0 && c.seed == c.s.failSeed && c.samples == 3 {
			c.closed = true
			return fmt.Errorf("%w: trapped: unreachable", edgehost.ErrModuleFailed)
		}
		n := c.s.running.Add(1)
		for m := c.s.maxRun.Load(); n > m && !c.s.maxRun.CompareAndSwap(m, n); m = c.s.maxRun.Load() {
		}
		time.Sleep(c.s.sampleSleep)
		defer c.s.running.Add(-1)
	}
	return c.native.Invoke(ctx, fn, req, rep)
}

func (c *conn) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.s.closed.Add(1)
		c.s.live.Add(-1)
	}
	return nil
}

func (s *spawner) spawn(ctx context.Context) (abiedge.Conn, error) {
	c := &conn{native: native{edge.New()}, s: s}
	info, err := abiedge.OpenSession(ctx, c.native, s.tok, 0)
	if err != nil {
		return nil, err
	}
	if info != s.info {
		return nil, fmt.Errorf("instance session %+v, template %+v", info, s.info)
	}
	s.spawned.Add(1)
	n := s.live.Add(1)
	for m := s.maxLive.Load(); n > m && !s.maxLive.CompareAndSwap(m, n); m = s.maxLive.Load() {
	}
	return c, nil
}

func newSpawner(t *testing.T) *spawner {
	s := &spawner{tok: testTokenizer(t), sampleSleep: 2 * time.Millisecond}
	info, err := abiedge.OpenSession(context.Background(), native{edge.New()}, s.tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.info = info
	return s
}

// run generates n requests concurrently (seeds 1..n) and returns their
// texts.
func run(t *testing.T, ed engine.Edge, vocab, n int) []string {
	out, errs := runErrs(t, ed, vocab, n)
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	return out
}

// runErrs is run that returns each request's error too.
func runErrs(t *testing.T, ed engine.Edge, vocab, n int) ([]string, []error) {
	return runCfg(t, ed, vocab, n, engine.Config{})
}

// runCfg is runErrs with an engine configuration.
func runCfg(t *testing.T, ed engine.Edge, vocab, n int, cfg engine.Config) ([]string, []error) {
	t.Helper()
	r := enginetest.NewRunner()
	r.Cfg.VocabSize = vocab
	e, err := engine.New(r, ed, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompt, err := ed.Encode("the quick fox")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		st, err := e.Submit(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 24, IgnoreEOS: true,
			Sampling: engine.SamplerParams{Temperature: 1, TopP: 0.9, Seed: uint64(i + 1)}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for ev := range st.Events {
				out[i] += ev.Text
				if ev.Kind == engine.EventDone {
					errs[i] = ev.Result.Err
				}
			}
		})
	}
	wg.Wait()
	return out, errs
}

// TestSpawningEdgeGivesEachRequestAnInstance: with per-request instances,
// concurrent requests produce what a single shared instance produces, each
// instance is closed when its request ends, and the round's samples are
// taken in parallel.
func TestSpawningEdgeGivesEachRequestAnInstance(t *testing.T) {
	ctx := context.Background()
	sp := newSpawner(t)
	ed, err := abiedge.NewSpawning(ctx, sp.spawn, sp.info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	shared, err := abiedge.New(ctx, native{edge.New()}, sp.tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	want := run(t, shared, shared.Vocab(), n)
	got := run(t, ed, ed.Vocab(), n)
	for i := range n {
		if got[i] != want[i] {
			t.Errorf("request %d: per-request instances %q, shared instance %q", i, got[i], want[i])
		}
	}
	if s, c := sp.spawned.Load(), sp.closed.Load(); s != n+1 || c != n {
		t.Errorf("spawned %d instances and closed %d, want %d and %d", s, c, n+1, n)
	}
	if m := sp.maxRun.Load(); m < 2 {
		t.Errorf("at most %d sampling calls ran at once, want the round's samples in parallel", m)
	}
}

// TestSpawningEdgeReplacesFailedInstance: after the shared instance fails,
// the call that saw it fails and the next one runs on a fresh instance.
func TestSpawningEdgeReplacesFailedInstance(t *testing.T) {
	ctx := context.Background()
	sp := newSpawner(t)
	ed, err := abiedge.NewSpawning(ctx, sp.spawn, sp.info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	want, err := ed.Encode("the lazy dog")
	if err != nil {
		t.Fatal(err)
	}
	sp.failNext.Store(true)
	if _, err := ed.Encode("the lazy dog"); err == nil {
		t.Fatal("the failing call succeeded")
	}
	got, err := ed.Encode("the lazy dog")
	if err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fresh instance encodes %v, want %v", got, want)
	}
	if s, c := sp.spawned.Load(), sp.closed.Load(); s != 2 || c != 1 {
		t.Fatalf("spawned %d, closed %d; want 2 and 1", s, c)
	}
}

// TestSpawningEdgeContainsFailure: when one request's instance traps, that
// request fails and the others finish exactly as they would have.
func TestSpawningEdgeContainsFailure(t *testing.T) {
	ctx := context.Background()
	sp := newSpawner(t)
	shared, err := abiedge.New(ctx, native{edge.New()}, sp.tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	want := run(t, shared, shared.Vocab(), n)
	sp.failSeed = 3 // the third request's (seeds are 1..n)
	ed, err := abiedge.NewSpawning(ctx, sp.spawn, sp.info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	got, errs := runErrs(t, ed, ed.Vocab(), n)
	for i := range n {
		if i == 2 {
			if errs[i] == nil || !errors.Is(errs[i], edgehost.ErrModuleFailed) {
				t.Errorf("request %d: error %v, want its module failure", i, errs[i])
			}
			continue
		}
		if errs[i] != nil || got[i] != want[i] {
			t.Errorf("request %d: %q (%v), want %q", i, got[i], errs[i], want[i])
		}
	}
}

// TestSpawningEdgeOnlyAdmittedRequestsHoldInstances: requests waiting for
// admission hold no edge instance (with DeepSeek's tokenizer one is 66 MB),
// so at most MaxSessions are open besides the edge's own.
func TestSpawningEdgeOnlyAdmittedRequestsHoldInstances(t *testing.T) {
	ctx := context.Background()
	sp := newSpawner(t)
	ed, err := abiedge.NewSpawning(ctx, sp.spawn, sp.info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	shared, err := abiedge.New(ctx, native{edge.New()}, sp.tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	want := run(t, shared, shared.Vocab(), n)
	got, errs := runCfg(t, ed, ed.Vocab(), n, engine.Config{MaxSessions: 2})
	for i := range n {
		if errs[i] != nil || got[i] != want[i] {
			t.Errorf("request %d: %q (%v), want %q", i, got[i], errs[i], want[i])
		}
	}
	if m := sp.maxLive.Load(); m > 1+2 {
		t.Errorf("%d instances open at once, want at most 3 (the edge's own and 2 sessions)", m)
	}
	if s, c := sp.spawned.Load(), sp.closed.Load(); s != n+1 || c != n {
		t.Errorf("spawned %d, closed %d; want %d and %d", s, c, n+1, n)
	}
}
