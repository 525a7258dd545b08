#include "textflag.h"
#include "simd_amd64.h"

// AVX-512 kernels (AVX-512F; selected when the CPU also has BW and VL, see
// cpufeat_amd64.go). They are tested in CI on an emulated AVX-512 CPU
// (tools/avx512), since no development machine has one.

// FP4G512 adds one group of 32 FP4 weights times its scale to acc. The 16
// bytes widen to 16 dwords; VPERMPS looks each dword's low four bits up in
// the 16-entry e2m1 value table in Z31, so the low nibbles (the group's even
// columns) become floats in one instruction and, after a shift, the high
// nibbles (odd columns) in another. x is permuted per group: the 16 even
// columns, then the 16 odd ones.
#define FP4G512(wo, xo, so, acc) \
	VPMOVZXBD   wo(SI), Z4 \
	VPSRLD      $4, Z4, Z5 \
	VPERMPS     Z31, Z4, Z4 \
	VPERMPS     Z31, Z5, Z5 \
	VMULPS      xo(DI), Z4, Z4 \
	VFMADD231PS xo+64(DI), Z5, Z4 \
	MOVBLZX     so(R8), AX \
	VBROADCASTSS (R9)(AX*4), Z6 \
	VFMADD231PS Z6, Z4, acc

// func gemvFP4Row512(w unsafe.Pointer, x *float32, scales unsafe.Pointer, groups int, tab, vals *float32) float32
//
// One row of an FP4 GEMV: Σ over groups of scale × Σ weight·x. Group g
// goes to accumulator g mod 4 (four independent chains); tab is the e8m0
// table (e8m0Bits), vals the 16 e2m1 values (fp4Table). Weights are
// prefetched 1 KiB ahead as in gemvFP4Row.
TEXT ·gemvFP4Row512(SB), NOSPLIT, $0-52
	MOVQ    w+0(FP), SI
	MOVQ    x+8(FP), DI
	MOVQ    scales+16(FP), R8
	MOVQ    groups+24(FP), CX
	MOVQ    tab+32(FP), R9
	MOVQ    vals+40(FP), R10
	VMOVUPS (R10), Z31
	VXORPS  Z0, Z0, Z0
	VXORPS  Z1, Z1, Z1
	VXORPS  Z2, Z2, Z2
	VXORPS  Z3, Z3, Z3
	MOVQ    CX, DX
	ANDQ    $3, DX
	SHRQ    $2, CX
	JZ      f5tail

f5quad:
	PREFETCHT0 1024(SI)
	FP4G512(0, 0, 0, Z0)
	FP4G512(16, 128, 1, Z1)
	FP4G512(32, 256, 2, Z2)
	FP4G512(48, 384, 3, Z3)
	ADDQ    $64, SI
	ADDQ    $512, DI
	ADDQ    $4, R8
	DECQ    CX
	JNZ     f5quad

f5tail:
	TESTQ   DX, DX
	JZ      f5sum
	FP4G512(0, 0, 0, Z0)
	DECQ    DX
	JZ      f5sum
	FP4G512(16, 128, 1, Z1)
	DECQ    DX
	JZ      f5sum
	FP4G512(32, 256, 2, Z2)

f5sum:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	HSUM0
	VZEROUPPER
	MOVSS   X0, ret+48(FP)
	RET

// G48LOAD and G48STORE move the accumulators of inputs 2p and 2p+1, row j, between acc
// (4×8 floats per input, input-major, as gemm4x3 keeps them) and the two
// halves of one register.
#define G48LOAD(ia, ib, j, z, y) \
	VMOVUPS       (ia*128+j*32)(DX), y \
	VINSERTF64X4  $1, (ib*128+j*32)(DX), z, z
#define G48STORE(ia, ib, j, z, y) \
	VMOVUPS       y, (ia*128+j*32)(DX) \
	VEXTRACTF64X4 $1, z, (ib*128+j*32)(DX)

// G48ROW multiplies weight row j (8 columns, broadcast to both halves) into
// the four input pairs.
#define G48ROW(src, a0, a1, a2, a3) \
	VBROADCASTF64X4 src, Z20 \
	VFMADD231PS     Z20, Z16, a0 \
	VFMADD231PS     Z20, Z17, a1 \
	VFMADD231PS     Z20, Z18, a2 \
	VFMADD231PS     Z20, Z19, a3

