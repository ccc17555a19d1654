/* test_integrity.c - what reaches an aggregate is checked, and what a
 * poisoned peer publishes really reaches the others.
 *
 * - SPIRT.AVG (and its client-side stand-in) refuses a non-finite mean and
 *   writes nothing;
 * - a peer's average corrupted in its Redis mid-iteration (one byte
 *   flipped) is rejected by the other peers' aggregate, reported under
 *   "rejected" with code "format", and left out of the result;
 * - the Byzantine peer's steps publish the poisoned values (sign flip,
 *   Gaussian, flipped byte, flipped labels) where the others fetch them.
 * Real redis-servers (spirt module loaded) and the real dataset. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "core/wire.h"
#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "steps/steps.h"
#include "store/store.h"
#include "store/store_internal.h" /* white-box: flip a byte on the store's connection */

#define PASSWORD "integrity-secret"
#define N_PEERS 3
#define ATTACKER 2

static sw_world W;
static fx_server plain; /* a Redis without the module */
static store *plain_db;

static cJSON *make_req(int peer, long t) { return sw_Request(&W, peer, t); }

/* Runs a handler on a consumed request and checks its status. */
static cJSON *run(rt_handler h, cJSON *body, spStatus want)
{
    return sw_Expect(h, body, want, NULL);
}

static float *ramp(size_t n, float a, float b)
{
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = a + b * (float)(i % 97);
    return x;
}

static float *get(store *s, const char *key, size_t n)
{
    float *x = NULL;
    size_t got;
    assert_int_equal(store_GetTensor(s, key, n, &x, &got), SP_OK);
    return x;
}

static int key_exists(store *s, const char *key)
{
    int e = 0;
    assert_int_equal(store_Exists(s, key, &e), SP_OK);
    return e;
}

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N_PEERS, .password = PASSWORD, .timeout_ms = 3000};
    if (sw_Up(&W, &o) != 0 || fx_StartRedis(&plain, PASSWORD, 0, 0) != 0)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "integrity");
    W.job.model.kind = MODEL_LOGREG;
    W.job.train_samples = 600;
    W.job.test_samples = 100;
    W.job.minibatches = 2;
    W.job.batch = 20;
    plain_db = sw_Connect(&W, plain.port);
    return sw_Init(&W);
}

static int world_Down(void **state)
{
    (void)state;
    store_Destroy(plain_db);
    fx_Stop(&plain);
    sw_Down(&W);
    return 0;
}

/* ---- SPIRT.AVG and non-finite values ------------------------------------ */

static void check_avg_refuses_non_finite(store *s, int want_in_db)
{
    enum { N = 1000 };
    float *a = ramp(N, 1.0f, 0.5f), *b = ramp(N, -2.0f, 0.25f), *m;
    const char *ab[2] = {"{nf}:a", "{nf}:b"};
    int in_db;
    assert_int_equal(store_PutTensor(s, ab[0], a, N, 60), SP_OK);
    assert_int_equal(store_PutTensor(s, ab[1], b, N, 60), SP_OK);
    /* Finite inputs: averaged as before. */
    assert_int_equal(store_Average(s, "{nf}:m", ab, 2, 60, &in_db), SP_OK);
    assert_int_equal(in_db, want_in_db);
    m = get(s, "{nf}:m", N);
    for (int i = 0; i < N; i++)
        assert_true(m[i] == (a[i] + b[i]) * 0.5f);
    free(m);
    /* A NaN source: refused, the destination untouched. */
    b[777] = NAN;
    assert_int_equal(store_PutTensor(s, ab[1], b, N, 60), SP_OK);
    assert_int_equal(store_Average(s, "{nf}:new", ab, 2, 60, &in_db), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "not finite"));
    assert_false(key_exists(s, "{nf}:new"));
    /* In place (dst is a source): the source keeps its values. */
    assert_int_equal(store_Average(s, "{nf}:a", ab, 2, 60, &in_db), SP_ERR_INVALID);
    m = get(s, "{nf}:a", N);
    assert_memory_equal(m, a, sizeof(float) * N);
    free(m);
    /* Finite sources whose sum overflows: Inf is refused too. */
    for (int i = 0; i < N; i++)
        a[i] = b[i] = 3.0e38f;
    assert_int_equal(store_PutTensor(s, ab[0], a, N, 60), SP_OK);
    assert_int_equal(store_PutTensor(s, ab[1], b, N, 60), SP_OK);
    assert_int_equal(store_Average(s, "{nf}:m", ab, 2, 60, &in_db), SP_ERR_INVALID);
    m = get(s, "{nf}:m", N); /* still the earlier, finite mean */
    assert_true(isfinite(m[0]) && m[0] < 10.0f);
    free(m);
    free(a);
    free(b);
}

static void test_module_avg_refuses_non_finite(void **state)
{
    (void)state;
    check_avg_refuses_non_finite(W.db[0], 1);
}

static void test_client_avg_refuses_non_finite(void **state)
{
    (void)state;
    check_avg_refuses_non_finite(plain_db, 0);
}

