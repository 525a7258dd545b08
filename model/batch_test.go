package model_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// TestForwardBatchMatchesForward runs several sequences at different
// positions through ForwardBatch, prefill chunks and single decode tokens
// mixed in one call, and compares every sequence's logits (and the trace of
// the first) with Forward on its own copy of the sequence.
func TestForwardBatchMatchesForward(t *testing.T) {
	cases := []struct {
		name   string
		prefix []int   // tokens each sequence has consumed before the batches
		rounds [][]int // per call, the chunk length of each sequence (0: not in this call)
	}{
		{"one sequence", []int{5}, [][]int{{1}, {9}, {1}}},
		{"decode only", []int{3, 40, 131}, [][]int{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}},
		{"prefill and decode", []int{0, 17, 64, 130}, [][]int{{7, 1, 1, 64}, {1, 5, 1, 1}, {64, 1, 0, 3}, {1, 1, 1, 1}}},
		{"five sequences", []int{0, 1, 9, 63, 200}, [][]int{{16, 1, 3, 1, 1}, {1, 1, 1, 70, 1}, {1, 0, 1, 1, 130}, {2, 2, 2, 2, 2}}},
	}
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		for _, num := range []struct {
			name string
			n    model.Numerics
		}{{"reference", model.ReferenceNumerics}, {"float32", model.Float32Numerics}} {
			m := tinyModel(t, arch, num.n, 2)
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", arch, num.name, tc.name), func(t *testing.T) {
					checkBatches(t, m, tc.prefix, tc.rounds)
				})
			}
		}
	}
}

