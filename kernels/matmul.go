package kernels

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"
)

// Tiling of the SIMD products. A tile is 4 weight rows × tileK columns
// decoded to float32 (4 KiB, stays in L1); it is reused for up to batchN
// input rows before the next tile is decoded, so each weight is decoded once
// per batchN inputs. Accumulators are kept lane-wise (8 lanes) across tiles
// and reduced once per output, so an output's summation order depends only on
// its column count: never on the thread count or on which tile or batch
// position it fell in.
const (
	tileK  = 256 // multiple of 32 (FP4 group) and of 8 (vector width)
	batchN = 48  // multiple of 3 (the gemm4x3 kernel)
)

type scratch struct {
	tile [4 * tileK]float32
	acc  [batchN * 32]float32
	tail [batchN * 4]float32
	row  []float32 // portable path: one dequantized row
	sc   []float32 // attention logits
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// hsum8 reduces 8 lanes in the same order as the assembly's HSUM0.
func hsum8(a []float32) float32 {
	_ = a[7]
	v0, v1, v2, v3 := a[0]+a[4], a[1]+a[5], a[2]+a[6], a[3]+a[7]
	v0, v1 = v0+v2, v1+v3
	return v0 + v1
}

// simdOK says whether the SIMD drivers handle this matrix; other shapes
// (and F16) take the portable path.
func simdOK(w *Matrix) bool {
	if !useSIMD {
		return false
	}
	switch w.Format {
	case F32, BF16:
		return true
	case FP8:
		return w.Block%8 == 0 && w.Cols%8 == 0
	case FP4:
		return w.Cols%FP4Group == 0
	}
	return false
}

func f32ptr(x []float32, i int) *float32 { return &x[i] }

// matMul is the driver behind CPU.MatMul.
func matMul(p *Pool, dst []float32, w *Matrix, x []float32, n int) {
	var buf inputBuffers
	if rows, grain, run := planMatMul(p.Threads(), dst, w, x, n, &buf); rows > 0 {
		p.For(rows, grain, run)
	}
	buf.release()
}

// inputBuffers holds what a plan borrowed for its run (FP4's permuted
// inputs) until the run is over, then returns it to xpPool: products are
// called tens of times per token, and a fresh 16 KiB buffer each time cost
// its allocation, its clearing and the collections they caused.
type inputBuffers []*[]float32

var xpPool = sync.Pool{New: func() any { return new([]float32) }}

// get returns a buffer of n floats, borrowed until release.
func (b *inputBuffers) get(n int) []float32 {
	p := xpPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*b = append(*b, p)
	return (*p)[:n]
}

func (b *inputBuffers) release() {
	for _, p := range *b {
		xpPool.Put(p)
	}
	*b = (*b)[:0]
}

// matMulBatch is the driver behind CPU.MatMulBatch: every product's row
// chunks, exactly those matMul would make, go into one parallel region, so
// the products share one hand-out and one wait instead of one each.
func matMulBatch(p *Pool, ops []MatMulOp) {
	type chunk struct {
		run    func(lo, hi int)
		lo, hi int
	}
	var chunks []chunk
	var buf inputBuffers
	defer buf.release()
	for _, op := range ops {
		rows, grain, run := planMatMul(p.Threads(), op.Dst, op.W, op.X, op.N, &buf)
		for lo := 0; lo < rows; lo += grain {
			chunks = append(chunks, chunk{run, lo, min(lo+grain, rows)})
		}
	}
	p.For(len(chunks), 1, func(lo, hi int) {
		for _, c := range chunks[lo:hi] {
			c.run(c.lo, c.hi)
		}
	})
}

// planMatMul checks a product and returns how to run it: rows to split
// into chunks of grain rows, each computed by run. rows is 0 when there is
// nothing left to do (empty shapes are handled here). Buffers the run
// needs are borrowed into buf, which the caller releases after the run.
func planMatMul(threads int, dst []float32, w *Matrix, x []float32, n int, buf *inputBuffers) (rows, grain int, run func(lo, hi int)) {
	// The assembly reads without bounds checks, so an inconsistent matrix
	// must stop here (a programmer error: load-time Validate catches it).
	if err := w.Validate(); err != nil {
		panic("kernels: MatMul: " + err.Error())
	}
	if w.Rows == 0 || n <= 0 {
		return 0, 0, nil
	}
	_ = dst[n*w.Rows-1]
	if w.Cols == 0 {
		clear(dst[:n*w.Rows])
		return 0, 0, nil
	}
	_ = x[n*w.Cols-1]
	grain = grainFor(w.Rows, threads, 4)
	if !simdOK(w) {
		switch {
		case n == 1 && w.Format == FP8:
			return w.Rows, grain, func(lo, hi int) { gemvFP8Go(dst, w, x, lo, hi) }
		case n == 1 && w.Format == FP4:
			return w.Rows, grain, func(lo, hi int) { gemvFP4Go(dst, w, x, lo, hi) }
		default:
			return w.Rows, grain, func(lo, hi int) { matMulPortable(dst, w, x, n, lo, hi) }
		}
	}
	if n == 1 {
		switch w.Format {
		case FP8:
			amax := blockAbsMax(x[:w.Cols], w.Block)
			return w.Rows, grainFor(w.Rows, threads, 8), func(lo, hi int) { gemvFP8(dst, w, x, amax, lo, hi) }
		case FP4:
			if useAVX512 {
				xp := buf.get(w.Cols)
				permuteFP4Into512(xp, x[:w.Cols])
				return w.Rows, grain, func(lo, hi int) { gemvFP4AVX512(dst, w, xp, lo, hi) }
			}
			xp := buf.get(fp4PermutedLen(w.Cols))
			permuteFP4Into(xp, x[:w.Cols])
			return w.Rows, grain, func(lo, hi int) { gemvFP4(dst, w, xp, lo, hi) }
		}
	}
	return w.Rows, grain, func(lo, hi int) { gemmTiles(dst, w, x, n, lo, hi) }
}

// gemmTiles computes rows [lo,hi) (lo a multiple of 4) for all n inputs.
func gemmTiles(dst []float32, w *Matrix, x []float32, n, lo, hi int) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	K := w.Cols
	kv := K &^ 7
	for r0 := lo; r0 < hi; r0 += 4 {
		nr := min(4, hi-r0)
		for i0 := 0; i0 < n; i0 += batchN {
			ni := min(batchN, n-i0)
			acc := s.acc[:ni*32]
			clear(acc)
			direct := nr == 4 && (w.Format == F32 || (w.Format == BF16 && ni == 1))
			if direct {
				// No decode: the kernels read the rows where they lie.
				switch w.Format {
				case F32:
					// Column chunks keep the 4 weight rows and each input
					// triple's slice of x in L1 while they are reused.
					for k0 := 0; k0 < kv; k0 += tileK {
						p := unsafe.Pointer(&w.Data[(r0*K+k0)*4])
						runTile(p, K, x, K, i0, ni, k0, min(tileK, kv-k0), acc)
					}
				case BF16:
					gemvBF16x4(unsafe.Pointer(&w.Data[r0*K*2]), K, f32ptr(x, i0*K), &acc[0], kv)
				}
			} else {
				for k0 := 0; k0 < kv; k0 += tileK {
					kc := min(tileK, kv-k0)
					decodeTile(&s.tile, w, r0, nr, k0, kc)
					runTile(unsafe.Pointer(&s.tile[0]), tileK, x, K, i0, ni, k0, kc, acc)
				}
			}
			for i := 0; i < ni; i++ {
				xi := x[(i0+i)*K : (i0+i+1)*K]
				for j := 0; j < nr; j++ {
					v := hsum8(acc[(i*4+j)*8:])
					for c := kv; c < K; c++ {
						v += w.At(r0+j, c) * xi[c]
					}
					dst[(i0+i)*w.Rows+r0+j] = v
				}
			}
		}
	}
}

