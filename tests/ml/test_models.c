/* ctest-label: unit (starts no server) */
/* test_models.c - models: spec parsing and validation, parameter layout,
 * deterministic init, analytic gradients against central finite
 * differences, chunked batches, evaluation and a few SGD steps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "ml/model.h"
#include "ml/optim.h"

static model_spec dense_Spec(model_kind kind, int dim, int classes, const char *hidden)
{
    model_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.in_c = 1;
    s.in_h = 1;
    s.in_w = dim;
    s.classes = classes;
    if (hidden)
        assert_int_equal(model_ParseHidden(hidden, &s), SP_OK);
    return s;
}

static model_spec cnn_Spec(int c, int h, int w, int classes)
{
    model_spec s;
    memset(&s, 0, sizeof s);
    s.kind = MODEL_CNN;
    s.in_c = c;
    s.in_h = h;
    s.in_w = w;
    s.classes = classes;
    return s;
}

static model *create_Ok(const model_spec *s)
{
    model *m = NULL;
    assert_int_equal(model_Create(s, &m), SP_OK);
    assert_non_null(m);
    return m;
}

static void fill_Uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    rng r;
    rng_Seed(&r, seed, 99);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * rng_Uniform(&r);
}

static void fill_Labels(int32_t *y, int n, int classes, uint64_t seed)
{
    rng r;
    rng_Seed(&r, seed, 98);
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)rng_Below(&r, (uint64_t)classes);
}

/* ------------------------------------------------------------- parsing */

static void test_parse_kind(void **state)
{
    (void)state;
    model_kind k;
    assert_int_equal(model_ParseKind("logreg", &k), SP_OK);
    assert_int_equal(k, MODEL_LOGREG);
    assert_int_equal(model_ParseKind("mlp", &k), SP_OK);
    assert_int_equal(k, MODEL_MLP);
    assert_int_equal(model_ParseKind("cnn", &k), SP_OK);
    assert_int_equal(k, MODEL_CNN);
    assert_string_equal(model_KindName(MODEL_CNN), "cnn");
    assert_string_equal(model_KindName(MODEL_LOGREG), "logreg");
    assert_int_equal(model_ParseKind("resnet", &k), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "resnet"));
    assert_int_equal(model_ParseKind("", &k), SP_ERR_INVALID);
    assert_int_equal(model_ParseKind(NULL, &k), SP_ERR_INVALID);
}

static void test_parse_hidden(void **state)
{
    (void)state;
    model_spec s;
    memset(&s, 0, sizeof s);
    assert_int_equal(model_ParseHidden("128", &s), SP_OK);
    assert_int_equal(s.n_hidden, 1);
    assert_int_equal(s.hidden[0], 128);
    assert_int_equal(model_ParseHidden("256, 128,64", &s), SP_OK);
    assert_int_equal(s.n_hidden, 3);
    assert_int_equal(s.hidden[0], 256);
    assert_int_equal(s.hidden[1], 128);
    assert_int_equal(s.hidden[2], 64);

    const char *bad[] = {"", ",", "128,", ",128", "0", "-5", "12x", "1,,2", "abc",
                         "99999999999", "1,2,3,4,5,6,7,8,9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(model_ParseHidden(bad[i], &s), SP_ERR_INVALID);
        /* A failed parse leaves the previous spec alone. */
        assert_int_equal(s.n_hidden, 3);
        assert_int_equal(s.hidden[0], 256);
    }
}

static void test_create_rejects_bad_specs(void **state)
{
    (void)state;
    model *m = NULL;
    model_spec s = dense_Spec(MODEL_MLP, 784, 10, "128");
    s.kind = (model_kind)42;
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);

    s = dense_Spec(MODEL_MLP, 784, 1, "128");
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    s = dense_Spec(MODEL_MLP, 0, 10, "128");
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    s = dense_Spec(MODEL_MLP, 784, 10, NULL); /* mlp without hidden layers */
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    s = dense_Spec(MODEL_MLP, 784, 10, "128");
    s.hidden[0] = 0;
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    s = dense_Spec(MODEL_LOGREG, 784, 10, NULL);
    s.in_c = -1;
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);

    s = cnn_Spec(1, 10, 28, 10); /* too small */
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    s = cnn_Spec(1, 30, 30, 10); /* 30 is not a multiple of 4 */
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "30x30"));
    s = cnn_Spec(0, 28, 28, 10);
    assert_int_equal(model_Create(&s, &m), SP_ERR_INVALID);
    assert_null(m);
    assert_int_equal(model_Create(NULL, &m), SP_ERR_INVALID);
}

