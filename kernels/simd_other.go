//go:build !amd64

package kernels

import "unsafe"

// Other architectures run the portable kernels only; these stand-ins keep
// the shared drivers compiling and are never called (useSIMD is false).

func hasAVX2() bool   { return false }
func hasAVX512() bool { return false }

const noSIMD = "kernels: SIMD kernel called without SIMD support"

func dotAVX2(a, b *float32, n int) float32                                  { panic(noSIMD) }
func axpyAVX2(y, x *float32, a float32, n int)                              { panic(noSIMD) }
func sumSqAVX2(x *float32, n int) float64                                   { panic(noSIMD) }
func gemm4x1(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)    { panic(noSIMD) }
func gemvBF16x4(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int) { panic(noSIMD) }
func decodeBF16(dst *float32, src unsafe.Pointer, n int)                    { panic(noSIMD) }
func decodeFP8(dst *float32, src unsafe.Pointer, n int, scale float32)      { panic(noSIMD) }
func decodeFP4(dst *float32, src, scales unsafe.Pointer, groups int)        { panic(noSIMD) }
func gemvFP4Row(w unsafe.Pointer, x *float32, s unsafe.Pointer, g int, tab *float32) float32 {
	panic(noSIMD)
}
func gemm4x3(w unsafe.Pointer, ldw int, x0, x1, x2 *float32, acc *float32, k int) {
	panic(noSIMD)
}

func attnOut4x3(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int) { panic(noSIMD) }
func attnOut4x1(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int) { panic(noSIMD) }

func gemvFP8x8(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int) { panic(noSIMD) }

func scaleAVX2(dst, x *float32, a float32, n int) { panic(noSIMD) }
func absMaxBitsAVX2(x *float32, n int) uint32     { panic(noSIMD) }

func indexScores3(q *float32, groups, d int, k0, k1, k2, w, out *float32) { panic(noSIMD) }

func gemvFP8x8i(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int) { panic(noSIMD) }

func gemvFP4Row512(w unsafe.Pointer, x *float32, s unsafe.Pointer, g int, tab, vals *float32) float32 {
	panic(noSIMD)
}

func gemm4x8x512(w unsafe.Pointer, ldw int, x *float32, ldx int, acc *float32, k int) {
	panic(noSIMD)
}

func indexScores6x512(q *float32, groups, d int, k0, k1, k2, k3, k4, k5, w, out *float32) {
	panic(noSIMD)
}
