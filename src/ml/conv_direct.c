/* conv_direct.c - direct convolution kernels for layers with few filters
 * (LeNet's first layer: 6 filters over 1 channel). There im2col + sgemm
 * spends most of its time copying a 25x larger cols matrix and in sgemm's
 * edge handling of a 6-wide side (the weight gradient, 6 x 25 x 50k, ran at
 * a fifth of sgemm's usual speed). These kernels read the phase images
 * (layers.c) in place: every (tap, quadrant, sample) input run is already
 * contiguous there, so each output vector is a sum of K vector loads times
 * broadcast weights.
 *
 * The kernels use 16-lane vector extensions and, on x86-64, are compiled
 * for AVX-512, AVX2 and the baseline, the best picked at load time. */
#include <string.h>

#include "ml/layers.h"

#define SIMD_CLONES
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#undef SIMD_CLONES
#define SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif

#define INLINE static inline __attribute__((always_inline))

/* 16 lanes: one register with AVX-512, two with AVX2 (6 filters x 2 =
 * 12 accumulators still fit the 16 ymm registers); the SSE baseline spills
 * some, acceptable for a fallback. */
#define VL 16
typedef float vf __attribute__((vector_size(VL * sizeof(float))));

/* Unaligned, aliasing-safe view for loads and stores (the same idea as
 * the compilers' own __m256_u). Macros rather than functions: wide vectors
 * passed by value draw ABI warnings on baseline targets. */
typedef float vf_u __attribute__((vector_size(VL * sizeof(float)), aligned(4), may_alias));
#define vf_Load(p) (*(const vf_u *)(const void *)(p))

INLINE float vf_Sum(const vf *v)
{
    float t = 0.0f;
    for (int i = 0; i < VL; i++)
        t += (*v)[i];
    return t;
}

/* Pointers to the K input runs (one per (channel, tap) row, in W's column
 * order) for quadrant q of sample s. */
static void direct_Rows(const conv_geom *g, int n, const float *phase, int q, int s,
                        const float **rows)
{
    const size_t chan = conv_PhaseFloats(g, n), blk = (size_t)g->qh * (size_t)g->pw;
    int r = 0;
    for (int c = 0; c < g->c; c++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++)
                rows[r++] = phase + (size_t)c * chan + conv_PhaseRun(g, n, ky, kx, q) +
                            (size_t)s * blk;
}

/* out[f][0..P) = sum_r Wt[r][f] * rows[r][0..P), P >= VL. The last vector
 * overlaps the previous one instead of a scalar tail: outputs are written,
 * never accumulated, so recomputing a few is harmless. */
INLINE void forward_Block(int F, int K, const float *Wt, const float *const *rows,
                          float *const *out, int P)
{
    for (int p = 0;; p += VL) {
        if (p + VL > P)
            p = P - VL;
        vf acc[CONV_DIRECT_MAX_F];
        for (int f = 0; f < F; f++)
            acc[f] = (vf){0};
        for (int r = 0; r < K; r++) {
            vf x = vf_Load(rows[r] + p);
            const float *w = Wt + (size_t)r * (size_t)F;
            for (int f = 0; f < F; f++)
                acc[f] += x * w[f];
        }
        for (int f = 0; f < F; f++)
            memcpy(out[f] + p, &acc[f], sizeof acc[f]);
        if (p + VL >= P)
            break;
    }
}

/* forward_Block for F = 6 with the accumulators spelled out: -O2 does not
 * unroll the generic loop, which leaves them in memory. */
