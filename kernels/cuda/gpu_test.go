package cuda_test

// GPU-against-CPU parity tests. They run only with EDGESEEK_GPU=1 (set by
// tools/gpucheck.sh) and then fail, not skip, when no device can be opened.
// Tolerances are norm-wise relative errors: 1e-5 for float32 paths, 1e-3
// where bf16/f16 data or a whole model's logits are involved.

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/kernels/cuda"
	"github.com/edgeseek/edgeseek/model"
	"github.com/x448/float16"
)

// GPUEnv is the variable that enables the device tests.
const GPUEnv = "EDGESEEK_GPU"

const (
	tolF32  = 1e-5
	tolBF16 = 1e-3
)

var (
	gpuOnce sync.Once
	gpuBe   *cuda.Backend
	gpuErr  error
)

// gpu returns the shared backend, skipping unless EDGESEEK_GPU=1.
func gpu(t testing.TB) *cuda.Backend {
	t.Helper()
	if os.Getenv(GPUEnv) != "1" {
		t.Skipf("device test: set %s=1 on a machine with an NVIDIA GPU (tools/gpucheck.sh does)", GPUEnv)
	}
	gpuOnce.Do(func() {
		gpuBe, gpuErr = cuda.Open(cuda.Options{})
		if gpuErr == nil {
			fmt.Fprintf(os.Stderr, "cuda backend: %v\n", gpuBe.Info())
		}
	})
	if gpuErr != nil {
		t.Fatalf("%s=1 but the CUDA backend did not open: %v", GPUEnv, gpuErr)
	}
	return gpuBe
}

// TestGPUOpen opens the device and logs what it is.
func TestGPUOpen(t *testing.T) {
	b := gpu(t)
	i := b.Info()
	t.Logf("%v; compute capability %s; peak %.0f GB/s", i, i.ComputeCapability(), i.PeakBandwidth()/1e9)
	if i.Memory == 0 || i.Major == 0 || i.Target == "" {
		t.Errorf("incomplete device info: %+v", i)
	}
}

// relErr is ‖got−want‖₂/‖want‖₂ (absolute when want is zero); NaN anywhere is +Inf.
func relErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) {
			return math.Inf(1)
		}
		if math.IsNaN(w) || (math.IsInf(w, 0) && g == w) {
			continue
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func check(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if e := relErr(got, want); !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.0e", what, e, tol)
	} else {
		t.Logf("%s: relative error %.3g", what, e)
	}
}

func randVec(rng *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

// randMatrix returns a random matrix of format f with realistic values.
func randMatrix(rng *rand.Rand, f kernels.Format, rows, cols, block int) *kernels.Matrix {
	m := &kernels.Matrix{Format: f, Rows: rows, Cols: cols}
	n := rows * cols
	switch f {
	case kernels.F32:
		m.Data = make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(m.Data[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.05)))
		}
	case kernels.BF16, kernels.F16:
		m.Data = make([]byte, 2*n)
		for i := 0; i < n; i++ {
			v := float32(rng.NormFloat64() * 0.05)
			h := kernels.F32ToBF16(v)
			if f == kernels.F16 {
				h = float16.Fromfloat32(v).Bits()
			}
			binary.LittleEndian.PutUint16(m.Data[2*i:], h)
		}
	case kernels.FP8:
		m.Block = block
		m.Data = make([]byte, n)
		for i := range m.Data {
			m.Data[i] = kernels.F32ToE4M3(float32(rng.NormFloat64() * 100))
		}
		m.Scales = make([]byte, ((rows+block-1)/block)*((cols+block-1)/block))
		for i := range m.Scales {
			m.Scales[i] = byte(115 + rng.IntN(8))
		}
	case kernels.FP4:
		m.Data = make([]byte, n/2)
		for i := range m.Data {
			m.Data[i] = byte(rng.IntN(256))
		}
		m.Scales = make([]byte, n/kernels.FP4Group)
		for i := range m.Scales {
			m.Scales[i] = byte(118 + rng.IntN(8))
		}
	}
	if err := m.Validate(); err != nil {
		panic(err)
	}
	return m
}

