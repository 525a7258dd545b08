// mhc.cu: one fused manifold-constrained hyper-connection site per token:
// (optionally) expand the previous site's output into the n streams, then the
// mixing GEMV μ = fn·X, the rms of X, pre/post/comb coefficients with the
// Sinkhorn normalisation, and the collapse u = Σ_j pre_j·X_j — one block per
// token, so a decode step spends one launch per site.

#define MHC_MAXN 6
#define MHC_MAXR 48  // (2+n)·n for n ≤ 6

// mhc_site: X [T, n·D] streams (updated in place by the expand when y is
// non-null, using prevmix [T, R] = pre|post|comb of the previous site);
// fn [R, n·D] float32, base [R], scale [3]; writes u [T, D] and mix [T, R].
KERNEL void mhc_site(float* X, const float* y, const float* prevmix, const float* fn, const float* base,
                     const float* scale, float* u, float* mix, int n, int D, int iters, float hc_eps,
                     float eps) {
    __shared__ float red[32];
    __shared__ double redd[32];
    __shared__ float mu[MHC_MAXR];
    __shared__ float cf[MHC_MAXR];
    int t = blockIdx.x;
    int nd = n * D, R = (2 + n) * n;
    float* Xt = X + (size_t)t * nd;
    if (y) {
        const float* pm = prevmix + (size_t)t * R;
        const float* yt = y + (size_t)t * D;
        for (int c = threadIdx.x; c < D; c += blockDim.x) {
            float old[MHC_MAXN];
#pragma unroll
            for (int j = 0; j < MHC_MAXN; j++) old[j] = j < n ? Xt[j * D + c] : 0.f;
            for (int k = 0; k < n; k++) {
                float v = pm[n + k] * yt[c];
#pragma unroll
                for (int j = 0; j < MHC_MAXN; j++)
                    if (j < n) v = fmaf(pm[2 * n + j * n + k], old[j], v);
                Xt[k * D + c] = v;
            }
        }
        __syncthreads();
    }
    float acc[MHC_MAXR];
#pragma unroll
    for (int r = 0; r < MHC_MAXR; r++) acc[r] = 0.f;
    double ss = 0.0;
    for (int c = threadIdx.x; c < nd; c += blockDim.x) {
        float xv = Xt[c];
        ss += (double)xv * (double)xv;
#pragma unroll
        for (int r = 0; r < MHC_MAXR; r++)
            if (r < R) acc[r] = fmaf(fn[(size_t)r * nd + c], xv, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < MHC_MAXR; r++) {
        if (r < R) {
            float v = block_sum(acc[r], red);
            if (threadIdx.x == 0) mu[r] = v;
        }
    }
    ss = block_sum_d(ss, redd);
    __syncthreads();
    if (threadIdx.x == 0) {
        float rr = (float)(1.0 / sqrt(ss / (double)nd + (double)eps));
        for (int j = 0; j < n; j++) {
            cf[j] = sigmoid_ref(mu[j] * rr * scale[0] + base[j]) + hc_eps;
            cf[n + j] = 2.f * sigmoid_ref(mu[n + j] * rr * scale[1] + base[n + j]);
        }
        float* c = cf + 2 * n;
        for (int j = 0; j < n; j++) {
            float mx = NEG_INF;
            for (int k = 0; k < n; k++) mx = fmaxf(mx, mu[2 * n + j * n + k] * rr * scale[2] + base[2 * n + j * n + k]);
            float sum = 0.f;
            for (int k = 0; k < n; k++) {
                float l = mu[2 * n + j * n + k] * rr * scale[2] + base[2 * n + j * n + k];
                c[j * n + k] = (float)exp((double)(l - mx));
                sum += c[j * n + k];
            }
            for (int k = 0; k < n; k++) c[j * n + k] = c[j * n + k] / sum + hc_eps;
        }
        int its = iters < 1 ? 1 : iters;  // SinkhornMix normalises columns at least once
        for (int it = 0; it < its; it++) {
            if (it > 0) {
                for (int j = 0; j < n; j++) {
                    float sum = 0.f;
                    for (int k = 0; k < n; k++) sum += c[j * n + k];
                    for (int k = 0; k < n; k++) c[j * n + k] /= sum + hc_eps;
                }
            }
            for (int k = 0; k < n; k++) {
                float sum = 0.f;
                for (int j = 0; j < n; j++) sum += c[j * n + k];
                for (int j = 0; j < n; j++) c[j * n + k] /= sum + hc_eps;
            }
        }
        for (int r = 0; r < R; r++) mix[(size_t)t * R + r] = cf[r];
    }
    __syncthreads();
    float* ut = u + (size_t)t * D;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float v = 0.f;
        for (int j = 0; j < n; j++) v = fmaf(cf[j], Xt[j * D + c], v);
        ut[c] = v;
    }
}
