/* test_sparse_ops.c - sparse tensors in a real redis-server: SPIRT.AVG
 * of sparse sources, SPIRT.ROWS, SPIRT.UPDATE with a sparse grad and
 * MLLESS's SPIRT.FILTER inside it (module loaded), the
 * client-side fallback against a server without the module, both giving
 * the bits of the dense kernels on the densified tensors; bad calls are
 * error replies that change nothing. */
#include <stdio.h>

#include "core/kernels.h"
#include "core/rng.h"
#include "ml/optim.h"
#include "store_testutil.h"

#define PASSWORD "sparse-test-pw"
#define WIDTH 3        /* floats per parameter row, as a sparse model's */
#define ROWS 5000      /* dense length ROWS * WIDTH */
#define DENSE (ROWS * WIDTH)

typedef struct {
    fx_server mod_srv, plain_srv;
    store *paths[2];   /* the module path, then the fallback */
} suite;

static const int in_db_of[2] = {1, 0};

static int suite_Up(void **state)
{
    suite *t = calloc(1, sizeof *t);
    if (!t || fx_StartRedis(&t->mod_srv, PASSWORD, 1, 0) != 0 ||
        fx_StartRedis(&t->plain_srv, PASSWORD, 0, 0) != 0)
        return -1;
    t->paths[0] = tu_Connect(&t->mod_srv, PASSWORD);
    t->paths[1] = tu_Connect(&t->plain_srv, PASSWORD);
    *state = t;
    return t->paths[0] && t->paths[1] ? 0 : -1;
}

static int suite_Down(void **state)
{
    suite *t = *state;
    if (!t)
        return 0;
    for (int p = 0; p < 2; p++)
        store_Destroy(t->paths[p]);
    fx_Stop(&t->mod_srv);
    fx_Stop(&t->plain_srv);
    free(t);
    return 0;
}

/* A sparse gradient over random whole rows: rows[0..*k) (sorted) and the
 * blob of their WIDTH values each, dense length `dense`. */
static void put_Sparse(store *s, const char *key, uint64_t seed, uint32_t *rows, size_t *k,
                       float *dense_out, uint32_t dense)
{
    rng r;
    rng_Seed(&r, seed, 7);
    uint32_t *pairs = malloc(sizeof *pairs * 2 * DENSE);
    size_t n = 0, nr = 0;
    if (dense_out)
        memset(dense_out, 0, sizeof *dense_out * DENSE);
    for (uint32_t row = 0; row < ROWS; row++) {
        if (rng_Below(&r, 10) != 0)
            continue; /* about one row in ten */
        if (rows)
            rows[nr] = row;
        nr++;
        for (uint32_t c = 0; c < WIDTH; c++) {
            float v = rng_Normal(&r);
            pairs[2 * n] = row * WIDTH + c;
            memcpy(&pairs[2 * n + 1], &v, sizeof v);
            if (dense_out)
                dense_out[row * WIDTH + c] = v;
            n++;
        }
    }
    if (k)
        *k = nr;
    uint8_t *blob;
    size_t len;
    assert_int_equal(wire_Encode(WIRE_SPARSE_F32, pairs, n, dense, &blob, &len), SP_OK);
    freeReplyObject(tu_Cmd(s, "SET %s %b", key, blob, len));
    free(blob);
    free(pairs);
}

