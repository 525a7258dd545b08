package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/x448/float16"
)

// paths runs f once per available implementation (portable, AVX2, and
// AVX-512 where the CPU has it), restoring the global choice afterwards.
func paths(t *testing.T, f func(t *testing.T)) {
	savedSIMD, saved512 := useSIMD, useAVX512
	defer func() { useSIMD, useAVX512 = savedSIMD, saved512 }()
	type impl struct {
		name         string
		simd, avx512 bool
	}
	impls := []impl{{"portable", false, false}}
	if hasAVX2() && savedSIMD {
		impls = append(impls, impl{"simd", true, false})
	}
	if saved512 {
		impls = append(impls, impl{"avx512", true, true})
	}
	for _, im := range impls {
		useSIMD, useAVX512 = im.simd, im.avx512
		t.Run(im.name, f)
	}
}

// randMatrix builds a matrix of the given format with random contents. Its
// payload starts at an odd address, as slices of an mmap'd file may.
func randMatrix(rng *rand.Rand, f Format, rows, cols, block int) *Matrix {
	m := &Matrix{Format: f, Rows: rows, Cols: cols, Block: block}
	n := rows * cols
	var data []byte
	switch f {
	case F32:
		data = make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(rng.NormFloat64())))
		}
	case BF16:
		data = make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(data[2*i:], F32ToBF16(float32(rng.NormFloat64())))
		}
	case F16:
		data = make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(data[2*i:], float16.Fromfloat32(float32(rng.NormFloat64())).Bits())
		}
	case FP8:
		data = make([]byte, n)
		for i := range data {
			b := uint8(rng.IntN(256))
			if b&0x7F == 0x7F { // NaN codes do not occur in checkpoints
				b--
			}
			data[i] = b
		}
		m.Scales = make([]byte, ceilDiv(rows, block)*ceilDiv(cols, block))
	case FP4:
		data = make([]byte, n/2)
		for i := range data {
			data[i] = uint8(rng.IntN(256))
		}
		m.Scales = make([]byte, n/FP4Group)
	}
	for i := range m.Scales {
		m.Scales[i] = uint8(118 + rng.IntN(14))
	}
	buf := make([]byte, len(data)+1)
	copy(buf[1:], data)
	m.Data = buf[1:]
	if err := m.Validate(); err != nil {
		panic(err)
	}
	return m
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// exactMatMul computes the product in float64 and Σ|w·x| per output, the
// scale of the rounding error a float32 accumulation may make.
func exactMatMul(w *Matrix, x []float32, n int) (want, mag []float64) {
	want = make([]float64, n*w.Rows)
	mag = make([]float64, n*w.Rows)
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.RowF32(row, r)
		for i := 0; i < n; i++ {
			for c, v := range row {
				p := float64(v) * float64(x[i*w.Cols+c])
				want[i*w.Rows+r] += p
				mag[i*w.Rows+r] += math.Abs(p)
			}
		}
	}
	return
}

type mmCase struct {
	f                 Format
	rows, cols, block int
}

var mmCases = []mmCase{
	{F32, 1, 1, 0}, {F32, 5, 7, 0}, {F32, 33, 64, 0}, {F32, 9, 300, 0}, {F32, 4, 520, 0},
	{BF16, 1, 3, 0}, {BF16, 33, 64, 0}, {BF16, 6, 77, 0}, {BF16, 8, 264, 0},
	{F16, 5, 9, 0}, {F16, 12, 64, 0},
	{FP8, 33, 64, 128}, {FP8, 7, 200, 128}, {FP8, 130, 136, 128}, {FP8, 40, 96, 32},
	{FP8, 3, 5, 128}, {FP8, 66, 520, 32}, {FP8, 9, 44, 8}, {FP8, 5, 30, 6},
	{FP4, 33, 64, 0}, {FP4, 1, 32, 0}, {FP4, 10, 544, 0}, {FP4, 5, 288, 0},
}

func TestMatMulMatchesReference(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, tc := range mmCases {
			w := randMatrix(rng, tc.f, tc.rows, tc.cols, tc.block)
			for _, n := range []int{1, 2, 3, 4, 5, 7, 50} {
				name := fmt.Sprintf("%v/%dx%d/b%d/n%d", tc.f, tc.rows, tc.cols, tc.block, n)
				x := randVec(rng, n*tc.cols)
				want, mag := exactMatMul(w, x, n)
				var first []float32
				for _, threads := range []int{1, 2, 3} {
					dst := make([]float32, n*tc.rows)
					NewCPU(threads).MatMul(dst, w, x, n)
					for i, v := range dst {
						tol := 4e-7*float64(tc.cols)*mag[i] + 1e-30
						if d := math.Abs(float64(v) - want[i]); d > tol {
							t.Fatalf("%s threads=%d: dst[%d]=%g, want %g (|err| %g > %g)", name, threads, i, v, want[i], d, tol)
						}
					}
					if first == nil {
						first = dst
						continue
					}
					for i := range dst {
						if math.Float32bits(dst[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%s: threads=%d differs from threads=1 at %d: %g vs %g", name, threads, i, dst[i], first[i])
						}
					}
				}
			}
		}
	})
}

