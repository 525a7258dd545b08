// Macros shared by simd_amd64.s (AVX2) and simd512_amd64.s (AVX-512): the
// AVX-512 kernels that give the AVX2 kernels' bits reduce with the same
// instructions in the same order.

// Horizontal sum of Y0 into X0 (fixed order).
#define HSUM0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VPERMILPS    $0x4E, X0, X1 \
	VADDPS       X1, X0, X0 \
	VPERMILPS    $0xB1, X0, X1 \
	VADDSS       X1, X0, X0

// Reduce the four head accumulators a0..a3 (8 lanes each) of one key to
// their four dot products in x0 (heads 0..3; x0 is a0's low half), in the
// order ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)); xt is clobbered.
#define IDXRED(a0, a1, a2, a3, x0, xt) \
	VHADDPS      a1, a0, a0 \
	VHADDPS      a3, a2, a2 \
	VHADDPS      a2, a0, a0 \
	VEXTRACTF128 $1, a0, xt \
	VADDPS       xt, x0, x0

// Adds w·ReLU(dots) (4 heads in x, weights in xw, zero in xz) to the four
// lane sums at mem.
#define IDXACC(x, xw, xz, mem) \
	VMAXPS  xz, x, x \
	VMULPS  xw, x, x \
	VADDPS  mem, x, x \
	VMOVUPS x, mem
