/* ctest-label: unit (starts no server) */
/* test_layers.c - the CNN building blocks (src/ml/layers.h) against naive
 * reference loops: quadrant-ordered im2col and its adjoint col2im, the
 * direct convolution kernels (several filter counts, channel counts and
 * plane sizes, so every kernel variant and tail path runs), fused
 * bias+ReLU+max-pool and its gradient, and softmax cross-entropy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "ml/layers.h"

static float *rand_Floats(size_t n, uint64_t seed)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    rng r;
    rng_Seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = 2.0f * rng_Uniform(&r) - 1.0f;
    return v;
}

static void assert_Close(double got, double want, double tol, const char *what, size_t i)
{
    if (fabs(got - want) > tol * (1.0 + fabs(want)))
        fail_msg("%s[%zu]: got %.7g want %.7g", what, i, got, want);
}

/* Input value at (c, s, y, x) of a batch in NCHW (cnhw = 0) or CNHW, with
 * zero padding outside the plane. */
static float at(const float *in, const conv_geom *g, int n, int cnhw, int c, int s, int y, int x)
{
    if (y < 0 || y >= g->h || x < 0 || x >= g->w)
        return 0.0f;
    size_t plane = cnhw ? (size_t)c * n + s : (size_t)s * g->c + c;
    return in[plane * g->h * g->w + (size_t)y * g->w + x];
}

/* Position of output (s, y, x) inside one filter's quadrant-ordered plane. */
static size_t quad(const conv_geom *g, int n, int s, int y, int x)
{
    int q = 2 * (y & 1) + (x & 1);
    return (((size_t)q * n + s) * g->ph + y / 2) * g->pw + x / 2;
}

typedef struct {
    int c, h, w, k, pad;
} geo;

static const geo geos[] = {
    {1, 28, 28, 5, 2}, /* LeNet conv1 */
    {6, 14, 14, 5, 0}, /* LeNet conv2 */
    {2, 12, 8, 5, 2},  /* non-square, several channels */
    {1, 4, 4, 5, 2},   /* planes smaller than one vector */
    {3, 6, 10, 3, 1},  /* another kernel size */
};
#define N_GEOS (sizeof geos / sizeof geos[0])

static void test_im2col_and_adjoint(void **state)
{
    (void)state;
    const int n = 3;
    for (size_t t = 0; t < N_GEOS; t++) {
        conv_geom g = conv_Geom(geos[t].c, geos[t].h, geos[t].w, geos[t].k, geos[t].pad);
        size_t in_len = (size_t)g.c * n * g.h * g.w;
        size_t row = 4 * (size_t)n * g.ph * g.pw, cols_len = (size_t)g.c * g.k * g.k * row;
        float *in = rand_Floats(in_len, 10 + t), *Y = rand_Floats(cols_len, 20 + t);
        float *cols = malloc(cols_len * sizeof *cols), *din = malloc(in_len * sizeof *din);
        float *phase = malloc(conv_PhaseFloats(&g, n) * sizeof *phase);
        memset(cols, 0x7f, cols_len * sizeof *cols); /* garbage: every element must be written */
        conv_Im2col(&g, n, in, phase, cols);
        for (int c = 0; c < g.c; c++)
            for (int ky = 0; ky < g.k; ky++)
                for (int kx = 0; kx < g.k; kx++)
                    for (int s = 0; s < n; s++)
                        for (int y = 0; y < g.oh; y++)
                            for (int x = 0; x < g.ow; x++) {
                                size_t i = ((size_t)(c * g.k + ky) * g.k + kx) * row +
                                           quad(&g, n, s, y, x);
                                float want = at(in, &g, n, 1, c, s, y + ky - g.pad, x + kx - g.pad);
                                if (cols[i] != want)
                                    fail_msg("geometry %zu: cols[%zu] = %g, want %g", t, i,
                                             cols[i], want);
                            }
        /* <im2col(in), Y> == <in, col2im(Y)> */
        memset(din, 0x7f, in_len * sizeof *din);
        conv_Col2im(&g, n, Y, phase, din);
        double lhs = 0, rhs = 0;
        for (size_t i = 0; i < cols_len; i++)
            lhs += (double)cols[i] * Y[i];
        for (size_t i = 0; i < in_len; i++)
            rhs += (double)in[i] * din[i];
        assert_Close(rhs, lhs, 1e-5, "adjoint", t);
        free(in);
        free(Y);
        free(cols);
        free(din);
        free(phase);
    }
}