/* ---- a corrupted average ---------------------------------------------------- */

/* Flips one payload byte of a stored blob in place (SETRANGE), as a disk or
 * network fault would: the value stays the right size. */
static void flip_byte(store *s, const char *key, size_t offset)
{
    redisContext *c = s->c;
    int off = (int)offset;
    redisReply *r = redisCommand(c, "GETRANGE %s %d %d", key, off, off);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, 1);
    char b = (char)(r->str[0] ^ 0x10);
    freeReplyObject(r);
    r = redisCommand(c, "SETRANGE %s %d %b", key, off, &b, (size_t)1);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

static const cJSON *rejected_of(const cJSON *res, int peer)
{
    const cJSON *rej = cJSON_GetObjectItem(res, "rejected");
    for (const cJSON *r = rej ? rej->child : NULL; r; r = r->next)
        if (cJSON_GetObjectItem(r, "peer")->valueint == peer)
            return r;
    return NULL;
}

static void test_corrupted_average_is_rejected_and_reported(void **state)
{
    (void)state;
    const long t = 40;
    float *avg[N_PEERS];
    char key[192];
    for (int p = 0; p < N_PEERS; p++) {
        avg[p] = ramp(W.P, 0.01f * (float)(p + 1), 0.001f);
        sw_Key(&W, key, sizeof key, "avg:%d:%ld", p, t);
        assert_int_equal(store_PutTensor(W.db[p], key, avg[p], W.P, 600), SP_OK);
    }
    /* Mid-iteration, after peer 2 published: one byte of it flips. */
    sw_Key(&W, key, sizeof key, "avg:%d:%ld", ATTACKER, t);
    flip_byte(W.db[ATTACKER], key, WIRE_HEADER_SIZE + 4 * (W.P / 2) + 1);
    float *x;
    size_t n;
    assert_int_equal(store_GetTensor(W.db[ATTACKER], key, W.P, &x, &n), SP_ERR_FORMAT);

    for (int p = 0; p < ATTACKER; p++) {
        cJSON *res = run(step_Aggregate, make_req(p, t), SP_OK);
        const cJSON *r = rejected_of(res, ATTACKER);
        if (!r)
            fail_msg("no rejection in %s", cJSON_PrintUnformatted(res));
        assert_string_equal(cJSON_GetObjectItem(r, "code")->valuestring, "format");
        assert_non_null(strstr(cJSON_GetObjectItem(r, "reason")->valuestring, "avg:2:40"));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "rejected")), 1);
        const cJSON *used = cJSON_GetObjectItem(res, "used");
        assert_int_equal(cJSON_GetArraySize(used), 2);
        assert_int_equal(cJSON_GetArrayItem(used, 0)->valueint, 0);
        assert_int_equal(cJSON_GetArrayItem(used, 1)->valueint, 1);
        cJSON_Delete(res);
        /* Never averaged: the result is the mean of the two good ones. */
        sw_Key(&W, key, sizeof key, "agg:%d:%ld", p, t);
        float *agg = get(W.db[p], key, W.P);
        for (size_t i = 0; i < W.P; i++)
            assert_true(agg[i] == (avg[0][i] + avg[1][i]) / 2.0f);
        free(agg);
    }
    /* An honest peer whose own average is damaged fails its step (it has
     * nothing trustworthy to contribute) and stores nothing. */
    run(step_Aggregate, make_req(ATTACKER, t), SP_ERR_FORMAT);
    sw_Key(&W, key, sizeof key, "agg:%d:%ld", ATTACKER, t);
    assert_false(key_exists(W.db[ATTACKER], key));
    for (int p = 0; p < N_PEERS; p++)
        free(avg[p]);
}

/* ---- poisoned contributions in the data path ------------------------------- */

static void put_grads(int p, long t, const float *g0, const float *g1)
{
    char key[192];
    sw_Key(&W, key, sizeof key, "grad:%d:%ld:0", p, t);
    assert_int_equal(store_PutTensor(W.db[p], key, g0, W.P, 600), SP_OK);
    sw_Key(&W, key, sizeof key, "grad:%d:%ld:1", p, t);
    assert_int_equal(store_PutTensor(W.db[p], key, g1, W.P, 600), SP_OK);
}

static float *average_of(int p, long t)
{
    cJSON_Delete(run(step_Average, make_req(p, t), SP_OK));
    char key[192];
    sw_Key(&W, key, sizeof key, "avg:%d:%ld", p, t);
    return get(W.db[p], key, W.P);
}

static void attack(attack_kind kind)
{
    attack_Defaults(&W.job.attack);
    W.job.attack.kind = kind;
    W.job.attack.n_listed = 1;
    W.job.attack.listed[0] = ATTACKER;
}

