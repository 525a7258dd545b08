package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/edgeseek/edgeseek/kernels"
)

// Options configures Open.
type Options struct {
	// Device is the CUDA device ordinal (0 for the first GPU).
	Device int
	// Arch overrides the compile target: "sm_90" (CUBIN) or "compute_90"
	// (PTX, finished by the driver's JIT). Empty: the device's own sm_XY,
	// falling back to PTX when this NVRTC cannot emit it.
	Arch string
	// TensorCores runs multi-row products (n > 8) with BF16, FP8 or FP4
	// weights on the bf16 tensor cores (sm_80+). Inputs are rounded to bf16,
	// which is exact for activations already rounded to FP8 (the model's
	// ActQuant) and otherwise costs about 3 significant digits. Off by default.
	TensorCores bool
}

// Info describes the device a Backend runs on.
type Info struct {
	Name          string // e.g. "NVIDIA H200"
	Memory        uint64 // total device memory in bytes
	Major, Minor  int    // compute capability
	SMs           int    // multiprocessors
	MemClockKHz   int    // peak memory clock
	BusWidth      int    // memory bus width in bits
	DriverVersion int    // e.g. 12040
	NVRTC         string // NVRTC version used to compile the kernels
	Target        string // architecture the kernels were compiled for
}

// ComputeCapability returns e.g. "9.0".
func (i Info) ComputeCapability() string { return fmt.Sprintf("%d.%d", i.Major, i.Minor) }

// PeakBandwidth is the theoretical memory bandwidth in bytes/s from the
// memory clock and bus width (double data rate); 0 if unknown.
func (i Info) PeakBandwidth() float64 {
	return 2 * float64(i.MemClockKHz) * 1e3 * float64(i.BusWidth) / 8
}

func (i Info) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %d SMs, %.1f GiB, driver %d, NVRTC %s, kernels %s)",
		i.Name, i.Major, i.Minor, i.SMs, float64(i.Memory)/(1<<30), i.DriverVersion, i.NVRTC, i.Target)
}

// Available reports whether a CUDA backend can be opened on this machine:
// nil, or an error saying why not (no driver, no device, no NVRTC). It does
// not create a context.
func Available() error {
	d, err := loadDriver()
	if err != nil {
		return err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.deviceCount(&n)); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("cuda: the driver reports no CUDA device")
	}
	if _, err := OpenCompiler(); err != nil {
		return err
	}
	return nil
}

// Backend runs the heavy operations on one GPU. It implements
// kernels.Backend; all methods are safe for concurrent use (calls are
// serialised on one stream).
type Backend struct {
	mu     sync.Mutex
	d      *driver
	nv     *Compiler
	dev    int32
	ctx    uintptr
	stream uintptr
	info   Info
	mods   []uintptr
	fns    map[string]uintptr

	weights map[weightKey]*devMatrix
	scratch map[string]*Buffer
	tables  map[tableKey]*Buffer
	rowsBuf []float32
	tc      bool
	err     error // sticky, from the methods without an error result
	closed  bool
}

var _ kernels.Backend = (*Backend)(nil)