/* The flat layouts are a wire contract (parameters travel between
 * processes), so their sizes are pinned: weights [out x in] then biases. */
static void test_param_counts(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_LOGREG, 784, 10, NULL);
    model *m = create_Ok(&s);
    assert_int_equal(model_ParamCount(m), 784 * 10 + 10);
    assert_int_equal(model_InputDim(m), 784);
    model_Destroy(m);

    s = dense_Spec(MODEL_MLP, 784, 10, "128");
    m = create_Ok(&s);
    assert_int_equal(model_ParamCount(m), 784 * 128 + 128 + 128 * 10 + 10);
    assert_int_equal(model_Spec(m)->hidden[0], 128);
    model_Destroy(m);

    s = cnn_Spec(1, 28, 28, 10);
    m = create_Ok(&s);
    /* conv 6x1x5x5, conv 16x6x5x5, 16*5*5 -> 120 -> 84 -> 10 */
    assert_int_equal(model_ParamCount(m), (6 * 25 + 6) + (16 * 150 + 16) + (400 * 120 + 120) +
                                              (120 * 84 + 84) + (84 * 10 + 10));
    assert_int_equal(model_InputDim(m), 784);
    model_Destroy(m);
}

/* ---------------------------------------------------------------- init */

static void test_init_deterministic(void **state)
{
    (void)state;
    model_spec specs[] = {dense_Spec(MODEL_LOGREG, 50, 4, NULL),
                          dense_Spec(MODEL_MLP, 784, 10, "128,64"), cnn_Spec(1, 28, 28, 10)};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        model *m = create_Ok(&specs[k]);
        size_t n = model_ParamCount(m);
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
        model_Init(m, a, 7);
        model_Init(m, b, 7);
        model_Init(m, c, 8);
        assert_memory_equal(a, b, n * sizeof *a);
        size_t same = 0;
        for (size_t i = 0; i < n; i++)
            same += a[i] == c[i];
        /* Only the zero biases agree across seeds. */
        assert_true(same < n / 20);
        for (size_t i = 0; i < n; i++)
            assert_true(isfinite(a[i]));
        free(a);
        free(b);
        free(c);
        model_Destroy(m);
    }
}

/* He init: first-layer weights of the MLP have std sqrt(2/fan_in), biases 0. */
static void test_init_scale(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_MLP, 784, 10, "128");
    model *m = create_Ok(&s);
    size_t n = model_ParamCount(m);
    float *p = malloc(n * sizeof *p);
    model_Init(m, p, 3);
    double sum = 0, sq = 0;
    size_t nw = 784 * 128;
    for (size_t i = 0; i < nw; i++) {
        sum += p[i];
        sq += (double)p[i] * p[i];
    }
    double mean = sum / nw, sd = sqrt(sq / nw - mean * mean);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sd - sqrt(2.0 / 784)) < 0.05 * sqrt(2.0 / 784));
    for (size_t i = nw; i < nw + 128; i++)
        assert_true(p[i] == 0.0f);
    free(p);
    model_Destroy(m);
}

/* ------------------------------------------------------------ gradients */

typedef struct {
    const char *name;
    size_t off, len;
    int is_bias;
} param_block;

/* Loss at params p (forward only). */
static double loss_At(model *m, const float *p, const float *x, const int32_t *y, int b)
{
    float l;
    assert_int_equal(model_Evaluate(m, p, x, y, b, &l, NULL), SP_OK);
    return l;
}

/* Central differences on a few random coordinates of every block, compared
 * relatively with an absolute floor of what a float32 loss can resolve.
 * ReLU and max-pool are
 * piecewise linear: a coordinate whose +eps and -eps one-sided slopes
 * disagree straddles a kink (common for conv1 weights, which touch every
 * unit) and is re-drawn rather than compared. */