func TestGPUMatMul(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(1, 2))
	type fc struct {
		f     kernels.Format
		block int
		tol   float64
	}
	formats := []fc{{kernels.F32, 0, tolF32}, {kernels.BF16, 0, tolBF16}, {kernels.F16, 0, tolBF16},
		{kernels.FP8, 128, tolF32}, {kernels.FP8, 32, tolF32}, {kernels.FP4, 0, tolF32}}
	shapes := [][2]int{{256, 512}, {77, 96}, {130, 4096}, {1000, 320}}
	for _, f := range formats {
		for _, s := range shapes {
			rows, cols := s[0], s[1]
			w := randMatrix(rng, f.f, rows, cols, f.block)
			for _, n := range []int{1, 3, 4, 5, 8, 9, 64, 70} {
				x := randVec(rng, n*cols, 1)
				want := make([]float32, n*rows)
				got := make([]float32, n*rows)
				cpu.MatMul(want, w, x, n)
				if err := b.MatMulErr(got, w, x, n); err != nil {
					t.Fatal(err)
				}
				check(t, fmt.Sprintf("%v/%d %dx%d n=%d", f.f, f.block, rows, cols, n), got, want, f.tol)
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestGPUMatMulTensorCores checks the bf16 tensor-core GEMM with
// activations rounded to FP8 first (as the model's ActQuant does), where it
// must agree with the float32 CPU product up to summation order.
func TestGPUMatMulTensorCores(t *testing.T) {
	b := gpu(t)
	if b.Info().Major < 8 {
		t.Skipf("%s is older than sm_80", b.Info().Name)
	}
	if err := b.SetTensorCores(true); err != nil {
		t.Fatal(err)
	}
	defer b.SetTensorCores(false)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(23, 24))
	for _, f := range []kernels.Format{kernels.BF16, kernels.FP8, kernels.FP4} {
		for _, s := range [][2]int{{256, 512}, {100, 160}, {1000, 4096}} {
			rows, cols := s[0], s[1]
			w := randMatrix(rng, f, rows, cols, 128)
			for _, n := range []int{9, 32, 77, 512} {
				x := randVec(rng, n*cols, 1)
				for i := 0; i < n; i++ {
					kernels.QuantDequantFP8(x[i*cols:(i+1)*cols], 128)
				}
				want, got := make([]float32, n*rows), make([]float32, n*rows)
				cpu.MatMul(want, w, x, n)
				if err := b.MatMulErr(got, w, x, n); err != nil {
					t.Fatal(err)
				}
				check(t, fmt.Sprintf("tensor cores %v %dx%d n=%d", f, rows, cols, n), got, want, tolF32)
			}
		}
	}
}

// TestGPUMatMulOddCols covers the scalar fallback (columns not a multiple of
// the 16-byte vector) for the formats that allow it.
func TestGPUMatMulOddCols(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range []kernels.Format{kernels.F32, kernels.BF16, kernels.FP8} {
		w := randMatrix(rng, f, 45, 101, 32)
		for _, n := range []int{1, 2, 20} {
			x := randVec(rng, n*101, 1)
			want, got := make([]float32, n*45), make([]float32, n*45)
			cpu.MatMul(want, w, x, n)
			if err := b.MatMulErr(got, w, x, n); err != nil {
				t.Fatal(err)
			}
			check(t, fmt.Sprintf("%v 45x101 n=%d", f, n), got, want, tolBF16)
		}
	}
}

func rowsOf(rng *rand.Rand, S, d int) [][]float32 {
	rows := make([][]float32, S)
	for i := range rows {
		rows[i] = randVec(rng, d, 1)
	}
	return rows
}

func TestGPUAttend(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ heads, d, S int }{{64, 512, 640}, {8, 128, 1}, {4, 72, 37}, {16, 512, 0}, {3, 64, 2000}} {
		q := randVec(rng, c.heads*c.d, 1)
		rows := rowsOf(rng, c.S, c.d)
		sinks := randVec(rng, c.heads, 1)
		scale := float32(1 / math.Sqrt(float64(c.d)))
		want, got := make([]float32, c.heads*c.d), make([]float32, c.heads*c.d)
		kernels.AttendRef(want, q, c.heads, c.d, rows, sinks, scale)
		if err := b.AttendErr(got, q, c.heads, c.d, rows, sinks, scale); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("attend h=%d d=%d S=%d vs ref", c.heads, c.d, c.S), got, want, tolF32)
		cpu.Attend(want, q, c.heads, c.d, rows, sinks, scale)
		check(t, fmt.Sprintf("attend h=%d d=%d S=%d vs cpu", c.heads, c.d, c.S), got, want, tolF32)
	}
}