// runTile accumulates a 4-row tile (row stride ldw, columns k0..k0+kc of the
// matrix) against inputs i0..i0+ni.
//
// On AVX-512, eight inputs at a time go through gemm4x8x512 first; it
// gives the same bits as the AVX2 kernels, so the choice changes no result.
func runTile(p unsafe.Pointer, ldw int, x []float32, K, i0, ni, k0, kc int, acc []float32) {
	i := 0
	if useAVX512 {
		for ; i+8 <= ni; i += 8 {
			gemm4x8x512(p, ldw, &x[(i0+i)*K+k0], K, &acc[i*32], kc)
		}
	}
	for ; i+3 <= ni; i += 3 {
		b := (i0+i)*K + k0
		gemm4x3(p, ldw, &x[b], &x[b+K], &x[b+2*K], &acc[i*32], kc)
	}
	for ; i < ni; i++ {
		gemm4x1(p, ldw, &x[(i0+i)*K+k0], &acc[i*32], kc)
	}
}

// decodeTile writes rows r0..r0+nr, columns k0..k0+kc (kc a multiple of 8)
// of w as float32 into tile (row stride tileK); rows nr..3 are zeroed.
func decodeTile(tile *[4 * tileK]float32, w *Matrix, r0, nr, k0, kc int) {
	K := w.Cols
	for j := 0; j < 4; j++ {
		t := tile[j*tileK : j*tileK+kc]
		if j >= nr {
			clear(t)
			continue
		}
		r := r0 + j
		off := r*K + k0
		switch w.Format {
		case F32:
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&t[0])), kc*4), w.Data[off*4:])
		case BF16:
			decodeBF16(&t[0], unsafe.Pointer(&w.Data[off*2]), kc)
		case FP8:
			nb := ceilDiv(K, w.Block)
			for c := k0; c < k0+kc; {
				e := min((c/w.Block+1)*w.Block, k0+kc)
				sc := E8M0ToF32(w.Scales[(r/w.Block)*nb+c/w.Block]) * 256
				decodeFP8(&t[c-k0], unsafe.Pointer(&w.Data[r*K+c]), e-c, sc)
				c = e
			}
		case FP4:
			decodeFP4(&t[0], unsafe.Pointer(&w.Data[off/2]), unsafe.Pointer(&w.Scales[off/FP4Group]), kc/FP4Group)
		}
	}
}