static void check_Direct(const conv_geom *g, int n, int F, uint64_t seed)
{
    const int K = g->c * g->k * g->k;
    size_t in_len = (size_t)g->c * n * g->h * g->w, P4 = 4 * (size_t)n * g->ph * g->pw;
    float *x = rand_Floats(in_len, seed), *W = rand_Floats((size_t)F * K, seed + 1);
    float *dz = rand_Floats((size_t)F * P4, seed + 2);
    float *phase = malloc((size_t)g->c * conv_PhaseFloats(g, n) * sizeof *phase);
    float *z = malloc((size_t)F * P4 * sizeof *z), *dW = malloc((size_t)F * K * sizeof *dW);
    conv_PhaseSplitNchw(g, n, x, phase);
    conv_DirectForward(g, n, F, W, phase, z);
    for (int f = 0; f < F; f++)
        for (int s = 0; s < n; s++)
            for (int y = 0; y < g->oh; y++)
                for (int xx = 0; xx < g->ow; xx++) {
                    double want = 0;
                    for (int c = 0; c < g->c; c++)
                        for (int ky = 0; ky < g->k; ky++)
                            for (int kx = 0; kx < g->k; kx++)
                                want += (double)W[(size_t)f * K + (c * g->k + ky) * g->k + kx] *
                                        at(x, g, n, 0, c, s, y + ky - g->pad, xx + kx - g->pad);
                    size_t i = (size_t)f * P4 + quad(g, n, s, y, xx);
                    assert_Close(z[i], want, 1e-5, "direct forward", i);
                }
    for (int pass = 0; pass < 2; pass++) {
        /* The second pass accumulates onto the first: twice the gradient. */
        conv_DirectWeightGrad(g, n, F, dz, phase, dW, pass);
        for (int f = 0; f < F; f++)
            for (int c = 0; c < g->c; c++)
                for (int ky = 0; ky < g->k; ky++)
                    for (int kx = 0; kx < g->k; kx++) {
                        double want = 0;
                        for (int s = 0; s < n; s++)
                            for (int y = 0; y < g->oh; y++)
                                for (int xx = 0; xx < g->ow; xx++)
                                    want += (double)dz[(size_t)f * P4 + quad(g, n, s, y, xx)] *
                                            at(x, g, n, 0, c, s, y + ky - g->pad,
                                               xx + kx - g->pad);
                        size_t i = (size_t)f * K + (c * g->k + ky) * g->k + kx;
                        assert_Close(dW[i], (pass + 1) * want, 1e-5, "direct weight grad", i);
                    }
    }
    free(x);
    free(W);
    free(dz);
    free(phase);
    free(z);
    free(dW);
}

static void test_direct_conv(void **state)
{
    (void)state;
    const int filters[] = {6, 3, 8}; /* 6 is LeNet's specialised kernel */
    for (size_t t = 0; t < N_GEOS; t++)
        for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
            conv_geom g = conv_Geom(geos[t].c, geos[t].h, geos[t].w, geos[t].k, geos[t].pad);
            check_Direct(&g, 3, filters[f], 100 + 10 * t + f);
        }
}

