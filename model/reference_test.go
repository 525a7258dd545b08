package model_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/reftest"
	"github.com/edgeseek/edgeseek/model/synth"
)

// refTokens is a deterministic pseudo-random sequence of n token ids below
// vocab (a 32-bit LCG).
func refTokens(n, vocab int) []int {
	toks := make([]int, n)
	s := uint32(12345)
	for i := range toks {
		s = s*1664525 + 1013904223
		toks[i] = int(s>>8) % vocab
	}
	return toks
}

// refEngramRows computes V4.1 Engram row ids by the scheme of spec
// mhc-moe-engram-encoding.md §4.3 for a config whose compressed vocabulary
// is the identity: per Engram layer, moduli = the next engram_n_heads primes
// per n-gram order from engram_vocab_size (shared search across layers),
// offsets = running sums of the layer's moduli, a look-back window padded
// with the pad id before position 0, products with odd multipliers, a
// rolling XOR, and one id per (order, head). The multipliers are the
// release's layer-1 and layer-14 values (a test hash only: the tiny
// checkpoint's table rows carry no meaning).
func refEngramRows(cfg *checkpoint.Config, toks []int) [][][]int64 {
	mults := [][]int64{
		{76632096046245, 4839876093313, 35959672319349, 73987337458391},
		{67716810739261, 51510806800915, 30921347202721, 82619226485591},
	}
	isPrime := func(n int) bool {
		if n < 2 {
			return false
		}
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				return false
			}
		}
		return true
	}
	nOrd, heads := cfg.EngramMaxNgram-1, cfg.EngramHeads
	primes := make([][]int64, len(cfg.EngramLayers)) // [layer][col]
	offs := make([][]int64, len(cfg.EngramLayers))
	p := cfg.EngramVocab - 1
	for l := range primes {
		var off int64
		for range nOrd * heads {
			p++
			for !isPrime(p) {
				p++
			}
			primes[l] = append(primes[l], int64(p))
			offs[l] = append(offs[l], off)
			off += int64(p)
		}
	}
	out := make([][][]int64, len(toks))
	for t := range toks {
		out[t] = make([][]int64, len(cfg.EngramLayers))
		for l := range cfg.EngramLayers {
			var h int64
			for s := 0; s <= nOrd; s++ {
				w := int64(cfg.EngramPad)
				if t >= s {
					w = int64(toks[t-s])
				}
				prod := w * mults[l%len(mults)][s]
				if s == 0 {
					h = prod
					continue
				}
				h ^= prod
				for j := 0; j < heads; j++ {
					col := (s-1)*heads + j
					out[t][l] = append(out[t][l], h%primes[l][col]+offs[l][col])
				}
			}
		}
	}
	return out
}

// posDiffs is, per position, the largest |got − want| over the vocabulary.
func posDiffs(got []float32, want [][]float32) []float64 {
	d := make([]float64, len(want))
	for p, w := range want {
		for i, v := range w {
			d[p] = math.Max(d[p], math.Abs(float64(got[p*len(w)+i])-float64(v)))
		}
	}
	return d
}

func firstAbove(d []float64, tol float64) int {
	for p, v := range d {
		if v > tol {
			return p
		}
	}
	return -1
}

// maxTieFlips bounds the near-tie roundings the comparison may resolve, and
// maxTieTries the candidates it tries for one disagreeing position (each try
// is a full reference evaluation).
const (
	maxTieFlips = 12
	maxTieTries = 6
)

