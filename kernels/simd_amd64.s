// Hand-written AVX2+FMA+F16C kernels. Operand order is Go's: sources first,
// destination last. See docs/kernels-design.md for the FP8/FP4 widening
// tricks (bytes are moved into half-precision bit patterns and widened with
// VCVTPH2PS; the constant power-of-two bias is removed by the caller).

#include "textflag.h"
#include "simd_amd64.h"

// f16 high bytes of the 16 e2m1 codes: value(code)·2^-14 as a half.
DATA fp4lut<>+0(SB)/8, $0x0E0C0A0806040200
DATA fp4lut<>+8(SB)/8, $0x8E8C8A8886848280
GLOBL fp4lut<>(SB), RODATA|NOPTR, $16

// func dotAVX2(a, b *float32, n int) float32
// n is a multiple of 8.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot32:
	CMPQ        CX, $32
	JLT         dot8
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         dot32

dot8:
	CMPQ        CX, $8
	JLT         dotdone
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         dot8

dotdone:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM0
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// func axpyAVX2(y, x *float32, a float32, n int)
// y += a·x; n is a multiple of 8.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	MOVQ         n+24(FP), CX

axpy32:
	CMPQ        CX, $32
	JLT         axpy8
	VMOVUPS     (SI), Y1
	VMOVUPS     32(SI), Y2
	VMOVUPS     64(SI), Y3
	VMOVUPS     96(SI), Y4
	VFMADD213PS (DI), Y0, Y1
	VFMADD213PS 32(DI), Y0, Y2
	VFMADD213PS 64(DI), Y0, Y3
	VFMADD213PS 96(DI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         axpy32

axpy8:
	CMPQ        CX, $8
	JLT         axpydone
	VMOVUPS     (SI), Y1
	VFMADD213PS (DI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         axpy8

axpydone:
	VZEROUPPER
	RET

// func sumSqAVX2(x *float32, n int) float64
// Σ x² in float64; n is a multiple of 8.
TEXT ·sumSqAVX2(SB), NOSPLIT, $0-24
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1

sumsq8:
	CMPQ        CX, $8
	JLT         sumsqdone
	VCVTPS2PD   (SI), Y2
	VCVTPS2PD   16(SI), Y3
	VFMADD231PD Y2, Y2, Y0
	VFMADD231PD Y3, Y3, Y1
	ADDQ        $32, SI
	SUBQ        $8, CX
	JMP         sumsq8

sumsqdone:
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VPERMILPD    $1, X0, X1
	VADDSD       X1, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+16(FP)
	RET

// func gemm4x1(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)
// For rows j=0..3 of w (f32, row stride ldw elements): acc[j] += w_j ⊙ x
// lane-wise over k elements (k a multiple of 8). acc holds 4×8 floats.
TEXT ·gemm4x1(SB), NOSPLIT, $0-40
	MOVQ    w+0(FP), SI
	MOVQ    ldw+8(FP), BX
	SHLQ    $2, BX
	MOVQ    x+16(FP), DI
	MOVQ    acc+24(FP), DX
	MOVQ    k+32(FP), CX
	SHLQ    $2, CX
	LEAQ    (SI)(BX*1), R8
	LEAQ    (R8)(BX*1), R9
	LEAQ    (R9)(BX*1), R10
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	XORQ    AX, AX

g41loop:
	CMPQ        AX, CX
	JGE         g41done
	VMOVUPS     (DI)(AX*1), Y4
	VFMADD231PS (SI)(AX*1), Y4, Y0
	VFMADD231PS (R8)(AX*1), Y4, Y1
	VFMADD231PS (R9)(AX*1), Y4, Y2
	VFMADD231PS (R10)(AX*1), Y4, Y3
	ADDQ        $32, AX
	JMP         g41loop

g41done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VZEROUPPER
	RET

// func gemm4x3(w unsafe.Pointer, ldw int, x0, x1, x2 *float32, acc *float32, k int)
// As gemm4x1 for three inputs at once; acc holds 3×4×8 floats, input-major.
// Each w vector is loaded once and used for three inputs, each x vector once
// for four rows: 7 loads per 12 FMAs.
TEXT ·gemm4x3(SB), NOSPLIT, $0-56
	MOVQ    w+0(FP), SI
	MOVQ    ldw+8(FP), BX
	SHLQ    $2, BX
	MOVQ    x0+16(FP), DI
	MOVQ    x1+24(FP), R11
	MOVQ    x2+32(FP), R12
	MOVQ    acc+40(FP), DX
	MOVQ    k+48(FP), CX
	SHLQ    $2, CX
	LEAQ    (SI)(BX*1), R8
	LEAQ    (R8)(BX*1), R9
	LEAQ    (R9)(BX*1), R10
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	VMOVUPS 128(DX), Y4
	VMOVUPS 160(DX), Y5
	VMOVUPS 192(DX), Y6
	VMOVUPS 224(DX), Y7
	VMOVUPS 256(DX), Y8
	VMOVUPS 288(DX), Y9
	VMOVUPS 320(DX), Y10
	VMOVUPS 352(DX), Y11
	XORQ    AX, AX

	// Two steps per iteration while at least 16 columns remain.
	LEAQ -64(CX), BX

g43loop2:
	CMPQ AX, BX
	JGT  g43loop
	VMOVUPS     (DI)(AX*1), Y12
	VMOVUPS     (R11)(AX*1), Y13
	VMOVUPS     (R12)(AX*1), Y14
	VMOVUPS     (SI)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R8)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y1
	VFMADD231PS Y15, Y13, Y5
	VFMADD231PS Y15, Y14, Y9
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y2
	VFMADD231PS Y15, Y13, Y6
	VFMADD231PS Y15, Y14, Y10
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, AX
	VMOVUPS     (DI)(AX*1), Y12
	VMOVUPS     (R11)(AX*1), Y13
	VMOVUPS     (R12)(AX*1), Y14
	VMOVUPS     (SI)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R8)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y1
	VFMADD231PS Y15, Y13, Y5
	VFMADD231PS Y15, Y14, Y9
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y2
	VFMADD231PS Y15, Y13, Y6
	VFMADD231PS Y15, Y14, Y10
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, AX
	JMP  g43loop2

