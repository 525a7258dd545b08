package cuda

import (
	"fmt"
	"sort"
	"unsafe"

	"github.com/edgeseek/edgeseek/kernels"
)

// gemvMaxN is the largest input-row count that takes the GEMV kernels; more
// rows go through the tiled GEMM.
const gemvMaxN = 8

var gemvKernel = map[kernels.Format]string{
	kernels.F32: "gemv_f32", kernels.BF16: "gemv_bf16", kernels.F16: "gemv_f16",
	kernels.FP8: "gemv_fp8", kernels.FP4: "gemv_fp4",
}

// MatMul implements kernels.Backend. On a device error it records the sticky
// error (Err) and fills dst with NaN.
func (b *Backend) MatMul(dst []float32, w *kernels.Matrix, x []float32, n int) {
	if err := b.MatMulErr(dst, w, x, n); err != nil {
		b.fail(err)
		fillNaN(dst[:min(len(dst), n*w.Rows)])
	}
}

// MatMulErr is MatMul with an error result.
func (b *Backend) MatMulErr(dst []float32, w *kernels.Matrix, x []float32, n int) error {
	if n <= 0 || w.Rows == 0 {
		return nil
	}
	if len(x) < n*w.Cols || len(dst) < n*w.Rows {
		return fmt.Errorf("cuda: matmul %dx%d with n=%d: x has %d, dst %d elements", w.Rows, w.Cols, n, len(x), len(dst))
	}
	return b.do(func() error {
		X, err := b.upF32("mm.x", x[:n*w.Cols])
		if err != nil {
			return err
		}
		Y, err := b.tmp("mm.y", n*w.Rows)
		if err != nil {
			return err
		}
		if err := b.matmul(Y, w, X, n); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&dst[0]), Y, n*w.Rows)
	})
}

// MatMulDev enqueues y = W·x for n rows of x, all on the device. w is
// uploaded on first use (not allowed while capturing a graph).
func (b *Backend) MatMulDev(y *Buffer, w *kernels.Matrix, x *Buffer, n int) error {
	if n <= 0 || w.Rows == 0 {
		return nil
	}
	if x.n < n*w.Cols || y.n < n*w.Rows {
		return fmt.Errorf("cuda: matmul %dx%d with n=%d: buffers of %d and %d", w.Rows, w.Cols, n, x.n, y.n)
	}
	return b.do(func() error { return b.matmul(y, w, x, n) })
}

func (b *Backend) matmul(y *Buffer, w *kernels.Matrix, x *Buffer, n int) error {
	m, err := b.resident(w)
	if err != nil {
		return err
	}
	block := w.Block
	if w.Format != kernels.FP8 {
		block = 1
	}
	if n <= gemvMaxN {
		name, ok := gemvKernel[w.Format]
		if !ok {
			return fmt.Errorf("cuda: matmul: unknown format %v", w.Format)
		}
		a := newArgs().buf(y).ptr(m.data).ptr(m.scales).buf(x).i32(w.Rows).i32(w.Cols).i32(block).i32(n)
		return b.launch(name, grid(cdiv(w.Rows, 8), cdiv(n, 4)), 256, 0, a)
	}
	a := newArgs().buf(y).ptr(m.data).ptr(m.scales).buf(x).i32(int(w.Format)).i32(w.Rows).i32(w.Cols).i32(block).i32(n)
	if b.tc && (w.Format == kernels.BF16 || w.Format == kernels.FP8 || w.Format == kernels.FP4) {
		return b.launch("gemm_bf16_mma", grid(cdiv(w.Rows, 64), cdiv(n, 32)), 128, 0, a)
	}
	return b.launch("gemm_tiled", grid(cdiv(w.Rows, 64), cdiv(n, 64)), 256, 0, a)
}

// Attend implements kernels.Backend (decode: one query per head over shared
// key=value rows). On a device error it records the sticky error and fills
// out with NaN.
func (b *Backend) Attend(out, q []float32, heads, d int, rows [][]float32, sinks []float32, scale float32) {
	if err := b.AttendErr(out, q, heads, d, rows, sinks, scale); err != nil {
		b.fail(err)
		fillNaN(out[:min(len(out), heads*d)])
	}
}

