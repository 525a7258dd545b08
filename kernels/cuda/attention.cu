// attention.cu: sparse attention with a per-head sink over shared key=value
// rows (kernels.AttendRef). One block per (head, query); decode is T = 1,
// prefill runs every query of a chunk in one launch, each with its own row
// list (idx) and visible count.

// attend: query t, head h reads q[(t·heads+h)·d .. +d]. Its rows are
// rows + (idx ? idx[t·S+s] : s)·ldr for s < (count ? count[t] : S). logits is
// scratch of T·heads·S floats. Output has the layout of q.
KERNEL void attend(float* __restrict__ out, const float* __restrict__ q, const float* __restrict__ rows,
                   const int* __restrict__ idx, const int* __restrict__ count, int heads, int d, int S,
                   int ldr, const float* __restrict__ sinks, float scale, float* __restrict__ logits) {
    __shared__ float red[32];
    int h = blockIdx.x, t = blockIdx.y;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    size_t qo = ((size_t)t * heads + h) * (size_t)d;
    const float* qh = q + qo;
    float* oh = out + qo;
    float* lg = logits + ((size_t)t * heads + h) * (size_t)S;
    int ns = count ? min(count[t], S) : S;
    if (ns <= 0) {
        for (int c = threadIdx.x; c < d; c += blockDim.x) oh[c] = 0.f;
        return;
    }
    float mx = NEG_INF;
    for (int s = wid; s < ns; s += nw) {
        const float* r = rows + (size_t)(idx ? idx[(size_t)t * S + s] : s) * (size_t)ldr;
        float p = 0.f;
        for (int c = lane; c < d; c += 32) p = fmaf(qh[c], r[c], p);
        p = warp_sum(p) * scale;
        if (lane == 0) lg[s] = p;
        mx = fmaxf(mx, p);
    }
    mx = block_max(mx, red);
    float z = 0.f;
    for (int s = threadIdx.x; s < ns; s += blockDim.x) {
        float e = expf(lg[s] - mx);
        lg[s] = e;
        z += e;
    }
    z = block_sum(z, red) + expf(sinks[h] - mx);
    __syncthreads();
    float inv = 1.f / z;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        float a = 0.f;
        for (int s = 0; s < ns; s++) {
            const float* r = rows + (size_t)(idx ? idx[(size_t)t * S + s] : s) * (size_t)ldr;
            a = fmaf(lg[s] * inv, r[c], a);
        }
        oh[c] = a;
    }
}