static void check_Gradient(const model_spec *s, const param_block *blocks, int nblocks, int b,
                           uint64_t seed)
{
    model *m = create_Ok(s);
    size_t n = model_ParamCount(m), dim = model_InputDim(m);
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    float *x = malloc((size_t)b * dim * sizeof *x);
    int32_t *y = malloc((size_t)b * sizeof *y);
    model_Init(m, p, seed);
    /* Nonzero biases so their gradients flow through the same paths as
     * trained models' do. */
    for (int k = 0; k < nblocks; k++)
        if (blocks[k].is_bias)
            fill_Uniform(p + blocks[k].off, blocks[k].len, -0.1f, 0.1f, seed + (uint64_t)k);
    fill_Uniform(x, (size_t)b * dim, -1.0f, 1.0f, seed + 100);
    fill_Labels(y, b, s->classes, seed + 200);

    float loss;
    assert_int_equal(model_LossGrad(m, p, x, y, b, g, &loss), SP_OK);
    double l0 = loss_At(m, p, x, y, b);
    assert_float_equal(loss, l0, 1e-5 * l0);

    size_t covered = 0;
    for (int k = 0; k < nblocks; k++)
        covered += blocks[k].len;
    assert_int_equal(covered, n); /* the blocks describe the whole layout */

    rng r;
    rng_Seed(&r, seed, 5);
    /* The loss comes back as a float: a one-sided slope can only resolve
     * multiples of one ulp of the loss over eps. */
    const float eps = 1e-3f;
    const double q = (double)(nextafterf((float)l0, INFINITY) - (float)l0) / eps;
    for (int k = 0; k < nblocks; k++) {
        int checked = 0;
        double gmax = 0.0;
        for (int t = 0; t < 40 && checked < 6; t++) {
            size_t i = blocks[k].off + (size_t)rng_Below(&r, blocks[k].len);
            float keep = p[i];
            p[i] = keep + eps;
            double lp = loss_At(m, p, x, y, b);
            p[i] = keep - eps;
            double lm = loss_At(m, p, x, y, b);
            p[i] = keep;
            double up = (lp - l0) / eps, down = (l0 - lm) / eps;
            if (fabs(up - down) > 0.05 * (fabs(up) + fabs(down)) + 4 * q)
                continue; /* a kink between keep-eps and keep+eps */
            checked++;
            double num = (lp - lm) / (2.0 * eps), ana = g[i];
            if (fabs(ana) > gmax)
                gmax = fabs(ana);
            if (fabs(num - ana) > 0.02 * (fabs(num) + fabs(ana)) + 2 * q)
                fail_msg("%s block %s coord %zu: analytic %.6g numeric %.6g",
                         model_KindName(s->kind), blocks[k].name, i - blocks[k].off, ana, num);
        }
        if (checked < 6)
            fail_msg("%s block %s: only %d smooth coordinates found", model_KindName(s->kind),
                     blocks[k].name, checked);
        /* A block whose sampled gradients are all ~0 would check nothing. */
        if (gmax < 4 * q)
            fail_msg("%s block %s: gradients vanish (max %.3g)", model_KindName(s->kind),
                     blocks[k].name, gmax);
    }
    free(p);
    free(g);
    free(x);
    free(y);
    model_Destroy(m);
}

static void test_grad_logreg(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_LOGREG, 13, 5, NULL);
    param_block blocks[] = {{"W", 0, 65, 0}, {"b", 65, 5, 1}};
    check_Gradient(&s, blocks, 2, 7, 11);
}

static void test_grad_mlp(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_MLP, 10, 4, "9,7");
    param_block blocks[] = {{"W1", 0, 90, 0},   {"b1", 90, 9, 1},   {"W2", 99, 63, 0},
                            {"b2", 162, 7, 1}, {"W3", 169, 28, 0}, {"b3", 197, 4, 1}};
    check_Gradient(&s, blocks, 6, 6, 12);
}

/* LeNet blocks for an h x w x c input. */
static int cnn_Blocks(int c, int h, int w, int classes, param_block *bl)
{
    size_t o = 0;
    size_t flat = 16 * (size_t)(h / 4 - 2) * (size_t)(w / 4 - 2);
    size_t lens[] = {6 * (size_t)c * 25, 6,  16 * 150, 16, 120 * flat, 120, 84 * 120, 84,
                     (size_t)classes * 84, (size_t)classes};
    static const char *names[] = {"convW1", "convb1", "convW2", "convb2", "fcW1",
                                  "fcb1",   "fcW2",   "fcb2",   "fcW3",   "fcb3"};
    for (int k = 0; k < 10; k++) {
        bl[k].name = names[k];
        bl[k].off = o;
        bl[k].len = lens[k];
        bl[k].is_bias = k % 2;
        o += lens[k];
    }
    return 10;
}

