/* test_module.c - SPIRT.AVG / SPIRT.UPDATE inside a real redis-server with
 * the module loaded, the client-side fallback against a server without it,
 * the promise that a bad call is an error reply that changes nothing, and
 * that an update and its applied marker are one act, even across a crash. */
#include <float.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "core/tensor.h"
#include "ml/aggregate.h"
#include "ml/optim.h"
#include "store_testutil.h"

#define PASSWORD "module-test-pw"
#define N 100003 /* odd: exercises vector tails and partial blocks */

typedef struct {
    fx_server mod_srv, plain_srv;
    store *mod, *plain;
    store *paths[2];   /* the module path, then the fallback path */
} suite;

static const int in_db_of[2] = {1, 0};

static int suite_Up(void **state)
{
    suite *t = calloc(1, sizeof *t);
    if (!t || fx_StartRedis(&t->mod_srv, PASSWORD, 1, 0) != 0 ||
        fx_StartRedis(&t->plain_srv, PASSWORD, 0, 0) != 0)
        return -1;
    store_addr a;
    tu_Addr(&a, &t->mod_srv, PASSWORD);
    if (store_Connect(&a, &t->mod) != SP_OK)
        return -1;
    tu_Addr(&a, &t->plain_srv, PASSWORD);
    if (store_Connect(&a, &t->plain) != SP_OK)
        return -1;
    t->paths[0] = t->mod;
    t->paths[1] = t->plain;
    *state = t;
    return 0;
}

static int suite_Down(void **state)
{
    suite *t = *state;
    if (!t)
        return 0; /* setup failed before building the suite */
    store_Destroy(t->mod);
    store_Destroy(t->plain);
    fx_Stop(&t->mod_srv);
    fx_Stop(&t->plain_srv);
    free(t);
    return 0;
}

/* A command given as one space-separated line (test keys have no spaces). */
static redisReply *cmd_Line(store *s, const char *line)
{
    char buf[512];
    const char *argv[16];
    size_t lens[16];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save, *tok = strtok_r(buf, " ", &save); tok && argc < 16;
         tok = strtok_r(NULL, " ", &save)) {
        argv[argc] = tok;
        lens[argc++] = strlen(tok);
    }
    redisReply *r = redisCommandArgv(tu_Raw(s), argc, argv, lens);
    assert_non_null(r);
    return r;
}

static void test_has_module(void **state)
{
    suite *t = *state;
    assert_int_equal(store_HasModule(t->mod), 1);
    assert_int_equal(store_HasModule(t->plain), 0);
    /* The probe is cached: asking again costs no round trip. */
    uint64_t out = store_BytesOut(t->mod);
    assert_int_equal(store_HasModule(t->mod), 1);
    assert_int_equal(store_BytesOut(t->mod), out);
}

static void test_key_positions(void **state)
{
    suite *t = *state;
    redisReply *r = cmd_Line(t->mod, "COMMAND GETKEYS SPIRT.AVG {k}:d 500 {k}:a {k}:b {k}:c");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, "{k}:d");
    assert_string_equal(r->element[3]->str, "{k}:c");
    freeReplyObject(r);
    r = cmd_Line(t->mod, "COMMAND GETKEYS SPIRT.UPDATE {k}:p {k}:g 0.1 0.9 0 {k}:m");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[2]->str, "{k}:m");
    freeReplyObject(r);
}