// gemvFP8 computes rows [lo,hi) (lo a multiple of 8) of an FP8 product with
// one input. All rows of a block row share their column-block scales, so
// they are folded into a scaled copy of x (by powers of two: exact) once per
// block row, and eight rows at a time are plain dot products with it. Each
// product e4m3·2^-8 × x·s·2^8 equals the tiled path's (e4m3·s) × x exactly,
// and the accumulation order is the same, so n=1 and n>1 agree bit for bit.
//
// amax holds max |x| per column block (blockAbsMax), computed once per
// product rather than once per chunk of rows.
func gemvFP8(dst []float32, w *Matrix, x, amax []float32, lo, hi int) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	K, B := w.Cols, w.Block
	nb := ceilDiv(K, B)
	s.row = grow(s.row, K)
	xs := s.row
	rb, intPath := -1, false
	for r0 := lo; r0 < hi; r0 += 8 {
		if hi-r0 < 8 {
			gemmTiles(dst, w, x, 1, r0, hi) // same bits, 4 rows at a time
			return
		}
		// Blocks are multiples of 8 rows and r0 is a multiple of 8, so
		// rows r0..r0+7 share a block row.
		if r0/B != rb {
			rb = r0 / B
			// The integer widening (gemvFP8x8i) needs x·s·2^120 finite:
			// |x·s| < 2^7 over every block (and s not tiny, so that the
			// half-precision path's x·s·2^8 would be exact too and both
			// give the same bits). Otherwise this block row takes the
			// VCVTPH2PS kernel.
			intPath = true
			for b := range nb {
				e := w.Scales[rb*nb+b]
				if !(e >= 27 && amax[b]*E8M0ToF32(e) < 128) {
					intPath = false
				}
			}
			bias := float32(256) // undoes the half-precision bias 2^-8
			if intPath {
				bias = 0x1p120 // undoes the float32 subnormal bias 2^-120
			}
			for b := range nb {
				sc := E8M0ToF32(w.Scales[rb*nb+b]) * bias
				c := b * B // K and B are multiples of 8 here
				scaleAVX2(&xs[c], &x[c], sc, min(B, K-c))
			}
		}
		acc := s.acc[:64]
		clear(acc)
		if intPath {
			gemvFP8x8i(unsafe.Pointer(&w.Data[r0*K]), K, &xs[0], &acc[0], K)
		} else {
			gemvFP8x8(unsafe.Pointer(&w.Data[r0*K]), K, &xs[0], &acc[0], K)
		}
		for j := 0; j < 8; j++ {
			dst[r0+j] = hsum8(acc[j*8:])
		}
	}
}

// blockAbsMax returns max |v| over each block of b consecutive values of x
// (the last block may be short): +Inf if a block holds an infinity, NaN if
// it holds a NaN. Absolute values compare as their bit patterns, so the
// loop has no float branches.
//
// The multiple-of-8 part of each block runs in AVX2 (absMaxBitsAVX2): the
// Go loop took ~5 µs for 4096 values, serial time before every FP8 product.
func blockAbsMax(x []float32, b int) []float32 {
	out := make([]float32, ceilDiv(len(x), b))
	for i := range out {
		xs := x[i*b : min((i+1)*b, len(x))]
		m, j := uint32(0), 0
		if useSIMD && len(xs) >= 8 {
			j = len(xs) &^ 7
			m = absMaxBitsAVX2(&xs[0], j)
		}
		for _, v := range xs[j:] {
			m = max(m, math.Float32bits(v)&0x7fffffff)
		}
		out[i] = math.Float32frombits(m) // any NaN pattern above +Inf is a NaN
	}
	return out
}