// Open creates a context on the chosen device and compiles every embedded
// kernel module for it (a few seconds, once per process).
func Open(opts Options) (*Backend, error) {
	d, err := loadDriver()
	if err != nil {
		return nil, err
	}
	nv, err := OpenCompiler()
	if err != nil {
		return nil, err
	}
	b := &Backend{d: d, nv: nv, fns: map[string]uintptr{}, weights: map[weightKey]*devMatrix{}, scratch: map[string]*Buffer{}, tables: map[tableKey]*Buffer{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var n int32
	if err := d.check("cuDeviceGetCount", d.deviceCount(&n)); err != nil {
		return nil, err
	}
	if opts.Device < 0 || int32(opts.Device) >= n {
		return nil, fmt.Errorf("cuda: device %d requested, %d present", opts.Device, n)
	}
	if err := d.check("cuDeviceGet", d.deviceGet(&b.dev, int32(opts.Device))); err != nil {
		return nil, err
	}
	if err := b.readInfo(); err != nil {
		return nil, err
	}
	if err := d.check("cuDevicePrimaryCtxRetain", d.ctxRetain(&b.ctx, b.dev)); err != nil {
		return nil, err
	}
	if err := d.check("cuCtxSetCurrent", d.ctxSetCurrent(b.ctx)); err != nil {
		d.ctxRelease(b.dev)
		return nil, err
	}
	if err := d.check("cuStreamCreate", d.streamCreate(&b.stream, 1)); err != nil { // CU_STREAM_NON_BLOCKING
		d.ctxRelease(b.dev)
		return nil, err
	}
	if err := b.loadModules(opts.Arch); err != nil {
		b.closeLocked()
		return nil, err
	}
	if opts.TensorCores {
		if err := b.SetTensorCores(true); err != nil {
			b.closeLocked()
			return nil, err
		}
	}
	return b, nil
}

// SetTensorCores switches the tensor-core GEMM (see Options.TensorCores) on
// or off; it fails on devices older than sm_80.
func (b *Backend) SetTensorCores(on bool) error {
	if on && b.info.Major < 8 {
		return fmt.Errorf("cuda: tensor-core GEMM needs sm_80 or newer, %s is sm_%d%d", b.info.Name, b.info.Major, b.info.Minor)
	}
	b.mu.Lock()
	b.tc = on
	b.mu.Unlock()
	return nil
}

func (b *Backend) readInfo() error {
	d := b.d
	name := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.deviceName(&name[0], int32(len(name)), b.dev)); err != nil {
		return err
	}
	b.info.Name = strings.TrimRight(string(name), "\x00")
	if i := strings.IndexByte(b.info.Name, 0); i >= 0 {
		b.info.Name = b.info.Name[:i]
	}
	if err := d.check("cuDeviceTotalMem", d.totalMem(&b.info.Memory, b.dev)); err != nil {
		return err
	}
	attr := func(a int32) int {
		var v int32
		if d.attribute(&v, a, b.dev) != 0 {
			return 0
		}
		return int(v)
	}
	b.info.Major, b.info.Minor = attr(attrCCMajor), attr(attrCCMinor)
	b.info.SMs = attr(attrSMCount)
	b.info.MemClockKHz = attr(attrMemClockKHz)
	b.info.BusWidth = attr(attrBusWidth)
	var v int32
	if d.driverVersion(&v) == 0 {
		b.info.DriverVersion = int(v)
	}
	b.info.NVRTC = b.nv.Version()
	return nil
}

// targets lists the compile targets to try, best first.
func (b *Backend) targets(override string) []string {
	if override != "" {
		return []string{override}
	}
	cc := b.info.Major*10 + b.info.Minor
	out := []string{fmt.Sprintf("sm_%d", cc), fmt.Sprintf("compute_%d", cc)}
	// An NVRTC older than the GPU: the newest virtual architecture it knows,
	// which the driver JIT-compiles forward.
	best := 0
	for _, a := range b.nv.SupportedArchs() {
		if a <= cc && a > best {
			best = a
		}
	}
	if best > 0 && best != cc {
		out = append(out, fmt.Sprintf("compute_%d", best))
	}
	return out
}

func (b *Backend) loadModules(override string) error {
	var errs []error
	for _, target := range b.targets(override) {
		errs = errs[:0]
		ok := true
		for _, m := range Modules() {
			if err := b.loadModule(m, target); err != nil {
				errs = append(errs, err)
				ok = false
				break
			}
		}
		if ok {
			b.info.Target = target
			return nil
		}
		for _, mod := range b.mods {
			b.d.moduleUnload(mod)
		}
		b.mods = nil
	}
	return fmt.Errorf("cuda: no compile target worked for %s: %w", b.info.Name, errors.Join(errs...))
}

func (b *Backend) loadModule(name, target string) error {
	img, _, err := b.nv.Compile(name, target)
	if err != nil {
		return err
	}
	var mod uintptr
	if err := b.d.check("cuModuleLoadData("+name+"/"+target+")", b.d.moduleLoad(&mod, unsafe.Pointer(&img[0]))); err != nil {
		return err
	}
	runtime.KeepAlive(img)
	b.mods = append(b.mods, mod)
	ks, err := Kernels(name)
	if err != nil {
		return err
	}
	for _, k := range ks {
		var fn uintptr
		if err := b.d.check("cuModuleGetFunction("+k+")", b.d.moduleFunc(&fn, mod, cstr(k))); err != nil {
			return err
		}
		b.fns[k] = fn
	}
	return nil
}

// Info describes the device.
func (b *Backend) Info() Info { return b.info }

// Name implements kernels.Backend.
func (b *Backend) Name() string { return "cuda-" + strings.ReplaceAll(b.info.Name, " ", "-") }

// Err returns the first device error met by a method without an error
// result (MatMul, Attend), or nil. Once set, those methods return NaN.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close frees every device allocation, unloads the modules and releases the
// context. The Backend must not be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return b.closeLocked()
}

