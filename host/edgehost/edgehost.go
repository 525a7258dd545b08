// Package edgehost runs edge modules (the WebAssembly ABI of wasm/ABI.md)
// in wazero: the embedded Go edge (built by wasm/build.sh) or a third-party
// module given with --edge FILE.wasm.
//
// A Runtime compiles each module once (with a compilation cache, on disk if
// asked) and instantiates it per session with no filesystem, network,
// environment or arguments, memory capped at Config.MemoryLimitPages and
// every call bounded by Config.CallTimeout or Config.LoadTimeout (wazero has no instruction fuel:
// modules are instrumented so that their loops poll the host every few thousand iterations
// and trap once the call's context is done, see interrupt.go; modules the instrumentation
// does not understand run with wazero's slower CloseOnContextDone). A module that traps, loops
// or runs out of memory fails its own Instance with an error wrapping
// ErrModuleFailed; other instances and the host are unaffected.
//
// The embedded modules are host/edgehost/edge.wasm (the Go edge),
// host/edgehost/sampler.wasm (the same sampler in C, wasm/plugins/sampler,
// which runs several times faster in wazero and gives the same tokens) and
// host/edgehost/tokenizer.wasm (the tokenizer's encoder in C,
// wasm/plugins/tokenizer, same ids, several times faster in wazero),
// copied there by wasm/build.sh: run `make` (or wasm/build.sh) before
// `go build` or `go test` of this package.
package edgehost

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgeseek/edgeseek/protocol"
)

//go:embed edge.wasm
var embedded []byte

//go:embed sampler.wasm
var embeddedSampler []byte

//go:embed tokenizer.wasm
var embeddedTokenizer []byte

// EmbeddedSampler returns the C sampler module compiled into the host: a
// module exporting only the sampling functions of the ABI, meant to be put
// in front of the Go edge in a Chain (see CompileSampler).
func EmbeddedSampler() []byte { return embeddedSampler }

// Embedded returns the Go edge module compiled into the host.
func Embedded() []byte { return embedded }

// Defaults of Config.
const (
	// DefaultMemoryLimitPages caps an instance at 1 GiB (64 KiB pages): the
	// Go edge with the full V4 tokenizer needs a few hundred MiB.
	DefaultMemoryLimitPages = 16384
	// DefaultCallTimeout bounds one ABI call; loading a tokenizer.json is
	// the slowest call.
	DefaultCallTimeout = 10 * time.Second
	// DefaultLoadTimeout bounds edge_session_new and edge_engram_new,
	// which parse the tokenizer.json and build the Engram canonical map:
	// with the real 128K-token DeepSeek tokenizer the Go edge needs about
	// 0.2 s natively and about 1 s under wazero (docs/PERF.md, "Edge").
	DefaultLoadTimeout = 2 * time.Minute
	// DefaultInstantiateTimeout bounds instantiation (the Go runtime and
	// package initialization run in _initialize).
	DefaultInstantiateTimeout = 30 * time.Second
)

// Errors matched with errors.Is.
var (
	// ErrModuleFailed wraps every trap, deadline, exit or memory failure of
	// an instance; the instance is closed and refuses further calls.
	ErrModuleFailed = errors.New("edge module failed")
	// ErrABI reports a module whose exports or version do not match the ABI.
	ErrABI = errors.New("edge module does not implement the ABI")
	// ErrNotExported reports a call to a function no module exports.
	ErrNotExported = errors.New("function not exported")
)

