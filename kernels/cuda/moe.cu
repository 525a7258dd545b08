// moe.cu: mixture-of-experts routing and expert dispatch helpers.

// softplus_ref follows kernels.Softplus (PyTorch threshold 20).
__device__ __forceinline__ float softplus_ref(float x) { return x > 20.f ? x : (float)log1p(exp((double)x)); }

// moe_route: one block per token. s = sqrt(softplus(logit/temp)); the
// experts are the top k of s + bias (ties: lower index first), or
// tid2eid[tokens[t]·k + i] when tid2eid is non-null (hash layers); weights are
// s[e]/(Σ s[chosen] + eps)·route_scale. Dynamic shared memory: 2·E floats.
KERNEL void moe_route(int* experts, float* weights, const float* logits, const float* bias, const int* tid2eid,
                      const int* tokens, int E, int k, float temp, float route_scale, float eps) {
    extern __shared__ float sm[];
    __shared__ float rv[32];
    __shared__ int ri[32];
    __shared__ int chosen[64];
    float* s = sm;
    float* key = sm + E;
    int t = blockIdx.x;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        float v = (float)sqrt((double)softplus_ref(logits[(size_t)t * E + e] / temp));
        s[e] = v;
        key[e] = bias ? v + bias[e] : v;
    }
    __syncthreads();
    for (int i = 0; i < k; i++) {
        if (tid2eid) {
            if (threadIdx.x == 0) chosen[i] = tid2eid[(size_t)tokens[t] * k + i];
            continue;
        }
        float bv = NEG_INF;
        int bi = 0x7fffffff;
        for (int e = threadIdx.x; e < E; e += blockDim.x) {
            float v = key[e];
            if (v > bv || (v == bv && e < bi)) {
                bv = v;
                bi = e;
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) {
                bv = ov;
                bi = oi;
            }
        }
        if (lane == 0) {
            rv[wid] = bv;
            ri[wid] = bi;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            float b = rv[0];
            int x = ri[0];
            for (int w = 1; w < nw; w++)
                if (rv[w] > b || (rv[w] == b && ri[w] < x)) {
                    b = rv[w];
                    x = ri[w];
                }
            if (x < 0 || x >= E) x = 0;  // all keys NaN: keep a valid index
            chosen[i] = x;
            key[x] = NEG_INF;
        }
        __syncthreads();
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float sum = 0.f;
        for (int i = 0; i < k; i++) sum += s[chosen[i]];
        for (int i = 0; i < k; i++) {
            experts[(size_t)t * k + i] = chosen[i];
            weights[(size_t)t * k + i] = s[chosen[i]] / (sum + eps) * route_scale;
        }
    }
}

// gather_rows copies rows src[idx[i]] (width D) into dst[i] for i < nrows.
KERNEL void gather_rows(float* dst, const float* src, const int* idx, int nrows, int D) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)nrows * D) return;
    int r = (int)(i / D), c = (int)(i % D);
    dst[i] = src[(size_t)idx[r] * D + c];
}

// moe_combine adds, for every token t, the k expert outputs ys[slot[t·k+i]]
// (rows of width D, in slot order) to out[t]; slot < 0 is skipped.
// Deterministic: no atomics.
KERNEL void moe_combine(float* out, const float* ys, const int* slot, int T, int k, int D) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * D) return;
    int t = (int)(i / D), c = (int)(i % D);
    float v = out[i];
    for (int j = 0; j < k; j++) {
        int s = slot[(size_t)t * k + j];
        if (s >= 0) v += ys[(size_t)s * D + c];
    }
    out[i] = v;
}