static uint8_t *get_Raw(store *s, const char *key, size_t *len)
{
    redisReply *r = tu_Cmd(s, "GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    uint8_t *b = malloc(r->len);
    memcpy(b, r->str, r->len);
    *len = r->len;
    freeReplyObject(r);
    return b;
}

/* The sparse mean is the dense mean (kern_Mean over the densified sources,
 * a repeated source counted twice) at every index any source holds, and
 * both paths write the same bytes. */
static void test_sparse_average(void **state)
{
    suite *t = *state;
    const char *srcs[5] = {"{s}:g0", "{s}:g1", "{s}:g2", "{s}:g1", "{s}:g3"};
    float *dense[4];
    uint8_t *blob[2];
    size_t len[2];
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 4; i++) {
            char key[16];
            snprintf(key, sizeof key, "{s}:g%d", i);
            dense[i] = malloc(sizeof(float) * DENSE);
            put_Sparse(t->paths[p], key, 10 + (uint64_t)i, NULL, NULL, dense[i], DENSE);
        }
        int in_db = -1;
        if (store_Average(t->paths[p], "{s}:avg", srcs, 5, 60, &in_db) != SP_OK)
            fail_msg("%s", sp_LastError());
        assert_int_equal(in_db, in_db_of[p]);
        assert_true(tu_Int(t->paths[p], "TTL %s", "{s}:avg") > 0);
        blob[p] = get_Raw(t->paths[p], "{s}:avg", &len[p]);
        wire_view v;
        assert_int_equal(wire_Parse(blob[p], len[p], &v), SP_OK);
        assert_int_equal(v.dtype, WIRE_SPARSE_F32);
        assert_int_equal(v.extra, DENSE);
        const ufloat *in[5] = {dense[0], dense[1], dense[2], dense[1], dense[3]};
        float *mean = malloc(sizeof(float) * DENSE);
        kern_Mean(mean, in, 5, DENSE);
        size_t listed = 0;
        for (uint64_t j = 0; j < v.count; j++) {
            uint32_t i;
            float x;
            memcpy(&i, v.payload + 8 * j, 4);
            memcpy(&x, v.payload + 8 * j + 4, 4);
            assert_true(i < DENSE);
            assert_memory_equal(&x, &mean[i], sizeof x);
            listed++;
        }
        /* every element some source holds is listed */
        size_t held = 0;
        for (size_t i = 0; i < DENSE; i++)
            held += dense[0][i] != 0 || dense[1][i] != 0 || dense[2][i] != 0 || dense[3][i] != 0;
        assert_int_equal(listed, held);
        free(mean);
        for (int i = 0; i < 4; i++)
            free(dense[i]);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(blob[0], blob[1], len[0]);
    free(blob[0]);
    free(blob[1]);
}

/* A marked update with a sparse grad moves exactly the rows the grad
 * lists, as optim_StepRows does (momentum included); both paths agree. */
static void test_sparse_update(void **state)
{
    suite *t = *state;
    optim_config c;
    optim_Defaults(&c, OPTIM_MOMENTUM);
    c.weight_decay = 0.001f;
    float *ref = tu_Random(DENSE, 3, 1.0f), *refv = calloc(DENSE, sizeof *refv);
    uint32_t *rows = malloc(sizeof *rows * ROWS);
    float *g = malloc(sizeof *g * DENSE), *grows = malloc(sizeof *grows * DENSE);
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        tu_PutOk(s, "{u}:params", ref, DENSE, 0);
        freeReplyObject(tu_Cmd(s, "DEL %s %s %s", "{u}:mom", "{u}:applied", "{u}:grad"));
        float *w = malloc(sizeof *w * DENSE);
        memcpy(w, ref, sizeof *w * DENSE);
        memset(refv, 0, sizeof *refv * DENSE);
        for (long it = 1; it <= 3; it++) {
            size_t k;
            put_Sparse(s, "{u}:grad", 100 + (uint64_t)it, rows, &k, g, DENSE);
            for (size_t i = 0; i < k; i++)
                memcpy(grows + i * WIDTH, g + (size_t)rows[i] * WIDTH, sizeof(float) * WIDTH);
            optim_StepRows(&c, DENSE, WIDTH, w, rows, k, grows, refv, it);
            int dup = -1, in_db = -1;
            if (store_UpdateMarked(s, "{u}:params", "{u}:grad", "{u}:mom", c.lr, c.momentum,
                                   c.weight_decay, "{u}:applied", it, &dup, &in_db) != SP_OK)
                fail_msg("path %d: %s", p, sp_LastError());
            assert_int_equal(dup, 0);
            assert_int_equal(in_db, in_db_of[p]);
        }
        float *got = tu_GetOk(s, "{u}:params", DENSE), *gotv = tu_GetOk(s, "{u}:mom", DENSE);
        assert_memory_equal(got, w, sizeof *w * DENSE);
        assert_memory_equal(gotv, refv, sizeof *w * DENSE);
        free(got);
        free(gotv);
        free(w);
    }
    free(ref);
    free(refv);
    free(rows);
    free(g);
    free(grows);
}

