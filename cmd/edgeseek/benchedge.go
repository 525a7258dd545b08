package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/kernels/bench"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
	"github.com/edgeseek/edgeseek/wasm/sampler"
)

// benchEdge implements `edgeseek bench edge [--json] [--tokenizer FILE]`:
// the edge module's costs natively (the wasm/edge package called directly,
// msgpack included) and in wazero (the embedded module through
// host/edgehost), each figure with its baseline:
//
//   - tokenizer throughput on testdata/tokenizer/corpus (files encoded
//     whole), against Hugging Face tokenizers single-threaded
//     (tools/tokenizer/bench_hf.py) when Python can import it;
//   - one top-p sampling step over 129,280 float32 logits (wazero against
//     native);
//   - compiling the module without a cache and with a warm in-memory and
//     on-disk cache, and instantiating it (against no cache).
//
// Times are process CPU time, best of several rounds (the machines this
// runs on are shared), except compile/instantiate, which report wall time.
func benchEdge(args []string) error {
	fs := flag.NewFlagSet("bench edge", flag.ContinueOnError)
	js := fs.Bool("json", false, "one JSON object per line")
	tokPath := fs.String("tokenizer", "build/tokenizer/deepseek_v3.json", "tokenizer.json (`make build/tokenizer/deepseek_v3.json` fetches DeepSeek-V3's)")
	corpusDir := fs.String("corpus", "testdata/tokenizer/corpus", "directory of .txt files to tokenize")
	rounds := fs.Int("rounds", 3, "timed rounds per figure (best reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 {
		return errors.New("bench edge: --rounds must be >= 1")
	}
	ctx := context.Background()
	tj, err := os.ReadFile(*tokPath)
	if err != nil {
		return fmt.Errorf("bench edge: %w (run `make build/tokenizer/deepseek_v3.json` or pass --tokenizer)", err)
	}
	texts, total, err := readCorpus(*corpusDir)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	var results []bench.Result
	var notes []string
	add := func(r bench.Result) {
		if r.Baseline > 0 {
			r.Ratio = r.Value / r.Baseline
		}
		results = append(results, r)
	}

	// Compile and instantiate (wall time: the compiler runs on its own goroutines).
	compile := func(c edgehost.Config) (time.Duration, *edgehost.Runtime, *edgehost.Module, error) {
		r, err := edgehost.New(ctx, c)
		if err != nil {
			return 0, nil, nil, err
		}
		t0 := time.Now()
		m, err := r.CompileEmbedded(ctx)
		if err != nil {
			r.Close(ctx)
			return 0, nil, nil, err
		}
		return time.Since(t0), r, m, nil
	}
	noCache, r0, _, err := compile(edgehost.Config{Cache: wazero.NewCompilationCache()})
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	r0.Close(ctx)
	mem := wazero.NewCompilationCache()
	defer mem.Close(ctx)
	dir, err := os.MkdirTemp("", "edgeseek-wazero-cache")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var memBest, diskBest time.Duration = -1, -1
	for i := 0; i <= *rounds; i++ { // the first round fills the caches
		d, r, _, err := compile(edgehost.Config{Cache: mem})
		if err != nil {
			return fmt.Errorf("bench edge: %w", err)
		}
		r.Close(ctx)
		d2, r2, _, err := compile(edgehost.Config{CacheDir: dir})
		if err != nil {
			return fmt.Errorf("bench edge: %w", err)
		}
		r2.Close(ctx)
		if i > 0 {
			memBest, diskBest = minDur(memBest, d), minDur(diskBest, d2)
		}
	}
	// Module sizes: the two the host embeds, and the browser build when
	// wasm/build.sh has left it next to the sources.
	kib := func(n int) float64 { return float64(n) / 1024 }
	add(bench.Result{Name: "edge.size.wasip1", Shape: "embedded edge.wasm (Go, wasip1)", Value: kib(len(edgehost.Embedded())), Unit: "KiB"})
	add(bench.Result{Name: "edge.size.sampler", Shape: "embedded sampler.wasm (C)", Value: kib(len(edgehost.EmbeddedSampler())), Unit: "KiB"})
	add(bench.Result{Name: "edge.size.tokenizer", Shape: "embedded tokenizer.wasm (C)", Value: kib(len(edgehost.EmbeddedTokenizer())), Unit: "KiB"})
	if b, err := os.ReadFile("build/wasm/edge.wasm"); err == nil {
		add(bench.Result{Name: "edge.size.js", Shape: "build/wasm/edge.wasm (Go, js, for browsers)", Value: kib(len(b)), Unit: "KiB"})
	}
	add(bench.Result{Name: "edge.compile.nocache", Shape: "embedded edge.wasm", Value: ms(noCache), Unit: "ms"})
	add(bench.Result{Name: "edge.compile.memcache", Shape: "embedded edge.wasm", Value: ms(memBest), Unit: "ms", Baseline: ms(noCache), BaselineName: "no cache"})
	add(bench.Result{Name: "edge.compile.diskcache", Shape: "embedded edge.wasm", Value: ms(diskBest), Unit: "ms", Baseline: ms(noCache), BaselineName: "no cache"})

	rt, err := edgehost.New(ctx, edgehost.Config{Cache: mem, CallTimeout: 5 * time.Minute})
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	defer rt.Close(ctx)
	mod, err := rt.CompileEmbedded(ctx)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	inst := time.Duration(-1)
	for range *rounds {
		t0 := time.Now()
		in, err := mod.Instantiate(ctx)
		if err != nil {
			return fmt.Errorf("bench edge: %w", err)
		}
		inst = minDur(inst, time.Since(t0))
		in.Close(ctx)
	}
	add(bench.Result{Name: "edge.instantiate", Shape: "embedded edge.wasm", Value: ms(inst), Unit: "ms", Note: "per session; runs the Go runtime's _initialize"})

	in, err := mod.Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	defer in.Close(ctx)
	native := edge.New()
	callNative := func(fn string, req, rep any) error {
		b, err := protocol.Marshal(req)
		if err != nil {
			return err
		}
		return protocol.ParseABIResponse(native.Call(fn, b), rep)
	}
	callWasm := func(fn string, req, rep any) error { return in.Invoke(ctx, fn, req, rep) }

	// Session creation (tokenizer.json parsing).
	var handles [2]protocol.Handle
	var sessBest [2]time.Duration
	for i, call := range []func(string, any, any) error{callNative, callWasm} {
		sessBest[i] = -1
		for range *rounds {
			var info protocol.SessionInfo
			var err error
			d := cpuTime(func() { err = call(protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &info) })
			if err != nil {
				return fmt.Errorf("bench edge: session_new: %w", err)
			}
			sessBest[i] = minDur(sessBest[i], d)
			if handles[i] != 0 {
				if err := call(protocol.FnRelease, &protocol.HandleRequest{Handle: handles[i]}, &protocol.Empty{}); err != nil {
					return fmt.Errorf("bench edge: release: %w", err)
				}
			}
			handles[i] = info.Handle
		}
	}
	tokShape := fmt.Sprintf("%s, %d bytes", filepath.Base(*tokPath), len(tj))
	add(bench.Result{Name: "edge.session_new.native", Shape: tokShape, Value: ms(sessBest[0]), Unit: "ms"})
	add(bench.Result{Name: "edge.session_new.wazero", Shape: tokShape, Value: ms(sessBest[1]), Unit: "ms", Baseline: ms(sessBest[0]), BaselineName: "native", Note: "ratio: times slower than native"})

	// A session's own instance started from a template's snapshot (what the
	// host does per request) instead of loading tokenizer.json again.
	tmpl, first, err := mod.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) error {
		return in.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &protocol.SessionInfo{})
	})
	if err != nil {
		return fmt.Errorf("bench edge: template: %w", err)
	}
	first.Close(ctx)
	if tmpl.Snapshotted() {
		best := time.Duration(-1)
		for range *rounds {
			t0 := time.Now()
			si, err := tmpl.Instantiate(ctx)
			if err != nil {
				return fmt.Errorf("bench edge: instance from snapshot: %w", err)
			}
			best = minDur(best, time.Since(t0))
			si.Close(ctx)
		}
		add(bench.Result{Name: "edge.session_instance.snapshot", Shape: tokShape, Value: ms(best), Unit: "ms", Baseline: ms(sessBest[1]), BaselineName: "session_new in wazero",
			Note: "per request: a fresh instance restored from a snapshot taken after session_new (wall time)"})
	}

	// Tokenizer throughput: natively, through the C tokenizer chained in
	// front of the Go edge (what the host runs), and in the Go edge itself.
	// Rounds alternate between the three, so that the machine's changes of
	// speed reach all of them alike.
	tmod, err := rt.CompileTokenizer(ctx, edgehost.TokenizerBuiltin)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	tin, err := tmod.Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	chain := edgehost.NewChain(tin, in)
	defer tin.Close(ctx)
	if err := chain.AttachTokenizer(ctx, handles[1]); err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	callChain := func(fn string, req, rep any) error { return chain.Invoke(ctx, fn, req, rep) }
	hf, hfNote := hfTokenizerMBps(*tokPath)
	corpusShape := fmt.Sprintf("%s, %d files, %d bytes", *corpusDir, len(texts), total)
	tokPaths := []struct {
		call   func(string, any, any) error
		handle protocol.Handle
	}{{callNative, handles[0]}, {callChain, handles[1]}, {callWasm, handles[1]}}
	tokBest := []time.Duration{-1, -1, -1}
	for range *rounds {
		for i, p := range tokPaths {
			var err error
			d := cpuTime(func() {
				for _, t := range texts {
					var rep protocol.IDsReply
					if err = p.call(protocol.FnTokenize, &protocol.TextRequest{Handle: p.handle, Text: t}, &rep); err != nil {
						return
					}
				}
			})
			if err != nil {
				return fmt.Errorf("bench edge: tokenize: %w", err)
			}
			tokBest[i] = minDur(tokBest[i], d)
		}
	}
	var tokMBps [3]float64
	for i, d := range tokBest {
		tokMBps[i] = float64(total) / d.Seconds() / 1e6
	}
	hfName := "HF tokenizers (1 thread)"
	add(bench.Result{Name: "edge.tokenize.native", Shape: corpusShape, Value: tokMBps[0], Unit: "MB/s", Baseline: hf, BaselineName: hfName, Note: hfNote})
	add(bench.Result{Name: "edge.tokenize.wazero", Shape: corpusShape, Value: tokMBps[1], Unit: "MB/s", Baseline: tokMBps[0], BaselineName: "native",
		Note: "the C tokenizer chained in front of the Go edge, as the host runs it"})
	add(bench.Result{Name: "edge.tokenize.wazero_go", Shape: corpusShape, Value: tokMBps[2], Unit: "MB/s", Baseline: tokMBps[0], BaselineName: "native",
		Note: "the Go edge's own tokenizer in wazero (browsers run this code)"})
	if hf > 0 {
		add(bench.Result{Name: "edge.tokenize.wazero_vs_hf", Shape: corpusShape, Value: tokMBps[1], Unit: "MB/s", Baseline: hf, BaselineName: hfName})
	}
	if hfNote != "" {
		notes = append(notes, hfNote)
	}

	// One top-p sampling step, on random logits (every token has weight)
	// and on a model-like distribution (a few hundred plausible tokens, a
	// long tail far below: sampler.PeakedLogits).
	const vocab = 129280
	rng := rand.New(rand.NewPCG(5, 5))
	random := make([]float32, vocab)
	for i := range random {
		random[i] = float32(rng.NormFloat64() * 3)
	}
	params := &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.95, Seed: 1}}
	// The C sampler the host puts in front of the Go edge by default.
	smod, err := rt.CompileSampler(ctx, edgehost.SamplerBuiltin)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	sin, err := smod.Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("bench edge: %w", err)
	}
	defer sin.Close(ctx)
	callC := func(fn string, req, rep any) error { return sin.Invoke(ctx, fn, req, rep) }
	for _, dist := range []struct {
		name, desc string
		logits     []float32
	}{
		{"", "random N(0,3)", random},
		{".peaked", "model-like (sampler.PeakedLogits)", sampler.PeakedLogits(vocab, 5)},
	} {
		var reqBuf []byte
		var stepUS [3]float64
		var picked [3][]int32
		calls := []func(string, any, any) error{callNative, callWasm, callC}
		var handles [3]protocol.Handle
		for i, call := range calls {
			var h protocol.HandleReply
			if err := call(protocol.FnSamplerNew, params, &h); err != nil {
				return fmt.Errorf("bench edge: sampler_new: %w", err)
			}
			handles[i] = h.Handle
		}
		// Rounds alternate between the three samplers, so that a slow
		// minute of the machine does not fall on one of them only.
		const steps = 20
		best := [3]time.Duration{-1, -1, -1}
		for range *rounds {
			for i, call := range calls {
				var err error
				d := cpuTime(func() {
					for range steps {
						// Encoded each step as the host's engine does (abiedge).
						reqBuf = protocol.AppendSampleRequestF32(reqBuf[:0], handles[i], dist.logits, nil)
						var rep protocol.SampleReply
						if err = call(protocol.FnSample, protocol.Raw(reqBuf), &rep); err != nil {
							return
						}
						picked[i] = append(picked[i], rep.ID)
					}
				})
				if err != nil {
					return fmt.Errorf("bench edge: sample: %w", err)
				}
				best[i] = minDur(best[i], d/steps)
			}
		}
		for i := range stepUS {
			stepUS[i] = float64(best[i].Nanoseconds()) / 1e3
		}
		// The three samplers share the seed: they must pick the same tokens.
		for i := 1; i < 3; i++ {
			if !slices.Equal(picked[0], picked[i]) {
				return fmt.Errorf("bench edge: sampler %d picked %v, native Go %v", i, picked[i], picked[0])
			}
		}
		sampShape := fmt.Sprintf("%d f32 logits %s, T=0.8, top-p 0.95, through the ABI", vocab, dist.desc)
		add(bench.Result{Name: "edge.sample.native" + dist.name, Shape: sampShape, Value: stepUS[0], Unit: "us"})
		add(bench.Result{Name: "edge.sample.wazero_go" + dist.name, Shape: sampShape, Value: stepUS[1], Unit: "us", Baseline: stepUS[0], BaselineName: "native Go", Note: "the Go edge's sampler in wazero; ratio: times slower than native"})
		add(bench.Result{Name: "edge.sample.wazero" + dist.name, Shape: sampShape, Value: stepUS[2], Unit: "us", Baseline: stepUS[0], BaselineName: "native Go",
			Note: "what the host runs: the embedded C sampler in wazero (same tokens); ratio: times slower than native"})
	}

	if *js {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Printf("%-28s %10s %-6s %10s %8s  %s\n", "name", "value", "unit", "baseline", "ratio", "shape / baseline")
	for _, r := range results {
		base, ratio := "-", "-"
		if r.Baseline > 0 {
			base, ratio = fmt.Sprintf("%.3g", r.Baseline), fmt.Sprintf("%.3g", r.Ratio)
		}
		desc := r.Shape
		if r.BaselineName != "" {
			desc += " / " + r.BaselineName
		}
		fmt.Printf("%-28s %10.4g %-6s %10s %8s  %s\n", r.Name, r.Value, r.Unit, base, ratio, desc)
	}
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	return nil
}