// TestMatMulRefAgrees keeps the plain reference itself honest against the
// float64 product.
func TestMatMulRefAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w := randMatrix(rng, FP8, 33, 64, 128)
	x := randVec(rng, 2*64)
	dst := make([]float32, 2*33)
	MatMulRef(dst, w, x, 2)
	want, mag := exactMatMul(w, x, 2)
	for i := range dst {
		if d := math.Abs(float64(dst[i]) - want[i]); d > 1e-5*mag[i] {
			t.Fatalf("dst[%d]=%g want %g", i, dst[i], want[i])
		}
	}
}

func TestDecodeExact(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	t.Run("fp8", func(t *testing.T) {
		src := make([]byte, 256)
		for i := range src {
			src[i] = uint8(i)
		}
		dst := make([]float32, 256)
		decodeFP8(&dst[0], unsafe.Pointer(&src[0]), 256, 256)
		for i, v := range dst {
			if i&0x7F == 0x7F {
				continue // NaN codes are not decoded by the fast path
			}
			if want := E4M3ToF32(uint8(i)); v != want {
				t.Errorf("e4m3 %#02x: got %g want %g", i, v, want)
			}
		}
	})
	t.Run("fp4", func(t *testing.T) {
		src := make([]byte, 16)
		for i := range src {
			src[i] = uint8(i) | uint8(15-i)<<4
		}
		sc := []byte{127}
		dst := make([]float32, 32)
		decodeFP4(&dst[0], unsafe.Pointer(&src[0]), unsafe.Pointer(&sc[0]), 1)
		for i, v := range dst {
			code := uint8(i / 2)
			if i%2 == 1 {
				code = 15 - code
			}
			if want := FP4Value(code); v != want {
				t.Errorf("e2m1 element %d code %d: got %g want %g", i, code, v, want)
			}
		}
	})
}

func TestVectorOps(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 64, 100, 513} {
			a, b := randVec(rng, n), randVec(rng, n)
			var want, mag, ss float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mag += math.Abs(float64(a[i]) * float64(b[i]))
				ss += float64(a[i]) * float64(a[i])
			}
			if got := Dot(a, b); math.Abs(float64(got)-want) > 4e-7*float64(n)*mag+1e-30 {
				t.Errorf("Dot n=%d: got %g want %g", n, got, want)
			}
			y := append([]float32(nil), b...)
			Axpy(y, 0.75, a)
			for i := range y {
				if w := b[i] + 0.75*a[i]; math.Abs(float64(y[i]-w)) > 1e-6*(math.Abs(float64(w))+1) {
					t.Fatalf("Axpy n=%d: y[%d]=%g want %g", n, i, y[i], w)
				}
			}
			if n == 0 {
				continue
			}
			dst := make([]float32, n)
			RMSNorm(dst, a, b, 1e-6)
			r := 1 / math.Sqrt(ss/float64(n)+1e-6)
			for i := range dst {
				w := float64(a[i]) * r * float64(b[i])
				if math.Abs(float64(dst[i])-w) > 1e-5*(math.Abs(w)+1e-3) {
					t.Fatalf("RMSNorm n=%d: dst[%d]=%g want %g", n, i, dst[i], w)
				}
			}
		}
	})
}

func TestAttendMatchesReference(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, tc := range []struct{ heads, d, rows int }{
			{1, 512, 5}, {4, 512, 0}, {5, 512, 7}, {9, 64, 3}, {3, 13, 4}, {8, 24, 1}, {6, 512, 40},
		} {
			q := randVec(rng, tc.heads*tc.d)
			sinks := randVec(rng, tc.heads)
			rows := make([][]float32, tc.rows)
			for i := range rows {
				rows[i] = randVec(rng, tc.d)
			}
			scale := float32(1 / math.Sqrt(float64(tc.d)))
			want := make([]float32, tc.heads*tc.d)
			AttendRef(want, q, tc.heads, tc.d, rows, sinks, scale)
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				out := make([]float32, tc.heads*tc.d)
				for i := range out {
					out[i] = 99 // must be overwritten
				}
				NewCPU(threads).Attend(out, q, tc.heads, tc.d, rows, sinks, scale)
				for i := range out {
					if math.Abs(float64(out[i]-want[i])) > 1e-4*(math.Abs(float64(want[i]))+0.1) {
						t.Fatalf("%+v threads=%d: out[%d]=%g want %g", tc, threads, i, out[i], want[i])
					}
				}
				if first == nil {
					first = out
				} else {
					for i := range out {
						if math.Float32bits(out[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%+v: threads=%d differs at %d", tc, threads, i)
						}
					}
				}
			}
		}
	})
}

