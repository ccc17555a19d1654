/* kernels.c - vectorizable loops over possibly unaligned float arrays
 * (kernels.h has the contract).
 *
 * Each helper is a simple loop over restrict pointers. GCC's -O2 vectorizer
 * (the "very cheap" cost model) only vectorizes a loop whose trip count is
 * a known multiple of the vector width, so every loop runs over n rounded
 * down to a multiple of 8 and a scalar tail finishes the rest with the same
 * operations in the same order. */
#include "core/kernels.h"

#include <stdint.h>
#include <string.h>

/* Clang contracts a*b+c into an FMA where the target has one; that would
 * round differently from a build or a tail loop without it. GCC in ISO C
 * mode (-std=c11) never contracts and does not know this pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* 2048 floats = 8 KiB: the accumulator stays in L1 while sources stream. */
#define KERN_BLOCK 2048

static size_t body(size_t n) { return n & ~(size_t)7; }

/* The block helpers stay out of line: inlined into kern_Mean, GCC 12 no
 * longer vectorizes their loops (the unaligned loads lose their vector
 * type). One call per 8 KiB block costs nothing. */
#define KERN_OUTLINE __attribute__((noinline))

KERN_OUTLINE static void acc_Add(float *restrict acc, const ufloat *restrict s, size_t n)
{
    size_t m = body(n), i;
    for (i = 0; i < m; i++)
        acc[i] += s[i];
    for (i = m; i < n; i++)
        acc[i] += s[i];
}

KERN_OUTLINE static void acc_Store(ufloat *restrict out, const float *restrict acc, float scale, size_t n)
{
    size_t m = body(n), i;
    for (i = 0; i < m; i++)
        out[i] = acc[i] * scale;
    for (i = m; i < n; i++)
        out[i] = acc[i] * scale;
}

void kern_Mean(ufloat *out, const ufloat *const *srcs, int k, size_t n)
{
    float acc[KERN_BLOCK] __attribute__((aligned(64)));
    const float scale = 1.0f / (float)k;
    /* A block is read from every source before any of it is written, so
     * out may be one of the sources. */
    for (size_t off = 0; off < n; off += KERN_BLOCK) {
        size_t len = n - off < KERN_BLOCK ? n - off : KERN_BLOCK;
        memcpy(acc, srcs[0] + off, len * sizeof *acc);
        for (int j = 1; j < k; j++)
            acc_Add(acc, srcs[j] + off, len);
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
        float vi = mom * v[i] + (g[i] + wd * w[i]);
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

/* ---- sparse ---- */

static uint32_t pair_Index(const unsigned char *p)
{
    uint32_t i;
    memcpy(&i, p, sizeof i);
    return i;
}

static float pair_Value(const unsigned char *p)
{
    float v;
    memcpy(&v, p + 4, sizeof v);
    return v;
}

size_t kern_MeanSparse(unsigned char *out, const unsigned char *const *srcs,
                       const size_t *counts, int k, size_t *pos)
{
    const float scale = 1.0f / (float)k;
    size_t n = 0;
    for (int j = 0; j < k; j++)
        pos[j] = 0;
    for (;;) {
        /* the smallest index at the head of any source */
        int first = -1;
        uint32_t at = 0;
        for (int j = 0; j < k; j++) {
            if (pos[j] == counts[j])
                continue;
            uint32_t i = pair_Index(srcs[j] + KERN_PAIR * pos[j]);
            if (first < 0 || i < at) {
                first = j;
                at = i;
            }
        }
        if (first < 0)
            return n;
        float acc = pair_Value(srcs[first] + KERN_PAIR * pos[first]++);
        for (int j = first + 1; j < k; j++)
            if (pos[j] < counts[j] && pair_Index(srcs[j] + KERN_PAIR * pos[j]) == at)
                acc += pair_Value(srcs[j] + KERN_PAIR * pos[j]++);
        float mean = acc * scale;
        memcpy(out + KERN_PAIR * n, &at, sizeof at);
        memcpy(out + KERN_PAIR * n + 4, &mean, sizeof mean);
        n++;
    }
}

void kern_SgdSparse(ufloat *w, const unsigned char *pairs, size_t count, float lr, float wd)
{
    for (size_t k = 0; k < count; k++) {
        uint32_t i = pair_Index(pairs + KERN_PAIR * k);
        float g = pair_Value(pairs + KERN_PAIR * k);
        w[i] -= lr * (g + wd * w[i]);
    }
}

void kern_SgdMomentumSparse(ufloat *w, ufloat *v, const unsigned char *pairs, size_t count,
                            float lr, float mom, float wd)
{
    for (size_t k = 0; k < count; k++) {
        uint32_t i = pair_Index(pairs + KERN_PAIR * k);
        float g = pair_Value(pairs + KERN_PAIR * k);
        float vi = mom * v[i] + (g + wd * w[i]);
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

size_t kern_Filter(ufloat *acc, const ufloat *acc_in, const ufloat *src, float scale,
                   const ufloat *w, size_t n, float thr, unsigned char *pairs)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        float a = (acc_in ? acc_in[i] : 0.0f) + scale * src[i];
        float mag = a < 0 ? -a : a, wi = w[i] < 0 ? -w[i] : w[i];
        /* Multiplied out instead of dividing by w_i: a zero weight makes
         * any nonzero a significant, with no division per element. */
        if (mag > thr * wi) {
            uint32_t at = (uint32_t)i;
            memcpy(pairs + KERN_PAIR * k, &at, sizeof at);
            memcpy(pairs + KERN_PAIR * k + 4, &a, sizeof a);
            k++;
            a = 0;
        }
        acc[i] = a;
    }
    return k;
}