g43loop:
	CMPQ        AX, CX
	JGE         g43done
	VMOVUPS     (DI)(AX*1), Y12
	VMOVUPS     (R11)(AX*1), Y13
	VMOVUPS     (R12)(AX*1), Y14
	VMOVUPS     (SI)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R8)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y1
	VFMADD231PS Y15, Y13, Y5
	VFMADD231PS Y15, Y14, Y9
	VMOVUPS     (R9)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y2
	VFMADD231PS Y15, Y13, Y6
	VFMADD231PS Y15, Y14, Y10
	VMOVUPS     (R10)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, AX
	JMP         g43loop

g43done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y9, 288(DX)
	VMOVUPS Y10, 320(DX)
	VMOVUPS Y11, 352(DX)
	VZEROUPPER
	RET

// func gemvBF16x4(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)
// gemm4x1 with bf16 rows widened in registers (exact), so it gives the same
// bits as decoding the rows and calling gemm4x1.
TEXT ·gemvBF16x4(SB), NOSPLIT, $0-40
	MOVQ    w+0(FP), SI
	MOVQ    ldw+8(FP), BX
	SHLQ    $1, BX
	MOVQ    x+16(FP), DI
	MOVQ    acc+24(FP), DX
	MOVQ    k+32(FP), CX
	LEAQ    (SI)(BX*1), R8
	LEAQ    (R8)(BX*1), R9
	LEAQ    (R9)(BX*1), R10
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	XORQ    AX, AX

gb4loop:
	CMPQ        AX, CX
	JGE         gb4done
	VMOVUPS     (DI)(AX*4), Y4
	VPMOVZXWD   (SI)(AX*2), Y5
	VPMOVZXWD   (R8)(AX*2), Y6
	VPMOVZXWD   (R9)(AX*2), Y7
	VPMOVZXWD   (R10)(AX*2), Y8
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VPSLLD      $16, Y8, Y8
	VFMADD231PS Y5, Y4, Y0
	VFMADD231PS Y6, Y4, Y1
	VFMADD231PS Y7, Y4, Y2
	VFMADD231PS Y8, Y4, Y3
	ADDQ        $8, AX
	JMP         gb4loop

gb4done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VZEROUPPER
	RET

// FP4 row kernel constants. fp4int holds 2·value(code) as int8, twice (one
// copy per 128-bit lane); fp4expand<m> moves bytes 4m..4m+3 of each lane to
// the top byte of the lane's four dwords (int8·2^24, converted exactly by
// VCVTDQ2PS).
DATA fp4int<>+0(SB)/8, $0x0C08060403020100
DATA fp4int<>+8(SB)/8, $0xF4F8FAFCFDFEFF00
DATA fp4int<>+16(SB)/8, $0x0C08060403020100
DATA fp4int<>+24(SB)/8, $0xF4F8FAFCFDFEFF00
GLOBL fp4int<>(SB), RODATA|NOPTR, $32