// TestGPUAttendPrefill runs T queries with their own row lists in one launch.
func TestGPUAttendPrefill(t *testing.T) {
	b := gpu(t)
	rng := rand.New(rand.NewPCG(7, 8))
	T, heads, d, N, S := 5, 8, 128, 300, 64
	pool := randVec(rng, N*d, 1)
	q := randVec(rng, T*heads*d, 1)
	sinks := randVec(rng, heads, 1)
	idx := make([]int32, T*S)
	count := make([]int32, T)
	want := make([]float32, T*heads*d)
	for t0 := 0; t0 < T; t0++ {
		count[t0] = int32(10 * t0) // query 0 sees nothing
		var rows [][]float32
		for s := 0; s < int(count[t0]); s++ {
			r := rng.IntN(N)
			idx[t0*S+s] = int32(r)
			rows = append(rows, pool[r*d:(r+1)*d])
		}
		kernels.AttendRef(want[t0*heads*d:(t0+1)*heads*d], q[t0*heads*d:], heads, d, rows, sinks, 0.1)
	}
	bufs := map[string][]float32{"rows": pool, "q": q, "sinks": sinks}
	dev := map[string]*cuda.Buffer{}
	for k, v := range bufs {
		p, err := b.Alloc(len(v))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Free(p)
		if err := b.Write(p, v); err != nil {
			t.Fatal(err)
		}
		dev[k] = p
	}
	I, _ := b.Alloc(len(idx))
	C, _ := b.Alloc(T)
	O, _ := b.Alloc(T * heads * d)
	defer b.Free(I)
	defer b.Free(C)
	defer b.Free(O)
	if err := b.Write(I, i32f(idx)); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(C, i32f(count)); err != nil {
		t.Fatal(err)
	}
	if err := b.AttendDev(O, dev["q"], dev["rows"], I, C, T, heads, d, S, d, dev["sinks"], 0.1); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, T*heads*d)
	if err := b.Read(got, O); err != nil {
		t.Fatal(err)
	}
	check(t, "prefill attention", got, want, tolF32)
}

// i32f reinterprets int32s as float32 bit patterns for Buffer.Write.
func i32f(v []int32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = math.Float32frombits(uint32(x))
	}
	return out
}

func TestGPURMSNormSwiGLU(t *testing.T) {
	b := gpu(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, width := range []int{64, 1024, 4096, 7} {
		rows := 5
		x := randVec(rng, rows*width, 3)
		w := randVec(rng, width, 1)
		want, got := make([]float32, len(x)), make([]float32, len(x))
		for r := 0; r < rows; r++ {
			kernels.RMSNorm(want[r*width:(r+1)*width], x[r*width:(r+1)*width], w, 1e-6)
		}
		if err := b.RMSNorm(got, x, w, width, 1e-6); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("rmsnorm width %d", width), got, want, tolF32)
		for r := 0; r < rows; r++ {
			kernels.RMSNorm(want[r*width:(r+1)*width], x[r*width:(r+1)*width], nil, 1e-6)
		}
		if err := b.RMSNorm(got, x, nil, width, 1e-6); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("rmsnorm unweighted width %d", width), got, want, tolF32)
	}
	g, u := randVec(rng, 3*2048, 6), randVec(rng, 3*2048, 6)
	scale := []float32{0.5, 1, 2}
	for _, lim := range []float32{0, 10, 3} {
		want, got := make([]float32, len(g)), make([]float32, len(g))
		kernels.SwiGLUClamped(want, g, u, lim)
		if err := b.SwiGLU(got, g, u, lim, nil, 0); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("swiglu limit %v", lim), got, want, tolF32)
		for i := range want {
			want[i] *= scale[i/2048]
		}
		if err := b.SwiGLU(got, g, u, lim, scale, 2048); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("swiglu limit %v row-scaled", lim), got, want, tolF32)
	}
}