static void test_grad_cnn(void **state)
{
    (void)state;
    param_block bl[10];
    model_spec s = cnn_Spec(1, 16, 16, 10);
    check_Gradient(&s, bl, cnn_Blocks(1, 16, 16, 10, bl), 3, 13);
    /* Several input channels and a non-square image take the NCHW -> CNHW
     * path and uneven pooled planes (3x1 after the second pool). */
    s = cnn_Spec(3, 20, 12, 3);
    check_Gradient(&s, bl, cnn_Blocks(3, 20, 12, 3, bl), 2, 14);
}

/* Batches larger than one internal pass (1024 dense, 128 CNN) are split;
 * the mean gradient must not depend on that. */
static void check_Chunked(const model_spec *s, int b)
{
    model *m = create_Ok(s);
    size_t n = model_ParamCount(m), dim = model_InputDim(m);
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
    float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    float *x = malloc((size_t)b * dim * sizeof *x);
    int32_t *y = malloc((size_t)b * sizeof *y);
    model_Init(m, p, 21);
    fill_Uniform(x, (size_t)b * dim, 0.0f, 1.0f, 22);
    fill_Labels(y, b, s->classes, 23);
    int h = b / 2;
    float loss, l1, l2;
    assert_int_equal(model_LossGrad(m, p, x, y, b, g, &loss), SP_OK);
    assert_int_equal(model_LossGrad(m, p, x, y, h, g1, &l1), SP_OK);
    assert_int_equal(model_LossGrad(m, p, x + (size_t)h * dim, y + h, b - h, g2, &l2), SP_OK);
    float expect_loss = (l1 * h + l2 * (b - h)) / b;
    assert_float_equal(loss, expect_loss, 1e-5 * fabs(expect_loss));
    for (size_t i = 0; i < n; i++) {
        float e = (g1[i] * h + g2[i] * (b - h)) / b;
        if (fabs(g[i] - e) > 1e-6 + 1e-4 * fabs(e))
            fail_msg("%s coord %zu: whole batch %.7g, from halves %.7g",
                     model_KindName(s->kind), i, g[i], e);
    }
    free(p);
    free(g);
    free(g1);
    free(g2);
    free(x);
    free(y);
    model_Destroy(m);
}

static void test_chunked_batches(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_MLP, 6, 3, "5");
    check_Chunked(&s, 2500);
    s = cnn_Spec(1, 12, 12, 4);
    check_Chunked(&s, 300);
}

/* --------------------------------------------------------- bad arguments */

static void test_bad_labels_and_batch(void **state)
{
    (void)state;
    model_spec specs[] = {dense_Spec(MODEL_LOGREG, 8, 3, NULL), dense_Spec(MODEL_MLP, 8, 3, "4"),
                          cnn_Spec(1, 12, 12, 3)};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        model *m = create_Ok(&specs[k]);
        size_t n = model_ParamCount(m), dim = model_InputDim(m);
        float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
        float *x = calloc(4 * dim, sizeof *x);
        model_Init(m, p, 1);
        for (size_t i = 0; i < n; i++)
            g[i] = 123.0f;
        float loss = -1.0f;
        int correct = -1;
        int32_t y_high[4] = {0, 1, 3, 2}, y_neg[4] = {0, -1, 1, 2}, y_ok[4] = {0, 1, 2, 0};

        assert_int_equal(model_LossGrad(m, p, x, y_high, 4, g, &loss), SP_ERR_INVALID);
        assert_non_null(strstr(sp_LastError(), "label 3"));
        assert_int_equal(model_LossGrad(m, p, x, y_neg, 4, g, &loss), SP_ERR_INVALID);
        assert_int_equal(model_Evaluate(m, p, x, y_high, 4, &loss, &correct), SP_ERR_INVALID);
        assert_int_equal(model_LossGrad(m, p, x, y_ok, 0, g, &loss), SP_ERR_INVALID);
        assert_int_equal(model_LossGrad(m, p, x, y_ok, -3, g, &loss), SP_ERR_INVALID);
        assert_int_equal(model_Evaluate(m, p, x, y_ok, 0, &loss, &correct), SP_ERR_INVALID);
        assert_int_equal(model_LossGrad(m, p, NULL, y_ok, 4, g, &loss), SP_ERR_INVALID);
        assert_int_equal(model_LossGrad(m, p, x, y_ok, 4, NULL, &loss), SP_ERR_INVALID);
        /* Rejected calls leave the outputs alone. */
        assert_true(loss == -1.0f && correct == -1);
        for (size_t i = 0; i < n; i++)
            assert_true(g[i] == 123.0f);
        /* ...and the model still works afterwards. */
        assert_int_equal(model_LossGrad(m, p, x, y_ok, 4, g, &loss), SP_OK);
        assert_true(isfinite(loss) && loss > 0.0f);
        free(p);
        free(g);
        free(x);
        model_Destroy(m);
    }
}