static void test_average_of_four(void **state)
{
    suite *t = *state;
    const char *srcs[4] = {"{avg}:g0", "{avg}:g1", "{avg}:g2", "{avg}:g3"};
    float *x[4], *want = malloc(N * sizeof *want), *agg = malloc(N * sizeof *agg), *got[2];
    for (int j = 0; j < 4; j++)
        x[j] = tu_Random(N, 10 + (uint64_t)j, 5.0f);
    /* Every mean in spirt is the same kernel: the peers' aggregation rule
     * and the collective steps' mean give the bits the database gives. */
    tensor_Mean(N, 4, (const float *const *)x, want);
    agg_config mean = {.kind = AGG_MEAN};
    assert_int_equal(agg_Apply(&mean, N, 4, (const float *const *)x, agg, NULL), SP_OK);
    assert_memory_equal(agg, want, N * sizeof *want);
    for (size_t i = 0; i < N; i++) /* and that is the mean, to rounding */
        assert_true(fabsf(want[i] - (x[0][i] + x[1][i] + x[2][i] + x[3][i]) / 4.0f) <=
                    1e-6f * (1.0f + fabsf(want[i])));
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        for (int j = 0; j < 4; j++)
            tu_PutOk(s, srcs[j], x[j], N, 0);
        int in_db = -1;
        uint64_t in0 = store_BytesIn(s);
        if (store_Average(s, "{avg}:mean", srcs, 4, 60, &in_db) != SP_OK)
            fail_msg("average: %s", sp_LastError());
        assert_int_equal(in_db, in_db_of[p]);
        if (in_db) /* in the database, no tensor came back over the wire */
            assert_true(store_BytesIn(s) - in0 < 100);
        got[p] = tu_GetOk(s, "{avg}:mean", N);
        assert_memory_equal(got[p], want, N * sizeof *want);
        long long pttl = tu_Int(s, "PTTL %s", "{avg}:mean");
        assert_true(pttl > 0 && pttl <= 60000);
        /* Sources are left as they were. */
        float *back = tu_GetOk(s, srcs[2], N);
        assert_memory_equal(back, x[2], N * sizeof(float));
        free(back);
    }
    for (int j = 0; j < 4; j++)
        free(x[j]);
    free(want);
    free(agg);
    free(got[0]);
    free(got[1]);
}

/* dst may be a source and a source may repeat; tiny tensors live in Redis's
 * embedded-string encoding, a separate code path on the server. */
static void test_average_aliasing_and_tiny(void **state)
{
    suite *t = *state;
    size_t sizes[] = {1, 2, 5, 6, 9, 4099};
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            size_t n = sizes[z];
            float *a = tu_Random(n, 20 + z, 2.0f), *b = tu_Random(n, 40 + z, 2.0f);
            tu_PutOk(s, "{al}:a", a, n, 0);
            tu_PutOk(s, "{al}:b", b, n, 30);
            const char *srcs[3] = {"{al}:a", "{al}:b", "{al}:a"};
            int in_db;
            if (store_Average(s, "{al}:b", srcs, 3, 0, &in_db) != SP_OK)
                fail_msg("n=%zu: %s", n, sp_LastError());
            assert_int_equal(in_db, in_db_of[p]);
            /* The sum follows the argument list, repeat included, on both
             * paths: the same bits as the mean of {a, b, a} in memory. */
            float *want = malloc(n * sizeof *want + 1);
            const float *const abx[3] = {a, b, a};
            tensor_Mean(n, 3, abx, want);
            float *got = tu_GetOk(s, "{al}:b", n);
            assert_memory_equal(got, want, n * sizeof *want);
            /* ttl 0 replaces the value like SET: no expiry left behind. */
            assert_int_equal(tu_Int(s, "PTTL %s", "{al}:b"), -1);
            free(got);
            free(want);
            free(a);
            free(b);
        }
        /* A single source: the mean is a copy. */
        float one[3] = {1.5f, -2.0f, 3.25f};
        tu_PutOk(s, "{al}:one", one, 3, 0);
        const char *src1[1] = {"{al}:one"};
        /* dst held a bigger tensor with an expiry: replaced entirely. */
        float *big = tu_Random(5000, 9, 1.0f);
        tu_PutOk(s, "{al}:copy", big, 5000, 100);
        free(big);
        assert_int_equal(store_Average(s, "{al}:copy", src1, 1, 0, NULL), SP_OK);
        float *c = tu_GetOk(s, "{al}:copy", 3);
        assert_memory_equal(c, one, sizeof one);
        free(c);
        assert_int_equal(tu_Int(s, "PTTL %s", "{al}:copy"), -1);
    }
}

