// matmul.cu: y[i*rows+r] = Σ_c W[r,c]·x[i*cols+c] for every storage format,
// dequantizing weights in registers (GEMV) or per shared-memory tile (GEMM).
// Accumulation is float32 throughout.

#define GEMV_NB 4     // input rows per warp pass (grid.y covers the rest)
#define GEMV_WARPS 8  // output rows per block (one warp each)

// decode16 unpacks one 16-byte vector of format FMT into EPV floats.
template <int FMT, int EPV>
__device__ __forceinline__ void decode16(uint4 q, float* v) {
    u32 wd[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        u32 u = wd[k];
        if (FMT == FMT_F32) {
            v[k] = __uint_as_float(u);
        } else if (FMT == FMT_BF16) {
            v[2 * k] = __uint_as_float(u << 16);
            v[2 * k + 1] = __uint_as_float(u & 0xffff0000u);
        } else if (FMT == FMT_F16) {
            v[2 * k] = dec_f16((u16)(u & 0xffffu));
            v[2 * k + 1] = dec_f16((u16)(u >> 16));
        } else if (FMT == FMT_FP8) {
#pragma unroll
            for (int j = 0; j < 4; j++) v[4 * k + j] = dec_e4m3((u >> (8 * j)) & 0xffu);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) v[8 * k + j] = dec_e2m1((u >> (4 * j)) & 15u);
        }
    }
}

// gemv_chunk multiplies one dequantized 16-byte weight vector (index v in
// its row) with the matching columns of up to GEMV_NB input rows.
template <int FMT, int EPV>
__device__ __forceinline__ void gemv_chunk(uint4 q, int v, float* acc, const u8* __restrict__ sc,
                                           const float* __restrict__ x, int r, int cols, int block, int nb,
                                           int i0, int ni) {
    float wv[EPV];
    decode16<FMT, EPV>(q, wv);
    int c0 = v * EPV;
    float s = 1.f;
    if (FMT == FMT_FP8) s = dec_e8m0(sc[(size_t)(r / block) * nb + c0 / block]);
    if (FMT == FMT_FP4) s = dec_e8m0(sc[((size_t)r * cols + c0) >> 5]);
#pragma unroll
    for (int i = 0; i < GEMV_NB; i++) {
        if (i < ni) {
            const float4* xv = (const float4*)(x + (size_t)(i0 + i) * cols + c0);
            float p = 0.f;
#pragma unroll
            for (int k = 0; k < EPV / 4; k++) {
                float4 xx = __ldg(xv + k);
                p = fmaf(wv[4 * k], xx.x, p);
                p = fmaf(wv[4 * k + 1], xx.y, p);
                p = fmaf(wv[4 * k + 2], xx.z, p);
                p = fmaf(wv[4 * k + 3], xx.w, p);
            }
            acc[i] = fmaf(p, s, acc[i]);
        }
    }
}