INLINE void forward_Block6(int K, const float *Wt, const float *const *rows, float *const *out,
                           int P)
{
    for (int p = 0;; p += VL) {
        if (p + VL > P)
            p = P - VL;
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0};
        for (int r = 0; r < K; r++) {
            vf x = vf_Load(rows[r] + p);
            const float *w = Wt + (size_t)r * 6;
            a0 += x * w[0];
            a1 += x * w[1];
            a2 += x * w[2];
            a3 += x * w[3];
            a4 += x * w[4];
            a5 += x * w[5];
        }
        memcpy(out[0] + p, &a0, sizeof a0);
        memcpy(out[1] + p, &a1, sizeof a1);
        memcpy(out[2] + p, &a2, sizeof a2);
        memcpy(out[3] + p, &a3, sizeof a3);
        memcpy(out[4] + p, &a4, sizeof a4);
        memcpy(out[5] + p, &a5, sizeof a5);
        if (p + VL >= P)
            break;
    }
}

static void forward_Scalar(int F, int K, const float *Wt, const float *const *rows,
                           float *const *out, int P)
{
    for (int p = 0; p < P; p++)
        for (int f = 0; f < F; f++) {
            float a = 0.0f;
            for (int r = 0; r < K; r++)
                a += Wt[(size_t)r * (size_t)F + (size_t)f] * rows[r][p];
            out[f][p] = a;
        }
}

SIMD_CLONES
static void forward_All(const conv_geom *g, int n, int F, const float *Wt, const float *phase,
                        float *z)
{
    const int K = g->c * g->k * g->k, P = g->ph * g->pw;
    const float *rows[CONV_DIRECT_MAX_K];
    float *out[CONV_DIRECT_MAX_F];
    for (int q = 0; q < 4; q++)
        for (int s = 0; s < n; s++) {
            direct_Rows(g, n, phase, q, s, rows);
            for (int f = 0; f < F; f++)
                out[f] = z + (((size_t)f * 4 + (size_t)q) * (size_t)n + (size_t)s) * (size_t)P;
            if (P < VL)
                forward_Scalar(F, K, Wt, rows, out, P);
            else if (F == 6)
                forward_Block6(K, Wt, rows, out, P);
            else
                forward_Block(F, K, Wt, rows, out, P);
        }
}

void conv_DirectForward(const conv_geom *g, int n, int f, const float *W, const float *phase,
                        float *z)
{
    /* Weights transposed to [K][F] so one row's F weights sit together. */
    const int K = g->c * g->k * g->k;
    float Wt[CONV_DIRECT_MAX_F * CONV_DIRECT_MAX_K];
    for (int i = 0; i < f; i++)
        for (int r = 0; r < K; r++)
            Wt[(size_t)r * (size_t)f + (size_t)i] = W[(size_t)i * (size_t)K + (size_t)r];
    forward_All(g, n, f, Wt, phase, z);
}

/* Lanes VL-rem..VL-1 set to 1, the rest 0: the last, overlapping vector of
 * a run of P = k*VL + rem elements counts only the elements not yet seen. */
INLINE void tail_Mask(vf *m, int rem)
{
    for (int i = 0; i < VL; i++)
        (*m)[i] = i >= VL - rem ? 1.0f : 0.0f;
}

/* acc[r][f] += dz[f][0..P) . rows[r][0..P), as vectors (summed up later). */
INLINE void wgrad_Block(int F, int K, const float *const *dz, const float *const *rows,
                        vf *acc, int P)
{
    const int rem = P % VL, P0 = P - rem;
    vf mask;
    tail_Mask(&mask, rem);
    for (int r = 0; r < K; r++) {
        vf a[CONV_DIRECT_MAX_F];
        for (int f = 0; f < F; f++)
            a[f] = (vf){0};
        const float *x = rows[r];
        for (int p = 0; p < P0; p += VL) {
            vf xv = vf_Load(x + p);
            for (int f = 0; f < F; f++)
                a[f] += vf_Load(dz[f] + p) * xv;
        }
        if (rem) {
            vf xv = vf_Load(x + P - VL) * mask;
            for (int f = 0; f < F; f++)
                a[f] += vf_Load(dz[f] + P - VL) * xv;
        }
        for (int f = 0; f < F; f++)
            acc[(size_t)r * (size_t)F + (size_t)f] += a[f];
    }
}