#define EXPANDMASK(name, b0, b1, b2, b3) \
	DATA name+0(SB)/4, $(0x808080|b0<<24) \
	DATA name+4(SB)/4, $(0x808080|b1<<24) \
	DATA name+8(SB)/4, $(0x808080|b2<<24) \
	DATA name+12(SB)/4, $(0x808080|b3<<24) \
	DATA name+16(SB)/4, $(0x808080|b0<<24) \
	DATA name+20(SB)/4, $(0x808080|b1<<24) \
	DATA name+24(SB)/4, $(0x808080|b2<<24) \
	DATA name+28(SB)/4, $(0x808080|b3<<24) \
	GLOBL name(SB), RODATA|NOPTR, $32

EXPANDMASK(fp4exp0<>, 0, 1, 2, 3)
EXPANDMASK(fp4exp1<>, 4, 5, 6, 7)
EXPANDMASK(fp4exp2<>, 8, 9, 10, 11)
EXPANDMASK(fp4exp3<>, 12, 13, 14, 15)

// FP4BODY: Y1 holds two groups' 32 bytes (one per lane), AX and BX their
// two scale bytes; adds Σ to Y0. DI points at 64 permuted x values, R9 at
// the e8m0 table (float32 with bits b<<23 for byte b).
#define FP4BODY \
	VPSRLW       $4, Y1, Y2 \
	VPAND        Y14, Y1, Y1 \
	VPAND        Y14, Y2, Y2 \
	VPSHUFB      Y1, Y15, Y1 \
	VPSHUFB      Y2, Y15, Y2 \
	VPSHUFB      Y9, Y1, Y3 \
	VPSHUFB      Y9, Y2, Y4 \
	VPSHUFB      Y10, Y1, Y5 \
	VPSHUFB      Y10, Y2, Y6 \
	VCVTDQ2PS    Y3, Y3 \
	VCVTDQ2PS    Y4, Y4 \
	VCVTDQ2PS    Y5, Y5 \
	VCVTDQ2PS    Y6, Y6 \
	VMULPS       (DI), Y3, Y3 \
	VMULPS       32(DI), Y4, Y4 \
	VMULPS       64(DI), Y5, Y5 \
	VMULPS       96(DI), Y6, Y6 \
	VPSHUFB      Y11, Y1, Y7 \
	VPSHUFB      Y11, Y2, Y8 \
	VCVTDQ2PS    Y7, Y7 \
	VCVTDQ2PS    Y8, Y8 \
	VFMADD231PS  128(DI), Y7, Y3 \
	VFMADD231PS  160(DI), Y8, Y4 \
	VPSHUFB      Y12, Y1, Y7 \
	VPSHUFB      Y12, Y2, Y8 \
	VCVTDQ2PS    Y7, Y7 \
	VCVTDQ2PS    Y8, Y8 \
	VFMADD231PS  192(DI), Y7, Y5 \
	VFMADD231PS  224(DI), Y8, Y6 \
	VADDPS       Y4, Y3, Y3 \
	VADDPS       Y6, Y5, Y5 \
	VADDPS       Y5, Y3, Y3 \
	VBROADCASTSS (R9)(AX*4), Y7 \
	VBROADCASTSS (R9)(BX*4), Y8 \
	VBLENDPS     $0xF0, Y8, Y7, Y7 \
	VFMADD231PS  Y7, Y3, Y0

// func gemvFP4Row(w unsafe.Pointer, x *float32, scales unsafe.Pointer, groups int, tab *float32) float32
// One row of an FP4 matrix times x, two groups of 32 per step, where x has
// been reordered by permuteFP4 to the order the weights come out in. The
// result carries a factor 2^25 (2 from the int8 table, 2^24 from the
// expansion) that the caller removes. tab is the 256-entry e8m0 table
// (e8m0Bits): each pair's scale vector is two broadcast loads and a blend,
// no shuffles (they share two pipes with the decode's VPSHUFBs on Zen 3).
// The weights are prefetched fp4Ahead bytes ahead: rows are contiguous, so
// this runs into the next row (a prefetch past the matrix never faults).
// Compute and memory then overlap; without it a thread streaming from DRAM
// waits on the hardware prefetcher.
#define fp4Ahead 1024
TEXT ·gemvFP4Row(SB), NOSPLIT, $0-44
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    scales+16(FP), R8
	MOVQ    groups+24(FP), CX
	MOVQ    tab+32(FP), R9
	MOVQ    CX, DX
	ANDQ    $1, DX
	SHRQ    $1, CX
	VMOVDQU fp4int<>(SB), Y15
	MOVL    $0x0F0F0F0F, AX
	VMOVD   AX, X14
	VPBROADCASTD X14, Y14
	VMOVDQU fp4exp0<>(SB), Y9
	VMOVDQU fp4exp1<>(SB), Y10
	VMOVDQU fp4exp2<>(SB), Y11
	VMOVDQU fp4exp3<>(SB), Y12
	VXORPS  Y0, Y0, Y0

