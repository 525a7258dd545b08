// common.cuh is prepended to every kernel source before NVRTC compiles it.
// It holds the fixed-width types, the storage-format decoders (bit-exact with
// kernels/formats.go) and the block reductions the kernels share. NVRTC gets
// no include path, so nothing here may include a system header.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define KERNEL extern "C" __global__

// Format codes, equal to kernels.Format.
#define FMT_F32 0
#define FMT_BF16 1
#define FMT_F16 2
#define FMT_FP8 3
#define FMT_FP4 4

#define NEG_INF __int_as_float(0xff800000)
#define QNAN __int_as_float(0x7fc00000)

// e8m0: 2^(b-127); 255 is NaN; 0 is the subnormal 2^-127.
__device__ __forceinline__ float dec_e8m0(u32 b) {
    if (b == 255u) return QNAN;
    if (b == 0u) return __int_as_float(1 << 22);
    return __int_as_float((int)(b << 23));
}

// e4m3fn: bias 7, no infinities, 0x7F/0xFF are NaN, subnormals m·2^-9.
__device__ __forceinline__ float dec_e4m3(u32 b) {
    u32 s = (b & 0x80u) << 24;
    u32 e = (b >> 3) & 15u;
    u32 m = b & 7u;
    if (e == 15u && m == 7u) return QNAN;
    if (e == 0u) return __int_as_float((int)(__float_as_uint((float)m * 0.001953125f) | s));
    return __int_as_float((int)(s | ((e + 120u) << 23) | (m << 20)));
}

// e2m1 nibble: sign bit 3, exponent bits 2..1 (bias 1), mantissa bit 0.
__device__ __forceinline__ float dec_e2m1(u32 n) {
    u32 s = (n & 8u) << 28;
    u32 e = (n >> 1) & 3u;
    u32 m = n & 1u;
    u32 mag = e == 0u ? (m ? 0x3f000000u : 0u) : (((e + 126u) << 23) | (m << 22));
    return __int_as_float((int)(mag | s));
}

__device__ __forceinline__ float dec_bf16(u32 h) { return __int_as_float((int)(h << 16)); }

__device__ __forceinline__ float dec_f16(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// w_at returns the dequantized element (r, c) of a matrix of any format; it is
// the slow, general path (tiles of the GEMM, odd shapes of the GEMV).
__device__ __forceinline__ float w_at(int fmt, const u8* __restrict__ w, const u8* __restrict__ sc,
                                      int cols, int block, long long r, int c) {
    long long i = r * (long long)cols + c;
    switch (fmt) {
    case FMT_F32: return ((const float*)w)[i];
    case FMT_BF16: return dec_bf16(((const u16*)w)[i]);
    case FMT_F16: return dec_f16(((const u16*)w)[i]);
    case FMT_FP8: {
        int nb = (cols + block - 1) / block;
        return dec_e4m3(w[i]) * dec_e8m0(sc[(r / block) * nb + c / block]);
    }
    case FMT_FP4: {
        u32 b = w[i >> 1];
        u32 nib = (i & 1) ? (b >> 4) : (b & 15u);
        return dec_e2m1(nib) * dec_e8m0(sc[i >> 5]);
    }
    }
    return QNAN;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block_sum / block_max reduce over the whole block (blockDim.x a multiple of
// 32, at most 1024); every thread gets the result. red must hold 32 floats.
__device__ __forceinline__ float block_sum(float v, float* red) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) red[wid] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.f;
    return warp_sum(v);
}

__device__ __forceinline__ double block_sum_d(double v, double* red) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) red[wid] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0;
    return warp_sum_d(v);
}

__device__ __forceinline__ float block_max(float v, float* red) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[wid] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : NEG_INF;
    return warp_max(v);
}

// sigmoid_ref matches kernels.Sigmoid: the exponential in double, the rest in float.
__device__ __forceinline__ float sigmoid_ref(float x) { return 1.f / (1.f + (float)exp(-(double)x)); }
