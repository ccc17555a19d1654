/* ctest-label: unit (starts no server) */
/* test_tensor.c - flat float32 vector ops against plain reference loops. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/rng.h"
#include "core/tensor.h"

#define N 10007 /* odd length: exercises every tail loop */

static float *random_vec(rng *r, size_t n)
{
    float *v = tensor_Alloc(n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rng_Normal(r);
    return v;
}

static void test_alloc_aligned_zeroed(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 15, 16, 1000, 1 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        float *p = tensor_Alloc(sizes[s]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        for (size_t i = 0; i < sizes[s]; i++)
            assert_true(p[i] == 0.0f);
        free(p);
    }
    assert_null(tensor_Alloc(SIZE_MAX / 2));
}

static void test_axpy_scale(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 1, 1);
    float *x = random_vec(&r, N), *y = random_vec(&r, N), *ref = tensor_Alloc(N);
    for (size_t i = 0; i < N; i++)
        ref[i] = y[i] + 0.25f * x[i];
    tensor_Axpy(N, 0.25f, x, y);
    for (size_t i = 0; i < N; i++)
        assert_float_equal(y[i], ref[i], 1e-6);
    tensor_Scale(N, -3.0f, y);
    for (size_t i = 0; i < N; i++)
        assert_float_equal(y[i], -3.0f * ref[i], 1e-5);
    tensor_Scale(N, 0.0f, y);
    for (size_t i = 0; i < N; i++)
        assert_true(y[i] == 0.0f);
    free(x);
    free(y);
    free(ref);
}

static void test_dot_dist2(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 2, 1);
    float *x = random_vec(&r, N), *y = random_vec(&r, N);
    double dot = 0, d2 = 0, nx = 0;
    for (size_t i = 0; i < N; i++) {
        dot += (double)x[i] * y[i];
        nx += (double)x[i] * x[i];
        d2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    assert_float_equal(tensor_Dot(N, x, y), dot, 1e-6 * nx);
    assert_float_equal(tensor_Dot(N, x, x), nx, 1e-6 * nx);
    assert_float_equal(tensor_Dist2(N, x, y), d2, 1e-6 * d2);
    assert_float_equal(tensor_Dist2(N, x, x), 0.0, 0.0);
    /* Small hand-checked case: (1,2,3).(4,5,6) = 32; |(3,3,3)|^2 = 27. */
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    assert_float_equal(tensor_Dot(3, a, b), 32.0, 0.0);
    assert_float_equal(tensor_Dist2(3, a, b), 27.0, 0.0);
    assert_float_equal(tensor_Dot(0, a, b), 0.0, 0.0);
    free(x);
    free(y);
}

static void test_all_finite(void **state)
{
    (void)state;
    float v[37];
    for (int i = 0; i < 37; i++)
        v[i] = (float)i - 18.0f;
    /* The extremes of the finite: largest, smallest normal, subnormal, -0. */
    v[5] = 3.4028235e38f;
    v[6] = -3.4028235e38f;
    v[7] = 1.17549435e-38f;
    v[8] = 1.4e-45f;
    v[9] = -0.0f;
    assert_true(tensor_AllFinite(37, v));
    assert_true(tensor_AllFinite(0, v));
    /* A non-finite value is found in every position: vector lanes and tail. */
    float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 4; b++)
        for (int at = 0; at < 37; at++) {
            float saved = v[at];
            v[at] = bad[b];
            assert_false(tensor_AllFinite(37, v));
            assert_int_equal(tensor_AllFinite((size_t)at, v), 1);
            v[at] = saved;
        }
}

static void test_mean(void **state)
{
    (void)state;
    rng r;
    rng_Seed(&r, 3, 1);
    const int k = 5;
    float *xs[5];
    for (int j = 0; j < k; j++)
        xs[j] = random_vec(&r, N);
    float *out = tensor_Alloc(N);
    tensor_Mean(N, k, (const float *const *)xs, out);
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < k; j++)
            s += xs[j][i];
        assert_float_equal(out[i], s / k, 1e-5);
    }
    /* One input: a copy. */
    tensor_Mean(N, 1, (const float *const *)xs, out);
    assert_memory_equal(out, xs[0], N * sizeof(float));
    for (int j = 0; j < k; j++)
        free(xs[j]);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed),
        cmocka_unit_test(test_axpy_scale),
        cmocka_unit_test(test_dot_dist2),
        cmocka_unit_test(test_all_finite),
        cmocka_unit_test(test_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