// readCorpus returns the .txt files of dir in name order and their total size.
func readCorpus(dir string) ([]string, int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		return nil, 0, fmt.Errorf("no .txt files under %s: %v", dir, err)
	}
	slices.Sort(files)
	var texts []string
	total := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, 0, err
		}
		texts = append(texts, string(b))
		total += len(b)
	}
	return texts, total, nil
}

// hfLine matches bench_hf.py's output line for the DeepSeek tokenizer.
var hfLine = regexp.MustCompile(`deepseek_v3: [0-9.]+ MB/s wall, ([0-9.]+) MB/s per CPU-second`)

// hfTokenizerMBps runs tools/tokenizer/bench_hf.py (Hugging Face
// tokenizers, single-threaded, CPU-time MB/s) with build/tokvenv's Python
// if it exists, else python3 if it can import tokenizers. It returns 0 and
// a note saying how to get the baseline when neither works. The script
// reads build/tokenizer/deepseek_v3.json, so the figure is only reported
// for that tokenizer.
func hfTokenizerMBps(tokPath string) (float64, string) {
	const how = "HF tokenizers baseline unavailable: python3 -m venv build/tokvenv && build/tokvenv/bin/pip install tokenizers==0.23.3, then rerun"
	if filepath.Base(tokPath) != "deepseek_v3.json" {
		return 0, "HF tokenizers baseline is only measured for build/tokenizer/deepseek_v3.json"
	}
	py := filepath.Join("build", "tokvenv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		py = "python3"
		if exec.Command(py, "-c", "import tokenizers").Run() != nil {
			return 0, how
		}
	}
	out, err := exec.Command(py, filepath.Join("tools", "tokenizer", "bench_hf.py"), "3").Output()
	if err != nil {
		return 0, fmt.Sprintf("%s (bench_hf.py failed: %v)", how, err)
	}
	m := hfLine.FindSubmatch(out)
	if m == nil {
		return 0, "bench_hf.py printed no deepseek_v3 figure"
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, err.Error()
	}
	return v, ""
}

// cpuTime returns the process CPU time (user + system) f takes; wazero
// runs guest code on the calling goroutine, so this counts the guest.
func cpuTime(f func()) time.Duration {
	t0 := processCPU()
	f()
	return processCPU() - t0
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func minDur(a, b time.Duration) time.Duration {
	if a < 0 || b < a {
		return b
	}
	return a
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