// func gemm4x8x512(w unsafe.Pointer, ldw int, x *float32, ldx int, acc *float32, k int)
//
// gemm4x3 for eight inputs (x, x+ldx, …, x+7·ldx; strides in elements),
// k a multiple of 8. Each register holds two inputs' 8-lane accumulators
// for one row, so every lane sums exactly the products gemm4x3 and gemm4x1
// sum, in the same order: the results are bit for bit those of the AVX2
// kernels, with twice the work per instruction (16 accumulators of 16
// lanes, 4 weight broadcasts and 4 paired x loads per 16 FMAs).
TEXT ·gemm4x8x512(SB), NOSPLIT, $0-48
	MOVQ    w+0(FP), SI
	MOVQ    ldw+8(FP), BX
	SHLQ    $2, BX
	LEAQ    (BX)(BX*2), R9
	MOVQ    x+16(FP), DI
	MOVQ    ldx+24(FP), R11
	SHLQ    $2, R11
	LEAQ    (R11)(R11*2), R12
	LEAQ    (DI)(R11*4), R8
	MOVQ    acc+32(FP), DX
	MOVQ    k+40(FP), CX
	G48LOAD(0, 1, 0, Z0, Y0)
	G48LOAD(0, 1, 1, Z1, Y1)
	G48LOAD(0, 1, 2, Z2, Y2)
	G48LOAD(0, 1, 3, Z3, Y3)
	G48LOAD(2, 3, 0, Z4, Y4)
	G48LOAD(2, 3, 1, Z5, Y5)
	G48LOAD(2, 3, 2, Z6, Y6)
	G48LOAD(2, 3, 3, Z7, Y7)
	G48LOAD(4, 5, 0, Z8, Y8)
	G48LOAD(4, 5, 1, Z9, Y9)
	G48LOAD(4, 5, 2, Z10, Y10)
	G48LOAD(4, 5, 3, Z11, Y11)
	G48LOAD(6, 7, 0, Z12, Y12)
	G48LOAD(6, 7, 1, Z13, Y13)
	G48LOAD(6, 7, 2, Z14, Y14)
	G48LOAD(6, 7, 3, Z15, Y15)

g48loop:
	TESTQ         CX, CX
	JZ            g48done
	VMOVUPS       (DI), Y16
	VINSERTF64X4  $1, (DI)(R11*1), Z16, Z16
	VMOVUPS       (DI)(R11*2), Y17
	VINSERTF64X4  $1, (DI)(R12*1), Z17, Z17
	VMOVUPS       (R8), Y18
	VINSERTF64X4  $1, (R8)(R11*1), Z18, Z18
	VMOVUPS       (R8)(R11*2), Y19
	VINSERTF64X4  $1, (R8)(R12*1), Z19, Z19
	G48ROW((SI), Z0, Z4, Z8, Z12)
	G48ROW((SI)(BX*1), Z1, Z5, Z9, Z13)
	G48ROW((SI)(BX*2), Z2, Z6, Z10, Z14)
	G48ROW((SI)(R9*1), Z3, Z7, Z11, Z15)
	ADDQ          $32, SI
	ADDQ          $32, DI
	ADDQ          $32, R8
	SUBQ          $8, CX
	JMP           g48loop

g48done:
	G48STORE(0, 1, 0, Z0, Y0)
	G48STORE(0, 1, 1, Z1, Y1)
	G48STORE(0, 1, 2, Z2, Y2)
	G48STORE(0, 1, 3, Z3, Y3)
	G48STORE(2, 3, 0, Z4, Y4)
	G48STORE(2, 3, 1, Z5, Y5)
	G48STORE(2, 3, 2, Z6, Y6)
	G48STORE(2, 3, 3, Z7, Y7)
	G48STORE(4, 5, 0, Z8, Y8)
	G48STORE(4, 5, 1, Z9, Y9)
	G48STORE(4, 5, 2, Z10, Y10)
	G48STORE(4, 5, 3, Z11, Y11)
	G48STORE(6, 7, 0, Z12, Y12)
	G48STORE(6, 7, 1, Z13, Y13)
	G48STORE(6, 7, 2, Z14, Y14)
	G48STORE(6, 7, 3, Z15, Y15)
	VZEROUPPER
	RET

