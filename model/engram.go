package model

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

// Engram is a V4.1 n-gram memory layer: rows of a large FP8 table, addressed
// by hashes of the last few tokens (computed by the edge), are projected to a
// key per stream and one shared value, and each stream adds the value scaled
// by a gate that compares the stream with its key.
type Engram struct {
	Table   []byte // [Rows, HeadDim] e4m3
	Scales  []byte // [Rows, HeadDim/32] e8m0, per row
	Rows    int
	HeadDim int
	Cols    int             // rows fetched per token: (max n-gram − 1) · heads
	Wkv     *kernels.Matrix // [(n+1)·dim, Cols·HeadDim]
	QK      []float32       // [n, dim]: q_weight ⊙ k_weight
	eps     float32
}

// RawWeights gives access to tensors that are not matrices, such as the
// Engram tables whose scales are per row rather than per block.
type RawWeights interface {
	Tensor(name string) (*safetensors.Tensor, string, error)
}

// rawTensor returns the bytes of a tensor after checking its dtype and shape.
func rawTensor(w RawWeights, name string, dt safetensors.DType, shape ...int) ([]byte, error) {
	t, file, err := w.Tensor(name)
	if err != nil {
		return nil, err
	}
	ok := t.DType == dt && len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = t.Shape[i] == shape[i]
	}
	if !ok {
		return nil, fmt.Errorf("%s: tensor %s is %s %v, want %s %v", file, name, t.DType, t.Shape, dt, shape)
	}
	return t.Data, nil
}

func loadEngram(w Weights, p string, cfg checkpoint.Config, l int) (*Engram, error) {
	raw, ok := w.(RawWeights)
	if !ok {
		return nil, fmt.Errorf("%s: weight source cannot read raw tensors", p)
	}
	idx := -1
	for i, x := range cfg.EngramLayers {
		if x == l {
			idx = i
		}
	}
	if idx < 0 || idx >= len(cfg.EngramRows) {
		return nil, fmt.Errorf("%s: no engram_num_embeddings entry for layer %d", p, l)
	}
	n, D := cfg.HCMult, cfg.Dim
	e := &Engram{Rows: cfg.EngramRows[idx], HeadDim: cfg.EngramHeadDim,
		Cols: (cfg.EngramMaxNgram - 1) * cfg.EngramHeads, eps: cfg.NormEps}
	var err error
	if e.Table, err = rawTensor(raw, p+"embed.weight", safetensors.F8E4M3, e.Rows, e.HeadDim); err != nil {
		return nil, err
	}
	if e.Scales, err = rawTensor(raw, p+"embed.scale", safetensors.F8E8M0, e.Rows, e.HeadDim/32); err != nil {
		return nil, err
	}
	if e.Wkv, err = w.Matrix(p+"wkv", (n+1)*D, e.Cols*e.HeadDim); err != nil {
		return nil, err
	}
	q, err := w.Floats(p+"q_weight", n, D)
	if err != nil {
		return nil, err
	}
	k, err := w.Floats(p+"k_weight", n, D)
	if err != nil {
		return nil, err
	}
	e.QK = make([]float32, n*D)
	for i := range e.QK {
		e.QK[i] = q[i] * k[i]
	}
	e.adviseRandom() // rows are read one at a time, at random (engram_prefetch_linux.go)
	return e, nil
}

// Row dequantizes table row r into dst.
func (e *Engram) Row(dst []float32, r int64) {
	row := e.Table[int(r)*e.HeadDim : (int(r)+1)*e.HeadDim]
	sc := e.Scales[int(r)*e.HeadDim/32:]
	for c, b := range row {
		dst[c] = kernels.E4M3ToF32(b) * kernels.E8M0ToF32(sc[c/32])
	}
}

// gather dequantizes the table rows of len(rows) tokens into dst
// [tokens, Cols, HeadDim]: rows[t] holds the Cols table rows of token t. It
// checks every row before reading the table (newBatch has already refused
// bad rows with a clearer message; this guards the table against a bug).
// When stop is non-nil it is polled between tokens, and gather gives up with
// errFetchStopped once it is set.
func (e *Engram) gather(dst []float32, rows [][]int64, stop *atomic.Bool) error {
	for t := range rows {
		if stop != nil && stop.Load() {
			return errFetchStopped
		}
		if len(rows[t]) != e.Cols {
			return fmt.Errorf("engram: token %d has %d rows, want %d", t, len(rows[t]), e.Cols)
		}
		for c, r := range rows[t] {
			if r < 0 || r >= int64(e.Rows) {
				return fmt.Errorf("engram: token %d row %d out of range [0,%d)", t, r, e.Rows)
			}
			e.Row(dst[(t*e.Cols+c)*e.HeadDim:(t*e.Cols+c+1)*e.HeadDim], r)
		}
	}
	return nil
}

// engram adds the Engram memory of the i-th Engram layer, e, to the streams
// of the batch's rows. The layer's table rows come gathered and dequantized
// from the batch's fetch: prefetched since the start of the call, or read
// now when prefetch is off (engram_prefetch.go); both run gather, so the
// values are the same bits.
func (m *Model) engram(e *Engram, X []float32, b *batch, i int) error {
	n, D := m.Config.HCMult, m.Config.Dim
	T := b.R
	emb, err := b.fetch.layer(i)
	if err != nil {
		return err
	}
	kv := m.linear(e.Wkv, emb, T)
	sq := float32(1 / math.Sqrt(float64(D)))
	for t := 0; t < T; t++ {
		kvt := kv[t*(n+1)*D : (t+1)*(n+1)*D]
		v := kvt[n*D:]
		for s := 0; s < n; s++ {
			h := X[(t*n+s)*D : (t*n+s+1)*D]
			key := kvt[s*D : (s+1)*D]
			var dot float32
			qk := e.QK[s*D : (s+1)*D]
			for c := range h {
				dot += h[c] * qk[c] * key[c]
			}
			dot *= invRMS(h, e.eps) * invRMS(key, e.eps) * sq
			g := float32(math.Sqrt(float64(max(float32(math.Abs(float64(dot))), 1e-6))))
			if dot < 0 {
				g = -g
			}
			kernels.Axpy(h, sigmoid(g), v)
		}
	}
	return nil
}