/* The mean into a new key and into an existing one (the module forms the
 * first straight in the new value, the second in scratch) gives the same
 * bits; a mean that is not finite (two FLT_MAX near the end of a long
 * tensor, in its last chunk's body or tail) is refused on both paths whatever dst is - new
 * (not created), existing or one of the sources (left as they were). */
static void test_average_not_finite_writes_nothing(void **state)
{
    suite *t = *state;
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        float *a = tu_Random(N, 61, 1.0f), *b = tu_Random(N, 62, 1.0f);
        float *want = malloc(N * sizeof *want);
        const float *const ab[2] = {a, b};
        tensor_Mean(N, 2, ab, want);
        const char *srcs[2] = {"{nf}:a", "{nf}:b"};
        tu_PutOk(s, srcs[0], a, N, 0);
        tu_PutOk(s, srcs[1], b, N, 0);
        tu_PutOk(s, "{nf}:old", a, 5, 0);
        freeReplyObject(tu_Cmd(s, "DEL %s", "{nf}:new"));
        assert_int_equal(store_Average(s, "{nf}:new", srcs, 2, 0, NULL), SP_OK);
        assert_int_equal(store_Average(s, "{nf}:old", srcs, 2, 0, NULL), SP_OK);
        const char *dsts[2] = {"{nf}:new", "{nf}:old"};
        for (int d = 0; d < 2; d++) {
            float *got = tu_GetOk(s, dsts[d], N);
            assert_memory_equal(got, want, N * sizeof *want);
            free(got);
        }
        /* A vectorized body and a scalar tail check each chunk: both. */
        const size_t at[2] = {N - 5, N - 1};
        for (int w = 0; w < 2; w++) {
            float a_was = a[at[w]], b_was = b[at[w]];
            a[at[w]] = b[at[w]] = FLT_MAX;
            tu_PutOk(s, srcs[0], a, N, 0);
            tu_PutOk(s, srcs[1], b, N, 0);
            const char *bad_dsts[3] = {"{nf}:fresh", "{nf}:old", "{nf}:a"};
            for (int d = 0; d < 3; d++) {
                assert_int_equal(store_Average(s, bad_dsts[d], srcs, 2, 0, NULL),
                                 SP_ERR_INVALID);
                assert_non_null(strstr(sp_LastError(), "not finite"));
            }
            assert_int_equal(tu_Int(s, "EXISTS %s", "{nf}:fresh"), 0);
            float *old = tu_GetOk(s, "{nf}:old", N), *back = tu_GetOk(s, srcs[0], N);
            assert_memory_equal(old, want, N * sizeof *want);
            assert_memory_equal(back, a, N * sizeof *a);
            free(old);
            free(back);
            a[at[w]] = a_was;
            b[at[w]] = b_was;
        }
        free(a);
        free(b);
        free(want);
    }
}

/* Two updates in the database or client-side, and the same two with the
 * single-process optimizer: bit-identical params and velocity (one kernel
 * source behind all three, core/kernels.h). */
