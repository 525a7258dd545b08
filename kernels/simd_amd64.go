package kernels

import "unsafe"

// Assembly kernels (simd_amd64.s). Counts are in elements; pointers may have
// any alignment.

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func axpyAVX2(y, x *float32, a float32, n int)

//go:noescape
func sumSqAVX2(x *float32, n int) float64

//go:noescape
func gemm4x1(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)

//go:noescape
func gemm4x3(w unsafe.Pointer, ldw int, x0, x1, x2 *float32, acc *float32, k int)

//go:noescape
func gemvBF16x4(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)

//go:noescape
func gemvFP4Row(w unsafe.Pointer, x *float32, scales unsafe.Pointer, groups int, tab *float32) float32

//go:noescape
func decodeBF16(dst *float32, src unsafe.Pointer, n int)

//go:noescape
func decodeFP8(dst *float32, src unsafe.Pointer, n int, scale float32)

//go:noescape
func decodeFP4(dst *float32, src, scales unsafe.Pointer, groups int)

//go:noescape
func attnOut4x3(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int)

//go:noescape
func attnOut4x1(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int)

//go:noescape
func gemvFP8x8(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)

//go:noescape
func scaleAVX2(dst, x *float32, a float32, n int)

// absMaxBitsAVX2 returns the largest bit pattern of |x[i]| (sign cleared)
// over n values, n a multiple of 8.
//
//go:noescape
func absMaxBitsAVX2(x *float32, n int) uint32

//go:noescape
func indexScores3(q *float32, groups, d int, k0, k1, k2, w, out *float32)

//go:noescape
func gemvFP8x8i(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)

// gemvFP4Row512 is the AVX-512 FP4 row kernel (simd512_amd64.s): x
// permuted by permuteFP4Into512, tab the e8m0 table, vals fp4Table. Its
// result carries no bias.
//
//go:noescape
func gemvFP4Row512(w unsafe.Pointer, x *float32, scales unsafe.Pointer, groups int, tab, vals *float32) float32

// gemm4x8x512 is gemm4x3 for eight inputs at stride ldx, on AVX-512; it
// gives the AVX2 kernels' bits.
//
//go:noescape
func gemm4x8x512(w unsafe.Pointer, ldw int, x *float32, ldx int, acc *float32, k int)

// indexScores6x512 is indexScores3 for six keys on AVX-512; it gives
// indexScores3's bits.
//
//go:noescape
func indexScores6x512(q *float32, groups, d int, k0, k1, k2, k3, k4, k5, w, out *float32)
