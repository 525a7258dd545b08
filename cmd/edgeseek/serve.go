package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/abiedge"
	"github.com/edgeseek/edgeseek/host/server"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/playground"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/engram"
)

// hostFlags are the flags shared by serve and run.
type hostFlags struct {
	modelFlags
	edge        string
	sampler     string
	tokPlugin   string
	cacheBudget int64
	maxSessions int
	context     int
	chunk       int
	spares      int
}

func (f *hostFlags) register(fs *flag.FlagSet) {
	f.modelFlags.register(fs)
	fs.StringVar(&f.edge, "edge", "", "edge module (.wasm) to run instead of the embedded one")
	fs.StringVar(&f.sampler, "sampler", "", "who samples: builtin (the embedded C sampler, default with the embedded edge), edge (the edge module, default with --edge), or a sampler plugin (.wasm)")
	fs.StringVar(&f.tokPlugin, "tokenizer-plugin", "", "who tokenizes prompts: builtin (the embedded C tokenizer, default with the embedded edge), edge (the edge module, default with --edge), or a tokenizer plugin (.wasm)")
	fs.Int64Var(&f.cacheBudget, "cache-budget", 1<<30, "bytes of sequence caches the host may hold")
	fs.IntVar(&f.maxSessions, "max-sessions", 64, "sessions generating at once")
	fs.IntVar(&f.context, "context", 0, "context limit in tokens (0: the model's)")
	fs.IntVar(&f.chunk, "prefill-chunk", 64, "prefill chunk, in tokens, between other sessions' decode steps")
	fs.IntVar(&f.spares, "edge-spares", 2, "finished requests' edge module instances kept for the next (each holds the edge snapshot's memory; the sampler keeps 4× as many); 0 keeps none")
}

// logger is human-readable on a terminal and JSON otherwise.
func logger() zerolog.Logger {
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	}
	return zerolog.New(os.Stderr).With().Timestamp().Logger()
}

// host is everything a running model needs, closed in reverse order: the
// engine must stop before the checkpoint's memory mapping goes away.
type host struct {
	ck   *checkpoint.Checkpoint
	m    *model.Model
	rt   *edgehost.Runtime
	edge *abiedge.Edge
	eng  *engine.Engine
}

func (h *host) close() {
	ctx := context.Background()
	if h.eng != nil {
		h.eng.Close()
	}
	if h.edge != nil {
		h.edge.Close()
	}
	if h.rt != nil {
		h.rt.Close(ctx)
	}
	if h.ck != nil {
		h.ck.Close()
	}
}