/* Wrong dtypes, dense lengths or pairs are errors that change nothing. */
static void test_sparse_errors(void **state)
{
    suite *t = *state;
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        float *x = tu_Random(DENSE, 4, 1.0f);
        tu_PutOk(s, "{e}:params", x, DENSE, 0);
        tu_PutOk(s, "{e}:dense", x, DENSE, 0);
        put_Sparse(s, "{e}:a", 1, NULL, NULL, NULL, DENSE);
        put_Sparse(s, "{e}:short", 2, NULL, NULL, NULL, DENSE - WIDTH);
        /* indices out of order: a valid checksum over invalid pairs */
        uint32_t pairs[4] = {7, 0, 3, 0};
        uint8_t *blob;
        size_t len;
        assert_int_equal(wire_Encode(WIRE_SPARSE_F32, pairs, 2, DENSE, &blob, &len), SP_OK);
        freeReplyObject(tu_Cmd(s, "SET %s %b", "{e}:unsorted", blob, len));
        free(blob);
        freeReplyObject(tu_Cmd(s, "DEL %s", "{e}:out"));
        const char *mixed[2] = {"{e}:a", "{e}:dense"}, *lengths[2] = {"{e}:a", "{e}:short"},
                   *unsorted[1] = {"{e}:unsorted"}, *self[1] = {"{e}:a"};
        assert_int_not_equal(store_Average(s, "{e}:out", mixed, 2, 0, NULL), SP_OK);
        assert_int_not_equal(store_Average(s, "{e}:out", lengths, 2, 0, NULL), SP_OK);
        assert_int_not_equal(store_Average(s, "{e}:out", unsorted, 1, 0, NULL), SP_OK);
        assert_non_null(strstr(sp_LastError(), "increase"));
        size_t before_len, after_len;
        uint8_t *before = get_Raw(s, "{e}:a", &before_len);
        assert_int_equal(store_Average(s, "{e}:a", self, 1, 0, NULL), SP_ERR_INVALID);
        uint8_t *after_a = get_Raw(s, "{e}:a", &after_len);
        assert_int_equal(before_len, after_len);
        assert_memory_equal(before, after_a, before_len);
        free(before);
        free(after_a);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{e}:out"), 0);
        assert_int_not_equal(store_Update(s, "{e}:params", "{e}:short", NULL, 0.1f, 0, 0, NULL),
                             SP_OK);
        assert_non_null(strstr(sp_LastError(), "size mismatch"));
        assert_int_not_equal(
            store_Update(s, "{e}:params", "{e}:unsorted", NULL, 0.1f, 0, 0, NULL), SP_OK);
        float *after = tu_GetOk(s, "{e}:params", DENSE);
        assert_memory_equal(after, x, sizeof *x * DENSE);
        free(after);
        free(x);
    }
}

/* MLLESS's filter: SPIRT.FILTER and the client-side fallback write the
 * residual and the sparse update kern_Filter computes, bit for bit, with
 * and without an accumulator in; bad calls write nothing. */