// IDXPAIR reduces key pair p (accumulators zp, zp+3, zp+6, zp+9 for heads
// 0..3; the pair's first key in the low halves) and adds both keys' scores
// to out. The high halves are taken out first: the VEX-encoded reduction
// clears the high halves of the registers it writes.
#define IDXPAIR(z0, z1, z2, z3, y0, y1, y2, y3, x0, off) \
	VEXTRACTF64X4 $1, z0, Y12 \
	VEXTRACTF64X4 $1, z1, Y13 \
	VEXTRACTF64X4 $1, z2, Y14 \
	VEXTRACTF64X4 $1, z3, Y15 \
	IDXRED(Y12, Y13, Y14, Y15, X12, X13) \
	IDXRED(y0, y1, y2, y3, x0, X13) \
	VXORPS        X15, X15, X15 \
	VMOVUPS       (R15), X14 \
	IDXACC(x0, X14, X15, off(AX)) \
	IDXACC(X12, X14, X15, off+16(AX))

// func indexScores6x512(q *float32, groups, d int, k0, k1, k2, k3, k4, k5, w, out *float32)
//
// indexScores3 for six keys: each register holds two keys' 8-lane
// accumulators for one head (12 registers: 3 key pairs × 4 heads), so every
// lane sums exactly what indexScores3 sums, in the same order, and the
// reduction is indexScores3's: the scores are its bits. out holds 6×4
// lane sums.
TEXT ·indexScores6x512(SB), NOSPLIT, $0-88
	MOVQ  q+0(FP), SI
	MOVQ  groups+8(FP), CX
	MOVQ  d+16(FP), DI
	MOVQ  k0+24(FP), R8
	MOVQ  k1+32(FP), R9
	MOVQ  k2+40(FP), R10
	MOVQ  k3+48(FP), R11
	MOVQ  k4+56(FP), R12
	MOVQ  k5+64(FP), DX
	MOVQ  w+72(FP), R15
	SHLQ  $2, DI // row bytes
	TESTQ CX, CX
	JZ    is6done

is6group:
	LEAQ   (SI)(DI*1), BX
	LEAQ   (BX)(DI*1), R13
	LEAQ   (R13)(DI*1), R14
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	XORQ   AX, AX

is6loop:
	VMOVUPS         (R8)(AX*1), Y12
	VINSERTF64X4    $1, (R9)(AX*1), Z12, Z12
	VMOVUPS         (R10)(AX*1), Y13
	VINSERTF64X4    $1, (R11)(AX*1), Z13, Z13
	VMOVUPS         (R12)(AX*1), Y14
	VINSERTF64X4    $1, (DX)(AX*1), Z14, Z14
	VBROADCASTF64X4 (SI)(AX*1), Z15
	VFMADD231PS     Z15, Z12, Z0
	VFMADD231PS     Z15, Z13, Z1
	VFMADD231PS     Z15, Z14, Z2
	VBROADCASTF64X4 (BX)(AX*1), Z15
	VFMADD231PS     Z15, Z12, Z3
	VFMADD231PS     Z15, Z13, Z4
	VFMADD231PS     Z15, Z14, Z5
	VBROADCASTF64X4 (R13)(AX*1), Z15
	VFMADD231PS     Z15, Z12, Z6
	VFMADD231PS     Z15, Z13, Z7
	VFMADD231PS     Z15, Z14, Z8
	VBROADCASTF64X4 (R14)(AX*1), Z15
	VFMADD231PS     Z15, Z12, Z9
	VFMADD231PS     Z15, Z13, Z10
	VFMADD231PS     Z15, Z14, Z11
	ADDQ            $32, AX
	CMPQ            AX, DI
	JLT             is6loop

	// Pair p's accumulators are Z(p), Z(3+p), Z(6+p), Z(9+p).
	MOVQ out+80(FP), AX
	IDXPAIR(Z0, Z3, Z6, Z9, Y0, Y3, Y6, Y9, X0, 0)
	IDXPAIR(Z1, Z4, Z7, Z10, Y1, Y4, Y7, Y10, X1, 32)
	IDXPAIR(Z2, Z5, Z8, Z11, Y2, Y5, Y8, Y11, X2, 64)

	LEAQ (R14)(DI*1), SI // next group's first head
	ADDQ $16, R15
	DECQ CX
	JNZ  is6group

is6done:
	VZEROUPPER
	RET