/* wgrad_Block for F = 6, accumulators spelled out (see forward_Block6). */
INLINE void wgrad_Block6(int K, const float *const *dz, const float *const *rows, vf *acc,
                         int P)
{
    const int rem = P % VL, P0 = P - rem;
    vf mask;
    tail_Mask(&mask, rem);
    for (int r = 0; r < K; r++) {
        vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0};
        const float *x = rows[r];
        for (int p = 0; p < P0; p += VL) {
            vf xv = vf_Load(x + p);
            a0 += vf_Load(dz[0] + p) * xv;
            a1 += vf_Load(dz[1] + p) * xv;
            a2 += vf_Load(dz[2] + p) * xv;
            a3 += vf_Load(dz[3] + p) * xv;
            a4 += vf_Load(dz[4] + p) * xv;
            a5 += vf_Load(dz[5] + p) * xv;
        }
        if (rem) {
            const int p = P - VL;
            vf xv = vf_Load(x + p) * mask;
            a0 += vf_Load(dz[0] + p) * xv;
            a1 += vf_Load(dz[1] + p) * xv;
            a2 += vf_Load(dz[2] + p) * xv;
            a3 += vf_Load(dz[3] + p) * xv;
            a4 += vf_Load(dz[4] + p) * xv;
            a5 += vf_Load(dz[5] + p) * xv;
        }
        vf *o = acc + (size_t)r * 6;
        o[0] += a0;
        o[1] += a1;
        o[2] += a2;
        o[3] += a3;
        o[4] += a4;
        o[5] += a5;
    }
}

/* One input channel at a time (kk = k*k rows), so the per-(row, filter)
 * vector partial sums fit a small stack array; they are summed into
 * dW [F][c*kk] once per channel. */
SIMD_CLONES
static void wgrad_All(const conv_geom *g, int n, int F, const float *dz, const float *phase,
                      float *dW, int accumulate)
{
    const int K = g->c * g->k * g->k;
    const int kk = g->k * g->k, P = g->ph * g->pw;
    const float *rows[CONV_DIRECT_MAX_K];
    const float *d[CONV_DIRECT_MAX_F];
    vf part[CONV_DIRECT_MAX_KK * CONV_DIRECT_MAX_F];
    for (int c = 0; c < g->c; c++) {
        memset(part, 0, (size_t)kk * (size_t)F * sizeof part[0]);
        for (int q = 0; q < 4; q++)
            for (int s = 0; s < n; s++) {
                direct_Rows(g, n, phase, q, s, rows);
                for (int f = 0; f < F; f++)
                    d[f] = dz + (((size_t)f * 4 + (size_t)q) * (size_t)n + (size_t)s) * (size_t)P;
                const float *const *rc = rows + (size_t)c * (size_t)kk;
                if (P < VL) {
                    for (int r = 0; r < kk; r++)
                        for (int f = 0; f < F; f++)
                            for (int p = 0; p < P; p++)
                                part[(size_t)r * (size_t)F + (size_t)f][0] += d[f][p] * rc[r][p];
                } else if (F == 6) {
                    wgrad_Block6(kk, d, rc, part, P);
                } else {
                    wgrad_Block(F, kk, d, rc, part, P);
                }
            }
        for (int r = 0; r < kk; r++)
            for (int f = 0; f < F; f++) {
                float v = vf_Sum(&part[(size_t)r * (size_t)F + (size_t)f]);
                float *o = dW + (size_t)f * (size_t)K + (size_t)c * (size_t)kk + (size_t)r;
                *o = accumulate ? *o + v : v;
            }
    }
}

void conv_DirectWeightGrad(const conv_geom *g, int n, int f, const float *dz,
                           const float *phase, float *dW, int accumulate)
{
    wgrad_All(g, n, f, dz, phase, dW, accumulate);
}