static void test_filter(void **state)
{
    suite *t = *state;
    float *w = tu_Random(DENSE, 11, 1.0f), *g = tu_Random(DENSE, 12, 1.0f);
    float *in = tu_Random(DENSE, 13, 0.05f), *acc = malloc(sizeof *acc * DENSE);
    unsigned char *pairs = malloc(KERN_PAIR * DENSE);
    for (int with_in = 0; with_in < 2; with_in++) {
        memcpy(acc, in, sizeof *acc * DENSE);
        size_t k = kern_Filter(acc, with_in ? acc : NULL, g, 0.05f, w, DENSE, 0.04f, pairs);
        assert_true(k > 0 && k < DENSE); /* some sent, some kept */
        for (int p = 0; p < 2; p++) {
            store *s = t->paths[p];
            tu_PutOk(s, "{f}:w", w, DENSE, 0);
            tu_PutOk(s, "{f}:g", g, DENSE, 0);
            tu_PutOk(s, "{f}:in", in, DENSE, 0);
            store_filter f = {.acc_out = "{f}:acc", .sparse_out = "{f}:sp", .params = "{f}:w",
                              .src = "{f}:g", .acc_in = with_in ? "{f}:in" : NULL,
                              .scale = 0.05f, .thr = 0.04f, .ttl_s = 60};
            size_t sent = 0;
            int in_db = -1;
            assert_int_equal(store_Filter(s, &f, &sent, &in_db), SP_OK);
            assert_int_equal(in_db, in_db_of[p]);
            assert_int_equal(sent, k);
            float *res = tu_GetOk(s, "{f}:acc", DENSE);
            assert_memory_equal(res, acc, sizeof *acc * DENSE);
            free(res);
            size_t len;
            uint8_t *blob = get_Raw(s, "{f}:sp", &len);
            wire_view v;
            assert_int_equal(wire_Parse(blob, len, &v), SP_OK);
            assert_int_equal(v.dtype, WIRE_SPARSE_F32);
            assert_int_equal(v.extra, DENSE);
            assert_int_equal(v.count, k);
            assert_memory_equal(v.payload, pairs, k * KERN_PAIR);
            free(blob);
            assert_true(tu_Int(s, "TTL %s", "{f}:sp") > 0);
        }
    }
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        tu_PutOk(s, "{f}:short", w, DENSE - 1, 0);
        freeReplyObject(tu_Cmd(s, "DEL %s %s", "{f}:acc", "{f}:sp"));
        store_filter f = {.acc_out = "{f}:acc", .sparse_out = "{f}:sp", .params = "{f}:w",
                          .src = "{f}:short", .scale = 0.05f, .thr = 0.04f};
        size_t sent;
        assert_int_equal(store_Filter(s, &f, &sent, NULL), SP_ERR_INVALID);
        f.src = "{f}:missing";
        assert_int_equal(store_Filter(s, &f, &sent, NULL), SP_ERR_NOT_FOUND);
        f.src = "{f}:w";
        assert_int_equal(store_Filter(s, &f, &sent, NULL), SP_ERR_INVALID);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{f}:acc"), 0);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{f}:sp"), 0);
    }
    free(w);
    free(g);
    free(in);
    free(acc);
    free(pairs);
}

/* Rows of a dense tensor: SPIRT.ROWS and the GETRANGE fallback read the
 * same floats; a row beyond the tensor or a wrong length is an error. */
static void test_tensor_rows(void **state)
{
    suite *t = *state;
    float *x = tu_Random(DENSE, 9, 1.0f);
    const uint32_t rows[5] = {ROWS - 1, 0, 17, 17, 4000};
    float got[5 * WIDTH];
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        tu_PutOk(s, "{r}:params", x, DENSE, 0);
        memset(got, 0, sizeof got);
        if (store_GetTensorRows(s, "{r}:params", DENSE, WIDTH, rows, 5, got) != SP_OK)
            fail_msg("path %d: %s", p, sp_LastError());
        for (int i = 0; i < 5; i++)
            assert_memory_equal(got + i * WIDTH, x + (size_t)rows[i] * WIDTH,
                                sizeof(float) * WIDTH);
        const uint32_t beyond[1] = {ROWS};
        assert_int_not_equal(store_GetTensorRows(s, "{r}:params", DENSE, WIDTH, beyond, 1, got),
                             SP_OK);
        assert_int_equal(store_GetTensorRows(s, "{r}:params", DENSE + 1, WIDTH, rows, 1, got),
                         SP_ERR_INVALID);
        assert_int_equal(store_GetTensorRows(s, "{r}:none", 0, WIDTH, rows, 1, got),
                         SP_ERR_NOT_FOUND);
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_average),
        cmocka_unit_test(test_sparse_update),
        cmocka_unit_test(test_sparse_errors),
        cmocka_unit_test(test_tensor_rows),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, suite_Up, suite_Down);
}