// Config configures a Runtime. The zero value uses the defaults.
type Config struct {
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB pages
	// (1..65536); 0 means DefaultMemoryLimitPages.
	MemoryLimitPages uint32
	// CallTimeout bounds each ABI call; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// LoadTimeout bounds edge_session_new and edge_engram_new; 0 means
	// DefaultLoadTimeout.
	LoadTimeout time.Duration
	// InstantiateTimeout bounds Instantiate; 0 means
	// DefaultInstantiateTimeout.
	InstantiateTimeout time.Duration
	// CacheDir, when set, keeps compiled modules on disk across runs.
	CacheDir string
	// Cache, when set, is used instead of a new cache (for sharing one
	// between runtimes); CacheDir is then ignored.
	Cache wazero.CompilationCache
	// CloseOnContextDone runs every module under wazero's
	// WithCloseOnContextDone instead of instrumenting it for deadlines
	// (see interrupt.go). Go-compiled edges run 2–3× slower that way; the
	// option exists to compare the two and as an escape hatch.
	CloseOnContextDone bool
}

// Runtime compiles and instantiates edge modules. It is safe for
// concurrent use.
type Runtime struct {
	// rt runs modules that instrument could rewrite: their deadlines are
	// enforced by polling the host (pollModule), so it does not close on
	// context done. safe (WithCloseOnContextDone) runs the others.
	rt          wazero.Runtime
	safe        wazero.Runtime
	cache       wazero.CompilationCache
	ownCache    bool
	timeout     time.Duration
	initTimeout time.Duration
	loadTimeout time.Duration
	limitPages  uint32
	// instrument enables the loop rewriting (not Config.CloseOnContextDone).
	instrument bool
}

// New returns a Runtime configured by c.
func New(ctx context.Context, c Config) (*Runtime, error) {
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if c.MemoryLimitPages > 65536 {
		return nil, fmt.Errorf("edgehost: memory limit %d pages > 65536", c.MemoryLimitPages)
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = DefaultLoadTimeout
	}
	if c.InstantiateTimeout <= 0 {
		c.InstantiateTimeout = DefaultInstantiateTimeout
	}
	r := &Runtime{cache: c.Cache, timeout: c.CallTimeout, initTimeout: c.InstantiateTimeout, loadTimeout: c.LoadTimeout, limitPages: c.MemoryLimitPages, instrument: !c.CloseOnContextDone}
	if r.cache == nil {
		r.ownCache = true
		if c.CacheDir != "" {
			cache, err := wazero.NewCompilationCacheWithDir(c.CacheDir)
			if err != nil {
				return nil, fmt.Errorf("edgehost: compilation cache in %s: %w", c.CacheDir, err)
			}
			r.cache = cache
		} else {
			r.cache = wazero.NewCompilationCache()
		}
	}
	base := wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithMemoryLimitPages(c.MemoryLimitPages)
	r.rt = wazero.NewRuntimeWithConfig(ctx, base)
	r.safe = wazero.NewRuntimeWithConfig(ctx, base.WithCloseOnContextDone(true))
	// Go's wasip1 runtime imports WASI; the module config below grants it
	// no files, environment, arguments or real clocks.
	for _, rt := range []wazero.Runtime{r.rt, r.safe} {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			r.rt.Close(ctx)
			r.safe.Close(ctx)
			return nil, fmt.Errorf("edgehost: instantiate WASI: %w", err)
		}
	}
	_, err := r.rt.NewHostModuleBuilder(pollModule).
		NewFunctionBuilder().
		WithGoFunction(api.GoFunc(poll), nil, []api.ValueType{api.ValueTypeI32}).
		Export(pollName).
		Instantiate(ctx)
	if err != nil {
		r.rt.Close(ctx)
		r.safe.Close(ctx)
		return nil, fmt.Errorf("edgehost: instantiate %s: %w", pollModule, err)
	}
	return r, nil
}