func (b *Backend) closeLocked() error {
	if b.closed {
		return nil
	}
	b.closed = true
	d := b.d
	var errs []error
	if d.ctxSetCurrent(b.ctx) == 0 {
		if b.stream != 0 {
			errs = append(errs, d.check("cuStreamSynchronize", d.streamSync(b.stream)))
		}
		for _, w := range b.weights {
			errs = append(errs, w.free(d))
		}
		for _, s := range b.scratch {
			errs = append(errs, d.check("cuMemFree", d.memFree(s.ptr)))
		}
		for _, s := range b.tables {
			errs = append(errs, d.check("cuMemFree", d.memFree(s.ptr)))
		}
		for _, m := range b.mods {
			errs = append(errs, d.check("cuModuleUnload", d.moduleUnload(m)))
		}
		if b.stream != 0 {
			errs = append(errs, d.check("cuStreamDestroy", d.streamDestroy(b.stream)))
		}
	}
	errs = append(errs, d.check("cuDevicePrimaryCtxRelease", d.ctxRelease(b.dev)))
	b.weights, b.scratch, b.tables, b.mods = nil, nil, nil, nil
	return errors.Join(errs...)
}

// do runs f with the context current on a locked OS thread, serialised with
// every other call.
func (b *Backend) do(f func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("cuda: backend closed")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.d.check("cuCtxSetCurrent", b.d.ctxSetCurrent(b.ctx)); err != nil {
		return err
	}
	return f()
}

// fail records err as the sticky error.
func (b *Backend) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}

func fillNaN(x []float32) {
	nan := float32(math.NaN())
	for i := range x {
		x[i] = nan
	}
}

// Buffer is a device allocation of float32 (or 32-bit integer) elements.
type Buffer struct {
	ptr uint64
	n   int // capacity in 4-byte elements
}

// Len is the capacity of the buffer in 4-byte elements.
func (p *Buffer) Len() int { return p.n }

// Ptr is the device address (for interoperation and debugging).
func (p *Buffer) Ptr() uint64 { return p.ptr }

// Slice returns a view of n elements of p starting at element off. A view
// must not be passed to Free.
func (p *Buffer) Slice(off, n int) *Buffer {
	if off < 0 || n < 0 || off+n > p.n {
		panic(fmt.Sprintf("cuda: slice [%d:%d] of a buffer of %d", off, off+n, p.n))
	}
	return &Buffer{ptr: p.ptr + 4*uint64(off), n: n}
}

// CopyDev enqueues a copy of n elements from src to dst on the device.
func (b *Backend) CopyDev(dst, src *Buffer, n int) error {
	if n > dst.n || n > src.n {
		return fmt.Errorf("cuda: copy of %d elements between buffers of %d and %d", n, src.n, dst.n)
	}
	if n <= 0 {
		return nil
	}
	return b.do(func() error {
		return b.d.check("cuMemcpyDtoDAsync", b.d.dtodAsync(dst.ptr, src.ptr, uint64(4*n), b.stream))
	})
}

// Alloc returns a device buffer of n 4-byte elements.
func (b *Backend) Alloc(n int) (*Buffer, error) {
	var out *Buffer
	err := b.do(func() error {
		var err error
		out, err = b.alloc(n)
		return err
	})
	return out, err
}

func (b *Backend) alloc(n int) (*Buffer, error) {
	if n <= 0 {
		n = 1
	}
	var p uint64
	if err := b.d.check(fmt.Sprintf("cuMemAlloc(%d bytes)", 4*n), b.d.memAlloc(&p, uint64(4*n))); err != nil {
		return nil, err
	}
	return &Buffer{ptr: p, n: n}, nil
}

// Free releases a buffer from Alloc.
func (b *Backend) Free(p *Buffer) error {
	if p == nil || p.ptr == 0 {
		return nil
	}
	return b.do(func() error {
		err := b.d.check("cuMemFree", b.d.memFree(p.ptr))
		p.ptr, p.n = 0, 0
		return err
	})
}

// Write copies src into the start of p (enqueued on the stream).
func (b *Backend) Write(p *Buffer, src []float32) error {
	return b.do(func() error { return b.put(p, unsafe.Pointer(unsafe.SliceData(src)), len(src)) })
}

// Read copies the start of p into dst and waits for it.
func (b *Backend) Read(dst []float32, p *Buffer) error {
	return b.do(func() error { return b.get(unsafe.Pointer(unsafe.SliceData(dst)), p, len(dst)) })
}

