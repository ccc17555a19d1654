/* ctest-label: unit (starts no server) */
/* test_optim.c - optimizers against values worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ml/optim.h"

#define TOL 1e-6f

static void test_parse_and_names(void **state)
{
    (void)state;
    optim_kind k;
    assert_int_equal(optim_ParseKind("sgd", &k), SP_OK);
    assert_int_equal(k, OPTIM_SGD);
    assert_int_equal(optim_ParseKind("momentum", &k), SP_OK);
    assert_int_equal(k, OPTIM_MOMENTUM);
    assert_int_equal(optim_ParseKind("adam", &k), SP_OK);
    assert_int_equal(k, OPTIM_ADAM);
    assert_string_equal(optim_KindName(OPTIM_MOMENTUM), "momentum");
    assert_int_equal(optim_ParseKind("rmsprop", &k), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "rmsprop"));
    assert_int_equal(optim_ParseKind(NULL, &k), SP_ERR_INVALID);
}

static void test_defaults_and_state(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_SGD);
    assert_float_equal(c.lr, 0.05f, TOL);
    assert_float_equal(c.momentum, 0.0f, TOL);
    assert_float_equal(c.weight_decay, 0.0f, TOL);
    assert_int_equal(optim_StateFactor(&c), 0);
    c.momentum = 0.5f; /* SGD with momentum keeps a velocity */
    assert_int_equal(optim_StateFactor(&c), 1);

    optim_Defaults(&c, OPTIM_MOMENTUM);
    assert_float_equal(c.lr, 0.05f, TOL);
    assert_float_equal(c.momentum, 0.9f, TOL);
    assert_int_equal(optim_StateFactor(&c), 1);

    optim_Defaults(&c, OPTIM_ADAM);
    assert_float_equal(c.beta1, 0.9f, TOL);
    assert_float_equal(c.beta2, 0.999f, TOL);
    assert_float_equal(c.eps, 1e-8f, 1e-12f);
    assert_true(c.lr > 0.0f && c.lr <= 0.01f);
    assert_int_equal(optim_StateFactor(&c), 2);
}

/* w -= lr * g with lr 0.1: w = {1, -2}, g = {0.5, 0.25} each step. */
static void test_sgd(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_SGD);
    c.lr = 0.1f;
    float w[2] = {1.0f, -2.0f};
    const float g[2] = {0.5f, 0.25f};
    optim_Step(&c, 2, w, g, NULL, 1);
    assert_float_equal(w[0], 0.95f, TOL);   /* 1 - 0.1*0.5 */
    assert_float_equal(w[1], -2.025f, TOL); /* -2 - 0.1*0.25 */
    optim_Step(&c, 2, w, g, NULL, 2);
    assert_float_equal(w[0], 0.90f, TOL);
    assert_float_equal(w[1], -2.05f, TOL);
    assert_float_equal(g[0], 0.5f, 0.0f); /* gradient untouched */
}

/* g' = g + wd*w, lr 0.1, wd 0.01, w = 1, g = 0.5:
 *   step 1: g' = 0.5 + 0.01      = 0.51     w = 1 - 0.051          = 0.949
 *   step 2: g' = 0.5 + 0.00949   = 0.50949  w = 0.949 - 0.050949   = 0.898051 */
static void test_weight_decay(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_SGD);
    c.lr = 0.1f;
    c.weight_decay = 0.01f;
    float w[1] = {1.0f};
    const float g[1] = {0.5f};
    optim_Step(&c, 1, w, g, NULL, 1);
    assert_float_equal(w[0], 0.949f, TOL);
    optim_Step(&c, 1, w, g, NULL, 2);
    assert_float_equal(w[0], 0.898051f, TOL);

    /* With momentum the decayed gradient enters the velocity:
     * v1 = 0.51, w1 = 0.949; v2 = 0.9*0.51 + 0.50949 = 0.96849, w2 = 0.8521510 */
    optim_Defaults(&c, OPTIM_MOMENTUM);
    c.lr = 0.1f;
    c.weight_decay = 0.01f;
    float v[1] = {0.0f};
    w[0] = 1.0f;
    optim_Step(&c, 1, w, g, v, 1);
    optim_Step(&c, 1, w, g, v, 2);
    assert_float_equal(v[0], 0.96849f, TOL);
    assert_float_equal(w[0], 0.852151f, TOL);
}