func checkBatches(t *testing.T, m *model.Model, prefix []int, rounds [][]int) {
	S := len(prefix)
	toks := make([][]int, S)
	rows := make([][][][]int64, S)
	solo := make([]*model.State, S)
	batched := make([]*model.State, S)
	for s := range toks {
		n := prefix[s]
		for _, r := range rounds {
			n += r[s]
		}
		toks[s] = randomTokens(n, m.Config.VocabSize, uint64(100+s))
		rows[s] = engramRows(m, toks[s])
		solo[s], batched[s] = m.NewState(), m.NewState()
		if prefix[s] > 0 {
			for _, st := range []*model.State{solo[s], batched[s]} {
				if _, err := m.Forward(st, input(toks[s], rows[s], 0, prefix[s]), model.Options{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for k, r := range rounds {
		var sts []*model.State
		var ins []model.Input
		var opts []model.Options
		var want [][]float32
		var wantTrace *model.Trace
		for s, n := range r {
			if n == 0 {
				continue
			}
			p := solo[s].Pos
			in := input(toks[s], rows[s], p, p+n)
			opt := model.Options{AllLogits: s%2 == 0}
			soloOpt := opt
			if len(sts) == 0 {
				opt.Trace, soloOpt.Trace = &model.Trace{}, &model.Trace{}
				wantTrace = soloOpt.Trace
			}
			l, err := m.Forward(solo[s], in, soloOpt)
			if err != nil {
				t.Fatal(err)
			}
			sts, ins, opts, want = append(sts, batched[s]), append(ins, in), append(opts, opt), append(want, l)
		}
		got, err := m.ForwardBatch(sts, ins, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d results for %d sequences", k, len(got), len(want))
		}
		for i := range got {
			if len(got[i]) != len(want[i]) {
				t.Fatalf("round %d, sequence %d: %d logits, want %d", k, i, len(got[i]), len(want[i]))
			}
			if d := maxRelDiff(got[i], want[i]); d > 1e-5 {
				t.Errorf("round %d, sequence %d: max relative difference %.3g from Forward alone", k, i, d)
			}
			if sts[i].Pos != solo[indexOf(batched, sts[i])].Pos {
				t.Errorf("round %d, sequence %d: position %d, want %d", k, i, sts[i].Pos, solo[indexOf(batched, sts[i])].Pos)
			}
		}
		if tr := opts[0].Trace; !reflect.DeepEqual(tr.Selected, wantTrace.Selected) || len(tr.Comb) != len(wantTrace.Comb) {
			t.Errorf("round %d: trace of the first sequence differs from Forward alone:\n%v\n%v", k, tr.Selected, wantTrace.Selected)
		}
	}
}

func input(toks []int, rows [][][]int64, lo, hi int) model.Input {
	in := model.Input{Tokens: toks[lo:hi]}
	if rows != nil {
		in.Engram = rows[lo:hi]
	}
	return in
}

func indexOf(sts []*model.State, st *model.State) int {
	for i, s := range sts {
		if s == st {
			return i
		}
	}
	return -1
}

// A rejected batch changes no state, whichever sequence is at fault.
func TestForwardBatchRejectsBadInput(t *testing.T) {
	m := tinyModel(t, checkpoint.ArchV4, model.ReferenceNumerics, 1)
	a, b := m.NewState(), m.NewState()
	for _, tc := range []struct {
		name string
		sts  []*model.State
		ins  []model.Input
		opts []model.Options
	}{
		{"no sequences", nil, nil, nil},
		{"inputs short", []*model.State{a, b}, []model.Input{{Tokens: []int{1}}}, nil},
		{"options short", []*model.State{a, b}, []model.Input{{Tokens: []int{1}}, {Tokens: []int{2}}}, []model.Options{{}}},
		{"same state twice", []*model.State{a, a}, []model.Input{{Tokens: []int{1}}, {Tokens: []int{2}}}, nil},
		{"nil state", []*model.State{a, nil}, []model.Input{{Tokens: []int{1}}, {Tokens: []int{2}}}, nil},
		{"second has no tokens", []*model.State{a, b}, []model.Input{{Tokens: []int{1}}, {}}, nil},
		{"second outside vocabulary", []*model.State{a, b}, []model.Input{{Tokens: []int{1}}, {Tokens: []int{3, 512}}}, nil},
	} {
		if _, err := m.ForwardBatch(tc.sts, tc.ins, tc.opts); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
		if a.Pos != 0 || b.Pos != 0 {
			t.Fatalf("%s: rejected batch advanced the states to %d, %d", tc.name, a.Pos, b.Pos)
		}
	}
}

// A V4.1 batch whose second sequence has malformed Engram rows is refused
// before any state changes.
func TestForwardBatchRejectsBadEngramRows(t *testing.T) {
	m := tinyModel(t, checkpoint.ArchV41, model.ReferenceNumerics, 1)
	toks := randomTokens(4, m.Config.VocabSize, 1)
	good := engramRows(m, toks)
	short := engramRows(m, toks)
	short[2][0] = short[2][0][:1]
	outside := engramRows(m, toks)
	outside[3][0][0] = int64(m.Config.EngramRows[0])
	for name, rows := range map[string][][][]int64{"missing tokens": good[:3], "short row": short, "row out of range": outside} {
		a, b := m.NewState(), m.NewState()
		_, err := m.ForwardBatch([]*model.State{a, b}, []model.Input{{Tokens: toks, Engram: good}, {Tokens: toks, Engram: rows}}, nil)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if a.Pos != 0 || b.Pos != 0 || a.Bytes() != m.NewState().Bytes() {
			t.Errorf("%s: rejected batch changed the states", name)
		}
	}
}

// Continuing a clone and its original gives the same logits, and neither
// sees the other's tokens.
func TestStateClone(t *testing.T) {
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		t.Run(string(arch), func(t *testing.T) {
			m := tinyModel(t, arch, model.ReferenceNumerics, 1)
			toks := randomTokens(150, m.Config.VocabSize, 7)
			rows := engramRows(m, toks)
			orig := m.NewState()
			if _, err := m.Forward(orig, input(toks, rows, 0, 130), model.Options{}); err != nil {
				t.Fatal(err)
			}
			clone := orig.Clone()
			if clone.Pos != orig.Pos || clone.Bytes() != orig.Bytes() {
				t.Fatalf("clone at %d with %d bytes, original at %d with %d", clone.Pos, clone.Bytes(), orig.Pos, orig.Bytes())
			}
			// Feed the clone other tokens first: the original must not see
			// them. Then both continue from a fresh clone's point.
			other := randomTokens(20, m.Config.VocabSize, 8)
			if _, err := m.Forward(clone, input(other, engramRows(m, other), 0, 20), model.Options{}); err != nil {
				t.Fatal(err)
			}
			fresh := m.NewState()
			if _, err := m.Forward(fresh, input(toks, rows, 0, 130), model.Options{}); err != nil {
				t.Fatal(err)
			}
			twin := orig.Clone()
			for _, c := range []struct {
				name string
				st   *model.State
			}{{"original", orig}, {"clone", twin}} {
				got, err := m.Forward(c.st, input(toks, rows, 130, 150), model.Options{AllLogits: true})
				if err != nil {
					t.Fatal(err)
				}
				want, err := m.Forward(fresh.Clone(), input(toks, rows, 130, 150), model.Options{AllLogits: true})
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: logit %d is %v, want %v", c.name, i, got[i], want[i])
					}
				}
			}
			if orig.Pos != 150 || twin.Pos != 150 || clone.Pos != 150 {
				t.Errorf("positions %d, %d, %d, want 150", orig.Pos, twin.Pos, clone.Pos)
			}
		})
	}
}

// BenchmarkDecodeBatch times one decode token of n sequences (at position
// 64) as one ForwardBatch call and as n Forward calls, on the tiny V4 model.
func BenchmarkDecodeBatch(b *testing.B) {
	m := tinyModel(b, checkpoint.ArchV4, model.ReferenceNumerics, 2)
	for _, n := range []int{1, 8, 32} {
		sts := make([]*model.State, n)
		ins := make([]model.Input, n)
		for s := range sts {
			sts[s] = m.NewState()
			if _, err := m.Forward(sts[s], model.Input{Tokens: randomTokens(64, m.Config.VocabSize, uint64(s))}, model.Options{}); err != nil {
				b.Fatal(err)
			}
			ins[s] = model.Input{Tokens: []int{s + 1}}
		}
		// Every iteration continues from the same caches.
		run := func(b *testing.B, f func(sts []*model.State) error) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cl := make([]*model.State, n)
				for s := range cl {
					cl[s] = sts[s].Clone()
				}
				b.StartTimer()
				if err := f(cl); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tok/s")
		}
		b.Run(fmt.Sprintf("sessions=%d/batched", n), func(b *testing.B) {
			run(b, func(cl []*model.State) error { _, err := m.ForwardBatch(cl, ins, nil); return err })
		})
		b.Run(fmt.Sprintf("sessions=%d/one-by-one", n), func(b *testing.B) {
			run(b, func(cl []*model.State) error {
				for s := range cl {
					if _, err := m.Forward(cl[s], ins[s], model.Options{}); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}
