//go:build !openblas || !cgo

// Package openblas reaches OpenBLAS through cgo, for benchmark baselines
// only. This is the stub compiled without -tags openblas: every call reports
// ErrNotBuilt.
package openblas

// Available reports whether OpenBLAS is linked into this binary.
const Available = false

// SetThreads sets the number of threads OpenBLAS uses.
func SetThreads(n int) error { return ErrNotBuilt }

// Sgemm computes c = a·bᵀ (row-major); see the openblas build.
func Sgemm(m, n, k int, a, b, c []float32) error { return ErrNotBuilt }

// Sgemv computes y = a·x (row-major); see the openblas build.
func Sgemv(rows, cols int, a, x, y []float32) error { return ErrNotBuilt }
