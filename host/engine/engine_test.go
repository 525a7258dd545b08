package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := waitGoroutines(before); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitGoroutines waits (bounded) for the goroutine count to come back to
// at most want. The helpers of kernels' worker pools stop once their
// backends are garbage, hence the collections.
func waitGoroutines(want int) error {
	slack := runtime.NumCPU() + 1
	for i := 0; i < 200; i++ {
		if runtime.NumGoroutine() <= want+slack {
			return nil
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return fmt.Errorf("goroutine leak: %d running, %d before\n%s", runtime.NumGoroutine(), want, buf[:n])
}

type outcome struct {
	ids    []int
	text   string
	res    *engine.Result
	events int
}

func collect(t testing.TB, st *engine.Stream) outcome {
	t.Helper()
	var o outcome
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-st.Events:
			if !ok {
				if o.res == nil {
					t.Fatalf("stream %s closed without a final event", st.ID)
				}
				return o
			}
			o.events++
			o.text += ev.Text
			switch ev.Kind {
			case engine.EventToken:
				o.ids = append(o.ids, ev.Token.ID)
			case engine.EventDone:
				o.res = ev.Result
			}
		case <-timeout:
			t.Fatalf("stream %s: no end after 60s", st.ID)
		}
	}
}

func newEngine(t testing.TB, r engine.Runner, cfg engine.Config) *engine.Engine {
	t.Helper()
	c := r.Config()
	e, err := engine.New(r, nativeedge.NewBytes(c.BOS, c.EOS), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func prompt(t testing.TB, e *engine.Engine, s string) []int {
	toks, err := e.Edge().Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	return append([]int{0}, toks...)
}

func run(t testing.TB, e *engine.Engine, req engine.Request) outcome {
	t.Helper()
	st, err := e.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return collect(t, st)
}

// requests builds n varied requests: different prompts, lengths, seeds and
// sampling settings.
func requests(t testing.TB, e *engine.Engine, n, maxTokens int) []engine.Request {
	var out []engine.Request
	for i := 0; i < n; i++ {
		p := prompt(t, e, strings.Repeat(fmt.Sprintf("request %d says hello. ", i), 1+i%7))
		out = append(out, engine.Request{Prompt: p, MaxTokens: maxTokens, IgnoreEOS: true,
			Sampling: engine.SamplerParams{Temperature: []float64{0, 0.7, 1, 1.3}[i%4], TopP: 0.95, Seed: uint64(1000 + i),
				LogProbs: true, TopLogProbs: 2}})
	}
	return out
}

// concurrentMatchesAlone runs reqs one at a time, then all at once, and
// requires identical tokens and text.
func concurrentMatchesAlone(t *testing.T, e *engine.Engine, reqs []engine.Request) {
	alone := make([]outcome, len(reqs))
	for i, r := range reqs {
		alone[i] = run(t, e, r)
		if got := len(alone[i].ids); got != r.MaxTokens {
			t.Fatalf("request %d alone: %d tokens, want %d", i, got, r.MaxTokens)
		}
	}
	together := make([]outcome, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := e.Submit(context.Background(), r)
			if err != nil {
				t.Errorf("submit %d: %v", i, err)
				return
			}
			together[i] = collect(t, st)
		}()
	}
	wg.Wait()
	for i := range reqs {
		if fmt.Sprint(alone[i].ids) != fmt.Sprint(together[i].ids) || alone[i].text != together[i].text {
			t.Errorf("request %d: concurrent output differs from alone\nalone    %v\ntogether %v", i, alone[i].ids, together[i].ids)
		}
		if together[i].res.Finish != engine.FinishLength {
			t.Errorf("request %d: finish %q, want length", i, together[i].res.Finish)
		}
	}
}

func TestConcurrentSessionsMatchAlone(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = 50 * time.Microsecond
	// No prefix reuse: the alone runs must not seed the concurrent ones.
	e := newEngine(t, r, engine.Config{PrefixCacheBytes: -1, PrefillChunk: 16})
	concurrentMatchesAlone(t, e, requests(t, e, 16, 64))
	if r.Concurrent() {
		t.Fatal("Forward was entered concurrently")
	}
}

func TestCancelStopsWithinOneStep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		atPos  int // cancel during the forward that starts at this position
		prompt int
	}{
		{"during decode", 40, 20},
		{"during prefill", 16, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := enginetest.NewRunner()
			e := newEngine(t, r, engine.Config{PrefillChunk: 16})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The victim is the sequence whose first chunk is not the
			// neighbour's 3-token prompt; chunk sizes depend on how the
			// scheduler shares a round's prefill budget, so positions are
			// matched with ≥ and forwards are counted, not predicted.
			victim := int64(-1)
			var atCancel int64 = -1
			var mu sync.Mutex
			r.OnForward = func(seq int64, pos, n int) {
				mu.Lock()
				defer mu.Unlock()
				if victim < 0 && pos == 0 && n != 3 {
					victim = seq
				}
				if seq == victim && pos >= tc.atPos && atCancel < 0 {
					atCancel = r.Forwards(seq) // counted before OnForward runs: this forward included
					cancel()
				}
			}
			// A neighbour keeps running meanwhile.
			other, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 5, 6}, MaxTokens: 80, IgnoreEOS: true})
			if err != nil {
				t.Fatal(err)
			}
			p := make([]int, tc.prompt)
			for i := range p {
				p[i] = 2 + i%300
			}
			st, err := e.Submit(ctx, engine.Request{Prompt: p, MaxTokens: 200, IgnoreEOS: true})
			if err != nil {
				t.Fatal(err)
			}
			o := collect(t, st)
			if o.res.Finish != engine.FinishCancelled || !errors.Is(o.res.Err, context.Canceled) {
				t.Fatalf("finish %q err %v, want cancelled", o.res.Finish, o.res.Err)
			}
			mu.Lock()
			id, want := victim, atCancel
			mu.Unlock()
			// No forward of the victim after the one during which the
			// context was cancelled.
			if got := r.Forwards(id); got != want {
				t.Fatalf("victim ran %d forwards, want %d (none after the cancel)", got, want)
			}
			if oo := collect(t, other); len(oo.ids) != 80 {
				t.Fatalf("neighbour generated %d tokens, want 80", len(oo.ids))
			}
			s := e.Stats()
			if s.ActiveSessions != 0 || s.ReservedBytes != 0 {
				t.Fatalf("after cancel: %d active sessions, %d reserved bytes", s.ActiveSessions, s.ReservedBytes)
			}
			if s.CancelledTotal != 1 {
				t.Fatalf("cancelled total %d, want 1", s.CancelledTotal)
			}
		})
	}
}

