package kernels

import (
	"math"
	"runtime"
	"unsafe"
)

// CPU is the CPU backend: SIMD kernels where the machine has them (see
// Implementation), portable Go otherwise, run on its own persistent worker
// pool. It splits products over output rows and attention over heads,
// and every output element is computed by the same sequence of operations
// whatever the thread count, so results are bit-identical for any Threads.
type CPU struct {
	threads int
	pool    *Pool
}

// NewCPU returns a CPU backend using the given number of threads (0: all cores).
func NewCPU(threads int) *CPU {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &CPU{threads: threads, pool: NewPool(threads)}
}

// Name implements Backend.
func (c *CPU) Name() string { return "cpu-" + string(Implementation()) }

// Threads is the number of workers this backend uses.
func (c *CPU) Threads() int { return c.threads }

// MatMul implements Backend. Weights are dequantized in registers (n=1) or
// one small tile at a time (n>1), never into a copy of the matrix.
func (c *CPU) MatMul(dst []float32, w *Matrix, x []float32, n int) {
	matMul(c.pool, dst, w, x, n)
}

// MatMulBatch implements BatchBackend: the products run in one parallel
// region, each exactly as MatMul runs it.
func (c *CPU) MatMulBatch(ops []MatMulOp) {
	matMulBatch(c.pool, ops)
}

// Parallel runs f over disjoint chunks [lo,hi) covering [0,n) on the
// backend's worker pool; chunk boundaries are multiples of grain. It is for
// callers with their own row-parallel work (the model's element-wise loops).
func (c *CPU) Parallel(n, grain int, f func(lo, hi int)) {
	c.pool.For(n, grain, f)
}

// Attend implements Backend. Heads are processed four at a time so each key
// row is loaded once for four heads; groups run in parallel.
func (c *CPU) Attend(out, q []float32, heads, d int, rows [][]float32, sinks []float32, scale float32) {
	if heads <= 0 {
		return
	}
	_ = out[heads*d-1]
	_ = q[heads*d-1]
	_ = sinks[heads-1]
	if !useSIMD || d < 8 {
		c.pool.For(heads, grainFor(heads, c.threads, 1), func(lo, hi int) {
			AttendRef(out[lo*d:hi*d], q[lo*d:hi*d], hi-lo, d, rows, sinks[lo:hi], scale)
		})
		return
	}
	c.pool.For(heads, 4, func(lo, hi int) {
		for h := lo; h < hi; h += 4 {
			attend4(out, q, h, min(h+4, hi), d, rows, sinks, scale)
		}
	})
}

// attend4 computes heads [h0,h1) (at most 4) with the gemm kernels: logits
// for 4 heads × 3 rows per call, then the weighted sum of rows.
func attend4(out, q []float32, h0, h1, d int, rows [][]float32, sinks []float32, scale float32) {
	nh := h1 - h0
	S := len(rows)
	if S == 0 {
		clear(out[h0*d : h1*d])
		return
	}
	for _, r := range rows {
		_ = r[d-1] // the assembly reads d floats of every row
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	dv := d &^ 7
	var qp []float32
	if nh == 4 {
		qp = q[h0*d : h1*d]
	} else {
		// Pad the query block with zero heads so the 4-row kernel applies.
		s.row = grow(s.row, 4*d)
		qp = s.row
		clear(qp)
		copy(qp, q[h0*d:h1*d])
	}
	s.sc = grow(s.sc, 4*S)
	logit := s.sc
	acc := s.acc[:96]
	qpp := unsafe.Pointer(&qp[0])
	for s0 := 0; s0 < S; s0 += 3 {
		clear(acc)
		ns := min(3, S-s0)
		if ns == 3 {
			gemm4x3(qpp, d, &rows[s0][0], &rows[s0+1][0], &rows[s0+2][0], &acc[0], dv)
		} else {
			for i := 0; i < ns; i++ {
				gemm4x1(qpp, d, &rows[s0+i][0], &acc[i*32], dv)
			}
		}
		for i := 0; i < ns; i++ {
			r := rows[s0+i][:d]
			for j := 0; j < nh; j++ {
				v := hsum8(acc[(i*4+j)*8:])
				qj := qp[j*d : (j+1)*d]
				for c := dv; c < d; c++ {
					v += qj[c] * r[c]
				}
				logit[j*S+s0+i] = scale * v
			}
		}
	}
	for j := 0; j < nh; j++ {
		l := logit[j*S : (j+1)*S]
		m := float32(math.Inf(-1))
		for _, v := range l {
			m = max(m, v)
		}
		z := expf(sinks[h0+j] - m)
		for i, v := range l {
			l[i] = expf(v - m)
			z += l[i]
		}
		for i := range l {
			l[i] /= z
		}
	}
	clear(logit[nh*S:]) // padded heads weigh nothing
	// out_j = Σ_s p[j][s]·row_s, 24 (then 8) columns at a time in registers.
	rp := unsafe.Pointer(&rows[0])
	c := 0
	for ; c+24 <= dv; c += 24 {
		attnOut4x3(&acc[0], &logit[0], S, rp, S, c)
		for j := 0; j < nh; j++ {
			copy(out[(h0+j)*d+c:(h0+j)*d+c+24], acc[j*24:j*24+24])
		}
	}
	for ; c < dv; c += 8 {
		attnOut4x1(&acc[0], &logit[0], S, rp, S, c)
		for j := 0; j < nh; j++ {
			copy(out[(h0+j)*d+c:(h0+j)*d+c+8], acc[j*8:j*8+8])
		}
	}
	for ; c < d; c++ {
		for j := 0; j < nh; j++ {
			var v float32
			for i, r := range rows {
				v += logit[j*S+i] * r[c]
			}
			out[(h0+j)*d+c] = v
		}
	}
}

// expf is e^x in float32 to about 2 ulp: with d=512 there is one exponential
// per 1024 multiply-adds, so math.Exp (float64) would cost as much as the
// products themselves.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72:
		return float32(math.Inf(1))
	case x < -87.33:
		return 0
	}
	// x = n·ln2 + r, |r| ≤ ln2/2; ln2 split in two for an exact n·ln2hi.
	t := x * 1.44269504
	n := float32(int32(t + 0.5))
	if t < -0.5 {
		n = float32(int32(t - 0.5))
	}
	r := x - n*0.693359375 + n*2.12194440e-4
	p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
