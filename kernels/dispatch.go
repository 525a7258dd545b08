package kernels

import "os"

// Impl names the instruction set the fast kernels were chosen for at start-up.
type Impl string

// Kernel implementations, from the most to the least capable.
const (
	ImplAVX512   Impl = "avx512"   // AVX-512F plus the AVX2 set (the AVX2 kernels are used where no AVX-512 one exists)
	ImplAVX2     Impl = "avx2"     // AVX2, FMA and F16C
	ImplPortable Impl = "portable" // plain Go, any architecture
)

// PortableEnv is the environment variable that, set to 1, forces the portable
// Go kernels even where SIMD ones exist (CI runs the tests both ways).
const PortableEnv = "EDGESEEK_PORTABLE"

// useSIMD and useAVX512 are fixed at start-up; tests flip them to cover both
// paths in one run.
var useSIMD, useAVX512 = detect()

func detect() (simd, avx512 bool) {
	if os.Getenv(PortableEnv) == "1" {
		return false, false
	}
	return hasAVX2(), hasAVX512()
}

// Implementation reports which kernels this process runs.
func Implementation() Impl {
	switch {
	case useAVX512:
		return ImplAVX512
	case useSIMD:
		return ImplAVX2
	}
	return ImplPortable
}
