// compress.cu: compressor pooling and the indexer (scores, top-k).

// compress_pool pools W windows of m tokens into W entries of width d with a
// per-channel softmax gate (model.Compressor.Push). A and Z are
// [(W+1)·m, cd] rows (Z with ape already added); window 0 is the previous
// window, read only with overlap (cd = 2d: entry w pools the A halves of
// window w and the B halves of window w+1) and when w > 0 or prev_valid.
// Without overlap cd = d and window 0 is ignored.
KERNEL void compress_pool(float* out, const float* A, const float* Z, int W, int m, int d, int overlap,
                          int prev_valid) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)W * d) return;
    int w = (int)(i / d), j = (int)(i % d);
    int cd = overlap ? 2 * d : d, off = overlap ? d : 0;
    const float* Ap = A + (size_t)w * m * cd;
    const float* Zp = Z + (size_t)w * m * cd;
    const float* Ac = Ap + (size_t)m * cd;
    const float* Zc = Zp + (size_t)m * cd;
    bool prev = overlap && (w > 0 || prev_valid);
    float mx = NEG_INF;
    if (prev)
        for (int t = 0; t < m; t++) mx = fmaxf(mx, Zp[t * cd + j]);
    for (int t = 0; t < m; t++) mx = fmaxf(mx, Zc[t * cd + off + j]);
    float sum = 0.f, acc = 0.f;
    if (prev)
        for (int t = 0; t < m; t++) {
            float e = (float)exp((double)(Zp[t * cd + j] - mx));
            sum += e;
            acc = fmaf(e, Ap[t * cd + j], acc);
        }
    for (int t = 0; t < m; t++) {
        float e = (float)exp((double)(Zc[t * cd + off + j] - mx));
        sum += e;
        acc = fmaf(e, Ac[t * cd + off + j], acc);
    }
    out[i] = acc / sum;
}

// add_periodic adds ape[i mod period] to z[i] (the compressor's positional
// gate bias, when windows start at multiples of the ratio).
KERNEL void add_periodic(float* z, const float* ape, long long n, int period) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) z[i] += ape[i % period];
}

// index_scores: scores[t·S+w] = Σ_h ω[t,h]·ReLU(⟨q[t,h], K_w⟩)·ds for the
// count[t] visible keys (all S when count is null), −Inf beyond. One warp per
// key; 8 keys per block; grid.y is the query.
KERNEL void index_scores(float* scores, const float* q, const float* omega, const float* keys, const int* count,
                         int S, int heads, int hd, float ds) {
    int lane = threadIdx.x & 31;
    int w = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int t = blockIdx.y;
    if (w >= S) return;
    int nvis = count ? count[t] : S;
    if (w >= nvis) {
        if (lane == 0) scores[(size_t)t * S + w] = NEG_INF;
        return;
    }
    const float* k = keys + (size_t)w * hd;
    const float* qt = q + (size_t)t * heads * hd;
    const float* om = omega + (size_t)t * heads;
    float acc = 0.f;
    for (int h = 0; h < heads; h++) {
        float p = 0.f;
        for (int c = lane; c < hd; c += 32) p = fmaf(qt[h * hd + c], k[c], p);
        p = warp_sum(p);
        if (p > 0.f) acc += p * ds * om[h];
    }
    if (lane == 0) scores[(size_t)t * S + w] = acc;
}

// desc_key orders by score descending, then index ascending, as a u64.
__device__ __forceinline__ u64 desc_key(float f, u32 i) {
    u32 u = __float_as_uint(f);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((u64)(~u) << 32) | (u64)i;
}

// topk_keys fills npad (a power of two ≥ n) sort keys; padding sorts last.
KERNEL void topk_keys(u64* keys, const float* scores, int n, int npad) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= npad) return;
    keys[i] = i < n ? desc_key(scores[i], (u32)i) : ~0ull;
}

// bitonic_step is one (k, j) stage of an ascending bitonic sort of npad keys.
KERNEL void bitonic_step(u64* keys, int npad, int j, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= npad) return;
    int l = i ^ j;
    if (l <= i) return;
    u64 a = keys[i], b = keys[l];
    bool up = (i & k) == 0;
    if ((a > b) == up) {
        keys[i] = b;
        keys[l] = a;
    }
}

// topk_collect writes the first k sorted indices to out, −1 for padding and
// −Inf scores (which are never chosen).
KERNEL void topk_collect(int* out, const u64* keys, int k, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= k) return;
    u64 key = keys[i];
    u32 idx = (u32)key;
    u32 neginf = 0xff800000u;  // desc_key high word of −Inf
    out[i] = (key == ~0ull || idx >= (u32)n || (u32)(key >> 32) == neginf) ? -1 : (int)idx;
}