// gemv_body: one warp per output row, lanes stride over 16-byte weight
// vectors; up to GEMV_NB input rows share every dequantized vector.
template <int FMT, int EPV>
__device__ __forceinline__ void gemv_body(float* __restrict__ y, const u8* __restrict__ w,
                                          const u8* __restrict__ sc, const float* __restrict__ x,
                                          int rows, int cols, int block, int n) {
    int r = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    int i0 = blockIdx.y * GEMV_NB;
    if (r >= rows) return;
    float acc[GEMV_NB];
#pragma unroll
    for (int i = 0; i < GEMV_NB; i++) acc[i] = 0.f;
    int ni = min(GEMV_NB, n - i0);
    bool vec = (cols % EPV) == 0 && (FMT != FMT_FP8 || (block % 16) == 0);
    if (vec) {
        int nv = cols / EPV;
        const uint4* wr = (const uint4*)(w + (size_t)r * (size_t)nv * 16u);
        int nb = FMT == FMT_FP8 ? (cols + block - 1) / block : 0;
        int v = lane;
        // Four independent 16-byte loads in flight per lane, then the tail.
        for (; v + 96 < nv; v += 128) {
            uint4 q0 = __ldg(wr + v), q1 = __ldg(wr + v + 32), q2 = __ldg(wr + v + 64), q3 = __ldg(wr + v + 96);
            gemv_chunk<FMT, EPV>(q0, v, acc, sc, x, r, cols, block, nb, i0, ni);
            gemv_chunk<FMT, EPV>(q1, v + 32, acc, sc, x, r, cols, block, nb, i0, ni);
            gemv_chunk<FMT, EPV>(q2, v + 64, acc, sc, x, r, cols, block, nb, i0, ni);
            gemv_chunk<FMT, EPV>(q3, v + 96, acc, sc, x, r, cols, block, nb, i0, ni);
        }
        for (; v < nv; v += 32) gemv_chunk<FMT, EPV>(__ldg(wr + v), v, acc, sc, x, r, cols, block, nb, i0, ni);
    } else {
        for (int c = lane; c < cols; c += 32) {
            float wv = w_at(FMT, w, sc, cols, block, r, c);
#pragma unroll
            for (int i = 0; i < GEMV_NB; i++)
                if (i < ni) acc[i] = fmaf(wv, x[(size_t)(i0 + i) * cols + c], acc[i]);
        }
    }
#pragma unroll
    for (int i = 0; i < GEMV_NB; i++) {
        float t = warp_sum(acc[i]);
        if (lane == 0 && i < ni) y[(size_t)(i0 + i) * rows + r] = t;
    }
}

KERNEL void gemv_f32(float* y, const u8* w, const u8* sc, const float* x, int rows, int cols, int block, int n) {
    gemv_body<FMT_F32, 4>(y, w, sc, x, rows, cols, block, n);
}
KERNEL void gemv_bf16(float* y, const u8* w, const u8* sc, const float* x, int rows, int cols, int block, int n) {
    gemv_body<FMT_BF16, 8>(y, w, sc, x, rows, cols, block, n);
}
KERNEL void gemv_f16(float* y, const u8* w, const u8* sc, const float* x, int rows, int cols, int block, int n) {
    gemv_body<FMT_F16, 8>(y, w, sc, x, rows, cols, block, n);
}
KERNEL void gemv_fp8(float* y, const u8* w, const u8* sc, const float* x, int rows, int cols, int block, int n) {
    gemv_body<FMT_FP8, 16>(y, w, sc, x, rows, cols, block, n);
}
KERNEL void gemv_fp4(float* y, const u8* w, const u8* sc, const float* x, int rows, int cols, int block, int n) {
    gemv_body<FMT_FP4, 32>(y, w, sc, x, rows, cols, block, n);
}

// gemm_tiled: 64×64 output tile per 256-thread block, 4×4 per thread, K in
// steps of 16 through shared memory. Weights are dequantized as the tile is
// loaded, so any format works; used for n > GEMV_NB·2 input rows.
#define GT_M 64
#define GT_N 64
#define GT_K 16
KERNEL void gemm_tiled(float* __restrict__ y, const u8* __restrict__ w, const u8* __restrict__ sc,
                       const float* __restrict__ x, int fmt, int rows, int cols, int block, int n) {
    __shared__ float xs[GT_K][GT_M + 4];
    __shared__ float ws[GT_K][GT_N + 4];
    int tid = threadIdx.x;
    int tx = tid & 15, ty = tid >> 4;
    int ib = blockIdx.y * GT_M, rb = blockIdx.x * GT_N;
    float acc[4][4];
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int b = 0; b < 4; b++) acc[a][b] = 0.f;
    for (int k0 = 0; k0 < cols; k0 += GT_K) {
        for (int e = tid; e < GT_M * GT_K; e += 256) {
            int m = e / GT_K, k = e % GT_K;
            int i = ib + m, c = k0 + k;
            xs[k][m] = (i < n && c < cols) ? x[(size_t)i * cols + c] : 0.f;
            int r = rb + m;
            ws[k][m] = (r < rows && c < cols) ? w_at(fmt, w, sc, cols, block, r, c) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < GT_K; k++) {
            float a[4], b[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                a[j] = xs[k][ty * 4 + j];
                b[j] = ws[k][tx * 4 + j];
            }
#pragma unroll
            for (int p = 0; p < 4; p++)
#pragma unroll
                for (int q = 0; q < 4; q++) acc[p][q] = fmaf(a[p], b[q], acc[p][q]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int p = 0; p < 4; p++) {
        int i = ib + ty * 4 + p;
        if (i >= n) continue;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int r = rb + tx * 4 + q;
            if (r < rows) y[(size_t)i * rows + r] = acc[p][q];
        }
    }
}

