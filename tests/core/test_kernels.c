/* test_kernels.c - the shared float kernels (core/kernels.h) pinned bit for
 * bit against plain scalar loops written in the documented rounding order,
 * on unaligned pointers (as Redis payloads are) and lengths around the
 * vector width and the mean's block size. No server.
 * ctest-label: unit */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels.h"
#include "core/rng.h"

/* Below, at and above the 8-float body, and around the 2048-float block. */
static const size_t lens[] = {0, 1, 3, 7, 8, 9, 15, 17, 31, 2047, 2048, 2049, 4096 + 13};
#define NLENS (sizeof lens / sizeof *lens)
#define KMAX 5

/* n floats at byte offset `skew` (1..3: never 4-aligned) in a fresh buffer,
 * filled with values of mixed magnitudes so that a different rounding
 * order shows in the last bits. */
typedef struct {
    unsigned char *raw;
    ufloat *p;
} ubuf;

static ubuf ubuf_New(size_t n, size_t skew, rng *r)
{
    ubuf b;
    b.raw = malloc(n * sizeof(float) + 8);
    assert_non_null(b.raw);
    b.p = (ufloat *)(b.raw + skew);
    for (size_t i = 0; i < n; i++)
        b.p[i] = rng_Normal(r) * (i % 3 == 0 ? 1e3f : i % 3 == 1 ? 1.0f : 1e-3f);
    return b;
}

static void ubuf_Copy(ubuf *dst, const ubuf *src, size_t n, size_t skew)
{
    dst->raw = malloc(n * sizeof(float) + 8);
    assert_non_null(dst->raw);
    dst->p = (ufloat *)(dst->raw + skew);
    if (n)
        memcpy(dst->raw + skew, src->p, n * sizeof(float));
}

static void assert_bits(const ufloat *got, const ufloat *want, size_t n, const char *what)
{
    if (n && memcmp((const void *)got, (const void *)want, n * sizeof(float)) != 0) {
        size_t i = 0;
        while (i < n && memcmp((const void *)&got[i], (const void *)&want[i], sizeof(float)) == 0)
            i++;
        fail_msg("%s, n=%zu: element %zu is %.9g, the scalar reference %.9g", what, n, i,
                 (double)got[i], (double)want[i]);
    }
}

/* ---- scalar references: the formulas of kernels.h, one element at a time */

static void ref_Sgd(ufloat *w, const ufloat *g, size_t n, float lr, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        w[i] = w[i] - lr * d;
    }
}

static void ref_Momentum(ufloat *w, const ufloat *g, ufloat *v, size_t n, float lr, float mom,
                         float wd)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        v[i] = mom * v[i] + d;
        w[i] = w[i] - lr * v[i];
    }
}

static void ref_Mean(ufloat *out, const ufloat *const *x, int k, size_t n)
{
    float inv = 1.0f / (float)k;
    for (size_t i = 0; i < n; i++) {
        float acc = x[0][i];
        for (int j = 1; j < k; j++)
            acc += x[j][i];
        out[i] = acc * inv;
    }
}

static void test_sgd(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 11, 1);
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        ubuf w = ubuf_New(n, 1, &r), g = ubuf_New(n, 3, &r), want;
        ubuf_Copy(&want, &w, n, 2);
        kern_Sgd(w.p, g.p, n, 0.05f, 5e-4f);
        ref_Sgd(want.p, g.p, n, 0.05f, 5e-4f);
        assert_bits(w.p, want.p, n, "sgd");
        kern_Sgd(w.p, g.p, n, 0.1f, 0.0f); /* no weight decay */
        ref_Sgd(want.p, g.p, n, 0.1f, 0.0f);
        assert_bits(w.p, want.p, n, "sgd without weight decay");
        free(w.raw);
        free(g.raw);
        free(want.raw);
    }
}

static void test_momentum(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 12, 1);
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        ubuf w = ubuf_New(n, 2, &r), g = ubuf_New(n, 1, &r), v = ubuf_New(n, 3, &r);
        ubuf ww, vv;
        ubuf_Copy(&ww, &w, n, 3);
        ubuf_Copy(&vv, &v, n, 1);
        for (int step = 0; step < 3; step++) { /* the velocity carries over */
            kern_SgdMomentum(w.p, g.p, v.p, n, 0.02f, 0.9f, 5e-4f);
            ref_Momentum(ww.p, g.p, vv.p, n, 0.02f, 0.9f, 5e-4f);
            assert_bits(w.p, ww.p, n, "momentum: params");
            assert_bits(v.p, vv.p, n, "momentum: velocity");
        }
        free(w.raw);
        free(g.raw);
        free(v.raw);
        free(ww.raw);
        free(vv.raw);
    }
}

/* The pin is meaningful: the order the module used to round in,
 * (mom*v + g) + wd*w, gives other bits on these inputs. */
static void test_momentum_order_matters(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 13, 1);
    size_t n = 4096;
    ubuf w = ubuf_New(n, 1, &r), g = ubuf_New(n, 2, &r), v = ubuf_New(n, 3, &r);
    int differs = 0;
    for (size_t i = 0; i < n; i++) {
        float shared = 0.9f * v.p[i] + (g.p[i] + 0.01f * w.p[i]);
        float old = 0.9f * v.p[i] + g.p[i] + 0.01f * w.p[i];
        differs |= shared != old;
    }
    assert_true(differs);
    free(w.raw);
    free(g.raw);
    free(v.raw);
}

static void test_mean(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 14, 1);
    for (size_t t = 0; t < NLENS; t++) {
        size_t n = lens[t];
        ubuf x[KMAX], out, want;
        for (int j = 0; j < KMAX; j++)
            x[j] = ubuf_New(n, (size_t)(j % 3) + 1, &r);
        const ufloat *xs[KMAX];
        for (int j = 0; j < KMAX; j++)
            xs[j] = x[j].p;
        out.raw = malloc(n * sizeof(float) + 8);
        want.raw = malloc(n * sizeof(float) + 8);
        out.p = (ufloat *)(out.raw + 3);
        want.p = (ufloat *)(want.raw + 1);
        for (int k = 1; k <= KMAX; k++) {
            kern_Mean(out.p, xs, k, n);
            ref_Mean(want.p, xs, k, n);
            assert_bits(out.p, want.p, n, "mean");
        }
        /* A source given twice is summed each time, in argument order. */
        const ufloat *rep[4] = {x[1].p, x[0].p, x[1].p, x[2].p};
        kern_Mean(out.p, rep, 4, n);
        ref_Mean(want.p, rep, 4, n);
        assert_bits(out.p, want.p, n, "mean with a repeated source");
        /* out may be one of the sources. */
        ref_Mean(want.p, xs, 3, n);
        kern_Mean(x[0].p, xs, 3, n);
        assert_bits(x[0].p, want.p, n, "mean written over its first source");
        for (int j = 0; j < KMAX; j++)
            free(x[j].raw);
        free(out.raw);
        free(want.raw);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_momentum),
        cmocka_unit_test(test_momentum_order_matters),
        cmocka_unit_test(test_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