f4pair:
	TESTQ   CX, CX
	JZ      f4odd
	PREFETCHT0 fp4Ahead(SI)
	VMOVDQU (SI), Y1
	MOVBLZX (R8), AX
	MOVBLZX 1(R8), BX
	FP4BODY
	ADDQ    $32, SI
	ADDQ    $256, DI
	ADDQ    $2, R8
	DECQ    CX
	JMP     f4pair

f4odd:
	TESTQ   DX, DX
	JZ      f4done
	VMOVDQU (SI), X1 // upper lane zeroed: codes 0, value 0
	MOVBLZX (R8), AX
	XORL    BX, BX   // tab[0] = 0: the missing group's lanes are 0·0
	FP4BODY

f4done:
	HSUM0
	VZEROUPPER
	MOVSS X0, ret+40(FP)
	RET

// func decodeBF16(dst *float32, src unsafe.Pointer, n int)
// n is a multiple of 8.
TEXT ·decodeBF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX

db16loop:
	CMPQ      AX, CX
	JGE       db16done
	VPMOVZXWD (SI)(AX*2), Y0
	VPSLLD    $16, Y0, Y0
	VMOVUPS   Y0, (DI)(AX*4)
	ADDQ      $8, AX
	JMP       db16loop

db16done:
	VZEROUPPER
	RET