// AttendErr is Attend with an error result.
func (b *Backend) AttendErr(out, q []float32, heads, d int, rows [][]float32, sinks []float32, scale float32) error {
	if heads <= 0 {
		return nil
	}
	if len(rows) == 0 {
		clear(out[:heads*d])
		return nil
	}
	S := len(rows)
	return b.do(func() error {
		b.rowsBuf = grow(b.rowsBuf, S*d)
		for s, r := range rows {
			copy(b.rowsBuf[s*d:(s+1)*d], r[:d])
		}
		R, err := b.upF32("at.rows", b.rowsBuf[:S*d])
		if err != nil {
			return err
		}
		Q, err := b.upF32("at.q", q[:heads*d])
		if err != nil {
			return err
		}
		K, err := b.upF32("at.sinks", sinks[:heads])
		if err != nil {
			return err
		}
		O, err := b.tmp("at.out", heads*d)
		if err != nil {
			return err
		}
		if err := b.attend(O, Q, R, nil, nil, 1, heads, d, S, d, K, scale); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&out[0]), O, heads*d)
	})
}

// AttendDev enqueues attention for T queries of heads heads (q, out: [T,
// heads, d]). Query t attends to rows[idx[t·S+s]] (row stride ldr) for
// s < count[t]; idx nil means rows 0..S-1, count nil means all S. This is the
// prefill form; decode is T = 1.
func (b *Backend) AttendDev(out, q, rows, idx, count *Buffer, T, heads, d, S, ldr int, sinks *Buffer, scale float32) error {
	return b.do(func() error { return b.attend(out, q, rows, idx, count, T, heads, d, S, ldr, sinks, scale) })
}

func (b *Backend) attend(out, q, rows, idx, count *Buffer, T, heads, d, S, ldr int, sinks *Buffer, scale float32) error {
	L, err := b.tmp("at.logits", T*heads*max(S, 1))
	if err != nil {
		return err
	}
	a := newArgs().buf(out).buf(q).buf(rows).buf(idx).buf(count).i32(heads).i32(d).i32(S).i32(ldr).buf(sinks).f32(scale).buf(L)
	return b.launch("attend", grid(uint32(heads), uint32(T)), 256, 0, a)
}

// RMSNorm normalises each row of x (width len(w), or width when w is nil)
// into dst, as kernels.RMSNorm does per row. dst may be x.
func (b *Backend) RMSNorm(dst, x, w []float32, width int, eps float32) error {
	if width <= 0 || len(x) == 0 {
		return nil
	}
	rows := len(x) / width
	return b.do(func() error {
		X, err := b.upF32("rn.x", x[:rows*width])
		if err != nil {
			return err
		}
		var W *Buffer
		if w != nil {
			if W, err = b.upF32("rn.w", w[:width]); err != nil {
				return err
			}
		}
		if err := b.rmsnorm(X, X, W, rows, width, eps); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&dst[0]), X, rows*width)
	})
}

// RMSNormDev enqueues RMSNorm of rows rows of width into dst (may be x); w
// may be nil.
func (b *Backend) RMSNormDev(dst, x, w *Buffer, rows, width int, eps float32) error {
	if x.n < rows*width || dst.n < rows*width {
		return fmt.Errorf("cuda: rmsnorm of %dx%d: buffers of %d and %d", rows, width, x.n, dst.n)
	}
	return b.do(func() error { return b.rmsnorm(dst, x, w, rows, width, eps) })
}

func (b *Backend) rmsnorm(dst, x, w *Buffer, rows, width int, eps float32) error {
	if rows <= 0 {
		return nil
	}
	a := newArgs().buf(dst).buf(x).buf(w).i32(width).f32(eps)
	return b.launch("rmsnorm", grid(uint32(rows), 1), 256, 0, a)
}

