package kernels

import "golang.org/x/sys/cpu"

// The SIMD kernels need AVX2 for the integer shuffles, FMA for the
// accumulations and F16C for the FP8/FP4 widening trick (see
// docs/kernels-design.md). x/sys/cpu also checks that the OS saves the
// wide registers.
func hasAVX2() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C
}

func hasAVX512() bool {
	return hasAVX2() && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
}
