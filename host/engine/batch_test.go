package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
)

// The decode steps of concurrent sessions share forward passes: with n
// sessions decoding, a round is one call with n sequences.
func TestRoundsBatchSessions(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		r := enginetest.NewRunner()
		r.StepDelay = 200 * time.Microsecond
		var mu sync.Mutex
		widest, calls := 0, 0
		r.OnBatch = func(seqs, _ int) {
			mu.Lock()
			widest, calls = max(widest, seqs), calls+1
			mu.Unlock()
		}
		e := newEngine(t, r, engine.Config{PrefixCacheBytes: -1})
		// Admit all before any runs: the first round then holds every prompt.
		var streams []*engine.Stream
		for i := 0; i < n; i++ {
			st, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 5 + i}, MaxTokens: 30, IgnoreEOS: true})
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, st)
		}
		for _, st := range streams {
			if o := collect(t, st); len(o.ids) != 30 {
				t.Fatalf("%d sessions: %d tokens, want 30", n, len(o.ids))
			}
		}
		mu.Lock()
		if widest != n {
			t.Errorf("%d sessions: widest pass had %d sequences", n, widest)
		}
		// 30 tokens each: at least 30 passes (prompt plus 29 decode steps,
		// one each), and far fewer than one per session and token.
		if calls < 30 || (n > 1 && calls >= 30*n) {
			t.Errorf("%d sessions: %d forward passes for %d tokens", n, calls, 30*n)
		}
		mu.Unlock()
	}
}

// A failing sequence fails alone: the pass it shared is rerun item by item
// and its neighbours produce what they produce alone. The failing one got
// 7 tokens first: from its prompt pass and the decode passes at 9…14.
func TestFailingSequenceDoesNotSpoilTheBatch(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = 100 * time.Microsecond
	var mu sync.Mutex
	victim := int64(-1)
	r.OnForward = func(seq int64, pos, n int) {
		mu.Lock()
		defer mu.Unlock()
		if pos == 0 && n == 9 {
			victim = seq
		}
	}
	r.Fail = func(seq int64, pos int) bool {
		mu.Lock()
		defer mu.Unlock()
		return seq == victim && pos == 15
	}
	e := newEngine(t, r, engine.Config{PrefixCacheBytes: -1})
	req := engine.Request{Prompt: []int{0, 5, 6}, MaxTokens: 40, IgnoreEOS: true, Sampling: engine.SamplerParams{Temperature: 1, Seed: 3}}
	alone := run(t, e, req)
	bad, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, MaxTokens: 40, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	good, err := e.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if o := collect(t, bad); o.res.Finish != engine.FinishError || len(o.ids) != 15-9+1 {
		t.Errorf("failing session: finish %q after %d tokens, want error after %d", o.res.Finish, len(o.ids), 15-9+1)
	}
	o := collect(t, good)
	if o.res.Finish != engine.FinishLength || len(o.ids) != len(alone.ids) {
		t.Fatalf("neighbour: finish %q, %d tokens", o.res.Finish, len(o.ids))
	}
	for i := range o.ids {
		if o.ids[i] != alone.ids[i] {
			t.Fatalf("neighbour token %d: %d, alone %d", i, o.ids[i], alone.ids[i])
		}
	}
}

// Client-driven steps ride in the same passes as hosted sessions and get
// the logits a lone Forward gives.
func TestRawStepsJoinBatches(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = 100 * time.Microsecond
	var mu sync.Mutex
	widest := 0
	r.OnBatch = func(seqs, _ int) {
		mu.Lock()
		widest = max(widest, seqs)
		mu.Unlock()
	}
	e := newEngine(t, r, engine.Config{PrefixCacheBytes: -1})
	hosted, err := e.Submit(context.Background(), engine.Request{Prompt: []int{0, 9}, MaxTokens: 200, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	q, err := e.OpenSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ref := enginetest.NewRunner()
	refSeq := ref.NewSequence()
	toks := []int{0, 4, 8, 15, 16, 23, 42}
	pos := 0
	for i, n := range []int{3, 1, 1, 2} {
		step := toks[pos : pos+n]
		res, err := q.Step(context.Background(), pos, step, nil)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want, _ := ref.Forward(refSeq, step, nil)
		pos += n
		if res.Pos != pos || len(res.Logits) != len(want) {
			t.Fatalf("step %d: at %d with %d logits", i, res.Pos, len(res.Logits))
		}
		for j := range want {
			if res.Logits[j] != want[j] {
				t.Fatalf("step %d: logit %d is %v, want %v", i, j, res.Logits[j], want[j])
			}
		}
	}
	collect(t, hosted)
	mu.Lock()
	defer mu.Unlock()
	if widest < 2 {
		t.Errorf("raw steps never shared a pass with the hosted session (widest %d)", widest)
	}
}