// RoPE rotates, in place, the trailing dim channels (interleaved pairs) of
// every width-wide row of x by the angles p·theta[i] (model.RopeTable); row r
// is at position pos[r/rowsPerPos]. inverse rotates back.
func (b *Backend) RoPE(x []float32, width, dim int, theta []float64, rowsPerPos int, pos []int32, inverse bool) error {
	if width <= 0 || len(x) == 0 {
		return nil
	}
	rows := len(x) / width
	if dim > width || dim%2 != 0 || len(theta) < dim/2 || rowsPerPos <= 0 || len(pos) < (rows+rowsPerPos-1)/rowsPerPos {
		return fmt.Errorf("cuda: rope: width %d dim %d, %d angles, %d positions for %d rows", width, dim, len(theta), len(pos), rows)
	}
	return b.do(func() error {
		X, err := b.upF32("rp.x", x[:rows*width])
		if err != nil {
			return err
		}
		th, err := b.tmp("rp.theta", 2*len(theta))
		if err != nil {
			return err
		}
		if err := b.put(th, unsafe.Pointer(&theta[0]), 2*len(theta)); err != nil {
			return err
		}
		P, err := b.upI32("rp.pos", pos)
		if err != nil {
			return err
		}
		if err := b.rope(X, rows, width, dim, th, rowsPerPos, P, 0, inverse); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&x[0]), X, rows*width)
	})
}

// RoPEDev enqueues the rotation of rows rows of x in place. theta holds
// dim/2 float64 angles (2 elements each, see WriteFloat64); row r is at
// position pos[r/rowsPerPos], or pos0 + r/rowsPerPos when pos is nil — a
// captured graph should use pos, a device buffer written before each replay.
func (b *Backend) RoPEDev(x *Buffer, rows, width, dim int, theta *Buffer, rowsPerPos int, pos *Buffer, pos0 int, inverse bool) error {
	if x.n < rows*width || dim > width || dim%2 != 0 || rowsPerPos <= 0 || theta.n < dim {
		return fmt.Errorf("cuda: rope of %dx%d (dim %d): buffer of %d, %d angle words", rows, width, dim, x.n, theta.n)
	}
	return b.do(func() error { return b.rope(x, rows, width, dim, theta, rowsPerPos, pos, pos0, inverse) })
}

func (b *Backend) rope(x *Buffer, rows, width, dim int, theta *Buffer, rowsPerPos int, pos *Buffer, pos0 int, inverse bool) error {
	if rows <= 0 || dim == 0 {
		return nil
	}
	a := newArgs().buf(x).i32(rows).i32(width).i32(dim).buf(theta).i32(rowsPerPos).buf(pos).i32(pos0).i32(b2i(inverse))
	return b.launch("rope", grid1(rows*dim/2, 256), 256, 0, a)
}

// WriteFloat64 copies float64 values (e.g. rope angles) into p, two
// 4-byte elements each.
func (b *Backend) WriteFloat64(p *Buffer, src []float64) error {
	return b.do(func() error { return b.put(p, unsafe.Pointer(unsafe.SliceData(src)), 2*len(src)) })
}

// SwiGLU writes silu(min(g, L))·clamp(u, ±L) into dst (kernels.SwiGLUClamped),
// times rowScale[i/width] when rowScale is non-nil (routed expert weights).
func (b *Backend) SwiGLU(dst, gate, up []float32, limit float32, rowScale []float32, width int) error {
	n := len(dst)
	if n == 0 {
		return nil
	}
	if width <= 0 {
		width = n
	}
	return b.do(func() error {
		G, err := b.upF32("sw.g", gate[:n])
		if err != nil {
			return err
		}
		U, err := b.upF32("sw.u", up[:n])
		if err != nil {
			return err
		}
		var RS *Buffer
		if rowScale != nil {
			if RS, err = b.upF32("sw.s", rowScale); err != nil {
				return err
			}
		}
		if err := b.swiglu(G, G, U, n, limit, RS, width); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&dst[0]), G, n)
	})
}