func TestAdmissionRefusesWithNumbers(t *testing.T) {
	r := enginetest.NewRunner()
	plan, err := engine.NewMemoryPlan(r.Cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	budget := plan.SeqBytes(1000)
	e := newEngine(t, r, engine.Config{CacheBudget: budget, ContextLimit: 2000})
	for _, tc := range []struct {
		name           string
		prompt, maxTok int
		reason         string
		msg            string
	}{
		{"context", 1500, 600, "context", "request needs 2100 tokens (prompt 1500 + max_tokens 600) but the context limit is 2000"},
		{"memory", 900, 200, "memory", fmt.Sprintf("request needs %d bytes of cache (prompt 900 + max_tokens 200 tokens) but the cache budget is %d bytes", plan.SeqBytes(1100), budget)},
		{"fits", 900, 100, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]int, tc.prompt)
			for i := range p {
				p[i] = 3
			}
			st, err := e.Submit(context.Background(), engine.Request{Prompt: p, MaxTokens: tc.maxTok, IgnoreEOS: true})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if o := collect(t, st); len(o.ids) != tc.maxTok {
					t.Fatalf("%d tokens, want %d", len(o.ids), tc.maxTok)
				}
				return
			}
			var ae *engine.AdmissionError
			if !errors.As(err, &ae) || ae.Reason != tc.reason {
				t.Fatalf("err %v, want admission error %q", err, tc.reason)
			}
			if err.Error() != tc.msg {
				t.Fatalf("message\n%q\nwant\n%q", err.Error(), tc.msg)
			}
		})
	}
	// Unset max_tokens shrinks to what fits instead of refusing.
	st, err := e.Submit(context.Background(), engine.Request{Prompt: make([]int, 990), IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxTokens != plan.MaxTokensWithin(budget, 2000)-990 {
		t.Fatalf("default max tokens %d, want %d", st.MaxTokens, plan.MaxTokensWithin(budget, 2000)-990)
	}
	if o := collect(t, st); o.res.Finish != engine.FinishLength {
		t.Fatalf("finish %q", o.res.Finish)
	}
}

func TestMemoryPlan(t *testing.T) {
	r := enginetest.NewRunner()
	cfg := r.Cfg // HeadDim 32, IndexHeadDim 16, window 16, ratios 0 0 4 128
	plan, err := engine.NewMemoryPlan(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	fixed := int64(4 * 4 * 16 * 32)
	for _, tc := range []struct {
		tokens int
		want   int64
	}{
		{0, fixed},
		{3, fixed},
		{4, fixed + 4*(32+16)},
		{128, fixed + 32*4*(32+16) + 4*32},
		{1000, fixed + 250*4*(32+16) + 7*4*32},
	} {
		if got := plan.SeqBytes(tc.tokens); got != tc.want {
			t.Errorf("SeqBytes(%d) = %d, want %d", tc.tokens, got, tc.want)
		}
	}
	kinds := ""
	for _, l := range plan.Layers {
		kinds += l.Kind + " "
	}
	if kinds != "swa swa csa hca " {
		t.Errorf("kinds %q", kinds)
	}
	if got := plan.Layers[2].BytesPerToken(); got != 48 {
		t.Errorf("CSA bytes/token %v, want 48", got)
	}
	if n := plan.MaxTokensWithin(plan.SeqBytes(1000), 5000); n != 1003 {
		t.Errorf("MaxTokensWithin = %d, want 1003", n)
	}
}

func TestFinishReasons(t *testing.T) {
	r := enginetest.NewRunner()
	e := newEngine(t, r, engine.Config{})
	base := prompt(t, e, "finish reasons")
	free := run(t, e, engine.Request{Prompt: base, MaxTokens: 30, IgnoreEOS: true})
	if len(free.ids) != 30 || free.res.Finish != engine.FinishLength {
		t.Fatalf("free run: %d tokens, finish %q", len(free.ids), free.res.Finish)
	}
	// A stop token: the 5th token of the free run.
	stopTok := run(t, e, engine.Request{Prompt: base, MaxTokens: 30, IgnoreEOS: true, StopTokens: []int{free.ids[4]}})
	first := 0
	for first < len(free.ids) && free.ids[first] != free.ids[4] {
		first++
	}
	if len(stopTok.ids) != first+1 || stopTok.res.Finish != engine.FinishStop {
		t.Fatalf("stop token: %d tokens finish %q, want %d stop", len(stopTok.ids), stopTok.res.Finish, first+1)
	}
	// A stop sequence taken from the middle of the free text.
	if len(free.text) > 12 {
		seq := free.text[6:9]
		o := run(t, e, engine.Request{Prompt: base, MaxTokens: 30, IgnoreEOS: true, Stop: []string{seq}})
		want := free.text[:strings.Index(free.text, seq)]
		if o.text != want || o.res.Finish != engine.FinishStop || o.res.StopSequence != seq {
			t.Fatalf("stop %q: text %q finish %q, want %q", seq, o.text, o.res.Finish, want)
		}
	}
	// EOS ends generation when strongly favoured.
	r.EOSBias = 100
	o := run(t, e, engine.Request{Prompt: base, MaxTokens: 30})
	if len(o.ids) != 1 || o.ids[0] != 1 || o.res.Finish != engine.FinishStop || o.text != "" {
		t.Fatalf("eos: ids %v finish %q text %q", o.ids, o.res.Finish, o.text)
	}
}

func TestPrefixReuse(t *testing.T) {
	r := enginetest.NewRunner()
	e := newEngine(t, r, engine.Config{PrefillChunk: 8})
	cold := newEngine(t, enginetest.NewRunner(), engine.Config{PrefixCacheBytes: -1, PrefillChunk: 8})
	p1 := prompt(t, e, "the first turn of a conversation")
	o1 := run(t, e, engine.Request{Prompt: p1, MaxTokens: 10, IgnoreEOS: true, Sampling: engine.SamplerParams{Seed: 3, Temperature: 1}})
	if o1.res.Usage.CachedTokens != 0 {
		t.Fatalf("first turn cached %d", o1.res.Usage.CachedTokens)
	}
	// The second turn resends the history plus more.
	more, _ := e.Edge().Encode(" and the second turn")
	p2 := append(append(append([]int(nil), p1...), o1.ids...), more...)
	req := engine.Request{Prompt: p2, MaxTokens: 10, IgnoreEOS: true, Sampling: engine.SamplerParams{Seed: 4, Temperature: 1}}
	o2 := run(t, e, req)
	// The first turn's sequence consumed the prompt and all but its last token.
	if want := len(p1) + len(o1.ids) - 1; o2.res.Usage.CachedTokens != want {
		t.Fatalf("cached tokens %d, want %d", o2.res.Usage.CachedTokens, want)
	}
	if c := run(t, cold, req); fmt.Sprint(c.ids) != fmt.Sprint(o2.ids) {
		t.Fatalf("reused prefix changed the output:\n%v\n%v", c.ids, o2.ids)
	}
	// An unrelated prompt does not match.
	o3 := run(t, e, engine.Request{Prompt: prompt(t, e, "something else"), MaxTokens: 2})
	if o3.res.Usage.CachedTokens != 0 {
		t.Fatalf("unrelated prompt reused %d tokens", o3.res.Usage.CachedTokens)
	}
}

// TestLivePrefixReuse: a request whose prompt extends the tokens a live
// session has consumed so far starts from a copy of that session's caches;
// both produce what they produce alone.
func TestLivePrefixReuse(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = 2 * time.Millisecond // keep the first session's prefill running
	e := newEngine(t, r, engine.Config{PrefillChunk: 16, PrefixCacheBytes: -1})
	cold := newEngine(t, enginetest.NewRunner(), engine.Config{PrefillChunk: 16, PrefixCacheBytes: -1})
	long := prompt(t, e, strings.Repeat("a long shared system prompt, read a chunk per round. ", 12))
	if len(long) < 100 {
		t.Fatalf("prompt of %d tokens", len(long))
	}
	reqA := engine.Request{Prompt: long, MaxTokens: 8, IgnoreEOS: true, Sampling: engine.SamplerParams{Seed: 5, Temperature: 1}}
	more, _ := e.Edge().Encode(" then a question")
	reqB := engine.Request{Prompt: append(append([]int(nil), long...), more...), MaxTokens: 8, IgnoreEOS: true,
		Sampling: engine.SamplerParams{Seed: 6, Temperature: 1}}
	stA, err := e.Submit(context.Background(), reqA)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until A is part-way through its prompt (prefill events come
	// before any token), then submit B.
	for ev := range stA.Events {
		if ev.Kind == engine.EventPrefill && ev.Prefilled >= 32 {
			break
		}
	}
	stB, err := e.Submit(context.Background(), reqB)
	if err != nil {
		t.Fatal(err)
	}
	oA, oB := collect(t, stA), collect(t, stB)
	if c := oB.res.Usage.CachedTokens; c < 32 || c >= len(long) {
		t.Fatalf("B reused %d tokens of the live session, want at least 32 and fewer than A's %d-token prompt", c, len(long))
	}
	if alone := run(t, cold, reqB); fmt.Sprint(alone.ids) != fmt.Sprint(oB.ids) {
		t.Fatalf("B from a live copy %v, alone %v", oB.ids, alone.ids)
	}
	if alone := run(t, cold, reqA); fmt.Sprint(alone.ids) != fmt.Sprint(oA.ids) {
		t.Fatalf("A after being copied %v, alone %v", oA.ids, alone.ids)
	}
}

func TestLongPrefillInterleaves(t *testing.T) {
	r := enginetest.NewRunner()
	var mu sync.Mutex
	var trace []string // "P" prefill chunk of the long prompt, "d" short session decode
	var longSeq int64 = -1
	r.OnForward = func(seq int64, pos, n int) {
		mu.Lock()
		defer mu.Unlock()
		if n > 1 && pos >= 64 && longSeq < 0 {
			longSeq = seq
		}
		switch {
		case seq == longSeq && n > 1:
			trace = append(trace, "P")
		case seq != longSeq && n == 1:
			trace = append(trace, "d")
		}
	}
	r.TokenDelay = 20 * time.Microsecond
	e := newEngine(t, r, engine.Config{PrefillChunk: 64})
	short, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 7}, MaxTokens: 100, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int, 2000)
	for i := range long {
		long[i] = 2 + i%200
	}
	ls, err := e.Submit(context.Background(), engine.Request{Prompt: long, MaxTokens: 1, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, short)
	collect(t, ls)
	mu.Lock()
	defer mu.Unlock()
	s := strings.Join(trace, "")
	if strings.Contains(s, "PPP") {
		t.Fatalf("long prefill ran 3 chunks in a row without a decode step: %s", s)
	}
	// 2000 tokens in 64-token chunks: ~31 chunks, with the short
	// session's decode steps in between.
	mid := s[strings.Index(s, "P"):strings.LastIndex(s, "P")]
	if d := strings.Count(mid, "d"); d < 25 {
		t.Fatalf("only %d decode steps during the long prefill: %s", d, s)
	}
}

func TestSlowConsumerLosesNothing(t *testing.T) {
	r := enginetest.NewRunner()
	e := newEngine(t, r, engine.Config{EventBuffer: 4})
	req := engine.Request{Prompt: []int{0, 9, 9}, MaxTokens: 40, IgnoreEOS: true, Sampling: engine.SamplerParams{Seed: 1, Temperature: 1}}
	fast := run(t, e, req)
	st, err := e.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the buffer fill
	slow := collect(t, st)
	if fmt.Sprint(fast.ids) != fmt.Sprint(slow.ids) || fast.text != slow.text {
		t.Fatalf("slow consumer saw different output")
	}
}

func TestSubmitRejectsBadRequests(t *testing.T) {
	e := newEngine(t, enginetest.NewRunner(), engine.Config{})
	for _, tc := range []struct {
		name string
		req  engine.Request
		want string
	}{
		{"empty", engine.Request{}, "engine: empty prompt"},
		{"out of vocab", engine.Request{Prompt: []int{0, 512}}, "engine: prompt token 512 at index 1 outside the vocabulary [0,512)"},
		{"negative max", engine.Request{Prompt: []int{0}, MaxTokens: -1}, "engine: max_tokens -1 must be >= 0"},
		{"bad sampler", engine.Request{Prompt: []int{0}, Sampling: engine.SamplerParams{TopP: 2}}, "engine: sampler: sampler: top_p 2 must be in [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Submit(context.Background(), tc.req)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCloseEndsRequests(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = time.Millisecond
	c := r.Config()
	e, err := engine.New(r, nativeedge.NewBytes(c.BOS, c.EOS), engine.Config{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 3}, MaxTokens: 4000, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	<-st.Events
	e.Close()
	o := collect(t, st)
	if !errors.Is(o.res.Err, engine.ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", o.res.Err)
	}
	if _, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0}}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}