// TestForwardMatchesReference checks every position's logits of the tiny V4
// and V4.1 checkpoints against the independent float64 reference of package
// reftest: Float32Numerics against the reference without simulation, and
// ReferenceNumerics against the reference with every simulated step.
//
// With simulation, an element whose scaled value lies within 1e-4 of a step
// of an FP8/FP4 rounding boundary may round either way in float32 versus
// float64, and one such element moves the logits by up to a few percent.
// The comparison therefore resolves those near ties: at the first position
// that disagrees it flips, one at a time, the reference's near-tie roundings
// of that position (then of the latest earlier ones, at most maxTieTries in
// all) and keeps a flip that makes the position agree. Nothing else is
// forgiven: a disagreement that no single near-tie flip explains fails the
// test. With simulation the sequences are shorter (100 tokens: still long
// enough for the V4 indexer to discard entries, from position 36 on)
// because each tie resolution re-runs the reference.
func TestForwardMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		arch    checkpoint.Arch
		n, nSim int // tokens without and with simulated low precision
	}{{checkpoint.ArchV4, 300, 100}, {checkpoint.ArchV41, 100, 100}} {
		dir := t.TempDir()
		if err := synth.Write(dir, synth.TinyConfig(tc.arch), 1, synth.Options{}); err != nil {
			t.Fatal(err)
		}
		ck, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		cfg := ck.Config
		for _, nc := range []struct {
			name string
			num  model.Numerics
			sim  reftest.Sim
		}{
			{"float32", model.Float32Numerics, reftest.Sim{}},
			{"reference", model.ReferenceNumerics, reftest.Sim{ActQuant: true, KVQuant: true, IndexerQuant: true}},
		} {
			t.Run(fmt.Sprintf("%s/%s", tc.arch, nc.name), func(t *testing.T) {
				n := tc.n
				if nc.sim != (reftest.Sim{}) {
					n = tc.nSim
				}
				toks := refTokens(n, cfg.VocabSize)
				var rows [][][]int64
				if tc.arch == checkpoint.ArchV41 {
					rows = refEngramRows(cfg, toks)
				}
				m, err := model.Load(*cfg, ck, kernels.NewCPU(1), nc.num)
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				got, err := m.Forward(m.NewState(), model.Input{Tokens: toks, Engram: rows}, model.Options{AllLogits: true})
				if err != nil {
					t.Fatal(err)
				}
				tGot := time.Since(t0)
				if len(got) != len(toks)*cfg.VocabSize {
					t.Fatalf("got %d logits, want %d", len(got), len(toks)*cfg.VocabSize)
				}
				t0 = time.Now()
				dbg := &reftest.DebugInfo{Flip: map[string]bool{}}
				want, err := reftest.LogitsDebug(dir, toks, rows, nc.sim, dbg)
				if err != nil {
					t.Fatal(err)
				}
				var maxRef float64
				for _, w := range want {
					for _, v := range w {
						maxRef = math.Max(maxRef, math.Abs(float64(v)))
					}
				}
				tol := 1e-4 * maxRef
				d := posDiffs(got, want)
				var flipped []string
				for p := firstAbove(d, tol); p >= 0 && len(flipped) < maxTieFlips; p = firstAbove(d, tol) {
					// Near ties of position p first (closest to the boundary
					// first), then of earlier positions (latest first).
					var cands []reftest.NearTie
					for _, nt := range dbg.NearTies {
						if nt.Pos <= p && !dbg.Flip[nt.Key] && !strings.Contains(nt.Key, "topk") && !strings.Contains(nt.Key, "route") {
							cands = append(cands, nt)
						}
					}
					sort.SliceStable(cands, func(i, j int) bool {
						if cands[i].Pos != cands[j].Pos {
							return cands[i].Pos > cands[j].Pos
						}
						return cands[i].Margin < cands[j].Margin
					})
					if len(cands) > maxTieTries {
						cands = cands[:maxTieTries]
					}
					fixed := false
					for _, nt := range cands {
						try := &reftest.DebugInfo{Flip: map[string]bool{nt.Key: true}}
						for k := range dbg.Flip {
							try.Flip[k] = true
						}
						w2, err := reftest.LogitsDebug(dir, toks, rows, nc.sim, try)
						if err != nil {
							t.Fatal(err)
						}
						if d2 := posDiffs(got, w2); d2[p] <= tol {
							dbg, want, d, fixed = try, w2, d2, true
							flipped = append(flipped, fmt.Sprintf("%s (%s, margin %.1g step)", nt.Key, nt.Op, nt.Margin))
							break
						}
					}
					if !fixed {
						break
					}
				}
				tRef := time.Since(t0)
				worst, maxDiff := 0, 0.0
				for p, v := range d {
					if v > maxDiff {
						worst, maxDiff = p, v
					}
				}
				t.Logf("%d tokens: max|ref| %.4g, max|Δ| %.3g (rel %.3g) at position %d; %d near-tie roundings resolved; reference %v, model %v",
					len(toks), maxRef, maxDiff, maxDiff/maxRef, worst, len(flipped), tRef.Round(time.Millisecond), tGot.Round(time.Millisecond))
				for _, f := range flipped {
					t.Logf("  resolved near tie: %s", f)
				}
				if p := firstAbove(d, tol); p >= 0 {
					t.Errorf("logits differ beyond 1e-4·max|ref| = %.3g from position %d on (max|Δ| %.3g at %d); near ties at or before it: %d",
						tol, p, maxDiff, worst, len(dbg.NearTies))
				}
			})
		}
	}
}
