package cuda

import (
	"embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The kernel sources travel inside the binary and are compiled by NVRTC for
// the GPU found at run time; common.cuh is prepended to every .cu file.
//
//go:embed common.cuh *.cu
var sourceFS embed.FS

// Modules lists the embedded kernel modules (file names without .cu), sorted.
func Modules() []string {
	ents, err := sourceFS.ReadDir(".")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".cu") {
			out = append(out, strings.TrimSuffix(n, ".cu"))
		}
	}
	sort.Strings(out)
	return out
}

// Source returns the complete text NVRTC compiles for module name: the common
// prelude followed by name.cu.
func Source(name string) (string, error) {
	pre, err := sourceFS.ReadFile("common.cuh")
	if err != nil {
		return "", fmt.Errorf("cuda: embedded prelude: %w", err)
	}
	body, err := sourceFS.ReadFile(name + ".cu")
	if err != nil {
		return "", fmt.Errorf("cuda: no embedded module %q: %w", name, err)
	}
	return string(pre) + "\n#line 1 \"" + name + ".cu\"\n" + string(body), nil
}

var kernelDecl = regexp.MustCompile(`(?m)^KERNEL\s+void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// Kernels returns the entry points (extern "C" __global__ functions declared
// with the KERNEL macro) of module name, in source order.
func Kernels(name string) ([]string, error) {
	body, err := sourceFS.ReadFile(name + ".cu")
	if err != nil {
		return nil, fmt.Errorf("cuda: no embedded module %q: %w", name, err)
	}
	var out []string
	for _, m := range kernelDecl.FindAllStringSubmatch(string(body), -1) {
		out = append(out, m[1])
	}
	return out, nil
}
