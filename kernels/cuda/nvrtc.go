package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// NVRTCEnv names the environment variable that, when set, is the path of the
// libnvrtc shared library to load instead of searching for one.
const NVRTCEnv = "EDGESEEK_NVRTC"

// ErrNoNVRTC reports that no libnvrtc shared library could be loaded.
var ErrNoNVRTC = errors.New("cuda: libnvrtc not found")

// Compiler is a loaded NVRTC library. It compiles the embedded kernels to PTX
// (or CUBIN) for one GPU architecture and needs no GPU.
type Compiler struct {
	Path         string // the shared library loaded
	Major, Minor int    // NVRTC version

	version       func(major, minor *int32) int32
	create        func(prog *uintptr, src, name *byte, nh int32, headers, includes unsafe.Pointer) int32
	compile       func(prog uintptr, nopt int32, opts unsafe.Pointer) int32
	logSize       func(prog uintptr, n *uintptr) int32
	getLog        func(prog uintptr, buf *byte) int32
	ptxSize       func(prog uintptr, n *uintptr) int32
	getPTX        func(prog uintptr, buf *byte) int32
	destroy       func(prog *uintptr) int32
	errString     func(r int32) *byte
	cubinSize     func(prog uintptr, n *uintptr) int32 // nil before NVRTC 11.1
	getCUBIN      func(prog uintptr, buf *byte) int32
	numArchs      func(n *int32) int32 // nil before NVRTC 11.2
	supportedArch func(archs *int32) int32
}

var (
	compilerOnce sync.Once
	compilerVal  *Compiler
	compilerErr  error
)

// OpenCompiler loads libnvrtc once per process. The error wraps ErrNoNVRTC
// when the library is absent.
func OpenCompiler() (*Compiler, error) {
	compilerOnce.Do(func() { compilerVal, compilerErr = loadCompiler() })
	return compilerVal, compilerErr
}

func loadCompiler() (*Compiler, error) {
	h, path, err := openLib(NVRTCEnv, "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNVRTC, err)
	}
	c := &Compiler{Path: path}
	if err := bind(h, map[string]any{
		"nvrtcVersion":           &c.version,
		"nvrtcCreateProgram":     &c.create,
		"nvrtcCompileProgram":    &c.compile,
		"nvrtcGetProgramLogSize": &c.logSize,
		"nvrtcGetProgramLog":     &c.getLog,
		"nvrtcGetPTXSize":        &c.ptxSize,
		"nvrtcGetPTX":            &c.getPTX,
		"nvrtcDestroyProgram":    &c.destroy,
		"nvrtcGetErrorString":    &c.errString,
	}); err != nil {
		return nil, fmt.Errorf("cuda: %s: %w", path, err)
	}
	// Optional entry points of newer releases.
	_ = bind(h, map[string]any{"nvrtcGetCUBINSize": &c.cubinSize, "nvrtcGetCUBIN": &c.getCUBIN})
	_ = bind(h, map[string]any{"nvrtcGetNumSupportedArchs": &c.numArchs, "nvrtcGetSupportedArchs": &c.supportedArch})
	var ma, mi int32
	if r := c.version(&ma, &mi); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcVersion: %s", c.errStr(r))
	}
	c.Major, c.Minor = int(ma), int(mi)
	return c, nil
}

func (c *Compiler) errStr(r int32) string {
	return fmt.Sprintf("%s (nvrtc %d)", gostr(c.errString(r)), r)
}

// Version returns the NVRTC version as "major.minor".
func (c *Compiler) Version() string { return fmt.Sprintf("%d.%d", c.Major, c.Minor) }

// SupportedArchs returns the sm_XY numbers (e.g. 80, 90) this NVRTC can
// target, or nil when the library is too old to say.
func (c *Compiler) SupportedArchs() []int {
	if c.numArchs == nil || c.supportedArch == nil {
		return nil
	}
	var n int32
	if c.numArchs(&n) != 0 || n <= 0 {
		return nil
	}
	a := make([]int32, n)
	if c.supportedArch(&a[0]) != 0 {
		return nil
	}
	out := make([]int, n)
	for i, v := range a {
		out[i] = int(v)
	}
	return out
}

// CompileError is a failed compilation with the compiler's log.
type CompileError struct {
	Module, Arch string
	Log          string
	Err          error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("cuda: compiling %s for %s: %v\n%s", e.Module, e.Arch, e.Err, strings.TrimSpace(e.Log))
}

func (e *CompileError) Unwrap() error { return e.Err }

// Compile compiles the embedded module name for arch: "compute_XY" yields
// PTX text, "sm_XY" yields a CUBIN (NVRTC 11.1+). The log holds warnings even
// when compilation succeeds.
func (c *Compiler) Compile(name, arch string, defines ...string) (image []byte, log string, err error) {
	src, err := Source(name)
	if err != nil {
		return nil, "", err
	}
	cubin := strings.HasPrefix(arch, "sm_")
	if cubin && (c.cubinSize == nil || c.getCUBIN == nil) {
		return nil, "", fmt.Errorf("cuda: NVRTC %s cannot emit CUBIN for %s", c.Version(), arch)
	}
	// No --std: the sources need only C++11, and each NVRTC keeps its default.
	opts := []string{"--gpu-architecture=" + arch, "-default-device", "-DEDGESEEK_NVRTC=1"}
	for _, d := range defines {
		opts = append(opts, "-D"+d)
	}
	optp := make([]*byte, len(opts))
	for i, o := range opts {
		optp[i] = cstr(o)
	}
	var prog uintptr
	if r := c.create(&prog, cstr(src), cstr(name+".cu"), 0, nil, nil); r != 0 {
		return nil, "", fmt.Errorf("cuda: nvrtcCreateProgram %s: %s", name, c.errStr(r))
	}
	defer c.destroy(&prog)
	rc := c.compile(prog, int32(len(optp)), unsafe.Pointer(&optp[0]))
	runtime.KeepAlive(optp)
	var n uintptr
	if c.logSize(prog, &n) == 0 && n > 1 {
		buf := make([]byte, n)
		if c.getLog(prog, &buf[0]) == 0 {
			log = strings.TrimRight(string(buf), "\x00")
		}
	}
	if rc != 0 {
		return nil, log, &CompileError{Module: name, Arch: arch, Log: log, Err: errors.New(c.errStr(rc))}
	}
	size, get := c.ptxSize, c.getPTX
	if cubin {
		size, get = c.cubinSize, c.getCUBIN
	}
	if r := size(prog, &n); r != 0 || n == 0 {
		return nil, log, fmt.Errorf("cuda: %s output size: %s", name, c.errStr(r))
	}
	image = make([]byte, n)
	if r := get(prog, &image[0]); r != 0 {
		return nil, log, fmt.Errorf("cuda: %s output: %s", name, c.errStr(r))
	}
	if !cubin && image[len(image)-1] != 0 {
		image = append(image, 0) // the driver wants NUL-terminated PTX
	}
	return image, log, nil
}
