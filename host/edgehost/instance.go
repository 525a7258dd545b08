package edgehost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgeseek/edgeseek/protocol"
)

// Instance is one session's instance of a Module. Calls are serialized.
// After a failure (trap, deadline, exit, out of memory) the instance is
// closed and every later call returns the same error.
type Instance struct {
	m      *Module
	mu     sync.Mutex
	mod    api.Module
	alloc  api.Function
	free   api.Function
	fns    map[string]api.Function
	stderr *headBuffer
	failed error
	// spareTo, when set, is the template that takes the instance's
	// module back on Close (Template.KeepSpares).
	spareTo *Template
}

// Instantiate starts a fresh instance: no filesystem, network, environment
// or arguments; _initialize (Go reactors) runs first when exported; the
// ABI version must equal protocol.ABIVersion.
func (m *Module) Instantiate(ctx context.Context) (*Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, m.r.initTimeout)
	defer cancel()
	stderr := &headBuffer{max: 1024}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStderr(stderr).
		WithStartFunctions("_initialize")
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("edgehost: instantiate %s: %w", m.name, classify(ctx, err, stderr, m.r.initTimeout))
	}
	return m.wrap(ctx, mod, stderr)
}

// wrap makes an Instance of a fresh module instance and checks its ABI
// version (closing it on failure).
func (m *Module) wrap(ctx context.Context, mod api.Module, stderr *headBuffer) (*Instance, error) {
	in := &Instance{
		m:      m,
		mod:    mod,
		alloc:  mod.ExportedFunction("edge_alloc"),
		free:   mod.ExportedFunction("edge_free"),
		fns:    map[string]api.Function{},
		stderr: stderr,
	}
	for _, fn := range m.fns {
		in.fns[fn] = mod.ExportedFunction(fn)
	}
	if err := in.checkVersion(ctx); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	return in, nil
}

// checkVersion calls edge_abi_version and compares it with the host's.
func (in *Instance) checkVersion(ctx context.Context) error {
	res, err := in.mod.ExportedFunction("edge_abi_version").Call(ctx)
	if err != nil {
		return fmt.Errorf("edgehost: %s: edge_abi_version: %w", in.m.name, classify(ctx, err, in.stderr, in.m.r.initTimeout))
	}
	if v := uint32(res[0]); v != protocol.ABIVersion {
		return fmt.Errorf("edgehost: %s speaks ABI version %d, the host %d: %w", in.m.name, v, protocol.ABIVersion, ErrABI)
	}
	return nil
}

// MemoryBytes returns the size of the instance's linear memory.
func (in *Instance) MemoryBytes() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if mem := in.mod.Memory(); mem != nil {
		return int(mem.Size())
	}
	return 0
}

// Module returns the module the instance runs.
func (in *Instance) Module() *Module { return in.m }

// Has reports whether the instance's module exports ABI function fn.
func (in *Instance) Has(fn string) bool { return in.fns[fn] != nil }

// Err returns the failure that closed the instance, or nil.
func (in *Instance) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.failed
}

// Call runs ABI function fn on a msgpack request and returns the raw
// response (status byte + msgpack). A guest failure closes the instance
// and returns an error wrapping ErrModuleFailed.
func (in *Instance) Call(ctx context.Context, fn string, req []byte) ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.failed != nil {
		return nil, in.failed
	}
	f := in.fns[fn]
	if f == nil {
		return nil, fmt.Errorf("edgehost: %s: %s: %w", in.m.name, fn, ErrNotExported)
	}
	if len(req) > protocol.MaxFrameSize {
		return nil, fmt.Errorf("edgehost: %s request of %d bytes: %w", fn, len(req), protocol.ErrOversize)
	}
	timeout := in.m.r.timeout
	if fn == protocol.FnSessionNew || fn == protocol.FnEngramNew {
		timeout = in.m.r.loadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := in.call(ctx, f, req, timeout)
	if err != nil {
		if mem := in.mod.Memory(); mem != nil {
			err = fmt.Errorf("%w (memory: %d of %d pages)", err, mem.Size()/65536, in.m.r.limitPages)
		}
		in.failed = fmt.Errorf("edgehost: %s: %s: %w", in.m.name, fn, err)
		in.mod.Close(context.Background())
		return nil, in.failed
	}
	return resp, nil
}

// poll is the host function instrumented modules call every pollInterval
// loop iterations (see instrument): it returns 1, making the guest trap,
// once the context of the current call is done. ctx is the context given
// to the exported function's Call.
func poll(ctx context.Context, stack []uint64) {
	stack[0] = 0
	if ctx.Err() != nil {
		stack[0] = 1
	}
}

// call does the alloc/write/call/read/free sequence of wasm/ABI.md.
func (in *Instance) call(ctx context.Context, f api.Function, req []byte, timeout time.Duration) ([]byte, error) {
	mem := in.mod.Memory()
	res, err := in.alloc.Call(ctx, uint64(len(req)))
	if err != nil {
		return nil, classify(ctx, err, in.stderr, timeout)
	}
	ptr := uint32(res[0])
	if ptr == 0 {
		return nil, fmt.Errorf("%w: edge_alloc(%d) returned 0 (out of memory)", ErrModuleFailed, len(req))
	}
	if !mem.Write(ptr, req) {
		return nil, fmt.Errorf("%w: edge_alloc(%d) returned %#x, outside memory", ErrModuleFailed, len(req), ptr)
	}
	res, err = f.Call(ctx, uint64(ptr), uint64(len(req)))
	if err != nil {
		return nil, classify(ctx, err, in.stderr, timeout)
	}
	if _, err := in.free.Call(ctx, uint64(ptr)); err != nil {
		return nil, classify(ctx, err, in.stderr, timeout)
	}
	rp, rn := uint32(res[0]>>32), uint32(res[0])
	if rp == 0 {
		return nil, fmt.Errorf("%w: no response (out of memory?)", ErrModuleFailed)
	}
	if rn == 0 || rn > protocol.MaxFrameSize+1 {
		return nil, fmt.Errorf("%w: response length %d out of range", ErrModuleFailed, rn)
	}
	view, ok := mem.Read(rp, rn)
	if !ok {
		return nil, fmt.Errorf("%w: response [%#x, +%d) outside memory", ErrModuleFailed, rp, rn)
	}
	resp := append([]byte(nil), view...)
	if _, err := in.free.Call(ctx, uint64(rp)); err != nil {
		return nil, classify(ctx, err, in.stderr, timeout)
	}
	return resp, nil
}

// Invoke marshals req, calls fn and decodes the reply into rep. An error
// answered by the module comes back as a *protocol.Error (the instance
// stays usable); a guest failure wraps ErrModuleFailed.
func (in *Instance) Invoke(ctx context.Context, fn string, req, rep any) error {
	b, err := protocol.Marshal(req)
	if err != nil {
		return fmt.Errorf("edgehost: %s: %w", fn, err)
	}
	resp, err := in.Call(ctx, fn, b)
	if err != nil {
		return err
	}
	if err := protocol.ParseABIResponse(resp, rep); err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return pe
		}
		return fmt.Errorf("edgehost: %s: %s reply: %w", in.m.name, fn, err)
	}
	return nil
}

// Close ends the instance.
func (in *Instance) Close(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	healthy := in.failed == nil
	if healthy {
		in.failed = fmt.Errorf("edgehost: %s: instance closed: %w", in.m.name, ErrModuleFailed)
	}
	if healthy && in.spareTo != nil && in.spareTo.takeSpare(in.mod, in.stderr) {
		return nil // the template resets it before it serves anyone else
	}
	return in.mod.Close(ctx)
}

// classify turns a wazero call error into a clear ErrModuleFailed error.
func classify(ctx context.Context, err error, stderr *headBuffer, timeout time.Duration) error {
	var exit *sys.ExitError
	tail := stderr.String()
	if tail != "" {
		tail = "; stderr: " + tail
	}
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded,
		errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: exceeded its %v deadline", ErrModuleFailed, timeout)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled,
		errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%w: call cancelled: %w", ErrModuleFailed, context.Canceled)
	case errors.As(err, &exit):
		return fmt.Errorf("%w: exited with code %d%s", ErrModuleFailed, exit.ExitCode(), tail)
	}
	return fmt.Errorf("%w: trapped: %v%s", ErrModuleFailed, err, tail)
}

// headBuffer keeps the first max bytes written to it: a Go guest prints
// its fatal error first and goroutine dumps after.
type headBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write implements io.Writer.
func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Reset forgets the kept bytes (a kept module serving a new instance).
func (h *headBuffer) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b = h.b[:0]
}

// String returns the kept bytes.
func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.b)
}