// SwiGLUDev enqueues the clamped SwiGLU of n elements into dst (may alias
// gate or up); rowScale (nil: none) weights each width-wide row.
func (b *Backend) SwiGLUDev(dst, gate, up *Buffer, n int, limit float32, rowScale *Buffer, width int) error {
	if dst.n < n || gate.n < n || up.n < n {
		return fmt.Errorf("cuda: swiglu of %d: buffers of %d, %d, %d", n, dst.n, gate.n, up.n)
	}
	if width <= 0 {
		width = max(n, 1)
	}
	return b.do(func() error { return b.swiglu(dst, gate, up, n, limit, rowScale, width) })
}

func (b *Backend) swiglu(dst, gate, up *Buffer, n int, limit float32, rowScale *Buffer, width int) error {
	if n <= 0 {
		return nil
	}
	a := newArgs().buf(dst).buf(gate).buf(up).i64(int64(n)).f32(limit).buf(rowScale).i32(width)
	return b.launch("swiglu", grid1(n, 256), 256, 0, a)
}

// HCSite holds one manifold-constrained hyper-connection site (model.HCSite)
// for the fused kernel.
type HCSite struct {
	Fn          *kernels.Matrix // [(2+n)·n, n·D], float32
	Base, Scale []float32       // [(2+n)·n], [3]
	N, Iters    int
	HCEps, Eps  float32
}

// MixWidth is the number of coefficients per token: pre (n), post (n), comb (n·n).
func (s *HCSite) MixWidth() int { return (2 + s.N) * s.N }

// HCSiteRun runs one fused site for T tokens: when y is non-nil it first
// expands the previous site's output y ([T, D]) into the streams X ([T, n·D],
// updated in place) with that site's coefficients prevMix ([T, MixWidth]);
// then it computes this site's coefficients (mixing GEMV, rms, sigmoids, Sinkhorn)
// into mix and the collapsed sublayer input u ([T, D]).
func (b *Backend) HCSiteRun(s *HCSite, X []float32, T int, y, prevMix []float32) (u, mix []float32, err error) {
	n := s.N
	if n <= 0 || n > 6 || s.Fn.Format != kernels.F32 || s.Fn.Rows != s.MixWidth() || s.Fn.Cols%n != 0 {
		return nil, nil, fmt.Errorf("cuda: hc site: n=%d (1..6), fn %v %dx%d", n, s.Fn.Format, s.Fn.Rows, s.Fn.Cols)
	}
	D := s.Fn.Cols / n
	R := s.MixWidth()
	u = make([]float32, T*D)
	mix = make([]float32, T*R)
	err = b.do(func() error {
		m, err := b.resident(s.Fn)
		if err != nil {
			return err
		}
		X0, err := b.upF32("hc.x", X[:T*n*D])
		if err != nil {
			return err
		}
		var Y, PM *Buffer
		if y != nil {
			if Y, err = b.upF32("hc.y", y[:T*D]); err != nil {
				return err
			}
			if PM, err = b.upF32("hc.pm", prevMix[:T*R]); err != nil {
				return err
			}
		}
		Bs, err := b.upF32("hc.base", s.Base[:R])
		if err != nil {
			return err
		}
		Sc, err := b.upF32("hc.scale", s.Scale[:3])
		if err != nil {
			return err
		}
		U, err := b.tmp("hc.u", T*D)
		if err != nil {
			return err
		}
		M, err := b.tmp("hc.mix", T*R)
		if err != nil {
			return err
		}
		if err := b.hcSite(s, m, X0, T, Y, PM, Bs, Sc, U, M); err != nil {
			return err
		}
		if y != nil {
			if err := b.get(unsafe.Pointer(&X[0]), X0, T*n*D); err != nil {
				return err
			}
		}
		if err := b.get(unsafe.Pointer(&mix[0]), M, T*R); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&u[0]), U, T*D)
	})
	return u, mix, err
}