// TestConcurrentCallers checks that operations submitted from several
// goroutines at once share the pool correctly.
func TestConcurrentCallers(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	w := randMatrix(rng, FP8, 256, 256, 128)
	x := randVec(rng, 256)
	want := make([]float32, 256)
	NewCPU(1).MatMul(want, w, x, 1)
	be := NewCPU(3)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]float32, 256)
			for k := 0; k < 20; k++ {
				be.MatMul(dst, w, x, 1)
				for i := range dst {
					if dst[i] != want[i] {
						errs <- fmt.Sprintf("dst[%d]=%g want %g", i, dst[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestParallelCoversRange(t *testing.T) {
	for _, tc := range []struct{ threads, n, grain int }{{1, 10, 3}, {3, 10, 3}, {2, 1, 4}, {3, 100, 7}, {4, 0, 1}} {
		seen := make([]int32, tc.n)
		var mu sync.Mutex
		NewCPU(tc.threads).Parallel(tc.n, tc.grain, func(lo, hi int) {
			if lo%tc.grain != 0 {
				t.Errorf("%+v: chunk starts at %d", tc, lo)
			}
			mu.Lock()
			for i := lo; i < hi; i++ {
				seen[i]++
			}
			mu.Unlock()
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("%+v: element %d visited %d times", tc, i, s)
			}
		}
	}
}

func TestExpf(t *testing.T) {
	for _, x := range []float32{0, 1, -1, 0.5, -0.3466, 0.3466, 10, -10, -50, 50, -87, 88, -87.5, 89, -103, float32(math.Inf(-1))} {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		if want > math.MaxFloat32 {
			if !math.IsInf(got, 1) {
				t.Errorf("expf(%g)=%g want +Inf", x, got)
			}
			continue
		}
		if want < 1e-38 {
			if got > 1e-37 && !math.IsInf(got, 1) {
				t.Errorf("expf(%g)=%g want %g", x, got, want)
			}
			continue
		}
		if math.Abs(got-want) > 4e-7*want {
			t.Errorf("expf(%g)=%g want %g (rel %g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	for i := 0; i < 100000; i++ {
		x := float32(i)/1000 - 80
		want := math.Exp(float64(x))
		if got := float64(expf(x)); math.Abs(got-want) > 4e-7*want {
			t.Fatalf("expf(%g)=%g want %g (rel %g)", x, got, want, math.Abs(got-want)/want)
		}
	}
}

func TestMatMulRejectsInconsistentMatrix(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    *Matrix
	}{
		{"short fp8 data", &Matrix{Format: FP8, Rows: 4, Cols: 32, Block: 128, Data: make([]byte, 100), Scales: make([]byte, 1)}},
		{"short fp4 scales", &Matrix{Format: FP4, Rows: 2, Cols: 32, Data: make([]byte, 32), Scales: make([]byte, 1)}},
		{"f32 data", &Matrix{Format: F32, Rows: 2, Cols: 3, Data: make([]byte, 8)}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			NewCPU(1).MatMul(make([]float32, 64), tc.w, make([]float32, 64), 1)
		}()
	}
}

// TestNestedParallel checks that an operation started from inside a chunk of
// another (the pool's helpers all busy) completes instead of deadlocking.
func TestNestedParallel(t *testing.T) {
	be := NewCPU(3)
	rng := rand.New(rand.NewPCG(11, 12))
	w := randMatrix(rng, F32, 64, 64, 0)
	x := randVec(rng, 64)
	want := make([]float32, 64)
	NewCPU(1).MatMul(want, w, x, 1)
	got := make([][]float32, 12)
	be.Parallel(12, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			got[i] = make([]float32, 64)
			be.MatMul(got[i], w, x, 1)
		}
	})
	for i := range got {
		for r := range want {
			if got[i][r] != want[r] {
				t.Fatalf("chunk %d row %d: %g want %g", i, r, got[i][r], want[r])
			}
		}
	}
}

// TestGemvMatchesGemmBits checks that one input row gives the same bits
// whether it is multiplied alone (the GEMV kernels) or inside a batch (the
// tiled GEMM), for the formats whose kernels are built to agree.
func TestGemvMatchesGemmBits(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, tc := range []mmCase{
			{F32, 37, 300, 0}, {BF16, 37, 264, 0}, {FP8, 45, 256, 128}, {FP8, 70, 96, 32}, {FP8, 16, 136, 8},
		} {
			if tc.f == FP8 && !useSIMD {
				continue // the portable FP8 GEMV folds scales differently
			}
			w := randMatrix(rng, tc.f, tc.rows, tc.cols, tc.block)
			// 11 inputs: on AVX-512 eight go through gemm4x8x512, three
			// through gemm4x3.
			x := randVec(rng, 11*tc.cols)
			one := make([]float32, tc.rows)
			NewCPU(2).MatMul(one, w, x[:tc.cols], 1)
			many := make([]float32, 11*tc.rows)
			NewCPU(2).MatMul(many, w, x, 11)
			for r := range one {
				if math.Float32bits(one[r]) != math.Float32bits(many[r]) {
					t.Fatalf("%v %dx%d: row %d: n=1 gives %g, n=11 gives %g", tc.f, tc.rows, tc.cols, r, one[r], many[r])
				}
			}
		}
	})
}

// TestParallelSpinAndPark: concurrent callers, with pauses shorter and
// longer than spinFor between operations (helpers take jobs while spinning
// and after parking), each chunk runs exactly once and every call returns.
func TestParallelSpinAndPark(t *testing.T) {
	c := NewCPU(3)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range 40 {
				n := 1 + (g*37+i*11)%200
				seen := make([]atomic.Int32, n)
				c.Parallel(n, 1+i%5, func(lo, hi int) {
					for k := lo; k < hi; k++ {
						seen[k].Add(1)
					}
				})
				for k := range seen {
					if v := seen[k].Load(); v != 1 {
						t.Errorf("caller %d op %d: element %d visited %d times", g, i, k, v)
						return
					}
				}
				if i%8 == 7 {
					time.Sleep(2 * spinFor) // helpers park
				}
			}
		})
	}
	wg.Wait()
}