/* Heavy ball, mu 0.9, lr 0.1, w = 1, g = 0.5 every step:
 *   v1 = 0.5    w1 = 0.95
 *   v2 = 0.95   w2 = 0.855
 *   v3 = 1.355  w3 = 0.7195 */
static void test_momentum(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_MOMENTUM);
    c.lr = 0.1f;
    float w[2] = {1.0f, 0.0f}, v[2] = {0.0f, 0.0f};
    const float g[2] = {0.5f, 0.0f};
    const float ev[3] = {0.5f, 0.95f, 1.355f}, ew[3] = {0.95f, 0.855f, 0.7195f};
    for (int t = 0; t < 3; t++) {
        optim_Step(&c, 2, w, g, v, t + 1);
        assert_float_equal(v[0], ev[t], TOL);
        assert_float_equal(w[0], ew[t], TOL);
        assert_float_equal(w[1], 0.0f, 0.0f);
    }
    /* "sgd" with a momentum set behaves the same. */
    optim_Defaults(&c, OPTIM_SGD);
    c.lr = 0.1f;
    c.momentum = 0.9f;
    float w2[1] = {1.0f}, v2[1] = {0.0f};
    for (int t = 0; t < 3; t++)
        optim_Step(&c, 1, w2, g, v2, t + 1);
    assert_float_equal(w2[0], 0.7195f, TOL);
}

/* Adam, lr 0.1, betas 0.9/0.999, eps 1e-8, w = 1:
 *   step 1, g = 0.5:   m = 0.05, v = 0.00025
 *                      mhat = 0.05/0.1 = 0.5, vhat = 0.00025/0.001 = 0.25
 *                      w = 1 - 0.1*0.5/0.5 = 0.9
 *   step 2, g = -0.25: m = 0.045 - 0.025 = 0.02
 *                      v = 0.00024975 + 0.0000625 = 0.00031225
 *                      mhat = 0.02/0.19 = 0.10526316
 *                      vhat = 0.00031225/0.001999 = 0.15620310, sqrt = 0.39522538
 *                      w = 0.9 - 0.1*0.10526316/0.39522538 = 0.87336636
 * The state holds m for all coordinates, then v. */
static void test_adam(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_ADAM);
    c.lr = 0.1f;
    float w[1] = {1.0f}, st[2] = {0.0f, 0.0f};
    float g[1] = {0.5f};
    optim_Step(&c, 1, w, g, st, 1);
    assert_float_equal(st[0], 0.05f, TOL);
    assert_float_equal(st[1], 0.00025f, 1e-8f);
    assert_float_equal(w[0], 0.9f, TOL);
    g[0] = -0.25f;
    optim_Step(&c, 1, w, g, st, 2);
    assert_float_equal(st[0], 0.02f, TOL);
    assert_float_equal(st[1], 0.00031225f, 1e-8f);
    assert_float_equal(w[0], 0.87336636f, 2e-6f);
}

/* Bias correction makes the first step ~lr per coordinate whatever the
 * gradient's scale (without it the step would be ~0.1*lr/sqrt(0.001)). */
static void test_adam_first_step_scale(void **state)
{
    (void)state;
    optim_config c;
    optim_Defaults(&c, OPTIM_ADAM);
    c.lr = 0.01f;
    float w[3] = {0.0f, 0.0f, 0.0f}, st[6] = {0};
    const float g[3] = {1e-3f, -50.0f, 2.0f};
    optim_Step(&c, 3, w, g, st, 1);
    assert_float_equal(w[0], -0.01f, 1e-6f);
    assert_float_equal(w[1], 0.01f, 1e-6f);
    assert_float_equal(w[2], -0.01f, 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_names),
        cmocka_unit_test(test_defaults_and_state),
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_weight_decay),
        cmocka_unit_test(test_momentum),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_first_step_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