static void run_updates(store *s, int expect_in_db, const char *mom_key, float mom)
{
    const float lr = 0.05f, wd = 1e-3f;
    optim_config oc;
    optim_Defaults(&oc, mom_key ? OPTIM_MOMENTUM : OPTIM_SGD);
    oc.lr = lr;
    oc.momentum = mom;
    oc.weight_decay = wd;
    float *w = tu_Random(N, 61, 1.0f), *g1 = tu_Random(N, 62, 1.0f), *g2 = tu_Random(N, 63, 1.0f);
    float *v = mom_key ? calloc(N, sizeof *v) : NULL;
    tu_PutOk(s, "{up}:w", w, N, 600);
    if (mom_key)
        assert_int_equal(store_Delete(s, mom_key), SP_OK);
    float *gs[2] = {g1, g2};
    for (int step = 0; step < 2; step++) {
        tu_PutOk(s, "{up}:g", gs[step], N, 0);
        int in_db = -1;
        if (store_Update(s, "{up}:w", "{up}:g", mom_key, lr, mom, wd, &in_db) != SP_OK)
            fail_msg("update step %d: %s", step, sp_LastError());
        assert_int_equal(in_db, expect_in_db);
        optim_Step(&oc, N, w, gs[step], v, step + 1);
    }
    float *got = tu_GetOk(s, "{up}:w", N);
    assert_memory_equal(got, w, N * sizeof *w);
    free(got);
    if (mom_key) {
        got = tu_GetOk(s, mom_key, N);
        assert_memory_equal(got, v, N * sizeof *v);
        free(got);
    }
    /* Updated in place: the params key keeps its expiry. */
    long long ttl = tu_Int(s, "TTL %s", "{up}:w");
    assert_true(ttl > 0 && ttl <= 600);
    free(w);
    free(g1);
    free(g2);
    free(v);
}

static void test_update_plain_sgd(void **state)
{
    suite *t = *state;
    for (int p = 0; p < 2; p++)
        run_updates(t->paths[p], in_db_of[p], NULL, 0.0f);
}

static void test_update_momentum(void **state)
{
    suite *t = *state;
    for (int p = 0; p < 2; p++)
        run_updates(t->paths[p], in_db_of[p], "{up}:mom", 0.9f);
}

/* ---- malformed input ---- */

typedef struct {
    const char *key;
    uint8_t *val;
    size_t len;
} snap;

static void snap_Take(store *s, snap *sn, const char *const *keys, int k)
{
    for (int i = 0; i < k; i++) {
        sn[i].key = keys[i];
        redisReply *r = tu_Cmd(s, "GET %s", keys[i]);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        sn[i].len = r->len;
        sn[i].val = malloc(r->len + 1);
        memcpy(sn[i].val, r->str, r->len);
        freeReplyObject(r);
    }
}

static void snap_Check(store *s, const snap *sn, int k, const char *after)
{
    for (int i = 0; i < k; i++) {
        redisReply *r = tu_Cmd(s, "GET %s", sn[i].key);
        if (r->type != REDIS_REPLY_STRING || r->len != sn[i].len ||
            memcmp(r->str, sn[i].val, sn[i].len) != 0)
            fail_msg("'%s' changed by: %s", sn[i].key, after);
        freeReplyObject(r);
    }
}

static void plant(store *s, const char *key, size_t n, uint64_t seed)
{
    float *x = tu_Random(n, seed, 1.0f);
    tu_PutOk(s, key, x, n, 0);
    free(x);
}

static void plant_Bad(store *s)
{
    plant(s, "{m}:a", 10, 1);
    plant(s, "{m}:b", 10, 2);
    plant(s, "{m}:short", 12, 3);
    plant(s, "{m}:d", 10, 4);
    plant(s, "{m}:p", 10, 5);
    plant(s, "{m}:g", 10, 6);
    plant(s, "{m}:mom", 10, 7);
    plant(s, "{m}:mom12", 12, 8);
    freeReplyObject(tu_Cmd(s, "SET %s %s", "{m}:junk", "definitely not a tensor"));
    float x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint8_t *blob;
    size_t len;
    assert_int_equal(wire_Encode(WIRE_F32, x, 10, 0, &blob, &len), SP_OK);
    blob[WIRE_HEADER_SIZE + 9] ^= 0x01;
    freeReplyObject(tu_Cmd(s, "SET %s %b", "{m}:flip", blob, len));
    free(blob);
    int32_t ints[10] = {0};
    assert_int_equal(wire_Encode(WIRE_I32, ints, 10, 0, &blob, &len), SP_OK);
    freeReplyObject(tu_Cmd(s, "SET %s %b", "{m}:i32", blob, len));
    free(blob);
    freeReplyObject(tu_Cmd(s, "DEL %s", "{m}:list"));
    freeReplyObject(tu_Cmd(s, "RPUSH %s x y", "{m}:list"));
}