// fp4Unbias is 2^-25, removing the factor gemvFP4Row's integer widening
// leaves in its result.
const fp4Unbias = 1.0 / (1 << 25)

// e8m0Bits is the FP4 row kernel's scale table: the float32 with bits b<<23
// for each scale byte b (2^(b-127); byte 0 gives 0 and 255 gives +Inf, as the
// former in-register construction did).
var e8m0Bits = func() (t [256]float32) {
	for b := range t {
		t[b] = math.Float32frombits(uint32(b) << 23)
	}
	return
}()

// gemvFP4 computes rows [lo,hi) of an FP4 product with one (permuted) input.
func gemvFP4(dst []float32, w *Matrix, xp []float32, lo, hi int) {
	K := w.Cols
	g := K / FP4Group
	for r := lo; r < hi; r++ {
		v := gemvFP4Row(unsafe.Pointer(&w.Data[r*K/2]), &xp[0], unsafe.Pointer(&w.Scales[r*g]), g, &e8m0Bits[0])
		dst[r] = v * fp4Unbias
	}
}

// gemvFP4AVX512 is gemvFP4 on AVX-512 (gemvFP4Row512), with x permuted by
// permuteFP4Into512.
func gemvFP4AVX512(dst []float32, w *Matrix, xp []float32, lo, hi int) {
	K := w.Cols
	g := K / FP4Group
	for r := lo; r < hi; r++ {
		dst[r] = gemvFP4Row512(unsafe.Pointer(&w.Data[r*K/2]), &xp[0], unsafe.Pointer(&w.Scales[r*g]), g, &e8m0Bits[0], &fp4Table[0])
	}
}

// permuteFP4Into512 reorders x (len a multiple of 32) into xp (same len)
// for gemvFP4Row512: per group of 32, the 16 even columns (the bytes' low
// nibbles) and then the 16 odd ones (the high nibbles).
func permuteFP4Into512(xp, x []float32) {
	for g := 0; g+FP4Group <= len(x); g += FP4Group {
		src := (*[FP4Group]float32)(x[g:])
		dst := (*[FP4Group]float32)(xp[g:])
		for j := range FP4Group / 2 {
			dst[j] = src[2*j]
			dst[FP4Group/2+j] = src[2*j+1]
		}
	}
}

// fp4PermutedLen is the length of permuteFP4Into's result for n inputs.
func fp4PermutedLen(n int) int { return (n/FP4Group + 1) / 2 * 64 }

// fp4Perm[j] is the input (within a pair of groups) that permuteFP4Into
// puts at position j.
var fp4Perm = func() (t [64]uint8) {
	for m := 0; m < 4; m++ {
		for h := 0; h < 2; h++ {
			for d := 0; d < 4; d++ {
				v := (2*m + h) * 8
				t[v+d] = uint8(8*m + 2*d + h)
				t[v+4+d] = uint8(32 + 8*m + 2*d + h)
			}
		}
	}
	return
}()

// permuteFP4Into reorders x (len a multiple of 32) into xp (len
// fp4PermutedLen) in the order in which gemvFP4Row produces weights. Per
// pair of groups (64 inputs; a lone last group is paired with zeros),
// vector 2m+h holds inputs 8m+2d+h of the first group in lanes d=0..3 and
// of the second group in lanes 4..7. Whole pairs go through the index
// table with fixed-size arrays (no bounds checks): the former loop with a
// test per element took ~10 µs for 4096 inputs, as long as the product of
// a 4096×64 matrix.
func permuteFP4Into(xp, x []float32) {
	p := 0
	for ; (p+1)*64 <= len(x); p++ {
		src := (*[64]float32)(x[p*64:])
		dst := (*[64]float32)(xp[p*64:])
		for j, i := range &fp4Perm {
			dst[j] = src[i&63]
		}
	}
	if p*64 < len(x) { // a lone last group: its pair's second half is zero
		dst := (*[64]float32)(xp[p*64:])
		for j, i := range &fp4Perm {
			if k := p*64 + int(i); k < len(x) {
				dst[j] = x[k]
			} else {
				dst[j] = 0
			}
		}
	}
}

