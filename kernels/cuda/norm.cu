// norm.cu: element-wise and row-wise helpers of the forward pass: RMSNorm,
// interleaved rotary embedding on trailing channels, clamped SwiGLU, axpy.

// rmsnorm: one block per row; dst = x·w/sqrt(mean(x²)+eps), the mean in
// double as kernels.RMSNorm does; w may be null. dst may alias x.
KERNEL void rmsnorm(float* dst, const float* x, const float* w, int width, float eps) {
    __shared__ double red[32];
    const float* xr = x + (size_t)blockIdx.x * width;
    float* dr = dst + (size_t)blockIdx.x * width;
    double ss = 0.0;
    for (int c = threadIdx.x; c < width; c += blockDim.x) {
        double v = xr[c];
        ss += v * v;
    }
    ss = block_sum_d(ss, red);
    float r = (float)(1.0 / sqrt(ss / (double)width + (double)eps));
    for (int c = threadIdx.x; c < width; c += blockDim.x) {
        float v = xr[c] * r;
        dr[c] = w ? v * w[c] : v;
    }
}

// rope: rotates the trailing dim channels (adjacent pairs) of nrows rows of
// width channels. Row i is at position pos[i/rows_per_pos] (pos0 + i/rows_per_pos
// when pos is null); angles θ·p are rounded to float like model.RopeTable.
KERNEL void rope(float* x, int nrows, int width, int dim, const double* theta, int rows_per_pos,
                 const int* pos, int pos0, int inverse) {
    int half = dim / 2;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)nrows * half) return;
    int row = (int)(i / half), pr = (int)(i % half);
    int pi = row / rows_per_pos;
    int p = pos ? pos[pi] : pos0 + pi;
    double a = (double)(float)((double)p * theta[pr]);
    float c = (float)cos(a), s = (float)sin(a);
    if (inverse) s = -s;
    float* v = x + (size_t)row * width + (width - dim) + 2 * pr;
    float x0 = v[0], x1 = v[1];
    v[0] = x0 * c - x1 * s;
    v[1] = x0 * s + x1 * c;
}

// swiglu: dst = silu(min(g, L))·clamp(u, −L, L) (no clamps when L ≤ 0),
// times rowscale[i/width] when rowscale is non-null (MoE routing weights).
KERNEL void swiglu(float* dst, const float* gate, const float* up, long long n, float limit,
                   const float* rowscale, int width) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = gate[i], u = up[i];
    if (limit > 0.f) {
        g = fminf(g, limit);
        u = fminf(fmaxf(u, -limit), limit);
    }
    float v = g / (1.f + (float)exp(-(double)g)) * u;
    if (rowscale) v *= rowscale[i / width];
    dst[i] = v;
}

// axpy: y += a·x over n elements.
KERNEL void axpy(float* y, const float* x, float a, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaf(a, x[i], y[i]);
}
