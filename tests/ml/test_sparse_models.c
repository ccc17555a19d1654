/* ctest-label: unit (starts no server) */
/* test_sparse_models.c - the sparse linear models (logreg on sparse rows,
 * svm): their gradient over the touched parameter rows against central
 * finite differences of the loss, sparse logreg against the dense logreg
 * on the same rows, evaluation, and the row-wise optimizer step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/csr.h"
#include "core/rng.h"
#include "ml/model.h"
#include "ml/optim.h"

#define DIM 50
#define ROWS 7

static model_spec sparse_Spec(model_kind kind, int classes)
{
    model_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.in_c = s.in_h = 1;
    s.in_w = DIM;
    s.classes = classes;
    s.sparse = 1;
    return s;
}

/* A random batch: each row 1..8 distinct increasing columns below DIM. */
typedef struct {
    size_t ptr[ROWS + 1];
    uint32_t col[ROWS * 8];
    float val[ROWS * 8];
    int32_t y[ROWS];
    csr_rows x;
} batch;

static void batch_Make(batch *b, int classes, uint64_t seed)
{
    rng r;
    rng_Seed(&r, seed, 1);
    size_t k = 0;
    b->ptr[0] = 0;
    for (int i = 0; i < ROWS; i++) {
        uint32_t c = (uint32_t)rng_Below(&r, 5);
        int n = 1 + (int)rng_Below(&r, 8);
        for (int j = 0; j < n && c < DIM; j++) {
            b->col[k] = c;
            b->val[k++] = rng_Uniform(&r) * 2 - 1;
            c += 1 + (uint32_t)rng_Below(&r, 9);
        }
        b->ptr[i + 1] = k;
        b->y[i] = (int32_t)rng_Below(&r, (uint64_t)classes);
    }
    b->x = (csr_rows){ROWS, b->ptr, b->col, b->val};
}

static float loss_At(model *m, const float *w, const batch *b, const csr_touched *t, float *g)
{
    float loss;
    assert_int_equal(model_SparseLossGrad(m, w, &b->x, t, b->y, g, &loss), SP_OK);
    return loss;
}

/* d loss / d w for every touched parameter against (L(w+h) - L(w-h)) / 2h. */
static void check_Gradient(model_kind kind, int classes, uint64_t seed)
{
    model_spec s = sparse_Spec(kind, classes);
    model *m;
    assert_int_equal(model_Create(&s, &m), SP_OK);
    assert_true(model_IsSparse(m));
    assert_int_equal(model_ParamCount(m), (size_t)(DIM + 1) * (size_t)classes);
    batch b;
    batch_Make(&b, classes, seed);
    csr_touched t = {0};
    assert_int_equal(csr_Touch(&b.x, DIM, &t), SP_OK);
    size_t n = t.n_cols * (size_t)classes;
    float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g), *scratch = malloc(n * sizeof *g);
    rng r;
    rng_Seed(&r, seed, 2);
    for (size_t i = 0; i < n; i++)
        w[i] = rng_Normal(&r) * 0.5f;
    loss_At(m, w, &b, &t, g);
    const float h = 1e-3f;
    for (size_t i = 0; i < n; i++) {
        float keep = w[i];
        w[i] = keep + h;
        double lp = loss_At(m, w, &b, &t, scratch);
        w[i] = keep - h;
        double lm = loss_At(m, w, &b, &t, scratch);
        w[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        if (fabs(fd - g[i]) > 2e-3 + 2e-2 * fabs(fd))
            fail_msg("%s: parameter %zu (row %u): analytic %g, finite difference %g",
                     model_KindName(kind), i, t.cols[i / (size_t)classes], (double)g[i], fd);
    }
    free(w);
    free(g);
    free(scratch);
    csr_TouchedFree(&t);
    model_Destroy(m);
}

static void test_gradients(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        check_Gradient(MODEL_LOGREG, 2, seed);
        check_Gradient(MODEL_LOGREG, 5, seed);
        check_Gradient(MODEL_SVM, 2, seed);
        check_Gradient(MODEL_SVM, 4, seed);
    }
}

/* Sparse logreg is the dense logreg with its weights transposed: the same
 * loss and gradient on the same rows, and the same evaluation. */