// HCSiteDev enqueues one fused site for T tokens on device buffers (see
// HCSiteRun): X [T, n·D] (expanded in place when y is non-nil, with prevMix),
// base [(2+n)·n], scale [3]; writes u [T, D] and mix [T, MixWidth]. s.Fn must
// be resident (Upload) before capture.
func (b *Backend) HCSiteDev(s *HCSite, X *Buffer, T int, y, prevMix, base, scale, u, mix *Buffer) error {
	n := s.N
	if n <= 0 || n > 6 || s.Fn.Format != kernels.F32 || s.Fn.Rows != s.MixWidth() || s.Fn.Cols%n != 0 {
		return fmt.Errorf("cuda: hc site: n=%d (1..6), fn %v %dx%d", n, s.Fn.Format, s.Fn.Rows, s.Fn.Cols)
	}
	if X.n < T*s.Fn.Cols || u.n < T*s.Fn.Cols/n || mix.n < T*s.MixWidth() {
		return fmt.Errorf("cuda: hc site: buffers too small for %d tokens", T)
	}
	return b.do(func() error {
		m, err := b.resident(s.Fn)
		if err != nil {
			return err
		}
		return b.hcSite(s, m, X, T, y, prevMix, base, scale, u, mix)
	})
}

func (b *Backend) hcSite(s *HCSite, m *devMatrix, X *Buffer, T int, y, prevMix, base, scale, u, mix *Buffer) error {
	if T <= 0 {
		return nil
	}
	D := s.Fn.Cols / s.N
	a := newArgs().buf(X).buf(y).buf(prevMix).ptr(m.data).buf(base).buf(scale).buf(u).buf(mix).
		i32(s.N).i32(D).i32(s.Iters).f32(s.HCEps).f32(s.Eps)
	return b.launch("mhc_site", grid(uint32(T), 1), 512, 0, a)
}

// CompressPool pools W windows of m tokens into out ([W, d]), as
// model.Compressor.Push does when a window closes. A and Z are [(W+1)·m, cd]
// (cd = 2d with overlap, d without; Z with ape already added); window 0 is
// the previous window, read only with overlap and (for entry 0) prevValid.
func (b *Backend) CompressPool(out, A, Z []float32, W, m, d int, overlap, prevValid bool) error {
	if W <= 0 {
		return nil
	}
	cd := d
	if overlap {
		cd = 2 * d
	}
	need := (W + 1) * m * cd
	if len(A) < need || len(Z) < need || len(out) < W*d {
		return fmt.Errorf("cuda: compress pool: need %d inputs and %d outputs", need, W*d)
	}
	return b.do(func() error {
		Ab, err := b.upF32("cp.a", A[:need])
		if err != nil {
			return err
		}
		Zb, err := b.upF32("cp.z", Z[:need])
		if err != nil {
			return err
		}
		O, err := b.tmp("cp.out", W*d)
		if err != nil {
			return err
		}
		if err := b.compressPool(O, Ab, Zb, W, m, d, overlap, prevValid); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&out[0]), O, W*d)
	})
}

// CompressPoolDev enqueues CompressPool on device buffers.
func (b *Backend) CompressPoolDev(out, A, Z *Buffer, W, m, d int, overlap, prevValid bool) error {
	cd := d
	if overlap {
		cd = 2 * d
	}
	if need := (W + 1) * m * cd; A.n < need || Z.n < need || out.n < W*d {
		return fmt.Errorf("cuda: compress pool: need %d inputs and %d outputs", need, W*d)
	}
	return b.do(func() error { return b.compressPool(out, A, Z, W, m, d, overlap, prevValid) })
}

func (b *Backend) compressPool(out, A, Z *Buffer, W, m, d int, overlap, prevValid bool) error {
	if W <= 0 {
		return nil
	}
	a := newArgs().buf(out).buf(A).buf(Z).i32(W).i32(m).i32(d).i32(b2i(overlap)).i32(b2i(prevValid))
	return b.launch("compress_pool", grid1(W*d, 256), 256, 0, a)
}