func TestGPURoPE(t *testing.T) {
	b := gpu(t)
	rng := rand.New(rand.NewPCG(11, 12))
	tab := model.NewRopeTable(64, 160000, &model.Yarn{Factor: 16, OrigSeqLen: 65536, BetaFast: 32, BetaSlow: 1})
	T, H, d := 3, 8, 512
	pos := []int32{0, 17, 70000}
	for _, inv := range []bool{false, true} {
		x := randVec(rng, T*H*d, 1)
		want := slices.Clone(x)
		for r := 0; r < T*H; r++ {
			tab.Apply(want[r*d:(r+1)*d], int(pos[r/H]), inv)
		}
		if err := b.RoPE(x, d, 64, tab.Theta, H, pos, inv); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("rope inverse=%v", inv), x, want, tolF32)
	}
}

// TestGPUHCSite checks the fused site against model.SinkhornMix, Collapse and
// Expand with the mixing product on the CPU (model.HCSite.Mixes).
func TestGPUHCSite(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(13, 14))
	n, D, T := 4, 1024, 3
	R := (2 + n) * n
	site := &cuda.HCSite{Fn: randMatrix(rng, kernels.F32, R, n*D, 0), Base: randVec(rng, R, 0.5),
		Scale: []float32{0.7, 1.1, 0.9}, N: n, Iters: 20, HCEps: 1e-6, Eps: 1e-6}
	X := randVec(rng, T*n*D, 1)
	y := randVec(rng, T*D, 1)
	prev := make([]float32, T*R)
	wantX := slices.Clone(X)
	for t0 := 0; t0 < T; t0++ {
		mix := model.HCMix{Pre: randVec(rng, n, 1), Post: randVec(rng, n, 1), Comb: randVec(rng, n*n, 0.3)}
		copy(prev[t0*R:], mix.Pre)
		copy(prev[t0*R+n:], mix.Post)
		copy(prev[t0*R+2*n:], mix.Comb)
		model.Expand(wantX[t0*n*D:(t0+1)*n*D], y[t0*D:(t0+1)*D], mix)
	}
	mu := make([]float32, T*R)
	cpu.MatMul(mu, site.Fn, wantX, T)
	wantU := make([]float32, T*D)
	wantMix := make([]float32, T*R)
	for t0 := 0; t0 < T; t0++ {
		xt := wantX[t0*n*D : (t0+1)*n*D]
		var ss float64
		for _, v := range xt {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(ss/float64(n*D)+1e-6))
		m := mu[t0*R : (t0+1)*R]
		pre, post := make([]float32, n), make([]float32, n)
		for j := 0; j < n; j++ {
			pre[j] = kernels.Sigmoid(m[j]*r*site.Scale[0]+site.Base[j]) + site.HCEps
			post[j] = 2 * kernels.Sigmoid(m[n+j]*r*site.Scale[1]+site.Base[n+j])
		}
		logits := make([]float32, n*n)
		for i := range logits {
			logits[i] = m[2*n+i]*r*site.Scale[2] + site.Base[2*n+i]
		}
		comb := model.SinkhornMix(logits, n, site.Iters, site.HCEps)
		copy(wantMix[t0*R:], pre)
		copy(wantMix[t0*R+n:], post)
		copy(wantMix[t0*R+2*n:], comb)
		model.Collapse(wantU[t0*D:(t0+1)*D], xt, pre)
	}
	u, mix, err := b.HCSiteRun(site, X, T, y, prev)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "mhc expand", X, wantX, tolF32)
	check(t, "mhc coefficients", mix, wantMix, tolF32)
	check(t, "mhc collapse", u, wantU, tolF32)
}