static void test_malformed_calls_change_nothing(void **state)
{
    suite *t = *state;
    store *s = t->mod;
    plant_Bad(s);
    const char *keys[] = {"{m}:a", "{m}:b", "{m}:short", "{m}:d", "{m}:p", "{m}:g",
                          "{m}:mom", "{m}:mom12", "{m}:junk", "{m}:flip", "{m}:i32"};
    int nk = (int)(sizeof keys / sizeof *keys);
    snap sn[sizeof keys / sizeof *keys];
    snap_Take(s, sn, keys, nk);
    const char *bad[] = {
        "SPIRT.AVG",
        "SPIRT.AVG {m}:d",
        "SPIRT.AVG {m}:d 0",
        "SPIRT.AVG {m}:d soon {m}:a",
        "SPIRT.AVG {m}:d -5 {m}:a",
        "SPIRT.AVG {m}:d 99999999999999999 {m}:a",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:missing",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:list",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:short",
        "SPIRT.AVG {m}:d 0 {m}:short {m}:a",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:junk",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:flip",
        "SPIRT.AVG {m}:d 0 {m}:a {m}:i32",
        "SPIRT.AVG {m}:list 0 {m}:a {m}:b",
        "SPIRT.AVG {m}:a 0 {m}:a {m}:b {m}:junk",
        "SPIRT.AVG {m}:new 0 {m}:a {m}:short",
        "SPIRT.UPDATE {m}:p {m}:g",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0 0 {m}:mom extra",
        "SPIRT.UPDATE {m}:p {m}:g fast 0 0",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 lots 0",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0 nan",
        "SPIRT.UPDATE {m}:p {m}:g inf 0 0",
        "SPIRT.UPDATE {m}:p {m}:g 1e300 0 0",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0.9 0",
        "SPIRT.UPDATE {m}:p {m}:p 0.1 0 0",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0.9 0 {m}:g",
        "SPIRT.UPDATE {m}:p {m}:short 0.1 0 0",
        "SPIRT.UPDATE {m}:short {m}:g 0.1 0 0",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0.9 0 {m}:mom12",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0.9 0 {m}:list",
        "SPIRT.UPDATE {m}:p {m}:g 0.1 0.9 0 {m}:junk",
        "SPIRT.UPDATE {m}:p {m}:junk 0.1 0 0",
        "SPIRT.UPDATE {m}:flip {m}:g 0.1 0 0",
        "SPIRT.UPDATE {m}:i32 {m}:g 0.1 0 0",
        "SPIRT.UPDATE {m}:missing {m}:g 0.1 0 0",
        "SPIRT.UPDATE {m}:p {m}:missing 0.1 0.9 0 {m}:newmom",
        "SPIRT.UPDATE {m}:p {m}:short 0.1 0.9 0 {m}:newmom",
        "SPIRT.UPDATE {m}:list {m}:g 0.1 0 0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        redisReply *r = cmd_Line(s, bad[i]);
        if (r->type != REDIS_REPLY_ERROR)
            fail_msg("no error reply for: %s (type %d)", bad[i], r->type);
        freeReplyObject(r);
        r = cmd_Line(s, "PING");
        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
            fail_msg("server not answering after: %s", bad[i]);
        freeReplyObject(r);
        snap_Check(s, sn, nk, bad[i]);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{m}:new"), 0);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{m}:newmom"), 0);
        assert_int_equal(tu_Int(s, "LLEN %s", "{m}:list"), 2);
    }
    /* Messages say what is wrong. */
    redisReply *r = cmd_Line(s, "SPIRT.UPDATE {m}:p {m}:short 0.1 0 0");
    assert_non_null(strstr(r->str, "size mismatch: params has 10 elements, grad 12"));
    freeReplyObject(r);
    for (int i = 0; i < nk; i++)
        free(sn[i].val);
}