// IndexScores returns, for T queries, I[t,w] = Σ_h ω[t,h]·ReLU(⟨q[t,h], K_w⟩)·ds
// over the first count[t] of the S keys ([S, hd]) and −Inf after them (count
// nil: all S). q is [T, heads·hd], omega [T, heads].
func (b *Backend) IndexScores(q, omega, keys []float32, count []int32, T, S, heads, hd int, ds float32) ([]float32, error) {
	out := make([]float32, T*S)
	if T == 0 || S == 0 {
		return out, nil
	}
	err := b.do(func() error {
		Q, err := b.upF32("ix.q", q[:T*heads*hd])
		if err != nil {
			return err
		}
		Om, err := b.upF32("ix.om", omega[:T*heads])
		if err != nil {
			return err
		}
		K, err := b.upF32("ix.k", keys[:S*hd])
		if err != nil {
			return err
		}
		var C *Buffer
		if count != nil {
			if C, err = b.upI32("ix.cnt", count[:T]); err != nil {
				return err
			}
		}
		O, err := b.tmp("ix.out", T*S)
		if err != nil {
			return err
		}
		if err := b.indexScores(O, Q, Om, K, C, T, S, heads, hd, ds); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&out[0]), O, T*S)
	})
	return out, err
}

// IndexScoresDev enqueues IndexScores on device buffers (scores [T, S]).
func (b *Backend) IndexScoresDev(scores, q, omega, keys, count *Buffer, T, S, heads, hd int, ds float32) error {
	if scores.n < T*S || q.n < T*heads*hd || omega.n < T*heads || keys.n < S*hd {
		return fmt.Errorf("cuda: index scores T=%d S=%d: buffers too small", T, S)
	}
	return b.do(func() error { return b.indexScores(scores, q, omega, keys, count, T, S, heads, hd, ds) })
}

func (b *Backend) indexScores(scores, q, omega, keys, count *Buffer, T, S, heads, hd int, ds float32) error {
	if T <= 0 || S <= 0 {
		return nil
	}
	a := newArgs().buf(scores).buf(q).buf(omega).buf(keys).buf(count).i32(S).i32(heads).i32(hd).f32(ds)
	return b.launch("index_scores", grid(cdiv(S, 8), uint32(T)), 256, 0, a)
}

// TopK returns the indices of the k largest scores (ties: lower index
// first; −Inf never chosen), sorted by index — model.TopKIndices on the GPU
// (a bitonic sort of packed score/index keys).
func (b *Backend) TopK(scores []float32, k int) ([]int, error) {
	n := len(scores)
	if n == 0 || k <= 0 {
		return []int{}, nil
	}
	npad := 1
	for npad < n {
		npad *= 2
	}
	kk := min(k, n)
	res := make([]int32, kk)
	err := b.do(func() error {
		S, err := b.upF32("tk.s", scores)
		if err != nil {
			return err
		}
		Kb, err := b.tmp("tk.keys", 2*npad)
		if err != nil {
			return err
		}
		if err := b.launch("topk_keys", grid1(npad, 256), 256, 0, newArgs().buf(Kb).buf(S).i32(n).i32(npad)); err != nil {
			return err
		}
		for kk := 2; kk <= npad; kk *= 2 {
			for j := kk / 2; j > 0; j /= 2 {
				if err := b.launch("bitonic_step", grid1(npad, 256), 256, 0, newArgs().buf(Kb).i32(npad).i32(j).i32(kk)); err != nil {
					return err
				}
			}
		}
		O, err := b.tmp("tk.out", kk)
		if err != nil {
			return err
		}
		if err := b.launch("topk_collect", grid1(kk, 256), 256, 0, newArgs().buf(O).buf(Kb).i32(kk).i32(n)); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&res[0]), O, kk)
	})
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, kk)
	for _, v := range res {
		if v >= 0 {
			out = append(out, int(v))
		}
	}
	sort.Ints(out)
	return out, nil
}

