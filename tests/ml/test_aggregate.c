/* ctest-label: unit (starts no server) */
/* test_aggregate.c - mean and the robust rules on hand-checked inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "ml/aggregate.h"

/* Four honest inputs on a line (x_i = x_0 + i*(1,1,1)) and one outlier. */
static const float X[5][3] = {
    {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 6}, {100, -100, 1000},
};
static const float *const XS[5] = {X[0], X[1], X[2], X[3], X[4]};

static void apply_ok(agg_config c, int k, const float *want, int *selected)
{
    float out[3] = {-1, -1, -1};
    spStatus s = agg_Apply(&c, 3, k, XS, out, selected);
    if (s != SP_OK)
        fail_msg("%s: %s", agg_KindName(c.kind), sp_LastError());
    for (int i = 0; i < 3; i++)
        assert_float_equal(out[i], want[i], 1e-5);
}

static void test_mean(void **state)
{
    (void)state;
    int sel[5] = {0};
    /* (1+2+3+4+100)/5, (2+3+4+5-100)/5, (3+4+5+6+1000)/5: dragged by the outlier. */
    apply_ok((agg_config){.kind = AGG_MEAN}, 5, (const float[]){22, -17.2f, 203.6f}, sel);
    for (int j = 0; j < 5; j++)
        assert_int_equal(sel[j], 1);
    apply_ok((agg_config){.kind = AGG_MEAN}, 1, X[0], NULL);
}

static void test_trimmed_mean(void **state)
{
    (void)state;
    /* trim 1 drops the outlier at whichever end it lands:
     * {1,2,3,4,100}->mean(2,3,4)=3; {-100,2,3,4,5}->mean(2,3,4)=3; {3,4,5,6,1000}->5. */
    apply_ok((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = 1}, 5, (const float[]){3, 3, 5},
             NULL);
    /* trim 0 is the plain mean; trim 2 of 5 leaves the median. */
    apply_ok((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = 0}, 5,
             (const float[]){22, -17.2f, 203.6f}, NULL);
    apply_ok((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = 2}, 5, (const float[]){3, 3, 5},
             NULL);
    /* k = 4 honest, trim 1: mean of the two middles {2,3},{3,4},{4,5}. */
    apply_ok((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = 1}, 4,
             (const float[]){2.5f, 3.5f, 4.5f}, NULL);
}

static void test_median(void **state)
{
    (void)state;
    apply_ok((agg_config){.kind = AGG_MEDIAN}, 5, (const float[]){3, 3, 5}, NULL);
    /* Even k: mean of the two middle values. */
    apply_ok((agg_config){.kind = AGG_MEDIAN}, 4, (const float[]){2.5f, 3.5f, 4.5f}, NULL);
    apply_ok((agg_config){.kind = AGG_MEDIAN}, 2, (const float[]){1.5f, 2.5f, 3.5f}, NULL);
    apply_ok((agg_config){.kind = AGG_MEDIAN}, 1, X[0], NULL);
}

static void test_krum(void **state)
{
    (void)state;
    /* f=1, k=5: each score sums the 2 smallest squared distances; honest
     * pairs are 3*(i-j)^2 apart: scores 15, 6, 6, 15, huge. The tie between
     * x1 and x2 goes to the lower index. */
    int sel[5];
    apply_ok((agg_config){.kind = AGG_KRUM, .f = 1}, 5, X[1], sel);
    const int want_sel[5] = {0, 1, 0, 0, 0};
    assert_memory_equal(sel, want_sel, sizeof sel);
}

