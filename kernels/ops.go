package kernels

import "math"

// Backend runs the heavy operations of a forward pass. Implementations must
// give results that do not depend on how many threads they use.
type Backend interface {
	// MatMul computes dst[i*w.Rows+r] = Σ_c W[r,c]·x[i*w.Cols+c] for the n
	// input rows of x, accumulating in float32.
	MatMul(dst []float32, w *Matrix, x []float32, n int)
	// Attend computes sparse attention with a sink for heads query heads of
	// width d that share one set of key=value rows (see AttendRef).
	Attend(out, q []float32, heads, d int, rows [][]float32, sinks []float32, scale float32)
	// Name says which implementation this is, for logs and benchmarks.
	Name() string
}

// MatMulOp is one product of a batch: Dst = W·X for N input rows, as
// Backend.MatMul(Dst, W, X, N).
type MatMulOp struct {
	Dst []float32
	W   *Matrix
	X   []float32
	N   int
}

// BatchBackend is a Backend that can run several independent products as
// one operation. On the CPU that saves a synchronisation of the worker pool
// per product, which matters for the many short products of a decode step
// (a token's experts).
type BatchBackend interface {
	Backend
	// MatMulBatch runs every op; the results equal op-by-op MatMul bit for
	// bit. No op's Dst may overlap another op's Dst or X.
	MatMulBatch(ops []MatMulOp)
}

// MatMulAll runs ops on be: in one batch when be is a BatchBackend,
// otherwise one MatMul after another.
func MatMulAll(be Backend, ops []MatMulOp) {
	if bb, ok := be.(BatchBackend); ok {
		bb.MatMulBatch(ops)
		return
	}
	for _, op := range ops {
		be.MatMul(op.Dst, op.W, op.X, op.N)
	}
}

// MatMulRef is the plain definition of Backend.MatMul.
func MatMulRef(dst []float32, w *Matrix, x []float32, n int) {
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.RowF32(row, r)
		for i := 0; i < n; i++ {
			xi := x[i*w.Cols : (i+1)*w.Cols]
			var acc float32
			for c, v := range row {
				acc += v * xi[c]
			}
			dst[i*w.Rows+r] = acc
		}
	}
}

// AttendRef is the plain definition of Backend.Attend. For head h with query
// q_h, logits are ℓ_s = scale·⟨q_h, row_s⟩; the sink adds exp(sink_h − M) to
// the denominator with a zero value, and is left out of the running max M.
// With no rows the output is zero.
func AttendRef(out, q []float32, heads, d int, rows [][]float32, sinks []float32, scale float32) {
	logits := make([]float32, len(rows))
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		oh := out[h*d : (h+1)*d]
		clear(oh)
		if len(rows) == 0 {
			continue
		}
		m := float32(math.Inf(-1))
		for s, r := range rows {
			logits[s] = scale * Dot(qh, r[:d])
			m = max(m, logits[s])
		}
		z := float32(math.Exp(float64(sinks[h] - m)))
		for s := range rows {
			logits[s] = float32(math.Exp(float64(logits[s] - m)))
			z += logits[s]
		}
		for s, r := range rows {
			Axpy(oh, logits[s]/z, r[:d])
		}
	}
}

// Dot returns Σ a[i]·b[i] (len(b) ≥ len(a)). The summation order is fixed
// for a given length, but differs from a plain left-to-right loop.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a)
	if !useSIMD || n < 8 {
		return dotGo(a, b)
	}
	v := n &^ 7
	s := dotAVX2(&a[0], &b[0], v)
	for i := v; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// Axpy adds a·x to y (len(y) ≥ len(x)).
func Axpy(y []float32, a float32, x []float32) {
	y = y[:len(x)]
	i := 0
	if useSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		axpyAVX2(&y[0], &x[0], a, i)
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// RMSNorm writes x·w/sqrt(mean(x²)+eps) into dst; w may be nil (unweighted).
// The mean is accumulated in float64 so the result does not depend on length.
func RMSNorm(dst, x, w []float32, eps float32) {
	var ss float64
	i := 0
	if useSIMD && len(x) >= 8 {
		i = len(x) &^ 7
		ss = sumSqAVX2(&x[0], i)
	}
	for _, v := range x[i:] {
		ss += float64(v) * float64(v)
	}
	r := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	if w == nil {
		for i, v := range x {
			dst[i] = v * r
		}
		return
	}
	for i, v := range x {
		dst[i] = v * r * w[i]
	}
}

// RotatePairs applies rotary embedding to adjacent pairs (x[2i], x[2i+1]) of
// x with the given cos and sin (one per pair). inverse rotates by −θ.
func RotatePairs(x, cos, sin []float32, inverse bool) {
	for i := range cos {
		c, s := cos[i], sin[i]
		if inverse {
			s = -s
		}
		a, b := x[2*i], x[2*i+1]
		x[2*i] = a*c - b*s
		x[2*i+1] = a*s + b*c
	}
}

// SiLU returns x·sigmoid(x).
func SiLU(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// Sigmoid returns 1/(1+e^−x).
func Sigmoid(x float32) float32 { return 1 / (1 + float32(math.Exp(float64(-x)))) }

// Softplus follows PyTorch: x itself above 20, log1p(e^x) otherwise.
func Softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(math.Exp(float64(x))))
}

// SwiGLUClamped computes silu(min(g, limit))·clamp(u, −limit, limit) into dst;
// limit ≤ 0 disables the clamps.
func SwiGLUClamped(dst, gate, up []float32, limit float32) {
	for i := range dst {
		g, u := gate[i], up[i]
		if limit > 0 {
			g = min(g, limit)
			u = min(max(u, -limit), limit)
		}
		dst[i] = SiLU(g) * u
	}
}

// Hadamard applies the orthonormal Sylvester Hadamard transform x·H/sqrt(n)
// in place; len(x) must be a power of two.
func Hadamard(x []float32) {
	n := len(x)
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	s := float32(1 / math.Sqrt(float64(n)))
	for i := range x {
		x[i] *= s
	}
}
