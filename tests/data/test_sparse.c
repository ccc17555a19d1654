/* ctest-label: unit (starts no server) */
/* test_sparse.c - sparse datasets: LibSVM loaded as CSR (never expanded),
 * label conventions, errors naming file and line, the test split, sparse
 * and expanded gathers, touched columns, and `datagen sparse` files read
 * back against their stated ground truth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/csr.h"
#include "data/datagen.h"
#include "data/dataset.h"
#include "cli.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    cli_TempDir(tmpdir, sizeof tmpdir);
    return tmpdir[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(tmpdir);
    return 0;
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void load_ok(const char *name, const char *text, size_t dim, dataset *d)
{
    write_text(tpath(name), text);
    if (dataset_LoadLibsvm(tpath(name), dim, d) != SP_OK)
        fail_msg("%s", sp_LastError());
}

static void expect_error(const char *text, size_t dim, const char *where, const char *why)
{
    write_text(tpath("bad.svm"), text);
    dataset d = {0};
    assert_int_equal(dataset_LoadLibsvm(tpath("bad.svm"), dim, &d), SP_ERR_FORMAT);
    const char *msg = sp_LastError();
    if (!strstr(msg, where) || !strstr(msg, why))
        fail_msg("error \"%s\" should name \"%s\" and say \"%s\"", msg, where, why);
    assert_null(d.ptr);
    assert_null(d.y);
}

/* Rows come back as CSR with sorted columns; nothing dense is allocated. */
static void test_libsvm_csr(void **state)
{
    (void)state;
    dataset d = {0};
    load_ok("a.svm", "+1 3:-2 1:0.5\n-1 4:7 2:1e-1\n-1\n+1 4:1\n", 0, &d);
    assert_true(dataset_IsSparse(&d));
    assert_null(d.x);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.dim, 4);
    assert_int_equal(d.classes, 2);
    const size_t ptr[5] = {0, 2, 4, 4, 5};
    const uint32_t col[5] = {0, 2, 1, 3, 3};
    const float val[5] = {0.5f, -2, 0.1f, 7, 1};
    const int32_t y[4] = {1, 0, 0, 1};
    for (int i = 0; i < 5; i++)
        assert_int_equal(d.ptr[i], ptr[i]);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(d.col[k], col[k]);
        assert_float_equal(d.val[k], val[k], 1e-7);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(d.y[i], y[i]);
    /* the expanded gather puts the same values where the columns say */
    float x[2 * 4];
    int32_t gy[2];
    const uint32_t idx[2] = {1, 0};
    dataset_Gather(&d, 0, idx, 2, x, gy);
    for (int i = 0; i < 2; i++) {
        size_t row = idx[i];
        for (int j = 0; j < 4; j++) {
            float want = 0;
            for (size_t k = ptr[row]; k < ptr[row + 1]; k++)
                if (col[k] == (uint32_t)j)
                    want = val[k];
            assert_float_equal(x[i * 4 + j], want, 0);
        }
        assert_int_equal(gy[i], y[row]);
    }
    dataset_Free(&d);
}

