package cuda

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// DriverEnv names the environment variable that, when set, is the path of
// the CUDA driver library (libcuda) to load instead of searching for one.
const DriverEnv = "EDGESEEK_LIBCUDA"

// ErrNoDriver reports that the CUDA driver library could not be loaded.
var ErrNoDriver = errors.New("cuda: NVIDIA driver (libcuda) not found")

// Device attributes (CUdevice_attribute) this package reads.
const (
	attrMaxSharedPerBlock = 8
	attrSMCount           = 16
	attrMemClockKHz       = 36
	attrBusWidth          = 37
	attrCCMajor           = 75
	attrCCMinor           = 76
)

// driver is the CUDA driver API, opened with purego.
type driver struct {
	path string

	init          func(flags uint32) int32
	driverVersion func(v *int32) int32
	deviceCount   func(n *int32) int32
	deviceGet     func(d *int32, ordinal int32) int32
	deviceName    func(name *byte, n int32, d int32) int32
	totalMem      func(bytes *uint64, d int32) int32
	attribute     func(v *int32, attr int32, d int32) int32
	ctxRetain     func(ctx *uintptr, d int32) int32
	ctxRelease    func(d int32) int32
	ctxSetCurrent func(ctx uintptr) int32
	ctxSync       func() int32
	memGetInfo    func(free, total *uint64) int32

	moduleLoad   func(mod *uintptr, image unsafe.Pointer) int32
	moduleUnload func(mod uintptr) int32
	moduleFunc   func(fn *uintptr, mod uintptr, name *byte) int32
	funcSetAttr  func(fn uintptr, attr int32, v int32) int32

	memAlloc   func(p *uint64, n uint64) int32
	memFree    func(p uint64) int32
	htod       func(dst uint64, src unsafe.Pointer, n uint64) int32
	dtoh       func(dst unsafe.Pointer, src uint64, n uint64) int32
	dtodAsync  func(dst, src uint64, n uint64, s uintptr) int32
	htodAsync  func(dst uint64, src unsafe.Pointer, n uint64, s uintptr) int32
	dtohAsync  func(dst unsafe.Pointer, src uint64, n uint64, s uintptr) int32
	memsetD8   func(p uint64, v uint8, n uint64) int32
	memsetD32A func(p uint64, v uint32, n uint64, s uintptr) int32

	streamCreate  func(s *uintptr, flags uint32) int32
	streamDestroy func(s uintptr) int32
	streamSync    func(s uintptr) int32
	launch        func(fn uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params, extra unsafe.Pointer) int32

	beginCapture    func(s uintptr, mode int32) int32
	endCapture      func(s uintptr, g *uintptr) int32
	graphInst       func(exec *uintptr, g uintptr, flags uint64) int32
	graphLaunch     func(exec uintptr, s uintptr) int32
	graphExecDelete func(exec uintptr) int32
	graphDelete     func(g uintptr) int32

	eventCreate  func(e *uintptr, flags uint32) int32
	eventRecord  func(e uintptr, s uintptr) int32
	eventSync    func(e uintptr) int32
	eventElapsed func(ms *float32, a, b uintptr) int32
	eventDestroy func(e uintptr) int32

	errName   func(r int32, s **byte) int32
	errString func(r int32, s **byte) int32
}

var (
	driverOnce sync.Once
	driverVal  *driver
	driverErr  error
)

// loadDriver opens libcuda and runs cuInit once per process.
func loadDriver() (*driver, error) {
	driverOnce.Do(func() { driverVal, driverErr = openDriver() })
	return driverVal, driverErr
}

func openDriver() (*driver, error) {
	h, path, err := openLib(DriverEnv, "libcuda.so.1", "libcuda.so")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	d := &driver{path: path}
	if err := bind(h, map[string]any{
		"cuInit":                       &d.init,
		"cuDriverGetVersion":           &d.driverVersion,
		"cuDeviceGetCount":             &d.deviceCount,
		"cuDeviceGet":                  &d.deviceGet,
		"cuDeviceGetName":              &d.deviceName,
		"cuDeviceTotalMem_v2":          &d.totalMem,
		"cuDeviceGetAttribute":         &d.attribute,
		"cuDevicePrimaryCtxRetain":     &d.ctxRetain,
		"cuDevicePrimaryCtxRelease_v2": &d.ctxRelease,
		"cuCtxSetCurrent":              &d.ctxSetCurrent,
		"cuCtxSynchronize":             &d.ctxSync,
		"cuMemGetInfo_v2":              &d.memGetInfo,
		"cuModuleLoadData":             &d.moduleLoad,
		"cuModuleUnload":               &d.moduleUnload,
		"cuModuleGetFunction":          &d.moduleFunc,
		"cuFuncSetAttribute":           &d.funcSetAttr,
		"cuMemAlloc_v2":                &d.memAlloc,
		"cuMemFree_v2":                 &d.memFree,
		"cuMemcpyHtoD_v2":              &d.htod,
		"cuMemcpyDtoH_v2":              &d.dtoh,
		"cuMemcpyDtoDAsync_v2":         &d.dtodAsync,
		"cuMemcpyHtoDAsync_v2":         &d.htodAsync,
		"cuMemcpyDtoHAsync_v2":         &d.dtohAsync,
		"cuMemsetD8_v2":                &d.memsetD8,
		"cuMemsetD32Async":             &d.memsetD32A,
		"cuStreamCreate":               &d.streamCreate,
		"cuStreamDestroy_v2":           &d.streamDestroy,
		"cuStreamSynchronize":          &d.streamSync,
		"cuLaunchKernel":               &d.launch,
		"cuStreamBeginCapture_v2":      &d.beginCapture,
		"cuStreamEndCapture":           &d.endCapture,
		"cuGraphInstantiateWithFlags":  &d.graphInst,
		"cuGraphLaunch":                &d.graphLaunch,
		"cuGraphExecDestroy":           &d.graphExecDelete,
		"cuGraphDestroy":               &d.graphDelete,
		"cuEventCreate":                &d.eventCreate,
		"cuEventRecord":                &d.eventRecord,
		"cuEventSynchronize":           &d.eventSync,
		"cuEventElapsedTime":           &d.eventElapsed,
		"cuEventDestroy_v2":            &d.eventDestroy,
		"cuGetErrorName":               &d.errName,
		"cuGetErrorString":             &d.errString,
	}); err != nil {
		return nil, fmt.Errorf("cuda: %s is too old or not a CUDA driver (CUDA 11.4+ needed): %w", path, err)
	}
	if err := d.check("cuInit", d.init(0)); err != nil {
		return nil, err
	}
	return d, nil
}

// Error is a failed CUDA driver call.
type Error struct {
	Call string
	Code int32
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Call, e.Name, e.Code, e.Msg)
}

// check turns a CUresult into an error (nil for CUDA_SUCCESS).
func (d *driver) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	e := &Error{Call: call, Code: r}
	var p *byte
	if d.errName(r, &p) == 0 {
		e.Name = gostr(p)
	}
	p = nil
	if d.errString(r, &p) == 0 {
		e.Msg = gostr(p)
	}
	return e
}