// func decodeFP8(dst *float32, src unsafe.Pointer, n int, scale float32)
// dst = e4m3(src)·scale, where scale already includes the 2^8 half bias; n%8 == 0.
TEXT ·decodeFP8(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y14
	MOVL         $0xBFFFBFFF, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, X15
	XORQ         AX, AX

d8loop:
	CMPQ      AX, CX
	JGE       d8done
	VPMOVSXBW (SI)(AX*1), X0
	VPSLLW    $7, X0, X0
	VPAND     X15, X0, X0
	VCVTPH2PS X0, Y0
	VMULPS    Y14, Y0, Y0
	VMOVUPS   Y0, (DI)(AX*4)
	ADDQ      $8, AX
	JMP       d8loop

d8done:
	VZEROUPPER
	RET

// func decodeFP4(dst *float32, src, scales unsafe.Pointer, groups int)
// Writes 32·groups values in natural order, scales applied.
TEXT ·decodeFP4(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         scales+16(FP), R8
	MOVQ         groups+24(FP), CX
	VMOVDQU      fp4lut<>(SB), X14
	MOVL         $0x0F0F0F0F, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, X13
	VPXOR        X12, X12, X12
	MOVL         $0x46800000, AX // 2^14
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11

d4loop:
	TESTQ        CX, CX
	JZ           d4done
	VMOVDQU      (SI), X1
	VPSRLW       $4, X1, X2
	VPAND        X13, X1, X1
	VPAND        X13, X2, X2
	VPSHUFB      X1, X14, X1
	VPSHUFB      X2, X14, X2
	VPUNPCKLBW   X2, X1, X3 // elements 0..15
	VPUNPCKHBW   X2, X1, X4 // elements 16..31
	VPUNPCKLBW   X3, X12, X5
	VPUNPCKHBW   X3, X12, X6
	VPUNPCKLBW   X4, X12, X7
	VPUNPCKHBW   X4, X12, X8
	VCVTPH2PS    X5, Y5
	VCVTPH2PS    X6, Y6
	VCVTPH2PS    X7, Y7
	VCVTPH2PS    X8, Y8
	MOVBLZX      (R8), AX
	SHLL         $23, AX
	VMOVD        AX, X9
	VPBROADCASTD X9, Y9
	VMULPS       Y11, Y9, Y9
	VMULPS       Y9, Y5, Y5
	VMULPS       Y9, Y6, Y6
	VMULPS       Y9, Y7, Y7
	VMULPS       Y9, Y8, Y8
	VMOVUPS      Y5, (DI)
	VMOVUPS      Y6, 32(DI)
	VMOVUPS      Y7, 64(DI)
	VMOVUPS      Y8, 96(DI)
	ADDQ         $16, SI
	ADDQ         $128, DI
	INCQ         R8
	DECQ         CX
	JMP          d4loop

d4done:
	VZEROUPPER
	RET

// func attnOut4x3(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int)
// acc[j][v] = Σ_t p[j·ldp+t]·rows[t][col+8v : col+8v+8] for heads j=0..3 and
// vectors v=0..2: the weighted sum of attention rows for four heads, each
// row vector loaded once for the four. rows points at s slice headers.
TEXT ·attnOut4x3(SB), NOSPLIT, $0-48
	MOVQ   acc+0(FP), DX
	MOVQ   p+8(FP), SI
	MOVQ   ldp+16(FP), BX
	SHLQ   $2, BX
	MOVQ   rows+24(FP), R8
	MOVQ   s+32(FP), CX
	MOVQ   col+40(FP), R12
	SHLQ   $2, R12
	LEAQ   (SI)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	LEAQ   (R11)(BX*1), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

ao3loop:
	TESTQ        CX, CX
	JZ           ao3done
	MOVQ         (R8), R9
	ADDQ         R12, R9
	VMOVUPS      (R9), Y12
	VMOVUPS      32(R9), Y13
	VMOVUPS      64(R9), Y14
	VBROADCASTSS (SI), Y15
	VFMADD231PS  Y15, Y12, Y0
	VFMADD231PS  Y15, Y13, Y1
	VFMADD231PS  Y15, Y14, Y2
	VBROADCASTSS (R10), Y15
	VFMADD231PS  Y15, Y12, Y3
	VFMADD231PS  Y15, Y13, Y4
	VFMADD231PS  Y15, Y14, Y5
	VBROADCASTSS (R11), Y15
	VFMADD231PS  Y15, Y12, Y6
	VFMADD231PS  Y15, Y13, Y7
	VFMADD231PS  Y15, Y14, Y8
	VBROADCASTSS (R13), Y15
	VFMADD231PS  Y15, Y12, Y9
	VFMADD231PS  Y15, Y13, Y10
	VFMADD231PS  Y15, Y14, Y11
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R13
	ADDQ         $24, R8
	DECQ         CX
	JMP          ao3loop

ao3done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y9, 288(DX)
	VMOVUPS Y10, 320(DX)
	VMOVUPS Y11, 352(DX)
	VZEROUPPER
	RET

// func attnOut4x1(acc *float32, p *float32, ldp int, rows unsafe.Pointer, s, col int)
// attnOut4x3 for one vector (8 columns): acc[j] for heads j=0..3.
TEXT ·attnOut4x1(SB), NOSPLIT, $0-48
	MOVQ   acc+0(FP), DX
	MOVQ   p+8(FP), SI
	MOVQ   ldp+16(FP), BX
	SHLQ   $2, BX
	MOVQ   rows+24(FP), R8
	MOVQ   s+32(FP), CX
	MOVQ   col+40(FP), R12
	SHLQ   $2, R12
	LEAQ   (SI)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	LEAQ   (R11)(BX*1), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

ao1loop:
	TESTQ        CX, CX
	JZ           ao1done
	MOVQ         (R8), R9
	VMOVUPS      (R9)(R12*1), Y12
	VBROADCASTSS (SI), Y15
	VFMADD231PS  Y15, Y12, Y0
	VBROADCASTSS (R10), Y15
	VFMADD231PS  Y15, Y12, Y1
	VBROADCASTSS (R11), Y15
	VFMADD231PS  Y15, Y12, Y2
	VBROADCASTSS (R13), Y15
	VFMADD231PS  Y15, Y12, Y3
	ADDQ         $4, SI
	ADDQ         $4, R10
	ADDQ         $4, R11
	ADDQ         $4, R13
	ADDQ         $24, R8
	DECQ         CX
	JMP          ao1loop

ao1done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VZEROUPPER
	RET

// FP8ROW16(src, acc): widen 16 e4m3 bytes at src (scaled by 2^-8) and
// accumulate them times the x vectors Y8 (columns 0-7) and Y9 (8-15) into
// acc, first 8 then 8: the lane order of gemm4x1 over decoded weights.
#define FP8ROW16(src, acc) \
	VPMOVSXBW    src, Y10 \
	VPSLLW       $7, Y10, Y10 \
	VPAND        Y15, Y10, Y10 \
	VEXTRACTI128 $1, Y10, X11 \
	VCVTPH2PS    X10, Y10 \
	VCVTPH2PS    X11, Y11 \
	VFMADD231PS  Y10, Y8, acc \
	VFMADD231PS  Y11, Y9, acc

#define FP8ROW8(src, acc) \
	VPMOVSXBW   src, X10 \
	VPSLLW      $7, X10, X10 \
	VPAND       X15, X10, X10 \
	VCVTPH2PS   X10, Y10 \
	VFMADD231PS Y10, Y8, acc

// func gemvFP8x8(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)
// Eight FP8 rows (row stride ldw bytes) times x, where x carries the rows'
// block scales and the 2^8 half bias (see gemvFP8). Lane-wise accumulation
// into acc (8×8 floats) in the same order as gemm4x1 over decoded rows, so
// the result has the same bits as the tiled GEMM path; eight rows give eight
// independent accumulation chains (and eight memory streams). k%8 == 0.
// The rows are contiguous (ldw == k), so while it reads these eight rows it
// prefetches the next eight (8·ldw bytes after w) in one linear sweep, two
// cache lines per 16 columns: eight interleaved streams of 1–4 KiB are too
// short for the hardware prefetcher to ramp up (FP8 GEMV with 1024 columns
// ran at half the bandwidth without this). Prefetches never fault, so the
// sweep may run past the matrix.
TEXT ·gemvFP8x8(SB), NOSPLIT, $0-40
	MOVQ         w+0(FP), SI
	MOVQ         ldw+8(FP), BX
	MOVQ         x+16(FP), DI
	MOVQ         acc+24(FP), DX
	MOVQ         k+32(FP), CX
	LEAQ         (SI)(BX*1), R8
	LEAQ         (R8)(BX*1), R9
	LEAQ         (R9)(BX*1), R10
	LEAQ         (R10)(BX*1), R11
	LEAQ         (R11)(BX*1), R12
	LEAQ         (R12)(BX*1), R13
	LEAQ         (R13)(BX*1), R14
	LEAQ         (R14)(BX*1), R15 // next block of 8 rows
	MOVQ         R14, BX
	MOVL         $0xBFFFBFFF, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VMOVUPS      (DX), Y0
	VMOVUPS      32(DX), Y1
	VMOVUPS      64(DX), Y2
	VMOVUPS      96(DX), Y3
	VMOVUPS      128(DX), Y4
	VMOVUPS      160(DX), Y5
	VMOVUPS      192(DX), Y6
	VMOVUPS      224(DX), Y7
	XORQ         AX, AX
	SUBQ         $16, CX // loop while AX ≤ k-16

f88loop16:
	CMPQ    AX, CX
	JGT     f88tail
	VMOVUPS (DI)(AX*4), Y8
	VMOVUPS 32(DI)(AX*4), Y9
	PREFETCHT0 (R15)(AX*8)
	PREFETCHT0 64(R15)(AX*8)
	FP8ROW16((SI)(AX*1), Y0)
	FP8ROW16((R8)(AX*1), Y1)
	FP8ROW16((R9)(AX*1), Y2)
	FP8ROW16((R10)(AX*1), Y3)
	FP8ROW16((R11)(AX*1), Y4)
	FP8ROW16((R12)(AX*1), Y5)
	FP8ROW16((R13)(AX*1), Y6)
	FP8ROW16((BX)(AX*1), Y7)
	ADDQ    $16, AX
	JMP     f88loop16

f88tail:
	ADDQ $16, CX

f88loop8:
	CMPQ    AX, CX
	JGE     f88done
	VMOVUPS (DI)(AX*4), Y8
	FP8ROW8((SI)(AX*1), Y0)
	FP8ROW8((R8)(AX*1), Y1)
	FP8ROW8((R9)(AX*1), Y2)
	FP8ROW8((R10)(AX*1), Y3)
	FP8ROW8((R11)(AX*1), Y4)
	FP8ROW8((R12)(AX*1), Y5)
	FP8ROW8((R13)(AX*1), Y6)
	FP8ROW8((BX)(AX*1), Y7)
	ADDQ    $8, AX
	JMP     f88loop8

f88done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VZEROUPPER
	RET

// FP8 integer widening: fp8exp8 moves bytes 0-3 of the low lane and 4-7 of
// the high lane (after a VPBROADCASTQ of 8 bytes) to the top byte of each
// dword, zeroing the rest (b·2^24).
DATA fp8exp8<>+0(SB)/8, $0x0180808000808080
DATA fp8exp8<>+8(SB)/8, $0x0380808002808080
DATA fp8exp8<>+16(SB)/8, $0x0580808004808080
DATA fp8exp8<>+24(SB)/8, $0x0780808006808080
GLOBL fp8exp8<>(SB), RODATA|NOPTR, $32

// FP8IROW8(src, xv, acc): widen 8 e4m3 bytes at src to float32 bit patterns
// s·2^31 | eeeemmm·2^20 (VPSRAD by 4 of b·2^24, then clear the four sign
// copies): exactly the e4m3 value times 2^-120, subnormals included (e4m3
// subnormals land on float32 subnormals with the same factor). acc += w·xv.
#define FP8IROW8(src, xv, acc) \
	VPBROADCASTQ src, Y10 \
	VPSHUFB      Y14, Y10, Y10 \
	VPSRAD       $4, Y10, Y10 \
	VPAND        Y15, Y10, Y10 \
	VFMADD231PS  Y10, xv, acc

// func gemvFP8x8i(w unsafe.Pointer, ldw int, x *float32, acc *float32, k int)
// gemvFP8x8 with the integer widening above instead of VCVTPH2PS, for x
// carrying the block scales and 2^120 (see gemvFP8; the caller checks that
// this cannot overflow). The products are the same exact values as
// gemvFP8x8's, accumulated in the same order, so the bits are the same.
TEXT ·gemvFP8x8i(SB), NOSPLIT, $0-40
	MOVQ         w+0(FP), SI
	MOVQ         ldw+8(FP), BX
	MOVQ         x+16(FP), DI
	MOVQ         acc+24(FP), DX
	MOVQ         k+32(FP), CX
	LEAQ         (SI)(BX*1), R8
	LEAQ         (R8)(BX*1), R9
	LEAQ         (R9)(BX*1), R10
	LEAQ         (R10)(BX*1), R11
	LEAQ         (R11)(BX*1), R12
	LEAQ         (R12)(BX*1), R13
	LEAQ         (R13)(BX*1), R14
	LEAQ         (R14)(BX*1), R15 // next block of 8 rows
	MOVQ         R14, BX
	MOVL         $0x87FFFFFF, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU      fp8exp8<>(SB), Y14
	VMOVUPS      (DX), Y0
	VMOVUPS      32(DX), Y1
	VMOVUPS      64(DX), Y2
	VMOVUPS      96(DX), Y3
	VMOVUPS      128(DX), Y4
	VMOVUPS      160(DX), Y5
	VMOVUPS      192(DX), Y6
	VMOVUPS      224(DX), Y7
	XORQ         AX, AX
	SUBQ         $16, CX // loop while AX ≤ k-16

f8iloop16:
	CMPQ    AX, CX
	JGT     f8itail
	VMOVUPS (DI)(AX*4), Y8
	VMOVUPS 32(DI)(AX*4), Y9
	PREFETCHT0 (R15)(AX*8)
	PREFETCHT0 64(R15)(AX*8)
	FP8IROW8((SI)(AX*1), Y8, Y0)
	FP8IROW8(8(SI)(AX*1), Y9, Y0)
	FP8IROW8((R8)(AX*1), Y8, Y1)
	FP8IROW8(8(R8)(AX*1), Y9, Y1)
	FP8IROW8((R9)(AX*1), Y8, Y2)
	FP8IROW8(8(R9)(AX*1), Y9, Y2)
	FP8IROW8((R10)(AX*1), Y8, Y3)
	FP8IROW8(8(R10)(AX*1), Y9, Y3)
	FP8IROW8((R11)(AX*1), Y8, Y4)
	FP8IROW8(8(R11)(AX*1), Y9, Y4)
	FP8IROW8((R12)(AX*1), Y8, Y5)
	FP8IROW8(8(R12)(AX*1), Y9, Y5)
	FP8IROW8((R13)(AX*1), Y8, Y6)
	FP8IROW8(8(R13)(AX*1), Y9, Y6)
	FP8IROW8((BX)(AX*1), Y8, Y7)
	FP8IROW8(8(BX)(AX*1), Y9, Y7)
	ADDQ    $16, AX
	JMP     f8iloop16

f8itail:
	ADDQ $16, CX

f8iloop8:
	CMPQ    AX, CX
	JGE     f8idone
	VMOVUPS (DI)(AX*4), Y8
	FP8IROW8((SI)(AX*1), Y8, Y0)
	FP8IROW8((R8)(AX*1), Y8, Y1)
	FP8IROW8((R9)(AX*1), Y8, Y2)
	FP8IROW8((R10)(AX*1), Y8, Y3)
	FP8IROW8((R11)(AX*1), Y8, Y4)
	FP8IROW8((R12)(AX*1), Y8, Y5)
	FP8IROW8((R13)(AX*1), Y8, Y6)
	FP8IROW8((BX)(AX*1), Y8, Y7)
	ADDQ    $8, AX
	JMP     f8iloop8

f8idone:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VZEROUPPER
	RET

// func scaleAVX2(dst, x *float32, a float32, n int)
// dst = a·x; n is a multiple of 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	MOVQ         n+24(FP), CX
	XORQ         AX, AX

scaleloop:
	CMPQ    AX, CX
	JGE     scaledone
	VMULPS  (SI)(AX*4), Y0, Y1
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ    $8, AX
	JMP     scaleloop

scaledone:
	VZEROUPPER
	RET

// func absMaxBitsAVX2(x *float32, n int) uint32
// Max of the bit patterns with the sign cleared (as unsigned integers,
// VPMAXUD), two vectors per step; n is a multiple of 8.
TEXT ·absMaxBitsAVX2(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7FFFFFFF, AX
	VMOVD        AX, X3
	VPBROADCASTD X3, Y3
	VPXOR        Y0, Y0, Y0
	VPXOR        Y1, Y1, Y1
	XORQ         AX, AX
	MOVQ         CX, DX
	ANDQ         $-16, DX

amx16:
	CMPQ    AX, DX
	JGE     amx8
	VPAND   (SI)(AX*4), Y3, Y2
	VPMAXUD Y2, Y0, Y0
	VPAND   32(SI)(AX*4), Y3, Y2
	VPMAXUD Y2, Y1, Y1
	ADDQ    $16, AX
	JMP     amx16

amx8:
	CMPQ    AX, CX
	JGE     amxdone
	VPAND   (SI)(AX*4), Y3, Y2
	VPMAXUD Y2, Y0, Y0

amxdone:
	VPMAXUD      Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMAXUD      X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPMAXUD      X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPMAXUD      X1, X0, X0
	VMOVD        X0, AX
	VZEROUPPER
	MOVL         AX, ret+16(FP)
	RET

// func indexScores3(q *float32, groups, d int, k0, k1, k2, w, out *float32)
// Indexer scores of three keys (d floats each, d a multiple of 8) against
// 4·groups query heads (rows of d floats, contiguous): for key i and head
// h = 4g+j, out[4i+j] += w[h]·max(0, ⟨q_h, k_i⟩), g ascending. Each dot
// product is lane-wise (8 fused multiply-add chains) then reduced as IDXRED.
TEXT ·indexScores3(SB), NOSPLIT, $0-64
	MOVQ q+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ d+16(FP), DI
	MOVQ k0+24(FP), R8
	MOVQ k1+32(FP), R9
	MOVQ k2+40(FP), R10
	MOVQ w+48(FP), R11
	MOVQ out+56(FP), R12
	SHLQ $2, DI          // row bytes
	TESTQ CX, CX
	JZ   isdone

isgroup:
	LEAQ   (SI)(DI*1), BX
	LEAQ   (BX)(DI*1), R13
	LEAQ   (R13)(DI*1), R14
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

isloop:
	VMOVUPS     (R8)(AX*1), Y12
	VMOVUPS     (R9)(AX*1), Y13
	VMOVUPS     (R10)(AX*1), Y14
	VMOVUPS     (SI)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (BX)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R13)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R14)(AX*1), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $32, AX
	CMPQ        AX, DI
	JLT         isloop

	// Key i's accumulators are Y(i), Y(3+i), Y(6+i), Y(9+i).
	IDXRED(Y0, Y3, Y6, Y9, X0, X12)
	IDXRED(Y1, Y4, Y7, Y10, X1, X12)
	IDXRED(Y2, Y5, Y8, Y11, X2, X12)
	VXORPS  X15, X15, X15
	VMOVUPS (R11), X12
	IDXACC(X0, X12, X15, 0(R12))
	IDXACC(X1, X12, X15, 16(R12))
	IDXACC(X2, X12, X15, 32(R12))

	LEAQ (R14)(DI*1), SI // next group's first head
	ADDQ $16, R11
	DECQ CX
	JNZ  isgroup

isdone:
	VZEROUPPER
	RET