// Sync waits for everything enqueued so far.
func (b *Backend) Sync() error {
	return b.do(func() error { return b.d.check("cuStreamSynchronize", b.d.streamSync(b.stream)) })
}

func (b *Backend) put(p *Buffer, src unsafe.Pointer, n int) error {
	if n == 0 {
		return nil
	}
	if n > p.n {
		return fmt.Errorf("cuda: write of %d elements into a buffer of %d", n, p.n)
	}
	return b.d.check("cuMemcpyHtoDAsync", b.d.htodAsync(p.ptr, src, uint64(4*n), b.stream))
}

func (b *Backend) get(dst unsafe.Pointer, p *Buffer, n int) error {
	if n == 0 {
		return nil
	}
	if n > p.n {
		return fmt.Errorf("cuda: read of %d elements from a buffer of %d", n, p.n)
	}
	if err := b.d.check("cuMemcpyDtoHAsync", b.d.dtohAsync(dst, p.ptr, uint64(4*n), b.stream)); err != nil {
		return err
	}
	return b.d.check("cuStreamSynchronize", b.d.streamSync(b.stream))
}

// tmp returns the named scratch buffer, grown to at least n elements. Its
// contents are undefined; it lives until Close.
func (b *Backend) tmp(name string, n int) (*Buffer, error) {
	if s := b.scratch[name]; s != nil && s.n >= n {
		return s, nil
	}
	if s := b.scratch[name]; s != nil {
		// The stream may still read the old buffer.
		if err := b.d.check("cuStreamSynchronize", b.d.streamSync(b.stream)); err != nil {
			return nil, err
		}
		if err := b.d.check("cuMemFree", b.d.memFree(s.ptr)); err != nil {
			return nil, err
		}
		delete(b.scratch, name)
	}
	s, err := b.alloc(max(n, 1024))
	if err != nil {
		return nil, err
	}
	b.scratch[name] = s
	return s, nil
}

// upF32 copies host floats into the named scratch buffer.
func (b *Backend) upF32(name string, x []float32) (*Buffer, error) {
	s, err := b.tmp(name, len(x))
	if err != nil {
		return nil, err
	}
	return s, b.put(s, unsafe.Pointer(unsafe.SliceData(x)), len(x))
}

// upI32 copies host int32s into the named scratch buffer.
func (b *Backend) upI32(name string, x []int32) (*Buffer, error) {
	s, err := b.tmp(name, len(x))
	if err != nil {
		return nil, err
	}
	return s, b.put(s, unsafe.Pointer(unsafe.SliceData(x)), len(x))
}

// kargs builds the kernelParams array of cuLaunchKernel: one 8-byte slot
// per argument and a pointer to each slot.
type kargs struct {
	vals [24]uint64
	ptrs [24]unsafe.Pointer
	n    int
}

func (a *kargs) add(v uint64) *kargs {
	a.vals[a.n] = v
	a.ptrs[a.n] = unsafe.Pointer(&a.vals[a.n])
	a.n++
	return a
}

// buf adds a device pointer (nil: NULL).
func (a *kargs) buf(p *Buffer) *kargs {
	if p == nil {
		return a.add(0)
	}
	return a.add(p.ptr)
}

func (a *kargs) ptr(p uint64) *kargs   { return a.add(p) }
func (a *kargs) i32(v int) *kargs      { return a.add(uint64(uint32(int32(v)))) }
func (a *kargs) i64(v int64) *kargs    { return a.add(uint64(v)) }
func (a *kargs) f32(v float32) *kargs  { return a.add(uint64(math.Float32bits(v))) }
func newArgs() *kargs                  { return new(kargs) }
func cdiv(a, b int) uint32             { return uint32((a + b - 1) / b) }
func grid(x, y uint32) [3]uint32       { return [3]uint32{max(x, 1), max(y, 1), 1} }
func grid1(n int, block int) [3]uint32 { return grid(cdiv(n, block), 1) }

// launch enqueues kernel name on the stream.
func (b *Backend) launch(name string, g [3]uint32, block, shmem uint32, a *kargs) error {
	fn, ok := b.fns[name]
	if !ok {
		return fmt.Errorf("cuda: kernel %s not loaded", name)
	}
	r := b.d.launch(fn, g[0], g[1], g[2], block, 1, 1, shmem, b.stream, unsafe.Pointer(&a.ptrs[0]), nil)
	runtime.KeepAlive(a)
	return b.d.check("cuLaunchKernel("+name+")", r)
}