static void test_multi_krum(void **state)
{
    (void)state;
    int sel[5];
    /* m = 0 means k - f = 4: the four honest inputs. */
    apply_ok((agg_config){.kind = AGG_MULTI_KRUM, .f = 1, .m = 0}, 5,
             (const float[]){2.5f, 3.5f, 4.5f}, sel);
    const int want4[5] = {1, 1, 1, 1, 0};
    assert_memory_equal(sel, want4, sizeof sel);
    /* m = 3: x1, x2 (score 6) and x0 (15, ties x3, lower index wins). */
    apply_ok((agg_config){.kind = AGG_MULTI_KRUM, .f = 1, .m = 3}, 5, X[1], sel);
    const int want3[5] = {1, 1, 1, 0, 0};
    assert_memory_equal(sel, want3, sizeof sel);
    /* m = 1 is Krum. */
    apply_ok((agg_config){.kind = AGG_MULTI_KRUM, .f = 1, .m = 1}, 5, X[1], NULL);
}

/* 10 honest gradients near a common direction, 3 Byzantine ones. */
static void test_krum_picks_honest_cluster(void **state)
{
    (void)state;
    enum { K = 13, F = 3, N = 5000 };
    rng r;
    rng_Seed(&r, 7, 1);
    float *xs[K];
    float *center = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        center[i] = rng_Normal(&r);
    for (int j = 0; j < K; j++) {
        xs[j] = malloc(N * sizeof(float));
        for (int i = 0; i < N; i++) {
            if (j < K - F)
                xs[j][i] = center[i] + 0.1f * rng_Normal(&r);
            else if (j == K - F)
                xs[j][i] = -10.0f * center[i]; /* sign flip, scaled */
            else if (j == K - F + 1)
                xs[j][i] = 5.0f * rng_Normal(&r); /* noise */
            else
                xs[j][i] = i == 17 ? NAN : center[i]; /* corrupt */
        }
    }
    const float *const *cx = (const float *const *)xs;
    float *out = malloc(N * sizeof(float));
    int sel[K];
    agg_config c = {.kind = AGG_KRUM, .f = F};
    assert_int_equal(agg_Apply(&c, N, K, cx, out, sel), SP_OK);
    int picked = -1;
    for (int j = 0; j < K; j++)
        if (sel[j])
            picked = j;
    assert_in_range(picked, 0, K - F - 1);
    assert_memory_equal(out, xs[picked], N * sizeof(float));

    c = (agg_config){.kind = AGG_MULTI_KRUM, .f = F};
    assert_int_equal(agg_Apply(&c, N, K, cx, out, sel), SP_OK);
    for (int j = 0; j < K; j++)
        assert_int_equal(sel[j], j < K - F);
    for (int i = 0; i < N; i += 97)
        assert_float_equal(out[i], center[i], 0.15);

    /* The coordinate-wise rules also ride out the NaN and the outliers. */
    agg_config cw[2] = {{.kind = AGG_MEDIAN}, {.kind = AGG_TRIMMED_MEAN, .trim = F}};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(agg_Apply(&cw[t], N, K, cx, out, NULL), SP_OK);
        for (int i = 0; i < N; i++)
            assert_true(isfinite(out[i]));
        assert_float_equal(out[17], center[17], 0.5);
    }
    for (int j = 0; j < K; j++)
        free(xs[j]);
    free(center);
    free(out);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Against a qsort reference on random data with an odd length, for many K
 * (the sorting network differs for each, power of two or not). */