// Router holds one MoE gate's selection parameters (model.MoE).
type Router struct {
	Bias    []float32 // [E] selection bias; nil with Tid2Eid
	Tid2Eid []int32   // [vocab, TopK] hash routing; nil for score routing
	TopK    int
	Scale   float32 // route scale
	Temp    float32 // gate temperature (1 if unset)
	Eps     float32
}

// Route turns gate logits ([T, E]) into each token's experts and weights
// ([T, TopK] each), as model.MoE.Route does after its gate product.
func (b *Backend) Route(r *Router, logits []float32, tokens []int32, T, E int) (experts []int32, weights []float32, err error) {
	k := r.TopK
	if k <= 0 || k > 64 || k > E {
		return nil, nil, fmt.Errorf("cuda: route: top-%d of %d experts (1..64)", k, E)
	}
	temp := r.Temp
	if temp == 0 {
		temp = 1
	}
	experts = make([]int32, T*k)
	weights = make([]float32, T*k)
	if T == 0 {
		return experts, weights, nil
	}
	err = b.do(func() error {
		L, err := b.upF32("mr.l", logits[:T*E])
		if err != nil {
			return err
		}
		var Bi, Tb, Tok *Buffer
		if r.Tid2Eid != nil {
			if Tb, err = b.table(r.Tid2Eid); err != nil {
				return err
			}
			if Tok, err = b.upI32("mr.tok", tokens[:T]); err != nil {
				return err
			}
		} else if Bi, err = b.upF32("mr.bias", r.Bias[:E]); err != nil {
			return err
		}
		Ex, err := b.tmp("mr.e", T*k)
		if err != nil {
			return err
		}
		Wt, err := b.tmp("mr.w", T*k)
		if err != nil {
			return err
		}
		a := newArgs().buf(Ex).buf(Wt).buf(L).buf(Bi).buf(Tb).buf(Tok).i32(E).i32(k).f32(temp).f32(r.Scale).f32(r.Eps)
		if err := b.launch("moe_route", grid(uint32(T), 1), 256, uint32(8*E), a); err != nil {
			return err
		}
		if err := b.get(unsafe.Pointer(&experts[0]), Ex, T*k); err != nil {
			return err
		}
		return b.get(unsafe.Pointer(&weights[0]), Wt, T*k)
	})
	return experts, weights, err
}

// table returns the resident copy of a constant int32 table (a hash
// router's tid2eid), uploading it on first use; keyed by its first element.
func (b *Backend) table(v []int32) (*Buffer, error) {
	k := tableKey{unsafe.SliceData(v), len(v)}
	if p := b.tables[k]; p != nil {
		return p, nil
	}
	p, err := b.alloc(len(v))
	if err != nil {
		return nil, err
	}
	if err := b.put(p, unsafe.Pointer(unsafe.SliceData(v)), len(v)); err != nil {
		b.d.memFree(p.ptr)
		return nil, err
	}
	b.tables[k] = p
	return p, nil
}

type tableKey struct {
	p *int32
	n int
}

// Graph is an instantiated CUDA graph: a captured sequence of *Dev
// operations that Launch replays with one call.
type Graph struct {
	b          *Backend
	graph, exe uintptr
}

// Capture records the device work enqueued by fn (which must use only *Dev
// methods on already-resident weights and existing buffers, and must not
// read results back) into a graph. Kernel arguments are frozen at capture:
// a replay reads and writes the same buffers, so per-step inputs (token,
// position) must live in device buffers written before Launch.
func (b *Backend) Capture(fn func() error) (*Graph, error) {
	if err := b.do(func() error {
		return b.d.check("cuStreamBeginCapture", b.d.beginCapture(b.stream, 2)) // CU_STREAM_CAPTURE_MODE_RELAXED
	}); err != nil {
		return nil, err
	}
	ferr := fn()
	g := &Graph{b: b}
	err := b.do(func() error {
		if err := b.d.check("cuStreamEndCapture", b.d.endCapture(b.stream, &g.graph)); err != nil {
			return err
		}
		if ferr != nil {
			return nil
		}
		return b.d.check("cuGraphInstantiate", b.d.graphInst(&g.exe, g.graph, 0))
	})
	if ferr != nil || err != nil {
		g.Destroy()
		if ferr != nil {
			return nil, fmt.Errorf("cuda: capture: %w", ferr)
		}
		return nil, err
	}
	return g, nil
}