// TestGPUCompress feeds tokens through model.Compressor.Push and pools the
// same windows on the GPU, with and without the CSA overlap.
func TestGPUCompress(t *testing.T) {
	b := gpu(t)
	rng := rand.New(rand.NewPCG(15, 16))
	for _, c := range []struct {
		m, d    int
		overlap bool
	}{{4, 512, true}, {128, 512, false}, {2, 128, false}, {4, 128, true}} {
		cd := c.d
		if c.overlap {
			cd = 2 * c.d
		}
		W := 3
		comp := &model.Compressor{Ratio: c.m, Overlap: c.overlap, D: c.d, Ape: randVec(rng, c.m*cd, 0.5)}
		st := comp.NewState()
		A := make([]float32, (W+1)*c.m*cd) // window 0: no previous window
		Z := make([]float32, (W+1)*c.m*cd)
		var want []float32
		for p := 0; p < W*c.m; p++ {
			a, z := randVec(rng, cd, 1), randVec(rng, cd, 2)
			off := (c.m + p) * cd
			copy(A[off:], a)
			for j := range z {
				Z[off+j] = z[j] + comp.Ape[(p%c.m)*cd+j]
			}
			if out, ok := comp.Push(st, a, z, p); ok {
				want = append(want, out...)
			}
		}
		got := make([]float32, W*c.d)
		if err := b.CompressPool(got, A, Z, W, c.m, c.d, c.overlap, false); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("compress m=%d d=%d overlap=%v", c.m, c.d, c.overlap), got, want, tolF32)
	}
}

func TestGPUIndexer(t *testing.T) {
	b := gpu(t)
	rng := rand.New(rand.NewPCG(17, 18))
	heads, hd, S := 64, 128, 700
	ix := &model.Indexer{Heads: heads, HeadDim: hd, TopK: 512}
	keys := &model.CompressedKV{D: hd}
	flat := randVec(rng, S*hd, 1)
	for w := 0; w < S; w++ {
		keys.Rows = append(keys.Rows, flat[w*hd:(w+1)*hd])
	}
	T := 2
	q := randVec(rng, T*heads*hd, 1)
	om := randVec(rng, T*heads, 0.1)
	count := []int32{int32(S), 300}
	got, err := b.IndexScores(q, om, flat, count, T, S, heads, hd, float32(1/math.Sqrt(float64(hd))))
	if err != nil {
		t.Fatal(err)
	}
	for t0 := 0; t0 < T; t0++ {
		nv := int(count[t0])
		want := ix.Scores(model.IndexQuery{Q: q[t0*heads*hd : (t0+1)*heads*hd], Omega: om[t0*heads : (t0+1)*heads]}, keys, nv)
		g := got[t0*S : t0*S+nv]
		check(t, fmt.Sprintf("index scores query %d", t0), g, want, tolF32)
		for w := nv; w < S; w++ {
			if !math.IsInf(float64(got[t0*S+w]), -1) {
				t.Fatalf("score %d of query %d beyond the visible keys is %v", w, t0, got[t0*S+w])
			}
		}
		// Top-k on the reference scores must match exactly.
		for _, k := range []int{1, 8, 512, nv + 5} {
			tk, err := b.TopK(want, k)
			if err != nil {
				t.Fatal(err)
			}
			if ref := model.TopKIndices(want, k); !slices.Equal(tk, ref) {
				t.Errorf("top-%d of %d: got %v..., want %v...", k, nv, head(tk), head(ref))
			}
		}
	}
	// Ties and −Inf.
	s := []float32{1, 3, 3, float32(math.Inf(-1)), 2, 3, float32(math.Inf(-1))}
	for k := 0; k <= len(s)+1; k++ {
		tk, err := b.TopK(s, k)
		if err != nil {
			t.Fatal(err)
		}
		if ref := model.TopKIndices(s, k); !slices.Equal(tk, ref) && !(len(tk) == 0 && len(ref) == 0) {
			t.Errorf("ties top-%d: got %v, want %v", k, tk, ref)
		}
	}
}