// startHost opens the model (the embedded demo when --model is empty), the
// edge module in wazero, and the engine.
func startHost(f *hostFlags, log zerolog.Logger) (*host, error) {
	if f.dir == "" {
		dir, err := demoModelDir()
		if err != nil {
			return nil, err
		}
		f.dir = dir
	}
	h := &host{}
	var err error
	start := time.Now()
	if h.ck, err = checkpoint.Open(f.dir); err != nil {
		return nil, err
	}
	num := model.ReferenceNumerics
	if f.numerics == "float32" {
		num = model.Float32Numerics
	}
	be, err := openBackend(f.device, f.threads)
	if err != nil {
		h.close()
		return nil, err
	}
	h.m, err = model.Load(*h.ck.Config, h.ck, be, num, model.WithProgress(progressBar("loading "+filepath.Base(f.dir))))
	if err != nil {
		h.close()
		return nil, err
	}
	log.Info().Str("model", f.dir).Str("arch", string(h.m.Config.Arch)).Str("device", describeDevice(be)).
		Dur("load", time.Since(start)).Msg("model loaded")

	tokJSON, err := os.ReadFile(filepath.Join(f.dir, "tokenizer.json"))
	if err != nil {
		h.close()
		return nil, fmt.Errorf("the host needs the model's tokenizer.json: %w", err)
	}
	ctx := context.Background()
	cacheDir := ""
	if d, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(d, "edgeseek", "wazero")
	}
	if h.rt, err = edgehost.New(ctx, edgehost.Config{CacheDir: cacheDir}); err != nil {
		h.close()
		return nil, err
	}
	t0 := time.Now()
	mod, err := h.rt.CompileEdge(ctx, f.edge)
	if err != nil {
		h.close()
		return nil, err
	}
	// Every request gets its own instance, started from a snapshot of one
	// that has loaded the tokenizer (edgehost.Template).
	var info protocol.SessionInfo
	tmpl, first, err := mod.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) (err error) {
		info, err = abiedge.OpenSession(ctx, in, tokJSON, 2*time.Minute)
		return err
	})
	if err != nil {
		h.close()
		return nil, fmt.Errorf("edge module: %w", err)
	}
	// The embedded edge tokenizes and samples through C builds of its
	// tokenizer and sampler (same ids and tokens, several times faster in
	// wazero); a module given with --edge does both itself unless
	// --tokenizer-plugin or --sampler say otherwise.
	tokChoice, samplerChoice := f.tokPlugin, f.sampler
	if f.edge != "" {
		tokChoice, samplerChoice = orDefault(tokChoice, edgehost.TokenizerEdge), orDefault(samplerChoice, edgehost.SamplerEdge)
	}
	tmod, err := h.rt.CompileTokenizer(ctx, tokChoice)
	if err != nil {
		first.Close(ctx)
		h.close()
		return nil, err
	}
	var ttmpl *edgehost.Template
	if tmod != nil {
		ttmpl, err = abiedge.TokenizerTemplate(ctx, tmod, first, info.Handle)
		if err != nil {
			first.Close(ctx)
			h.close()
			return nil, err
		}
	}
	first.Close(ctx)
	smod, err := h.rt.CompileSampler(ctx, samplerChoice)
	if err != nil {
		h.close()
		return nil, err
	}
	// Instances of closed sessions are kept and reset to the snapshot for
	// the next ones (resident memory: no page faults on first touch).
	edgeSpares, samplerSpares := max(f.spares, 0), 4*max(f.spares, 0)
	tmpl.KeepSpares(edgeSpares)
	var stmpl *edgehost.Template
	spareBytes := int64(edgeSpares) * int64(tmpl.SnapshotBytes())
	if smod != nil {
		if stmpl, err = abiedge.SamplerTemplate(ctx, smod, h.m.Config.VocabSize); err != nil {
			h.close()
			return nil, fmt.Errorf("sampler module: %w", err)
		}
		stmpl.KeepSpares(samplerSpares)
		spareBytes += int64(samplerSpares) * int64(stmpl.SnapshotBytes())
	}
	// Prompts are encoded by the engine's shared instance, so only it gets
	// the tokenizer plugin; only requests' instances sample.
	own, spawn := abiedge.FromTemplate(tmpl, ttmpl), abiedge.FromTemplate(tmpl, stmpl)
	if h.edge, err = abiedge.NewSpawningFor(ctx, own, spawn, info, 2*time.Minute); err != nil {
		h.close()
		return nil, fmt.Errorf("edge module: %w", err)
	}
	var edge engine.Edge = h.edge
	t1 := time.Now()
	if probe, err := spawn(ctx); err == nil {
		probe.Close(ctx)
	}
	log.Info().Str("edge", orDefault(f.edge, "embedded")).Str("sampler", orDefault(samplerChoice, edgehost.SamplerBuiltin)).
		Str("tokenizer", orDefault(tokChoice, edgehost.TokenizerBuiltin)).Dur("start", time.Since(t0)).
		Bool("snapshot", tmpl.Snapshotted()).Dur("instance", time.Since(t1)).
		Int("snapshot_bytes", tmpl.SnapshotBytes()).Int64("spare_bytes_max", spareBytes).Msg("edge module ready")
	if cfg := h.m.Config; len(cfg.EngramLayers) > 0 {
		if edge, err = withEngram(h.edge, cfg, tokJSON); err != nil {
			h.close()
			return nil, err
		}
	}
	ecfg := engine.Config{CacheBudget: f.cacheBudget, MaxSessions: f.maxSessions, ContextLimit: f.context, PrefillChunk: f.chunk}
	if h.eng, err = engine.New(engine.NewModelRunner(h.m), edge, ecfg, log); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// engramEdge adds V4.1 Engram addressing (the edge's algorithm, run natively)
// to an edge whose module session does not expose it statelessly.
type engramEdge struct {
	engine.Edge
	a *engram.Addresser
}

func withEngram(e engine.Edge, cfg checkpoint.Config, tokJSON []byte) (engine.Edge, error) {
	a, err := newAddresser(cfg, tokJSON)
	if err != nil {
		return nil, err
	}
	return engramEdge{Edge: e, a: a}, nil
}