/* The store maps module errors and fallback checks to the same statuses,
 * and neither path writes anything when it fails. */
static void test_errors_agree_across_paths(void **state)
{
    suite *t = *state;
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        plant_Bad(s);
        const char *missing[2] = {"{m}:a", "{m}:missing"};
        const char *corrupt[2] = {"{m}:a", "{m}:flip"};
        const char *junk[2] = {"{m}:a", "{m}:junk"};
        const char *mismatch[2] = {"{m}:a", "{m}:short"};
        const char *dtype[2] = {"{m}:a", "{m}:i32"};
        assert_int_equal(store_Average(s, "{m}:new", missing, 2, 0, NULL), SP_ERR_NOT_FOUND);
        assert_int_equal(store_Average(s, "{m}:new", corrupt, 2, 0, NULL), SP_ERR_FORMAT);
        assert_int_equal(store_Average(s, "{m}:new", junk, 2, 0, NULL), SP_ERR_FORMAT);
        assert_int_equal(store_Average(s, "{m}:new", mismatch, 2, 0, NULL), SP_ERR_INVALID);
        assert_non_null(strstr(sp_LastError(), "size mismatch"));
        assert_int_equal(store_Average(s, "{m}:new", dtype, 2, 0, NULL), SP_ERR_INVALID);
        assert_int_equal(tu_Int(s, "EXISTS %s", "{m}:new"), 0);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:short", NULL, 0.1f, 0, 0, NULL),
                         SP_ERR_INVALID);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:flip", NULL, 0.1f, 0, 0, NULL),
                         SP_ERR_FORMAT);
        assert_int_equal(store_Update(s, "{m}:missing", "{m}:g", NULL, 0.1f, 0, 0, NULL),
                         SP_ERR_NOT_FOUND);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:g", "{m}:mom12", 0.1f, 0.9f, 0, NULL),
                         SP_ERR_INVALID);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:g", NULL, 0.1f, 0.9f, 0, NULL),
                         SP_ERR_INVALID);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:g", NULL, NAN, 0, 0, NULL),
                         SP_ERR_INVALID);
        assert_int_equal(store_Update(s, "{m}:p", "{m}:p", NULL, 0.1f, 0, 0, NULL),
                         SP_ERR_INVALID);
        assert_int_equal(store_Ping(s), SP_OK);
    }
}

/* The module replicates its commands verbatim, so an AOF replay after a
 * restart rebuilds exactly what the commands computed. */
static void test_results_survive_aof_restart(void **state)
{
    (void)state;
    fx_server srv;
    assert_int_equal(fx_StartRedis(&srv, NULL, 1, 1), 0);
    store *s = tu_Connect(&srv, NULL);
    size_t n = 1000;
    plant(s, "{aof}:a", n, 1);
    plant(s, "{aof}:b", n, 2);
    plant(s, "{aof}:g", n, 3);
    const char *srcs[2] = {"{aof}:a", "{aof}:b"};
    int in_db;
    assert_int_equal(store_Average(s, "{aof}:avg", srcs, 2, 0, &in_db), SP_OK);
    assert_int_equal(in_db, 1);
    assert_int_equal(store_Update(s, "{aof}:a", "{aof}:g", "{aof}:v", 0.1f, 0.5f, 0.01f, &in_db),
                     SP_OK);
    const char *keys[] = {"{aof}:avg", "{aof}:a", "{aof}:v"};
    snap sn[3];
    snap_Take(s, sn, keys, 3);
    store_Destroy(s);
    fx_Kill(&srv, SIGTERM, 1);
    assert_int_equal(fx_RestartRedis(&srv, NULL, 1, 1), 0);
    s = tu_Connect(&srv, NULL);
    /* The port opens before the AOF is loaded; wait out the LOADING replies. */
    for (int i = 0; i < 200 && store_Ping(s) == SP_ERR_UNAVAILABLE; i++)
        usleep(50000);
    assert_int_equal(store_Ping(s), SP_OK);
    snap_Check(s, sn, 3, "AOF restart");
    for (int i = 0; i < 3; i++)
        free(sn[i].val);
    store_Destroy(s);
    fx_Stop(&srv);
}