/* 0/1 kept, -1/+1 -> 0/1, 1..K -> 0..K-1, 0..K-1 kept. */
static void test_libsvm_labels(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int classes;
        int32_t y[3];
    } cases[] = {
        {"0 1:1\n1 1:1\n1 2:1\n", 2, {0, 1, 1}},
        {"-1 1:1\n+1 1:1\n1 2:1\n", 2, {0, 1, 1}},
        {"3 1:1\n1 1:1\n2 2:1\n", 3, {2, 0, 1}},
        {"2 1:1\n0 1:1\n1 2:1\n", 3, {2, 0, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        dataset d = {0};
        load_ok("l.svm", cases[c].text, 0, &d);
        assert_int_equal(d.classes, cases[c].classes);
        for (int i = 0; i < 3; i++)
            assert_int_equal(d.y[i], cases[c].y[i]);
        dataset_Free(&d);
    }
}

static void test_libsvm_errors(void **state)
{
    (void)state;
    expect_error("1 1:1\n0 0:2\n", 0, "bad.svm:2:", "out of range");
    expect_error("1 1:1\n1 9:1\n", 4, "bad.svm:2:", "exceeds the dimension 4");
    expect_error("1 1:1\n1 2:1 5:1 2:3\n", 0, "bad.svm:2:", "index 2 appears twice");
    expect_error("1 1:1\n1 2:x\n", 0, "bad.svm:2:", "bad value");
}

/* 2^20 hashed features and 60,000 rows: what the dense loader refused. */
static void test_libsvm_wide(void **state)
{
    (void)state;
    datagen_sparse g;
    datagen_SparseDefaults(&g);
    datagen_result r;
    assert_int_equal(datagen_Sparse(&g, tpath("wide.svm.gz"), &r), SP_OK);
    dataset tr = {0}, te = {0};
    if (dataset_Open(tpath("wide.svm.gz"), &tr, &te) != SP_OK)
        fail_msg("%s", sp_LastError());
    assert_true(dataset_IsSparse(&tr) && dataset_IsSparse(&te));
    assert_int_equal(tr.n + te.n, g.rows);
    assert_int_equal(te.n, g.rows / 6);
    assert_true(tr.dim <= g.dim && tr.dim > g.dim / 2);
    assert_int_equal(tr.ptr[tr.n] - tr.ptr[0] + te.ptr[te.n], r.nnz);
    assert_int_equal(te.ptr[0], 0);
    /* the test split starts where the train split ends */
    dataset all = {0};
    assert_int_equal(dataset_LoadLibsvm(tpath("wide.svm.gz"), 0, &all), SP_OK);
    size_t first = all.n - te.n;
    for (size_t k = 0; k < te.ptr[te.n]; k++) {
        assert_int_equal(te.col[k], all.col[all.ptr[first] + k]);
        assert_float_equal(te.val[k], all.val[all.ptr[first] + k], 0);
    }
    assert_memory_equal(te.y, all.y + first, te.n * sizeof *te.y);
    dataset_Free(&all);
    dataset_Free(&tr);
    dataset_Free(&te);
}

/* Sparse gathers of sparse and dense datasets give the same batch. */
static void test_gather_sparse(void **state)
{
    (void)state;
    dataset sp = {0};
    load_ok("g.svm", "1 2:3\n0 1:1 4:2\n1\n0 3:-1 4:5\n", 4, &sp);
    dataset dn = sp;
    dn.ptr = NULL;
    dn.col = NULL;
    dn.val = NULL;
    dn.x = calloc(sp.n * sp.dim, sizeof *dn.x);
    assert_non_null(dn.x);
    const uint32_t all[4] = {0, 1, 2, 3};
    int32_t y[4];
    dataset_Gather(&sp, 0, all, 4, dn.x, y);
    const uint32_t idx[3] = {3, 0, 2};
    dataset_batch ba = {0}, bb = {0};
    csr_rows a, b;
    int32_t ya[3], yb[3];
    assert_int_equal(dataset_GatherSparse(&sp, 0, idx, 3, &ba, &a, ya), SP_OK);
    assert_int_equal(dataset_GatherSparse(&dn, 0, idx, 3, &bb, &b, yb), SP_OK);
    assert_int_equal(a.n, 3);
    assert_memory_equal(a.ptr, b.ptr, 4 * sizeof *a.ptr);
    assert_memory_equal(a.col, b.col, a.ptr[3] * sizeof *a.col);
    assert_memory_equal(a.val, b.val, a.ptr[3] * sizeof *a.val);
    assert_memory_equal(ya, yb, sizeof ya);
    assert_int_equal(csr_Check(&a, sp.dim), SP_OK);
    assert_int_equal(csr_Check(&a, 3), SP_ERR_INVALID);
    /* touched columns: sorted, distinct, the extra one last */
    csr_touched t = {0};
    assert_int_equal(csr_Touch(&a, 4, &t), SP_OK);
    assert_int_equal(t.n_cols, 4);
    for (size_t i = 1; i + 1 < t.n_cols; i++)
        assert_true(t.cols[i] > t.cols[i - 1]);
    assert_int_equal(t.cols[t.n_cols - 1], 4);
    for (size_t k = 0; k < a.ptr[3]; k++)
        assert_int_equal(t.cols[t.local[k]], a.col[k]);
    csr_TouchedFree(&t);
    dataset_BatchFree(&ba);
    dataset_BatchFree(&bb);
    free(dn.x);
    dataset_Free(&sp);
}

/* The file holds what the generator says: its label convention, the
 * dimension, and a label noise whose measured rate matches the stated
 * Bayes accuracy within sampling error. */
static void test_datagen(void **state)
{
    (void)state;
    static const datagen_labels forms[] = {DATAGEN_LABELS_ZERO, DATAGEN_LABELS_PM,
                                           DATAGEN_LABELS_ONE};
    for (size_t f = 0; f < 3; f++) {
        datagen_sparse g;
        datagen_SparseDefaults(&g);
        g.rows = 20000;
        g.dim = 5000;
        g.nnz = 10;
        g.noise = 0.2;
        g.labels = forms[f];
        g.classes = forms[f] == DATAGEN_LABELS_PM ? 2 : 3;
        g.seed = 7 + f;
        datagen_result r;
        assert_int_equal(datagen_Sparse(&g, tpath("gen.svm"), &r), SP_OK);
        double bayes = 1 - g.noise + g.noise / g.classes;
        assert_float_equal(r.bayes_accuracy, bayes, 1e-12);
        double sd = sqrt(bayes * (1 - bayes) / (double)g.rows);
        assert_true(fabs(r.teacher_accuracy - bayes) < 5 * sd);
        dataset d = {0};
        assert_int_equal(dataset_LoadLibsvm(tpath("gen.svm"), g.dim, &d), SP_OK);
        assert_int_equal(d.n, g.rows);
        assert_int_equal(d.classes, g.classes);
        assert_int_equal(d.ptr[d.n], r.nnz);
        for (size_t i = 0; i < d.n; i++) {
            size_t k = d.ptr[i + 1] - d.ptr[i];
            assert_true(k >= 1 && k <= (size_t)g.nnz * 3 / 2);
        }
        dataset_Free(&d);
        /* the same seed writes the same file */
        datagen_result r2;
        assert_int_equal(datagen_Sparse(&g, tpath("gen2.svm"), &r2), SP_OK);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", tpath("gen.svm"), tpath("gen2.svm"));
        assert_int_equal(system(cmd), 0);
    }
    datagen_sparse g;
    datagen_SparseDefaults(&g);
    g.labels = DATAGEN_LABELS_PM;
    g.classes = 3;
    assert_int_equal(datagen_SparseCheck(&g), SP_ERR_INVALID);
    datagen_SparseDefaults(&g);
    g.noise = 1;
    assert_int_equal(datagen_SparseCheck(&g), SP_ERR_INVALID);
    datagen_result r;
    datagen_SparseDefaults(&g);
    g.rows = 10;
    assert_int_equal(datagen_Sparse(&g, "/nonexistent-dir/x.svm", &r), SP_ERR_IO);
    assert_non_null(strstr(sp_LastError(), "/nonexistent-dir/x.svm"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libsvm_csr),   cmocka_unit_test(test_libsvm_labels),
        cmocka_unit_test(test_libsvm_errors), cmocka_unit_test(test_libsvm_wide),
        cmocka_unit_test(test_gather_sparse), cmocka_unit_test(test_datagen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