// NewSessionEdge implements engine.SessionEdges: the wrapped edge's
// per-request instances (the engine computes Engram rows with e itself).
func (e engramEdge) NewSessionEdge(ctx context.Context) (engine.SessionEdge, error) {
	if se, ok := e.Edge.(engine.SessionEdges); ok {
		return se.NewSessionEdge(ctx)
	}
	return sharedEdge{e.Edge}, nil
}

// sharedEdge is a request's view of an edge with no instances to give.
type sharedEdge struct{ engine.Edge }

func (sharedEdge) Close() {}

// EngramRows implements engine.EngramEdge.
func (e engramEdge) EngramRows(tokens []int, from int) ([][][]int64, error) {
	st := e.a.NewState()
	out := make([][][]int64, 0, len(tokens)-from)
	for i, t := range tokens {
		rows, err := st.Push(t, false)
		if err != nil {
			return nil, err
		}
		if i >= from {
			out = append(out, rows)
		}
	}
	return out, nil
}

// progressBar draws a one-line progress bar on a terminal.
func progressBar(label string) func(done, total int) {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func(int, int) {}
	}
	return func(done, total int) {
		const w = 30
		n := w * done / max(total, 1)
		fmt.Fprintf(os.Stderr, "\r%s [%s%s] %d/%d layers", label, strings.Repeat("#", n), strings.Repeat(" ", w-n), done, total)
		if done == total {
			fmt.Fprintln(os.Stderr)
		}
	}
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var hf hostFlags
	hf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	auth := fs.String("auth-token", "", "require this bearer token")
	name := fs.String("model-name", "edgeseek", "model name reported by the APIs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logger()
	h, err := startHost(&hf, log)
	if err != nil {
		return err
	}
	defer h.close()
	srv := server.New(server.Config{ModelName: *name, AuthToken: *auth}, h.eng, log)
	popt := playground.ForCheckpoint(h.ck)
	popt.ModelName = *name
	popt.ContextLimit = h.eng.ContextLimit()
	page := playground.Handler(popt)
	mux := http.NewServeMux()
	for _, p := range []string{"/ws", "/v1/", "/healthz", "/metrics"} {
		mux.Handle(p, srv)
	}
	mux.Handle("/", page)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	log.Info().Str("addr", "http://"+*addr+"/").Msg("serving: playground, /ws, /v1/completions, /v1/chat/completions, /v1/messages, /metrics")
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info().Msg("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}
	return nil
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var hf hostFlags
	hf.register(fs)
	prompt := fs.String("p", "", "prompt")
	chat := fs.Bool("chat", false, "encode the prompt as a user message of a chat")
	think := fs.Bool("think", false, "thinking mode (with --chat)")
	maxTok := fs.Int("max-tokens", 256, "tokens to generate at most")
	temp := fs.Float64("temperature", 1.0, "sampling temperature (0: greedy)")
	topP := fs.Float64("top-p", 1.0, "nucleus sampling mass")
	topK := fs.Int("top-k", 0, "keep the k most likely tokens (0: all)")
	seed := fs.Uint64("seed", 0, "sampling seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prompt == "" {
		return fmt.Errorf("-p is required")
	}
	log := logger().Level(zerolog.WarnLevel)
	h, err := startHost(&hf, log)
	if err != nil {
		return err
	}
	defer h.close()
	var ids []int
	edge := h.eng.Edge()
	if *chat {
		ids, err = edge.EncodeChat([]engine.Message{{Role: "user", Content: *prompt}}, engine.ChatOptions{Thinking: *think})
	} else {
		ids, err = edge.Encode(*prompt)
		if bos := h.m.Config.BOS; err == nil && (len(ids) == 0 || ids[0] != bos) {
			ids = append([]int{bos}, ids...)
		}
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := h.eng.Submit(ctx, engine.Request{Prompt: ids, MaxTokens: *maxTok,
		Sampling: engine.SamplerParams{Temperature: *temp, TopP: *topP, TopK: *topK, Seed: *seed}})
	if err != nil {
		return err
	}
	for ev := range st.Events {
		if ev.Text != "" {
			fmt.Print(ev.Text)
		}
		if r := ev.Result; r != nil {
			fmt.Println()
			if r.Err != nil {
				return r.Err
			}
			t := r.Timings
			fmt.Fprintf(os.Stderr, "%d prompt + %d generated tokens (%s); prefill %.1f tokens/s, decode %.1f tokens/s\n",
				r.Usage.PromptTokens, r.Usage.CompletionTokens, r.Finish, t.PrefillTokensPerSec, t.DecodeTokensPerSec)
		}
	}
	return nil
}