// matMulPortable computes rows [lo,hi) in plain Go: each row is dequantized
// into a row buffer (never the whole matrix) and dotted with every input.
func matMulPortable(dst []float32, w *Matrix, x []float32, n, lo, hi int) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	K := w.Cols
	s.row = grow(s.row, K)
	row := s.row
	for r := lo; r < hi; r++ {
		decodeRowGo(row, w, r)
		for i := 0; i < n; i++ {
			dst[i*w.Rows+r] = dotGo(row, x[i*K:(i+1)*K])
		}
	}
}

// gemvFP8Go is the portable FP8 GEMV: like gemvFP8, the block scales are
// folded into a copy of x once per block row, and each row is a dot product
// of table-decoded bytes with it (no row buffer).
func gemvFP8Go(dst []float32, w *Matrix, x []float32, lo, hi int) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	K, B := w.Cols, w.Block
	nb := ceilDiv(K, B)
	s.row = grow(s.row, K)
	xs := s.row
	rb := -1
	for r := lo; r < hi; r++ {
		if r/B != rb {
			rb = r / B
			for b := range nb {
				sc := E8M0ToF32(w.Scales[rb*nb+b])
				for c := b * B; c < min((b+1)*B, K); c++ {
					xs[c] = x[c] * sc
				}
			}
		}
		d := w.Data[r*K : (r+1)*K]
		var s0, s1, s2, s3 float32
		c := 0
		for ; c+4 <= K; c += 4 {
			s0 += e4m3Table[d[c]] * xs[c]
			s1 += e4m3Table[d[c+1]] * xs[c+1]
			s2 += e4m3Table[d[c+2]] * xs[c+2]
			s3 += e4m3Table[d[c+3]] * xs[c+3]
		}
		for ; c < K; c++ {
			s0 += e4m3Table[d[c]] * xs[c]
		}
		dst[r] = (s0 + s2) + (s1 + s3)
	}
}

// gemvFP4Go is the portable FP4 GEMV: per group of 32, the unscaled sum of
// table-decoded nibbles times x, then times the group scale.
func gemvFP4Go(dst []float32, w *Matrix, x []float32, lo, hi int) {
	K := w.Cols
	g := K / FP4Group
	for r := lo; r < hi; r++ {
		d := w.Data[r*K/2 : (r+1)*K/2]
		sc := w.Scales[r*g : (r+1)*g]
		var acc float32
		for k := range g {
			b := d[k*16 : k*16+16]
			xg := x[k*32 : k*32+32]
			var s0, s1 float32
			for j := range 16 {
				s0 += fp4Table[b[j]&15] * xg[2*j]
				s1 += fp4Table[b[j]>>4] * xg[2*j+1]
			}
			acc += (s0 + s1) * E8M0ToF32(sc[k])
		}
		dst[r] = acc
	}
}

// decodeRowGo dequantizes row r of w into dst (len Cols) with table lookups.
func decodeRowGo(dst []float32, w *Matrix, r int) {
	K := w.Cols
	switch w.Format {
	case F32:
		d := w.Data[r*K*4 : (r+1)*K*4]
		for c := range dst {
			dst[c] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*c:]))
		}
	case BF16:
		d := w.Data[r*K*2 : (r+1)*K*2]
		for c := range dst {
			dst[c] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*c:])) << 16)
		}
	case F16:
		d := w.Data[r*K*2 : (r+1)*K*2]
		for c := range dst {
			dst[c] = F16ToF32(binary.LittleEndian.Uint16(d[2*c:]))
		}
	case FP8:
		d := w.Data[r*K : (r+1)*K]
		nb := ceilDiv(K, w.Block)
		sc := w.Scales[(r/w.Block)*nb:]
		for c0 := 0; c0 < K; c0 += w.Block {
			s := E8M0ToF32(sc[c0/w.Block])
			for c := c0; c < min(c0+w.Block, K); c++ {
				dst[c] = e4m3Table[d[c]] * s
			}
		}
	case FP4:
		d := w.Data[r*K/2 : (r+1)*K/2]
		sc := w.Scales[r*K/FP4Group:]
		for c := 0; c < K; c += 2 {
			s := E8M0ToF32(sc[c/FP4Group])
			b := d[c/2]
			dst[c] = fp4Table[b&15] * s
			dst[c+1] = fp4Table[b>>4] * s
		}
	default:
		w.RowF32(dst, r)
	}
}

// dotGo is the portable dot product: four interleaved partial sums so the
// loop is not bound by add latency.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s2) + (s1 + s3)
}