static void test_poisoned_average_is_published(void **state)
{
    (void)state;
    float *g0 = ramp(W.P, 0.5f, 0.01f), *g1 = ramp(W.P, -0.25f, 0.02f);
    long t = 50;
    /* Sign flip: the attacker's published average is -4 x the honest one;
     * an honest peer's is untouched. */
    attack(ATTACK_SIGN_FLIP);
    put_grads(0, t, g0, g1);
    put_grads(ATTACKER, t, g0, g1);
    float *honest = average_of(0, t), *bad = average_of(ATTACKER, t);
    for (size_t i = 0; i < W.P; i++) {
        float mean = (g0[i] + g1[i]) * 0.5f;
        assert_true(honest[i] == mean);
        assert_true(bad[i] == -4.0f * mean);
    }
    free(bad);
    /* Gaussian: replaced by noise, the same on a retried step. */
    attack(ATTACK_GAUSSIAN);
    t = 51;
    put_grads(ATTACKER, t, g0, g1);
    bad = average_of(ATTACKER, t);
    float *again = average_of(ATTACKER, t);
    assert_memory_equal(bad, again, sizeof(float) * W.P);
    assert_memory_not_equal(bad, honest, sizeof(float) * W.P);
    free(bad);
    free(again);
    /* Corrupt: the others reject it ("format"); the attacker itself leaves
     * its own out too instead of failing, like every other peer does. */
    attack(ATTACK_CORRUPT);
    t = 52;
    for (int p = 0; p < N_PEERS; p++)
        put_grads(p, t, g0, g1);
    for (int p = 0; p < N_PEERS; p++)
        cJSON_Delete(run(step_Average, make_req(p, t), SP_OK));
    for (int p = 0; p < N_PEERS; p++) {
        cJSON *res = run(step_Aggregate, make_req(p, t), SP_OK);
        const cJSON *r = rejected_of(res, ATTACKER);
        assert_non_null(r);
        assert_string_equal(cJSON_GetObjectItem(r, "code")->valuestring, "format");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "used")), 2);
        cJSON_Delete(res);
    }
    attack(ATTACK_NONE);
    free(honest);
    free(g0);
    free(g1);
}

/* Label flipping: the attacker's gradient on a minibatch equals an honest
 * peer's gradient on the same rows with labels y -> 9 - y. */
static void test_label_flip_poisons_the_gradient(void **state)
{
    (void)state;
    const long t = 60;
    const size_t rows = 8, w = W.dim + 1;
    float *mb = malloc(sizeof(float) * rows * w), *flipped = malloc(sizeof(float) * rows * w);
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < W.dim; i++)
            mb[r * w + i] = (float)((r * 31 + i * 7) % 256) / 255.0f;
        mb[r * w + W.dim] = (float)(r % 10);
    }
    memcpy(flipped, mb, sizeof(float) * rows * w);
    for (size_t r = 0; r < rows; r++)
        flipped[r * w + W.dim] = 9.0f - mb[r * w + W.dim];
    /* The rows go into the shared Redis (past the real ones), and each
     * peer's minibatch names them: the attacker and peer 1 the same rows,
     * peer 0 their copies with flipped labels. */
    char key[192];
    int32_t idx_mb[8], idx_flipped[8];
    for (size_t r = 0; r < rows; r++) {
        idx_mb[r] = 100000 + (int32_t)r;
        idx_flipped[r] = 100100 + (int32_t)r;
        sw_Put(&W, W.sdb, mb + r * w, w, "data:train:%d", idx_mb[r]);
        sw_Put(&W, W.sdb, flipped + r * w, w, "data:train:%d", idx_flipped[r]);
    }
    attack(ATTACK_LABEL_FLIP);
    sw_PutIndices(&W, W.db[ATTACKER], idx_mb, rows, "mb:%d:%ld:0", ATTACKER, t);
    sw_PutIndices(&W, W.db[0], idx_flipped, rows, "mb:%d:%ld:0", 0, t);
    sw_PutIndices(&W, W.db[1], idx_mb, rows, "mb:%d:%ld:0", 1, t);
    float *g[N_PEERS];
    for (int p = 0; p < N_PEERS; p++) {
        cJSON *req = make_req(p, t);
        cJSON_AddNumberToObject(req, "m", 0);
        cJSON_Delete(run(step_Gradient, req, SP_OK));
        sw_Key(&W, key, sizeof key, "grad:%d:%ld:0", p, t);
        g[p] = get(W.db[p], key, W.P);
    }
    /* Same initial model on every peer (init), so the gradients compare. */
    assert_memory_equal(g[ATTACKER], g[0], sizeof(float) * W.P);
    assert_memory_not_equal(g[ATTACKER], g[1], sizeof(float) * W.P);
    attack(ATTACK_NONE);
    for (int p = 0; p < N_PEERS; p++)
        free(g[p]);
    free(mb);
    free(flipped);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_module_avg_refuses_non_finite),
        cmocka_unit_test(test_client_avg_refuses_non_finite),
        cmocka_unit_test(test_corrupted_average_is_rejected_and_reported),
        cmocka_unit_test(test_poisoned_average_is_published),
        cmocka_unit_test(test_label_flip_poisons_the_gradient),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
