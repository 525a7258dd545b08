package model_test

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// tinyV41Pair loads the tiny V4.1 checkpoint twice, with the Engram prefetch
// on and off.
func tinyV41Pair(t *testing.T, num model.Numerics) (on, off *model.Model) {
	t.Helper()
	dir := t.TempDir()
	if err := synth.Write(dir, synth.TinyConfig(checkpoint.ArchV41), 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	if on, err = model.Load(*ck.Config, ck, kernels.NewCPU(2), num); err != nil {
		t.Fatal(err)
	}
	if off, err = model.Load(*ck.Config, ck, kernels.NewCPU(2), num, model.WithEngramPrefetch(false)); err != nil {
		t.Fatal(err)
	}
	return on, off
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: logit %d is %v with prefetch, %v without", what, i, got[i], want[i])
		}
	}
}

// The prefetched Engram rows give the same logits, bit for bit, as rows
// gathered when the Engram layer runs: one-shot, chunked and token-by-token
// prefill, and a batch of sequences at different positions.
func TestEngramPrefetchSameLogits(t *testing.T) {
	for _, num := range []struct {
		name string
		n    model.Numerics
	}{{"reference", model.ReferenceNumerics}, {"float32", model.Float32Numerics}} {
		t.Run(num.name, func(t *testing.T) {
			on, off := tinyV41Pair(t, num.n)
			toks := randomTokens(96, on.Config.VocabSize, 7)
			for _, chunk := range []int{96, 13, 1} {
				got, want := forwardChunks(t, on, toks, chunk), forwardChunks(t, off, toks, chunk)
				sameBits(t, fmt.Sprintf("chunks of %d", chunk), got, want)
			}
			// A batch: three sequences, prefilled to different lengths, then
			// a prefill chunk and two decode tokens in one call.
			var outs [2][][]float32
			for k, m := range []*model.Model{on, off} {
				var sts []*model.State
				var ins []model.Input
				for s, n := range []int{0, 5, 40} {
					seq := randomTokens(n+7, m.Config.VocabSize, uint64(20+s))
					rows := engramRows(m, seq)
					st := m.NewState()
					if n > 0 {
						if _, err := m.Forward(st, input(seq, rows, 0, n), model.Options{}); err != nil {
							t.Fatal(err)
						}
					}
					hi := n + 1
					if s == 0 {
						hi = n + 7
					}
					sts, ins = append(sts, st), append(ins, input(seq, rows, n, hi))
				}
				out, err := m.ForwardBatch(sts, ins, []model.Options{{AllLogits: true}, {}, {}})
				if err != nil {
					t.Fatal(err)
				}
				outs[k] = out
			}
			for s := range outs[0] {
				sameBits(t, fmt.Sprintf("batch sequence %d", s), outs[0][s], outs[1][s])
			}
		})
	}
}

// Rows outside a table are refused before anything is fetched, with the same
// message whether prefetch is on or off, and the state does not move.
func TestEngramPrefetchRowOutOfRange(t *testing.T) {
	on, off := tinyV41Pair(t, model.ReferenceNumerics)
	toks := randomTokens(4, on.Config.VocabSize, 1)
	rows := engramRows(on, toks)
	rows[2][1][3] = int64(on.Config.EngramRows[1])
	var msgs []string
	for _, m := range []*model.Model{on, off} {
		st := m.NewState()
		_, err := m.Forward(st, model.Input{Tokens: toks, Engram: rows}, model.Options{})
		if err == nil {
			t.Fatal("row out of range accepted")
		}
		if st.Pos != 0 {
			t.Errorf("rejected call moved the state to %d", st.Pos)
		}
		msgs = append(msgs, err.Error())
	}
	want := fmt.Sprintf("forward: token 2: Engram row %d out of range [0,%d)", on.Config.EngramRows[1], on.Config.EngramRows[1])
	if msgs[0] != want || msgs[1] != want {
		t.Errorf("errors %q (prefetch) and %q (no prefetch), want %q", msgs[0], msgs[1], want)
	}
}

// Every call joins its fetch: after many forwards, calls refused by newBatch
// included, no goroutine is left behind.
func TestEngramPrefetchLeavesNoGoroutine(t *testing.T) {
	on, _ := tinyV41Pair(t, model.ReferenceNumerics)
	toks := randomTokens(40, on.Config.VocabSize, 3)
	rows := engramRows(on, toks)
	st := on.NewState()
	// A first call, before counting (the backend's worker pool exists already).
	if _, err := on.Forward(st, input(toks, rows, 0, 1), model.Options{}); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for i := 1; i < 40; i++ {
		if _, err := on.Forward(st, input(toks, rows, i, i+1), model.Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := on.Forward(st, model.Input{Tokens: toks[:1]}, model.Options{}); err == nil {
			t.Fatal("call without Engram rows accepted")
		}
	}
	// A returned goroutine may still be counted for a moment.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after 78 calls, %d before", n, before)
	}
}