/* ------------------------------------------------------------ behaviour */

/* Zero weights and a bias favouring class 2: every prediction is 2, the
 * loss is the cross-entropy of that softmax for every sample. */
static void test_evaluate_counts(void **state)
{
    (void)state;
    model_spec s = dense_Spec(MODEL_LOGREG, 5, 4, NULL);
    model *m = create_Ok(&s);
    float p[5 * 4 + 4] = {0};
    p[20 + 2] = 1.0f;
    float x[6 * 5];
    fill_Uniform(x, 30, 0.0f, 1.0f, 4);
    int32_t y[6] = {2, 0, 2, 3, 2, 1};
    float loss;
    int correct;
    assert_int_equal(model_Evaluate(m, p, x, y, 6, &loss, &correct), SP_OK);
    assert_int_equal(correct, 3);
    double z = 3.0 + exp(1.0);
    double expect = (3 * (log(z) - 1.0) + 3 * log(z)) / 6.0;
    assert_float_equal(loss, expect, 1e-5);
    model_Destroy(m);
}

static void test_sgd_reduces_loss(void **state)
{
    (void)state;
    model_spec specs[] = {dense_Spec(MODEL_LOGREG, 64, 5, NULL),
                          dense_Spec(MODEL_MLP, 64, 5, "32"), cnn_Spec(1, 16, 16, 5)};
    float lrs[] = {0.5f, 0.2f, 0.05f};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        model *m = create_Ok(&specs[k]);
        size_t n = model_ParamCount(m), dim = model_InputDim(m);
        const int b = 16;
        float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
        float *x = malloc(b * dim * sizeof *x);
        int32_t y[16];
        model_Init(m, p, 5);
        fill_Uniform(x, b * dim, 0.0f, 1.0f, 6);
        fill_Labels(y, b, 5, 7);
        optim_config oc;
        optim_Defaults(&oc, OPTIM_SGD);
        oc.lr = lrs[k];
        float first, loss;
        assert_int_equal(model_LossGrad(m, p, x, y, b, g, &first), SP_OK);
        for (int t = 1; t <= 30; t++) {
            optim_Step(&oc, n, p, g, NULL, t);
            assert_int_equal(model_LossGrad(m, p, x, y, b, g, &loss), SP_OK);
        }
        int correct;
        assert_int_equal(model_Evaluate(m, p, x, y, b, &loss, &correct), SP_OK);
        if (!(loss < 0.5f * first))
            fail_msg("%s: loss %.4f after 30 steps, started at %.4f",
                     model_KindName(specs[k].kind), loss, first);
        assert_true(correct > b / 2);
        free(p);
        free(g);
        free(x);
        model_Destroy(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kind),
        cmocka_unit_test(test_parse_hidden),
        cmocka_unit_test(test_create_rejects_bad_specs),
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_init_deterministic),
        cmocka_unit_test(test_init_scale),
        cmocka_unit_test(test_grad_logreg),
        cmocka_unit_test(test_grad_mlp),
        cmocka_unit_test(test_grad_cnn),
        cmocka_unit_test(test_chunked_batches),
        cmocka_unit_test(test_bad_labels_and_batch),
        cmocka_unit_test(test_evaluate_counts),
        cmocka_unit_test(test_sgd_reduces_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