// Launch enqueues one replay of the graph on the backend's stream.
func (g *Graph) Launch() error {
	return g.b.do(func() error { return g.b.d.check("cuGraphLaunch", g.b.d.graphLaunch(g.exe, g.b.stream)) })
}

// Destroy frees the graph.
func (g *Graph) Destroy() error {
	return g.b.do(func() error {
		var err error
		if g.exe != 0 {
			err = g.b.d.check("cuGraphExecDestroy", g.b.d.graphExecDelete(g.exe))
			g.exe = 0
		}
		if g.graph != 0 {
			if e := g.b.d.check("cuGraphDestroy", g.b.d.graphDelete(g.graph)); err == nil {
				err = e
			}
			g.graph = 0
		}
		return err
	})
}

// Timer measures device time between two points on the stream.
type Timer struct {
	b          *Backend
	start, end uintptr
}

// Close destroys the timer's events.
func (t *Timer) Close() error {
	return t.b.do(func() error {
		err := t.b.d.check("cuEventDestroy", t.b.d.eventDestroy(t.start))
		if e := t.b.d.check("cuEventDestroy", t.b.d.eventDestroy(t.end)); err == nil {
			err = e
		}
		return err
	})
}

// NewTimer creates a pair of events.
func (b *Backend) NewTimer() (*Timer, error) {
	t := &Timer{b: b}
	err := b.do(func() error {
		if err := b.d.check("cuEventCreate", b.d.eventCreate(&t.start, 0)); err != nil {
			return err
		}
		return b.d.check("cuEventCreate", b.d.eventCreate(&t.end, 0))
	})
	return t, err
}

// Start records the start event.
func (t *Timer) Start() error {
	return t.b.do(func() error { return t.b.d.check("cuEventRecord", t.b.d.eventRecord(t.start, t.b.stream)) })
}

// Stop records the end event, waits for it and returns the elapsed seconds.
func (t *Timer) Stop() (float64, error) {
	var ms float32
	err := t.b.do(func() error {
		if err := t.b.d.check("cuEventRecord", t.b.d.eventRecord(t.end, t.b.stream)); err != nil {
			return err
		}
		if err := t.b.d.check("cuEventSynchronize", t.b.d.eventSync(t.end)); err != nil {
			return err
		}
		return t.b.d.check("cuEventElapsedTime", t.b.d.eventElapsed(&ms, t.start, t.end))
	})
	return float64(ms) / 1e3, err
}

// CopyBandwidth measures device-to-device copy bandwidth in bytes/s (bytes
// read plus bytes written) with buffers of the given size.
func (b *Backend) CopyBandwidth(bytes int, reps int) (float64, error) {
	src, err := b.Alloc(bytes / 4)
	if err != nil {
		return 0, err
	}
	defer b.Free(src)
	dst, err := b.Alloc(bytes / 4)
	if err != nil {
		return 0, err
	}
	defer b.Free(dst)
	cp := func() error {
		return b.do(func() error {
			return b.d.check("cuMemcpyDtoDAsync", b.d.dtodAsync(dst.ptr, src.ptr, uint64(4*(bytes/4)), b.stream))
		})
	}
	if err := cp(); err != nil {
		return 0, err
	}
	if err := b.Sync(); err != nil {
		return 0, err
	}
	t, err := b.NewTimer()
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if err := t.Start(); err != nil {
		return 0, err
	}
	for i := 0; i < reps; i++ {
		if err := cp(); err != nil {
			return 0, err
		}
	}
	sec, err := t.Stop()
	if err != nil || sec <= 0 {
		return 0, err
	}
	return 2 * float64(bytes/4*4) * float64(reps) / sec, nil
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
