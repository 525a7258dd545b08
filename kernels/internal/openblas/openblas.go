//go:build openblas && cgo

// Package openblas reaches OpenBLAS through cgo, for benchmark baselines
// only. It is compiled only with -tags openblas, so the runtime stays free of
// cgo; without the tag the stub reports ErrNotBuilt.
package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

// Available reports whether OpenBLAS is linked into this binary.
const Available = true

// SetThreads sets the number of threads OpenBLAS uses.
func SetThreads(n int) error {
	C.openblas_set_num_threads(C.int(n))
	return nil
}

// Sgemm computes c[i*n+j] = Σ_k a[i*k+p]·b[j*k+p] (c = a·bᵀ, row-major), the
// layout of Backend.MatMul with a = inputs and b = weights.
func Sgemm(m, n, k int, a, b, c []float32) error {
	_, _, _ = a[m*k-1], b[n*k-1], c[m*n-1]
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasTrans, C.blasint(m), C.blasint(n), C.blasint(k),
		1, (*C.float)(&a[0]), C.blasint(k), (*C.float)(&b[0]), C.blasint(k), 0, (*C.float)(&c[0]), C.blasint(n))
	return nil
}

// Sgemv computes y = a·x for a row-major rows×cols matrix a.
func Sgemv(rows, cols int, a, x, y []float32) error {
	_, _, _ = a[rows*cols-1], x[cols-1], y[rows-1]
	C.cblas_sgemv(C.CblasRowMajor, C.CblasNoTrans, C.blasint(rows), C.blasint(cols),
		1, (*C.float)(&a[0]), C.blasint(cols), (*C.float)(&x[0]), 1, 0, (*C.float)(&y[0]), 1)
	return nil
}