// TestPoolHelpersStop: a pool's helpers end on Close, and once an abandoned
// pool is collected.
func TestPoolHelpersStop(t *testing.T) {
	waitFor := func(want int, collect bool) {
		t.Helper()
		for range 500 {
			if runtime.NumGoroutine() <= want {
				return
			}
			if collect {
				runtime.GC()
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), want)
	}
	before := runtime.NumGoroutine()
	p := NewPool(4)
	var sum atomic.Int64
	p.For(100, 1, func(lo, hi int) { sum.Add(int64(hi - lo)) })
	if sum.Load() != 100 {
		t.Fatalf("covered %d of 100", sum.Load())
	}
	p.Close()
	waitFor(before, false)
	func() {
		q := NewPool(3)
		q.For(10, 1, func(lo, hi int) {})
	}()
	waitFor(before, true)
}

// TestMatMulBatchEqualsMatMul: a batch of products of every format, shape
// and input count gives the bits of the same products run one by one, at
// every thread count, and a Backend without batching runs them one by one.
func TestMatMulBatchEqualsMatMul(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		var ops []MatMulOp
		var want [][]float32
		for i, tc := range mmCases {
			n := []int{1, 1, 2, 5}[i%4]
			w := randMatrix(rng, tc.f, tc.rows, tc.cols, tc.block)
			x := randVec(rng, n*tc.cols)
			ref := make([]float32, n*tc.rows)
			NewCPU(1).MatMul(ref, w, x, n)
			want = append(want, ref)
			ops = append(ops, MatMulOp{Dst: make([]float32, n*tc.rows), W: w, X: x, N: n})
		}
		for _, threads := range []int{1, 2, 3} {
			for _, be := range []Backend{NewCPU(threads), unbatched{NewCPU(threads)}} {
				for _, op := range ops {
					clear(op.Dst)
				}
				MatMulAll(be, ops)
				for i, op := range ops {
					for j := range op.Dst {
						if math.Float32bits(op.Dst[j]) != math.Float32bits(want[i][j]) {
							tc := mmCases[i]
							t.Fatalf("%T threads=%d, op %d (%v %dx%d b%d n%d): dst[%d] = %g, MatMul gives %g",
								be, threads, i, tc.f, tc.rows, tc.cols, tc.block, op.N, j, op.Dst[j], want[i][j])
						}
					}
				}
			}
		}
	})
}

// unbatched hides a backend's MatMulBatch.
type unbatched struct{ Backend }