/* ---- marked updates: the update and its record are one act --------------- */

static long marker_Get(store *s, const char *key)
{
    char buf[32];
    size_t len;
    if (store_GetString(s, key, buf, sizeof buf, &len) != SP_OK) {
        sp_ClearError();
        return -1;
    }
    return atol(buf);
}

/* w and v after `steps` momentum updates with g (v starting at zeros),
 * computed here with the single-process optimizer (the same kernel). */
static void expect_Steps(const float *w0, const float *g, int steps, float *w, float *v)
{
    optim_config oc;
    optim_Defaults(&oc, OPTIM_MOMENTUM);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    oc.weight_decay = 1e-3f;
    memcpy(w, w0, N * sizeof *w);
    memset(v, 0, N * sizeof *v);
    for (int k = 0; k < steps; k++)
        optim_Step(&oc, N, w, g, v, k + 1);
}

static spStatus marked(store *s, long t, int *dup)
{
    return store_UpdateMarked(s, "{mk}:w", "{mk}:g", "{mk}:v", 0.05f, 0.9f, 1e-3f, "{mk}:applied",
                              t, dup, NULL);
}

static void check_Model(store *s, const float *w, const float *v, const char *after)
{
    float *got = tu_GetOk(s, "{mk}:w", N);
    if (memcmp(got, w, N * sizeof *w) != 0)
        fail_msg("params after %s are not what the updates applied once each make", after);
    free(got);
    got = tu_GetOk(s, "{mk}:v", N);
    if (memcmp(got, v, N * sizeof *v) != 0)
        fail_msg("momentum after %s is not what the updates applied once each make", after);
    free(got);
}

/* Applied, duplicate, stale, next; a damaged marker or one that is also
 * another key is refused - the same on both paths. */
static void test_marked_update(void **state)
{
    suite *t = *state;
    float *w0 = tu_Random(N, 71, 1.0f), *g = tu_Random(N, 72, 1.0f);
    float *w = malloc(N * sizeof *w), *v = malloc(N * sizeof *v);
    for (int p = 0; p < 2; p++) {
        store *s = t->paths[p];
        int dup = -1;
        tu_PutOk(s, "{mk}:w", w0, N, 0);
        tu_PutOk(s, "{mk}:g", g, N, 0);
        assert_int_equal(store_Delete(s, "{mk}:v"), SP_OK);
        assert_int_equal(store_Delete(s, "{mk}:applied"), SP_OK);
        assert_int_equal(marked(s, 5, &dup), SP_OK);
        assert_int_equal(dup, 0);
        assert_int_equal(marker_Get(s, "{mk}:applied"), 5);
        expect_Steps(w0, g, 1, w, v);
        check_Model(s, w, v, "iteration 5");
        assert_int_equal(marked(s, 5, &dup), SP_OK); /* the same again: nothing */
        assert_int_equal(dup, 1);
        check_Model(s, w, v, "iteration 5 twice");
        assert_int_equal(marked(s, 4, &dup), SP_ERR_CONFLICT);
        assert_non_null(strstr(sp_LastError(), "stale"));
        check_Model(s, w, v, "a stale iteration");
        assert_int_equal(marked(s, 6, &dup), SP_OK);
        assert_int_equal(dup, 0);
        assert_int_equal(marker_Get(s, "{mk}:applied"), 6);
        expect_Steps(w0, g, 2, w, v);
        check_Model(s, w, v, "iteration 6");
        assert_int_equal(store_PutString(s, "{mk}:applied", "six", 0), SP_OK);
        assert_int_equal(marked(s, 7, &dup), SP_ERR_FORMAT);
        check_Model(s, w, v, "a damaged marker");
        assert_int_equal(store_UpdateMarked(s, "{mk}:w", "{mk}:g", "{mk}:v", 0.05f, 0.9f, 0,
                                            "{mk}:v", 8, &dup, NULL), SP_ERR_INVALID);
    }
    redisReply *r = cmd_Line(t->mod, "COMMAND GETKEYS SPIRT.UPDATE {k}:p {k}:g 0.1 0 0 MARK {k}:a 7");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[2]->str, "{k}:a");
    freeReplyObject(r);
    r = cmd_Line(t->mod, "SPIRT.UPDATE {mk}:w {mk}:g 0.1 0.9 0 {mk}:v MARC {mk}:applied 9");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "bad argument"));
    freeReplyObject(r);
    free(w0);
    free(g);
    free(w);
    free(v);
}