static void test_pool(void **state)
{
    (void)state;
    const int C = 2;
    const size_t len = 5; /* one vector plus a scalar tail */
    /* z [c][q][len]; channel 0 has ties (the first max must win) and a
     * window that ReLU clips (bias -1 on channel 1). */
    float z[2 * 4 * 5] = {
        /* c0 q0 */ 1, 0, 3, -2, 0.5f,
        /* c0 q1 */ 2, 0, 1, -2, 0.5f,
        /* c0 q2 */ 0, 0, 3, -3, 0.1f,
        /* c0 q3 */ 2, 0, 0, -1, 0.2f,
        /* c1 q0 */ 0.5f, 4, 1, 1, 1,
        /* c1 q1 */ 0.2f, 3, 1, 2, 1,
        /* c1 q2 */ 0.1f, 2, 9, 3, 1,
        /* c1 q3 */ 0.3f, 1, 1, 4, 2,
    };
    const float bias[2] = {0.0f, -1.0f};
    float out[2 * 5], dout[2 * 5], db[2] = {100, 100};
    pool_Forward(C, len, z, bias, out);
    const float want_out[10] = {2, 0, 3, 0, 0.5f, 0, 3, 8, 3, 1};
    for (int i = 0; i < 10; i++)
        assert_Close(out[i], want_out[i], 0, "pool out", (size_t)i);
    for (int i = 0; i < 10; i++)
        dout[i] = (float)(i + 1);
    pool_Backward(C, len, z, out, dout, db, 0);
    /* Where the gradient goes (q per element, -1 = nowhere):
     *   c0: max 2 first at q1; all-zero ties -> q0 but ReLU(0) clips; 3 at q0;
     *       -1 at q3 but clipped; 0.5 at q0 and q1 -> q0.
     *   c1: 0.5-1 clipped; 4 at q0; 9 at q2; 4 at q3; 2 at q3. */
    const int where[10] = {1, -1, 0, -1, 0, -1, 0, 2, 3, 3};
    for (int i = 0; i < 10; i++) {
        int c = i / 5, j = i % 5;
        for (int q = 0; q < 4; q++) {
            float want = where[i] == q ? dout[i] : 0.0f;
            assert_Close(z[(size_t)(c * 4 + q) * len + j], want, 0, "pool dz", (size_t)i);
        }
    }
    assert_Close(db[0], 1 + 3 + 5, 0, "pool db", 0);
    assert_Close(db[1], 7 + 8 + 9 + 10, 0, "pool db", 1);
}

static void test_softmax_xent(void **state)
{
    (void)state;
    float logits[2 * 3] = {1, 2, 3, 0, 0, 5};
    int32_t y[2] = {2, 0};
    int correct;
    double loss = layer_SoftmaxXent(logits, y, 2, 3, 0.5f, &correct);
    double z0 = exp(1) + exp(2) + exp(3), z1 = 2 + exp(5);
    assert_Close(loss, (log(z0) - 3) + (log(z1) - 0), 1e-6, "loss", 0);
    assert_int_equal(correct, 1);
    /* Gradient rows: 0.5 * (softmax - onehot). */
    assert_Close(logits[0], 0.5 * exp(1) / z0, 1e-6, "dlogits", 0);
    assert_Close(logits[2], 0.5 * (exp(3) / z0 - 1), 1e-6, "dlogits", 2);
    assert_Close(logits[3], 0.5 * (1 / z1 - 1), 1e-6, "dlogits", 3);
    assert_Close(logits[5], 0.5 * exp(5) / z1, 1e-6, "dlogits", 5);
    /* Large logits do not overflow. */
    float big[2] = {1000, -1000};
    int32_t yb[1] = {1};
    loss = layer_SoftmaxXent(big, yb, 1, 2, 0.0f, NULL);
    assert_Close(loss, 2000, 1e-6, "stable loss", 0);
    assert_true(big[0] == 1000); /* grad_scale 0 leaves the logits alone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_im2col_and_adjoint),
        cmocka_unit_test(test_direct_conv),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_softmax_xent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