static void test_coordinatewise_reference(void **state)
{
    (void)state;
    enum { N = 1037, KMAX = 33 };
    const int ks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 31, 33};
    rng r;
    rng_Seed(&r, 9, 2);
    float *xs[KMAX];
    for (int j = 0; j < KMAX; j++) {
        xs[j] = malloc(N * sizeof(float));
        for (int i = 0; i < N; i++)
            xs[j][i] = rng_Normal(&r);
    }
    float *tm = malloc(N * sizeof(float)), *md = malloc(N * sizeof(float));
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
        int k = ks[t], trim = (k - 1) / 3;
        agg_config ct = {.kind = AGG_TRIMMED_MEAN, .trim = trim}, cm = {.kind = AGG_MEDIAN};
        assert_int_equal(agg_Apply(&ct, N, k, (const float *const *)xs, tm, NULL), SP_OK);
        assert_int_equal(agg_Apply(&cm, N, k, (const float *const *)xs, md, NULL), SP_OK);
        for (int i = 0; i < N; i++) {
            float v[KMAX];
            for (int j = 0; j < k; j++)
                v[j] = xs[j][i];
            qsort(v, (size_t)k, sizeof *v, cmp_float);
            double s = 0;
            for (int j = trim; j < k - trim; j++)
                s += v[j];
            assert_float_equal(tm[i], s / (k - 2 * trim), 1e-5);
            float want = (k & 1) ? v[k / 2] : 0.5f * (v[k / 2 - 1] + v[k / 2]);
            assert_float_equal(md[i], want, 1e-6);
        }
    }
    /* The output may be one of the inputs. */
    agg_config cm = {.kind = AGG_MEDIAN};
    assert_int_equal(agg_Apply(&cm, N, 7, (const float *const *)xs, md, NULL), SP_OK);
    assert_int_equal(agg_Apply(&cm, N, 7, (const float *const *)xs, xs[0], NULL), SP_OK);
    assert_memory_equal(xs[0], md, N * sizeof(float));
    for (int j = 0; j < KMAX; j++)
        free(xs[j]);
    free(tm);
    free(md);
}

static void expect_invalid(agg_config c, int k, const char *needle)
{
    float out[3];
    assert_int_equal(agg_Apply(&c, 3, k, XS, out, NULL), SP_ERR_INVALID);
    if (!strstr(sp_LastError(), needle))
        fail_msg("error \"%s\" should mention \"%s\"", sp_LastError(), needle);
}

static void test_invalid_params(void **state)
{
    (void)state;
    expect_invalid((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = 2}, 4, "trim");
    expect_invalid((agg_config){.kind = AGG_TRIMMED_MEAN, .trim = -1}, 4, "trim");
    expect_invalid((agg_config){.kind = AGG_KRUM, .f = 2}, 4, "f+3");
    expect_invalid((agg_config){.kind = AGG_KRUM, .f = -1}, 4, "f must be");
    expect_invalid((agg_config){.kind = AGG_MULTI_KRUM, .f = 1, .m = 6}, 5, "m=6");
    expect_invalid((agg_config){.kind = AGG_MULTI_KRUM, .f = 1, .m = -1}, 5, "m=-1");
    expect_invalid((agg_config){.kind = AGG_MEAN}, 0, "inputs");
    expect_invalid((agg_config){.kind = (agg_kind)99}, 5, "unknown");
    float out[3];
    const float *withnull[2] = {X[0], NULL};
    agg_config c = {.kind = AGG_MEAN};
    assert_int_equal(agg_Apply(&c, 3, 2, withnull, out, NULL), SP_ERR_INVALID);
    assert_int_equal(agg_Apply(NULL, 3, 2, XS, out, NULL), SP_ERR_INVALID);
}

static void test_parse_kind(void **state)
{
    (void)state;
    const char *names[] = {"mean", "trimmed-mean", "median", "krum", "multi-krum"};
    for (int i = 0; i < 5; i++) {
        agg_kind k;
        assert_int_equal(agg_ParseKind(names[i], &k), SP_OK);
        assert_string_equal(agg_KindName(k), names[i]);
    }
    agg_kind k = AGG_MEAN;
    assert_int_equal(agg_ParseKind("average", &k), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "average"));
    assert_int_equal(agg_ParseKind(NULL, &k), SP_ERR_INVALID);
    assert_int_equal(k, AGG_MEAN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean),
        cmocka_unit_test(test_trimmed_mean),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_krum),
        cmocka_unit_test(test_multi_krum),
        cmocka_unit_test(test_krum_picks_honest_cluster),
        cmocka_unit_test(test_coordinatewise_reference),
        cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_parse_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