/* The window the marker closes: SIGKILL right after an update returned
 * (AOF, fsync always, as fault injection runs peers), restart from the
 * AOF, and replay the same update - what a retry or --resume does. The
 * replay is a duplicate and the model holds exactly one application; on
 * the client-side path too (one MULTI/EXEC). */
static void test_marked_update_survives_a_crash(void **state)
{
    (void)state;
    float *w0 = tu_Random(N, 81, 1.0f), *g = tu_Random(N, 82, 1.0f);
    float *w = malloc(N * sizeof *w), *v = malloc(N * sizeof *v);
    expect_Steps(w0, g, 1, w, v);
    for (int with_module = 1; with_module >= 0; with_module--) {
        fx_server srv;
        assert_int_equal(fx_StartRedis(&srv, NULL, with_module, 1), 0);
        store *s = tu_Connect(&srv, NULL);
        int dup = -1, in_db = -1;
        tu_PutOk(s, "{mk}:w", w0, N, 0);
        tu_PutOk(s, "{mk}:g", g, N, 0);
        assert_int_equal(store_UpdateMarked(s, "{mk}:w", "{mk}:g", "{mk}:v", 0.05f, 0.9f, 1e-3f,
                                            "{mk}:applied", 3, &dup, &in_db), SP_OK);
        assert_int_equal(in_db, with_module);
        fx_Kill(&srv, SIGKILL, 1);
        store_Destroy(s);
        assert_int_equal(fx_RestartRedis(&srv, NULL, with_module, 1), 0);
        s = tu_Connect(&srv, NULL);
        for (int i = 0; i < 200 && store_Ping(s) == SP_ERR_UNAVAILABLE; i++)
            usleep(50000); /* LOADING while the AOF is replayed */
        assert_int_equal(marked(s, 3, &dup), SP_OK);
        assert_int_equal(dup, 1);
        assert_int_equal(marker_Get(s, "{mk}:applied"), 3);
        check_Model(s, w, v, with_module ? "a crash and a replay (module)"
                                         : "a crash and a replay (client-side)");
        store_Destroy(s);
        fx_Stop(&srv);
    }
    free(w0);
    free(g);
    free(w);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_has_module),
        cmocka_unit_test(test_key_positions),
        cmocka_unit_test(test_average_of_four),
        cmocka_unit_test(test_average_aliasing_and_tiny),
        cmocka_unit_test(test_average_not_finite_writes_nothing),
        cmocka_unit_test(test_update_plain_sgd),
        cmocka_unit_test(test_update_momentum),
        cmocka_unit_test(test_malformed_calls_change_nothing),
        cmocka_unit_test(test_errors_agree_across_paths),
        cmocka_unit_test(test_results_survive_aof_restart),
        cmocka_unit_test(test_marked_update),
        cmocka_unit_test(test_marked_update_survives_a_crash),
    };
    return cmocka_run_group_tests(tests, suite_Up, suite_Down);
}