// ---------------------------------------------------------------------------
// Tensor-core GEMM (sm_80+): mma.sync m16n8k16 with bf16 operands and float32
// accumulation. Weights of format BF16, FP8 and FP4 are exact in bf16, and so
// are activations that the model has already rounded to FP8 (ActQuant), so
// for those the result equals the float32 GEMM up to summation order. Other
// inputs are rounded to bf16 (nearest even). The host uses this kernel only
// when asked to (Options.TensorCores) and only for those weight formats.
// Block: 4 warps; tile 64 weight rows × 32 input rows × 32 columns per step.

#define TC_M 64
#define TC_N 32
#define TC_K 32
#define TC_PAD 8

// bf16_bits rounds a float to bf16 (nearest even; NaN not preserved).
__device__ __forceinline__ u32 bf16_bits(float f) {
    u32 u = __float_as_uint(f);
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

__device__ __forceinline__ u32 pack_bf16(const u16* p) { return (u32)p[0] | ((u32)p[1] << 16); }

KERNEL void gemm_bf16_mma(float* __restrict__ y, const u8* __restrict__ w, const u8* __restrict__ sc,
                          const float* __restrict__ x, int fmt, int rows, int cols, int block, int n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    __shared__ u16 ws[TC_M][TC_K + TC_PAD];
    __shared__ u16 xs[TC_N][TC_K + TC_PAD];
    int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    int g = lane >> 2, tg = lane & 3;
    int rb = blockIdx.x * TC_M, nb = blockIdx.y * TC_N;
    float c[4][4];
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int b = 0; b < 4; b++) c[a][b] = 0.f;
    for (int k0 = 0; k0 < cols; k0 += TC_K) {
        for (int e = tid; e < TC_M * TC_K; e += 128) {
            int m = e / TC_K, k = e % TC_K;
            int r = rb + m, cc = k0 + k;
            ws[m][k] = (u16)((r < rows && cc < cols) ? bf16_bits(w_at(fmt, w, sc, cols, block, r, cc)) : 0u);
        }
        for (int e = tid; e < TC_N * TC_K; e += 128) {
            int m = e / TC_K, k = e % TC_K;
            int i = nb + m, cc = k0 + k;
            xs[m][k] = (u16)((i < n && cc < cols) ? bf16_bits(x[(size_t)i * cols + cc]) : 0u);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TC_K; kk += 16) {
            int ar = warp * 16 + g;
            u32 a0 = pack_bf16(&ws[ar][kk + tg * 2]);
            u32 a1 = pack_bf16(&ws[ar + 8][kk + tg * 2]);
            u32 a2 = pack_bf16(&ws[ar][kk + tg * 2 + 8]);
            u32 a3 = pack_bf16(&ws[ar + 8][kk + tg * 2 + 8]);
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                u32 b0 = pack_bf16(&xs[nt * 8 + g][kk + tg * 2]);
                u32 b1 = pack_bf16(&xs[nt * 8 + g][kk + tg * 2 + 8]);
                asm volatile(
                    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                    "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                    : "+f"(c[nt][0]), "+f"(c[nt][1]), "+f"(c[nt][2]), "+f"(c[nt][3])
                    : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int nt = 0; nt < 4; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int r = rb + warp * 16 + g + 8 * (i >> 1);
            int col = nb + nt * 8 + tg * 2 + (i & 1);
            if (r < rows && col < n) y[(size_t)col * rows + r] = c[nt][i];
        }
#else
    __trap();  // the host never launches this below sm_80
#endif
}
