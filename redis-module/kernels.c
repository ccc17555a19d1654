/* kernels.c - vectorizable loops over unaligned in-place float payloads.
 *
 * Each helper is a simple loop over restrict pointers. GCC's -O2 vectorizer
 * (the "very cheap" cost model) only vectorizes a loop whose trip count is a
 * known multiple of the vector width, so every loop runs over n rounded down
 * to a multiple of 8 and a scalar tail finishes the rest. */
#include "kernels.h"

/* 2048 floats = 8 KiB: the accumulator stays in L1 while sources stream. */
#define KERN_BLOCK 2048

static size_t body(size_t n) { return n & ~(size_t)7; }

static void acc_Set(float *restrict acc, const ufloat *restrict s, float w, size_t n)
{
    size_t m = body(n), i;
    if (w == 1.0f) {
        for (i = 0; i < m; i++)
            acc[i] = s[i];
    } else {
        for (i = 0; i < m; i++)
            acc[i] = w * s[i];
    }
    for (i = m; i < n; i++)
        acc[i] = w * s[i];
}

static void acc_Add(float *restrict acc, const ufloat *restrict s, float w, size_t n)
{
    size_t m = body(n), i;
    if (w == 1.0f) {
        for (i = 0; i < m; i++)
            acc[i] += s[i];
    } else {
        for (i = 0; i < m; i++)
            acc[i] += w * s[i];
    }
    for (i = m; i < n; i++)
        acc[i] += w * s[i];
}

static void acc_Store(ufloat *restrict out, const float *restrict acc, float scale, size_t n)
{
    size_t m = body(n), i;
    for (i = 0; i < m; i++)
        out[i] = acc[i] * scale;
    for (i = m; i < n; i++)
        out[i] = acc[i] * scale;
}

void kern_WeightedMean(ufloat *out, const ufloat *const *srcs, const float *weights, int nsrc,
                       size_t n, float scale)
{
    float acc[KERN_BLOCK] __attribute__((aligned(64)));
    for (size_t off = 0; off < n; off += KERN_BLOCK) {
        size_t len = n - off < KERN_BLOCK ? n - off : KERN_BLOCK;
        acc_Set(acc, srcs[0] + off, weights[0], len);
        for (int j = 1; j < nsrc; j++)
            acc_Add(acc, srcs[j] + off, weights[j], len);
        acc_Store(out + off, acc, scale, len);
    }
}

static void sgd_Range(ufloat *restrict w, const ufloat *restrict g, size_t from, size_t to,
                      float lr, float wd)
{
    for (size_t i = from; i < to; i++)
        w[i] -= lr * (g[i] + wd * w[i]);
}

void kern_Sgd(ufloat *w, const ufloat *g, size_t n, float lr, float wd)
{
    sgd_Range(w, g, 0, body(n), lr, wd);
    sgd_Range(w, g, body(n), n, lr, wd);
}

static void mom_Range(ufloat *restrict w, const ufloat *restrict g, ufloat *restrict v,
                      size_t from, size_t to, float lr, float mom, float wd)
{
    for (size_t i = from; i < to; i++) {
        float vi = mom * v[i] + g[i] + wd * w[i];
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

void kern_SgdMomentum(ufloat *w, const ufloat *g, ufloat *v, size_t n, float lr, float mom,
                      float wd)
{
    mom_Range(w, g, v, 0, body(n), lr, mom, wd);
    mom_Range(w, g, v, body(n), n, lr, mom, wd);
}