static void test_matches_dense_logreg(void **state)
{
    (void)state;
    const int K = 3;
    model_spec ss = sparse_Spec(MODEL_LOGREG, K), ds = ss;
    ds.sparse = 0;
    model *sm, *dm;
    assert_int_equal(model_Create(&ss, &sm), SP_OK);
    assert_int_equal(model_Create(&ds, &dm), SP_OK);
    assert_false(model_IsSparse(dm));
    size_t p = model_ParamCount(sm);
    assert_int_equal(model_ParamCount(dm), p);
    float *sp = malloc(p * sizeof *sp), *dp = malloc(p * sizeof *dp);
    rng r;
    rng_Seed(&r, 9, 3);
    for (size_t i = 0; i < p; i++)
        sp[i] = rng_Normal(&r);
    /* dense: W [K x DIM] then b [K]; sparse: rows [DIM][K] then the bias row */
    for (int c = 0; c < K; c++) {
        for (int j = 0; j < DIM; j++)
            dp[(size_t)c * DIM + (size_t)j] = sp[(size_t)j * K + (size_t)c];
        dp[(size_t)K * DIM + (size_t)c] = sp[(size_t)DIM * K + (size_t)c];
    }
    batch b;
    batch_Make(&b, K, 11);
    float *x = calloc((size_t)ROWS * DIM, sizeof *x);
    for (int i = 0; i < ROWS; i++)
        for (size_t k = b.ptr[i]; k < b.ptr[i + 1]; k++)
            x[(size_t)i * DIM + b.col[k]] = b.val[k];
    float dl, sl;
    int dc, sc;
    float *dg = malloc(p * sizeof *dg);
    assert_int_equal(model_LossGrad(dm, dp, x, b.y, ROWS, dg, &dl), SP_OK);
    csr_touched t = {0};
    assert_int_equal(csr_Touch(&b.x, DIM, &t), SP_OK);
    float *w = malloc(t.n_cols * K * sizeof *w), *g = malloc(t.n_cols * K * sizeof *g);
    for (size_t i = 0; i < t.n_cols; i++)
        memcpy(w + i * K, sp + (size_t)t.cols[i] * K, K * sizeof *w);
    assert_int_equal(model_SparseLossGrad(sm, w, &b.x, &t, b.y, g, &sl), SP_OK);
    assert_float_equal(sl, dl, 1e-5);
    for (size_t i = 0; i < t.n_cols; i++)
        for (int c = 0; c < K; c++) {
            uint32_t j = t.cols[i];
            float want = j == DIM ? dg[(size_t)K * DIM + (size_t)c] : dg[(size_t)c * DIM + j];
            assert_float_equal(g[i * K + (size_t)c], want, 1e-5);
        }
    assert_int_equal(model_Evaluate(dm, dp, x, b.y, ROWS, &dl, &dc), SP_OK);
    assert_int_equal(model_SparseEvaluate(sm, sp, &b.x, b.y, &sl, &sc), SP_OK);
    assert_float_equal(sl, dl, 1e-5);
    assert_int_equal(sc, dc);
    /* the dense calls refuse a sparse model, and the other way round */
    assert_int_equal(model_LossGrad(sm, sp, x, b.y, ROWS, dg, &dl), SP_ERR_INVALID);
    assert_int_equal(model_SparseEvaluate(dm, dp, &b.x, b.y, &sl, &sc), SP_ERR_INVALID);
    /* a column beyond the dimension is refused, not read */
    uint32_t keep = b.col[0];
    b.col[0] = DIM + 5;
    assert_int_equal(model_SparseEvaluate(sm, sp, &b.x, b.y, &sl, &sc), SP_ERR_INVALID);
    b.col[0] = keep;
    free(w);
    free(g);
    free(x);
    free(dg);
    free(sp);
    free(dp);
    csr_TouchedFree(&t);
    model_Destroy(sm);
    model_Destroy(dm);
}

/* optim_StepRows moves the listed rows exactly as optim_Step moves them
 * (state included) and leaves every other row and its state alone. */
static void test_step_rows(void **state)
{
    (void)state;
    const size_t width = 3, nrows = 10, n = width * nrows;
    const uint32_t rows[4] = {1, 4, 5, 9};
    optim_kind kinds[3] = {OPTIM_SGD, OPTIM_MOMENTUM, OPTIM_ADAM};
    for (int kk = 0; kk < 3; kk++) {
        optim_config c;
        optim_Defaults(&c, kinds[kk]);
        c.weight_decay = 0.01f;
        int sf = optim_StateFactor(&c);
        float w[30], w2[30], full[30], g[12], st[60] = {0}, st2[60] = {0};
        rng r;
        rng_Seed(&r, 5, (uint64_t)kk);
        for (size_t i = 0; i < n; i++)
            w[i] = w2[i] = rng_Normal(&r);
        for (size_t i = 0; i < 12; i++)
            g[i] = rng_Normal(&r);
        for (long step = 1; step <= 3; step++) {
            optim_StepRows(&c, n, width, w, rows, 4, g, st, step);
            /* the reference: the dense step on a vector holding only those rows */
            float ref_w[30], ref_st[60];
            memset(full, 0, sizeof full);
            for (int i = 0; i < 4; i++)
                memcpy(full + rows[i] * width, g + (size_t)i * width, width * sizeof *g);
            memcpy(ref_w, w2, sizeof ref_w);
            memcpy(ref_st, st2, sizeof ref_st);
            optim_Step(&c, n, ref_w, full, ref_st, step);
            for (size_t row = 0; row < nrows; row++) {
                int touched = row == 1 || row == 4 || row == 5 || row == 9;
                for (size_t k = 0; k < width; k++) {
                    size_t i = row * width + k;
                    if (touched) {
                        w2[i] = ref_w[i];
                        for (int f = 0; f < sf; f++)
                            st2[(size_t)f * n + i] = ref_st[(size_t)f * n + i];
                    }
                    assert_float_equal(w[i], w2[i], 0);
                    for (int f = 0; f < sf; f++)
                        assert_float_equal(st[(size_t)f * n + i], st2[(size_t)f * n + i], 0);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_matches_dense_logreg),
        cmocka_unit_test(test_step_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