func head(v []int) []int { return v[:min(len(v), 10)] }

func TestGPURoute(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(19, 20))
	E, D, T, k := 256, 512, 7, 6
	gate := randMatrix(rng, kernels.BF16, E, D, 0)
	x := randVec(rng, T*D, 1)
	logits := make([]float32, T*E)
	cpu.MatMul(logits, gate, x, T)
	tokens := []int{1, 5, 2, 7, 0, 3, 3}
	tok32 := make([]int32, T)
	for i, v := range tokens {
		tok32[i] = int32(v)
	}
	hash := make([]int32, 8*k)
	for i := range hash {
		hash[i] = int32(rng.IntN(E))
	}
	for _, hashed := range []bool{false, true} {
		mo := &model.MoE{Gate: gate, TopK: k, Scale: 1.5, Temp: 1.3}
		r := &cuda.Router{TopK: k, Scale: 1.5, Temp: 1.3}
		if hashed {
			mo.Tid2Eid, r.Tid2Eid = hash, hash
		} else {
			mo.Bias = randVec(rng, E, 0.05)
			r.Bias = mo.Bias
		}
		wantE, wantW := mo.Route(cpu, x, tokens, T)
		gotE, gotW, err := b.Route(r, logits, tok32, T, E)
		if err != nil {
			t.Fatal(err)
		}
		var ww []float32
		for t0 := 0; t0 < T; t0++ {
			for i := 0; i < k; i++ {
				if int(gotE[t0*k+i]) != wantE[t0][i] {
					t.Fatalf("hashed=%v token %d: experts %v, want %v", hashed, t0, gotE[t0*k:(t0+1)*k], wantE[t0])
				}
			}
			ww = append(ww, wantW[t0]...)
		}
		check(t, fmt.Sprintf("route weights hashed=%v", hashed), gotW, ww, tolF32)
	}
}

// TestGPUGraph captures product → RMSNorm → SwiGLU → product into a graph
// and replays it.
func TestGPUGraph(t *testing.T) {
	b := gpu(t)
	cpu := kernels.NewCPU(0)
	rng := rand.New(rand.NewPCG(21, 22))
	w1 := randMatrix(rng, kernels.FP8, 512, 256, 128)
	w2 := randMatrix(rng, kernels.FP4, 256, 512, 0)
	x := randVec(rng, 256, 1)
	h := make([]float32, 512)
	want := make([]float32, 256)
	cpu.MatMul(h, w1, x, 1)
	kernels.RMSNorm(h, h, nil, 1e-6)
	kernels.SwiGLUClamped(h[:256], h[:256], h[256:], 10)
	copy(h[256:], h[:256])
	cpu.MatMul(want, w2, h, 1)
	X, _ := b.Alloc(256)
	H, _ := b.Alloc(512)
	Y, _ := b.Alloc(256)
	defer b.Free(X)
	defer b.Free(H)
	defer b.Free(Y)
	for _, w := range []*kernels.Matrix{w1, w2} {
		if err := b.Upload(w); err != nil {
			t.Fatal(err)
		}
	}
	g, err := b.Capture(func() error {
		if err := b.MatMulDev(H, w1, X, 1); err != nil {
			return err
		}
		if err := b.RMSNormDev(H, H, nil, 1, 512, 1e-6); err != nil {
			return err
		}
		G, U := H.Slice(0, 256), H.Slice(256, 256)
		if err := b.SwiGLUDev(G, G, U, 256, 10, nil, 0); err != nil {
			return err
		}
		if err := b.CopyDev(U, G, 256); err != nil {
			return err
		}
		return b.MatMulDev(Y, w2, H, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	for i := 0; i < 3; i++ {
		if err := b.Write(X, x); err != nil {
			t.Fatal(err)
		}
		if err := g.Launch(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 256)
		if err := b.Read(got, Y); err != nil {
			t.Fatal(err)
		}
		check(t, fmt.Sprintf("graph replay %d", i), got, want, tolF32)
	}
}
