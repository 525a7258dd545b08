package cuda_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/kernels/cuda"
)

// BenchEnv enables TestGPUBenchTable (with EDGESEEK_GPU=1).
const BenchEnv = "EDGESEEK_GPU_BENCH"

// fastMatrix is randMatrix without the per-element rounding, for large
// benchmark shapes: random codes with the NaN encodings removed.
func fastMatrix(rng *rand.Rand, f kernels.Format, rows, cols int) *kernels.Matrix {
	m := &kernels.Matrix{Format: f, Rows: rows, Cols: cols, Block: 128}
	n := rows * cols
	fill := func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
	}
	switch f {
	case kernels.BF16:
		m.Data = make([]byte, 2*n)
		fill(m.Data)
		for i := 1; i < len(m.Data); i += 2 {
			m.Data[i] = m.Data[i]&0x80 | 0x3c // |v| in [2^-7, 2^-6)
		}
	case kernels.FP8:
		m.Data = make([]byte, n)
		fill(m.Data)
		for i, v := range m.Data {
			if v&0x7f == 0x7f {
				m.Data[i] = v - 1
			}
		}
		m.Scales = make([]byte, ((rows+127)/128)*((cols+127)/128))
		for i := range m.Scales {
			m.Scales[i] = 120
		}
	case kernels.FP4:
		m.Data = make([]byte, n/2)
		fill(m.Data)
		m.Scales = make([]byte, n/32)
		for i := range m.Scales {
			m.Scales[i] = 124
		}
	}
	return m
}

// TestGPUBenchTable measures the device copy bandwidth, the achieved
// bandwidth of the FP8/FP4/BF16 GEMV kernels (goal: at least 0.8 of the copy
// bandwidth) and the GEMM throughput, and prints one table (also written to
// $EDGESEEK_GPU_TABLE when set). It only reports; it fails on errors, not on
// speed.
func TestGPUBenchTable(t *testing.T) {
	if os.Getenv(BenchEnv) != "1" {
		t.Skipf("set %s=1 (and %s=1) to benchmark the device", BenchEnv, GPUEnv)
	}
	b := gpu(t)
	var tab strings.Builder
	fmt.Fprintf(&tab, "device: %v\n", b.Info())
	copyBW, err := b.CopyBandwidth(1<<30, 20)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&tab, "theoretical peak %.0f GB/s; measured copy (read+write) %.0f GB/s\n\n", b.Info().PeakBandwidth()/1e9, copyBW/1e9)
	fmt.Fprintf(&tab, "%-12s %-18s %5s %10s %9s %9s %8s\n", "kernel", "shape", "n", "time/call", "GB/s", "vs copy", "TFLOP/s")
	rng := rand.New(rand.NewPCG(42, 43))
	type cs struct {
		f          kernels.Format
		rows, cols int
		n          int
		tc         bool
	}
	cases := []cs{
		{kernels.FP8, 16384, 7168, 1, false}, {kernels.FP8, 4096, 4096, 1, false}, {kernels.FP4, 16384, 7168, 1, false},
		{kernels.FP4, 2048, 4096, 1, false}, {kernels.BF16, 8192, 7168, 1, false}, {kernels.FP8, 16384, 7168, 4, false},
		{kernels.FP8, 7168, 4096, 512, false}, {kernels.FP4, 7168, 4096, 512, false}, {kernels.BF16, 4096, 4096, 512, false},
	}
	if b.Info().Major >= 8 {
		cases = append(cases, cs{kernels.FP8, 7168, 4096, 512, true}, cs{kernels.FP4, 7168, 4096, 512, true},
			cs{kernels.BF16, 4096, 4096, 512, true})
	}
	for _, c := range cases {
		if err := b.SetTensorCores(c.tc); err != nil {
			t.Fatal(err)
		}
		w := fastMatrix(rng, c.f, c.rows, c.cols)
		if err := b.Upload(w); err != nil {
			t.Fatal(err)
		}
		X, err := b.Alloc(c.n * c.cols)
		if err != nil {
			t.Fatal(err)
		}
		Y, err := b.Alloc(c.n * c.rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Write(X, randVec(rng, c.n*c.cols, 1)); err != nil {
			t.Fatal(err)
		}
		reps := 50
		if c.n > 8 {
			reps = 10
		}
		for i := 0; i < 3; i++ {
			if err := b.MatMulDev(Y, w, X, c.n); err != nil {
				t.Fatal(err)
			}
		}
		tm, err := b.NewTimer()
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < reps; i++ {
			if err := b.MatMulDev(Y, w, X, c.n); err != nil {
				t.Fatal(err)
			}
		}
		sec, err := tm.Stop()
		if err != nil {
			t.Fatal(err)
		}
		tm.Close()
		per := sec / float64(reps)
		bytes := float64(w.Bytes() + 4*c.n*(c.rows+c.cols))
		gbs := bytes / per / 1e9
		flops := 2 * float64(c.n) * float64(c.rows) * float64(c.cols) / per / 1e12
		kind := "gemv"
		if c.n > 8 {
			kind = "gemm"
			if c.tc {
				kind = "gemm/tc"
			}
		}
		fmt.Fprintf(&tab, "%-12s %-18s %5d %8.1fµs %9.0f %9.2f %8.2f\n", kind+"-"+c.f.String(),
			fmt.Sprintf("%dx%d", c.rows, c.cols), c.n, per*1e6, gbs, gbs*1e9/copyBW, flops)
		b.Free(X)
		b.Free(Y)
		b.Release(w)
	}
	b.SetTensorCores(false)
	fmt.Fprintf(&tab, "\nGEMV goal: 'vs copy' >= 0.80 for fp8/fp4 at n=1.\n")
	attendBench(t, b, &tab)
	fmt.Print(tab.String())
	if p := os.Getenv("EDGESEEK_GPU_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(tab.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// attendBench times one decode attention call at V4-Flash shapes.
func attendBench(t *testing.T, b *cuda.Backend, tab *strings.Builder) {
	rng := rand.New(rand.NewPCG(44, 45))
	heads, d, S := 64, 512, 640
	bufs := []*cuda.Buffer{}
	mk := func(n int, std float64) *cuda.Buffer {
		p, err := b.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Write(p, randVec(rng, n, std)); err != nil {
			t.Fatal(err)
		}
		bufs = append(bufs, p)
		return p
	}
	Q, R, K, O := mk(heads*d, 1), mk(S*d, 1), mk(heads, 1), mk(heads*d, 0)
	defer func() {
		for _, p := range bufs {
			b.Free(p)
		}
	}()
	run := func() {
		if err := b.AttendDev(O, Q, R, nil, nil, 1, heads, d, S, d, K, 0.04); err != nil {
			t.Fatal(err)
		}
	}
	run()
	tm, err := b.NewTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	tm.Start()
	for i := 0; i < 50; i++ {
		run()
	}
	sec, err := tm.Stop()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tab, "attend decode heads=%d d=%d rows=%d: %.1fµs/call\n", heads, d, S, sec/50*1e6)
}