// Close releases the runtime, its modules and instances, and the cache it
// created.
func (r *Runtime) Close(ctx context.Context) error {
	err := errors.Join(r.rt.Close(ctx), r.safe.Close(ctx))
	if r.ownCache {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// Module is a compiled edge module.
type Module struct {
	r        *Runtime
	rt       wazero.Runtime // r.rt when interruptible, else r.safe
	name     string
	compiled wazero.CompiledModule
	fns      []string
	// interruptible: the module was instrumented (see instrument) and
	// polls the host for its deadline.
	interruptible bool
	// globals are the export names of the module's mutable globals
	// (instrumented modules only), for snapshots.
	globals []string
}

// Compile validates and compiles a module; name identifies it in errors.
// The module must export memory, edge_abi_version, edge_alloc and
// edge_free, and any subset of the ABI functions (protocol.Functions) with
// the signature (i32, i32) → i64.
//
// Modules are instrumented for cheap deadlines when possible (see
// instrument); the others, and all with Config.CloseOnContextDone, run with
// wazero's CloseOnContextDone, which makes loops several times slower.
func (r *Runtime) Compile(ctx context.Context, name string, wasm []byte) (*Module, error) {
	rt, interruptible := r.safe, false
	var globals []string
	if r.instrument {
		if iw, g, err := instrumentModule(wasm); err == nil {
			rt, wasm, interruptible, globals = r.rt, iw, true, g
		}
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("edgehost: compile %s: %w", name, err)
	}
	m := &Module{r: r, rt: rt, name: name, compiled: cm, interruptible: interruptible, globals: globals}
	if err := m.check(); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	return m, nil
}

// CompileFile compiles the module in a file (the --edge flag).
func (r *Runtime) CompileFile(ctx context.Context, path string) (*Module, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edgehost: %w", err)
	}
	return r.Compile(ctx, path, b)
}

// CompileEdge compiles the module chosen by an --edge flag: the file at
// path, or the embedded Go edge when path is empty.
func (r *Runtime) CompileEdge(ctx context.Context, path string) (*Module, error) {
	if path == "" {
		return r.CompileEmbedded(ctx)
	}
	return r.CompileFile(ctx, path)
}

// The --sampler flag's named values (anything else is a file).
const (
	// SamplerBuiltin is the embedded C sampler (wasm/plugins/sampler).
	SamplerBuiltin = "builtin"
	// SamplerEdge leaves sampling to the edge module itself.
	SamplerEdge = "edge"
)

// CompileSampler compiles the module chosen by a --sampler flag: the
// embedded C sampler for SamplerBuiltin or an empty choice, nil (no module:
// the edge module samples) for SamplerEdge, otherwise the sampler plugin in
// the file choice names. The module must export edge_sampler_new and
// edge_sample.
func (r *Runtime) CompileSampler(ctx context.Context, choice string) (*Module, error) {
	return r.compilePlugin(ctx, choice, "sampler", embeddedSampler, protocol.FnSamplerNew, protocol.FnSample)
}

// Tokenizer plugin choices for CompileTokenizer besides a file path.
const (
	// TokenizerBuiltin is the embedded C tokenizer (wasm/plugins/tokenizer).
	TokenizerBuiltin = "builtin"
	// TokenizerEdge leaves tokenizing to the edge module itself.
	TokenizerEdge = "edge"
)

// CompileTokenizer compiles a tokenizer plugin: the embedded C tokenizer
// for TokenizerBuiltin or an empty choice, nil (no module: the edge
// tokenizes) for TokenizerEdge, else the module at that path. A tokenizer
// plugin exports edge_tokenizer_attach and edge_tokenize (and may export
// edge_release), nothing else of the ABI: it goes in front of the edge in a
// Chain (see Chain.AttachTokenizer).
func (r *Runtime) CompileTokenizer(ctx context.Context, choice string) (*Module, error) {
	return r.compilePlugin(ctx, choice, "tokenizer", embeddedTokenizer, protocol.FnTokenizerAttach, protocol.FnTokenize)
}

// compilePlugin compiles a plugin of kind what: none for "edge", the
// embedded build for "builtin" or "", else the file choice names. It must
// export fn1 and fn2 and no ABI function but those and edge_release: it
// goes in front of the edge in a Chain, where any other function it
// exported would take that function (and its handles) from the edge.
func (r *Runtime) compilePlugin(ctx context.Context, choice, what string, embedded []byte, fn1, fn2 string) (*Module, error) {
	var m *Module
	var err error
	switch choice {
	case "edge": // SamplerEdge, TokenizerEdge
		return nil, nil
	case "", "builtin": // SamplerBuiltin, TokenizerBuiltin
		if len(embedded) < 8 {
			return nil, fmt.Errorf("edgehost: embedded %s.wasm is a placeholder: run wasm/build.sh", what)
		}
		m, err = r.Compile(ctx, "embedded "+what, embedded)
	default:
		m, err = r.CompileFile(ctx, choice)
	}
	if err != nil {
		return nil, err
	}
	if !m.Has(fn1) || !m.Has(fn2) {
		m.Close(ctx)
		return nil, fmt.Errorf("edgehost: %s module %s must export %s and %s", what, m.name, fn1, fn2)
	}
	for _, fn := range m.Functions() {
		if fn != fn1 && fn != fn2 && fn != protocol.FnRelease {
			m.Close(ctx)
			return nil, fmt.Errorf("edgehost: %s module %s also exports %s: a %s plugin exports only %s, %s and %s (a whole edge goes with --edge)",
				what, m.name, fn, what, fn1, fn2, protocol.FnRelease)
		}
	}
	return m, nil
}

// EmbeddedTokenizer returns the bytes of the embedded C tokenizer module.
func EmbeddedTokenizer() []byte { return embeddedTokenizer }

// CompileEmbedded compiles the embedded Go edge module.
func (r *Runtime) CompileEmbedded(ctx context.Context) (*Module, error) {
	if len(embedded) < 8 {
		return nil, errors.New("edgehost: embedded edge.wasm is a placeholder: run wasm/build.sh")
	}
	return r.Compile(ctx, "embedded edge", embedded)
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func sig(d api.FunctionDefinition, params, results []api.ValueType) bool {
	return slices.Equal(d.ParamTypes(), params) && slices.Equal(d.ResultTypes(), results)
}

func (m *Module) check() error {
	if _, ok := m.compiled.ExportedMemories()["memory"]; !ok {
		return fmt.Errorf("edgehost: %s exports no memory named \"memory\": %w", m.name, ErrABI)
	}
	exp := m.compiled.ExportedFunctions()
	required := []struct {
		name            string
		params, results []api.ValueType
	}{
		{"edge_abi_version", nil, []api.ValueType{i32}},
		{"edge_alloc", []api.ValueType{i32}, []api.ValueType{i32}},
		{"edge_free", []api.ValueType{i32}, nil},
	}
	for _, f := range required {
		d, ok := exp[f.name]
		if !ok || !sig(d, f.params, f.results) {
			return fmt.Errorf("edgehost: %s: export %s missing or of the wrong type: %w", m.name, f.name, ErrABI)
		}
	}
	for _, fn := range protocol.Functions {
		d, ok := exp[fn]
		if !ok {
			continue
		}
		if !sig(d, []api.ValueType{i32, i32}, []api.ValueType{i64}) {
			return fmt.Errorf("edgehost: %s: export %s must be (i32, i32) -> i64: %w", m.name, fn, ErrABI)
		}
		m.fns = append(m.fns, fn)
	}
	if len(m.fns) == 0 {
		return fmt.Errorf("edgehost: %s exports no ABI function: %w", m.name, ErrABI)
	}
	sort.Strings(m.fns)
	return nil
}

// Name returns the name given to Compile.
func (m *Module) Name() string { return m.name }

// Functions returns the ABI functions the module exports, sorted.
func (m *Module) Functions() []string { return slices.Clone(m.fns) }

// Has reports whether the module exports ABI function fn.
func (m *Module) Has(fn string) bool {
	_, ok := slices.BinarySearch(m.fns, fn)
	return ok
}

// Interruptible reports whether the module's calls are bounded by the
// instrumented poll (true for the Go edge) rather than by wazero's
// CloseOnContextDone.
func (m *Module) Interruptible() bool { return m.interruptible }

// Close releases the compiled module (instances keep running).
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }
