package edgehost

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Per-session instances without per-session start-up cost.
//
// Every session gets its own instance, so a guest failure ends one session
// only. But preparing an instance can be slow: the Go edge parses a 7.8 MB
// tokenizer.json in about a second under wazero. A Template does that once
// and keeps a Snapshot of the prepared instance — the whole state of a
// WebAssembly instance is its linear memory plus its mutable globals (the
// table and everything else are fixed by the module) — and starts each
// session's instance by copying that state into a fresh instantiation of
// the same compiled module, without running _initialize again. Copying
// tens of MB costs milliseconds.
//
// A snapshot needs the mutable globals exported; instrument exports them
// (globalExportPrefix). Modules that could not be instrumented are
// prepared from scratch for every session instead.

// ErrNoSnapshot is returned by Snapshot for modules whose state cannot be
// captured (modules that were not instrumented).
var ErrNoSnapshot = errors.New("edgehost: module state cannot be snapshotted")

// Snapshot is the state of an instance between calls: its linear memory and
// its mutable globals. It is immutable and may seed any number of
// instances of the same module.
type Snapshot struct {
	m       *Module
	memory  []byte
	globals map[string]uint64
}

// Bytes is the size of the snapshot's memory image.
func (s *Snapshot) Bytes() int { return len(s.memory) }

// Snapshot captures the instance's state. The instance stays usable.
func (in *Instance) Snapshot() (*Snapshot, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.failed != nil {
		return nil, in.failed
	}
	if !in.m.interruptible {
		return nil, fmt.Errorf("%w: %s was not instrumented", ErrNoSnapshot, in.m.name)
	}
	mem := in.mod.Memory()
	view, ok := mem.Read(0, mem.Size())
	if !ok {
		return nil, fmt.Errorf("edgehost: %s: reading %d bytes of memory failed", in.m.name, mem.Size())
	}
	s := &Snapshot{m: in.m, memory: append([]byte(nil), view...), globals: map[string]uint64{}}
	for _, name := range in.m.globals {
		g := in.mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("edgehost: %s: instrumented global %s is not exported", in.m.name, name)
		}
		s.globals[name] = g.Get()
	}
	return s, nil
}

// InstantiateFrom starts an instance in the state s captured: a fresh
// instantiation (memory capped, no filesystem, network, environment or
// arguments, _initialize not run) whose memory and globals are then
// overwritten with the snapshot's. The ABI version is checked as in
// Instantiate, which also proves the restored state runs.
func (m *Module) InstantiateFrom(ctx context.Context, s *Snapshot) (*Instance, error) {
	if s.m != m {
		return nil, fmt.Errorf("edgehost: a snapshot of %s cannot seed an instance of %s", s.m.name, m.name)
	}
	ctx, cancel := context.WithTimeout(ctx, m.r.initTimeout)
	defer cancel()
	stderr := &headBuffer{max: 1024}
	cfg := wazero.NewModuleConfig().WithName("").WithStderr(stderr).WithStartFunctions()
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("edgehost: instantiate %s: %w", m.name, classify(ctx, err, stderr, m.r.initTimeout))
	}
	fail := func(format string, args ...any) (*Instance, error) {
		mod.Close(ctx)
		return nil, fmt.Errorf("edgehost: restore %s: "+format, append([]any{m.name}, args...)...)
	}
	mem := mod.Memory()
	if have, want := mem.Size(), uint32(len(s.memory)); have < want {
		if _, ok := mem.Grow((want - have) / 65536); !ok {
			return fail("cannot grow memory from %d to %d bytes", have, want)
		}
	}
	if mem.Size() != uint32(len(s.memory)) || !mem.Write(0, s.memory) {
		return fail("memory is %d bytes, the snapshot %d", mem.Size(), len(s.memory))
	}
	if err := s.setGlobals(mod); err != nil {
		return fail("%v", err)
	}
	return m.wrap(ctx, mod, stderr)
}

// setGlobals gives mod's mutable globals the snapshot's values.
func (s *Snapshot) setGlobals(mod api.Module) error {
	for name, v := range s.globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %s is not an exported mutable global", name)
		}
		g.Set(v)
	}
	return nil
}

// Template prepares instances of one module for sessions: it runs setup
// once, snapshots the result, and starts every session's instance from the
// snapshot (or, for modules that cannot be snapshotted, from scratch with
// setup run again). It is safe for concurrent use.
type Template struct {
	m     *Module
	setup func(context.Context, *Instance) error
	snap  *Snapshot // nil: run setup for every instance

	mu        sync.Mutex
	maxSpares int
	spares    []spare
}

// spare is the module of a closed healthy instance, kept to be reset to
// the snapshot and wrapped again (KeepSpares).
type spare struct {
	mod    api.Module
	stderr *headBuffer
}

// NewTemplate instantiates m, runs setup on it (for example loading the
// tokenizer) and keeps its snapshot. The prepared instance is returned
// too, for the caller to use or close.
func (m *Module) NewTemplate(ctx context.Context, setup func(context.Context, *Instance) error) (*Template, *Instance, error) {
	in, err := m.Instantiate(ctx)
	if err != nil {
		return nil, nil, err
	}
	if setup != nil {
		if err := setup(ctx, in); err != nil {
			in.Close(ctx)
			return nil, nil, err
		}
	}
	t := &Template{m: m, setup: setup}
	snap, err := in.Snapshot()
	switch {
	case err == nil:
		t.snap = snap
	case !errors.Is(err, ErrNoSnapshot):
		in.Close(ctx)
		return nil, nil, err
	}
	return t, in, nil
}

// Module returns the template's module.
func (t *Template) Module() *Module { return t.m }

// Snapshotted reports whether instances start from a snapshot (false:
// setup runs for each).
func (t *Template) Snapshotted() bool { return t.snap != nil }

// KeepSpares makes the template keep the modules of up to n closed
// instances and start later instances by resetting one of them to the
// snapshot, instead of instantiating afresh.
//
// Why: a fresh instance's memory is new to the process, and every page of
// it faults on first touch. On the virtual machines we measure on, the C
// sampler's first step in a fresh instance took 6–15 ms against 1 ms for
// the next (its scratch buffers, 6 MiB for a 129,280-entry vocabulary, are
// touched for the first time), and restoring the Go edge's 66 MB snapshot
// into fresh memory ~15 ms. A kept module's pages are resident; the reset
// writes the snapshot's memory and globals over it, so the instance starts
// in exactly the state a fresh one would (the whole state of an instance is
// its memory and its mutable globals, see Snapshot), and one session's data
// never reaches the next.
//
// Only healthy instances (no trap, no deadline) whose memory did not grow
// past the snapshot's size are kept: memory cannot shrink, and a larger one
// would not be the snapshot's state. Each kept module holds its memory
// (Snapshot.Bytes), so n bounds what the template retains. Without a
// snapshot the template keeps nothing.
func (t *Template) KeepSpares(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.maxSpares = n
}

// SnapshotBytes is the size of the template's snapshot (0 without one):
// what each of its instances, and each kept spare, holds in memory at least.
func (t *Template) SnapshotBytes() int {
	if t.snap == nil {
		return 0
	}
	return t.snap.Bytes()
}

// Spares returns how many closed instances' modules the template keeps.
func (t *Template) Spares() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.spares)
}

// takeSpare keeps mod for reuse if the template has room and mod's memory
// is still the snapshot's size; it reports whether it did.
func (t *Template) takeSpare(mod api.Module, stderr *headBuffer) bool {
	if t.snap == nil || mod.Memory() == nil || mod.Memory().Size() != uint32(len(t.snap.memory)) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.spares) >= t.maxSpares {
		return false
	}
	t.spares = append(t.spares, spare{mod, stderr})
	return true
}

// fromSpare resets a kept module to the snapshot and wraps it, or returns
// nil when none is kept (or the reset failed, which closes that module).
func (t *Template) fromSpare(ctx context.Context) *Instance {
	t.mu.Lock()
	if len(t.spares) == 0 {
		t.mu.Unlock()
		return nil
	}
	sp := t.spares[len(t.spares)-1]
	t.spares = t.spares[:len(t.spares)-1]
	t.mu.Unlock()
	if !sp.mod.Memory().Write(0, t.snap.memory) || t.snap.setGlobals(sp.mod) != nil {
		sp.mod.Close(ctx)
		return nil
	}
	sp.stderr.Reset()
	in, err := t.m.wrap(ctx, sp.mod, sp.stderr)
	if err != nil {
		return nil // wrap closed it
	}
	in.spareTo = t
	return in
}

// Close closes the kept modules; the template stops keeping any.
func (t *Template) Close(ctx context.Context) {
	t.mu.Lock()
	spares := t.spares
	t.spares, t.maxSpares = nil, 0
	t.mu.Unlock()
	for _, sp := range spares {
		sp.mod.Close(ctx)
	}
}

// Instantiate returns a new prepared instance.
func (t *Template) Instantiate(ctx context.Context) (*Instance, error) {
	if t.snap != nil {
		if in := t.fromSpare(ctx); in != nil {
			return in, nil
		}
		in, err := t.m.InstantiateFrom(ctx, t.snap)
		if err == nil {
			in.spareTo = t
		}
		return in, err
	}
	in, err := t.m.Instantiate(ctx)
	if err != nil {
		return nil, err
	}
	if t.setup != nil {
		if err := t.setup(ctx, in); err != nil {
			in.Close(ctx)
			return nil, err
		}
	}
	return in, nil
}
