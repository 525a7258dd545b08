package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libDirs are searched, after the dynamic loader's own path, for versioned
// sonames that have no unversioned development link (Debian's libnvrtc).
var libDirs = []string{
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
	"/usr/lib64",
	"/usr/lib",
	"/usr/lib/wsl/lib",
}

// openLib dlopens the first library that loads: the path in env (if set),
// then each name through the loader, then any file matching a glob of each
// name in libDirs.
func openLib(env string, names ...string) (uintptr, string, error) {
	var tried []string
	if p := os.Getenv(env); p != "" {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, p, nil
		}
		return 0, "", fmt.Errorf("%s=%s: %v", env, p, err)
	}
	for _, n := range names {
		if h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			return h, n, nil
		}
		tried = append(tried, n)
	}
	for _, d := range libDirs {
		for _, n := range names {
			base := strings.SplitN(n, ".so", 2)[0] + ".so*"
			ms, _ := filepath.Glob(filepath.Join(d, base))
			for i := len(ms) - 1; i >= 0; i-- { // highest version first
				if h, err := purego.Dlopen(ms[i], purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
					return h, ms[i], nil
				}
				tried = append(tried, ms[i])
			}
		}
	}
	return 0, "", fmt.Errorf("not found (tried %s; set %s to its path)", strings.Join(tried, ", "), env)
}

// bind resolves each symbol of syms into the function pointer it maps to.
func bind(h uintptr, syms map[string]any) error {
	var errs []error
	for name, fp := range syms {
		sym, err := purego.Dlsym(h, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("symbol %s: %v", name, err))
			continue
		}
		purego.RegisterFunc(fp, sym)
	}
	return errors.Join(errs...)
}

// cstr returns a NUL-terminated copy of s.
func cstr(s string) *byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return &b[0]
}

// gostr copies a NUL-terminated C string owned by a library.
func gostr(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := 0; i < 1<<16; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}
