/* test_rejoin.c - the fault-tolerance side of SPIRT's steps, in-process,
 * against real redis-servers and a real nats-server: init resuming a run,
 * the rejoin step copying a live peer's model, the barrier excluding a
 * peer whose heartbeat stopped (but never because NATS itself went quiet)
 * and including a peer that announced it rejoins, and every barrier of an
 * iteration answering with one decided live set - a late peer learns it
 * was left out, a waiting one adopts the decision, a peer whose model
 * drifted is left out. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/crc32c.h"
#include "core/wire.h"
#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/heartbeat.h"
#include "sync/sync.h"

#define PASSWORD "rejoin-secret"
#define N_PEERS 3
#define HB_MS 400

static sw_world W;
static sync_conn *nc; /* the test's own NATS connection: heartbeats, joins */
static auth_key master;

/* ---- helpers --------------------------------------------------------------- */

static cJSON *make_req(int peer, long t) { return sw_Request(&W, peer, t); }

static spStatus call(rt_handler h, cJSON *body, cJSON **res) { return sw_Call(h, body, res, 0); }

static void key(char *buf, size_t cap, const char *fmt, int p)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, fmt, p);
    assert_int_equal(store_Key(buf, cap, W.job.id, "%s", suffix), SP_OK);
}

static float *get_params(int p, const char *what)
{
    char k[128], fmt[32];
    snprintf(fmt, sizeof fmt, "%s:%%d", what);
    key(k, sizeof k, fmt, p);
    float *x = NULL;
    size_t n;
    assert_int_equal(store_GetTensor(W.db[p], k, W.P, &x, &n), SP_OK);
    return x;
}

static void put_params(int p, const char *what, float v)
{
    char k[128], fmt[32];
    snprintf(fmt, sizeof fmt, "%s:%%d", what);
    key(k, sizeof k, fmt, p);
    float *x = malloc(sizeof(float) * W.P);
    for (size_t i = 0; i < W.P; i++)
        x[i] = v + (float)i * 1e-6f;
    assert_int_equal(store_PutTensor(W.db[p], k, x, W.P, 0), SP_OK);
    free(x);
}

static void set_applied(int p, long t)
{
    char k[128], v[32];
    key(k, sizeof k, "applied:%d", p);
    if (t < 0) {
        assert_int_equal(store_Delete(W.db[p], k), SP_OK);
        return;
    }
    snprintf(v, sizeof v, "%ld", t);
    assert_int_equal(store_PutBlob(W.db[p], k, v, strlen(v), 0), SP_OK);
}

static long get_applied(int p)
{
    char k[128], text[32];
    uint8_t *b = NULL;
    size_t n = 0;
    key(k, sizeof k, "applied:%d", p);
    if (store_GetBlob(W.db[p], k, &b, &n) != SP_OK) {
        sp_ClearError();
        return -1;
    }
    snprintf(text, sizeof text, "%.*s", (int)n, (const char *)b);
    free(b);
    return atol(text);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- heartbeats ----------------------------------------------------------- */

/* Publishes the heartbeats of the members flagged in `beat` every HB_MS/4
 * until stopped, as the driver's liveness threads do. */
typedef struct {
    int beat[N_PEERS];
    volatile int stop;
    pthread_t th;
} beater;

static void *beater_Main(void *arg)
{
    beater *b = arg;
    while (!b->stop) {
        for (int p = 0; p < N_PEERS; p++)
            if (b->beat[p] && sync_Heartbeat(nc, W.job.id, p) != SP_OK)
                sp_ClearError(); /* a lost beat looks like silence: the safe side */
        sleep_ms(HB_MS / 4);
    }
    return NULL;
}

static void beater_Start(beater *b)
{
    b->stop = 0;
    assert_int_equal(pthread_create(&b->th, NULL, beater_Main, b), 0);
}

static void beater_Stop(beater *b)
{
    b->stop = 1;
    pthread_join(b->th, NULL);
}

static void notify(int p, long t)
{
    assert_int_equal(call(step_Notify, make_req(p, t), NULL), SP_OK);
}

static cJSON *barrier(int p, long t, int timeout_ms, cJSON *joiners)
{
    cJSON *req = make_req(p, t), *res;
    cJSON_AddNumberToObject(req, "timeout_ms", timeout_ms);
    if (joiners)
        cJSON_AddItemToObject(req, "joiners", joiners);
    assert_int_equal(call(step_Barrier, req, &res), SP_OK);
    return res;
}

/* The reason the barrier gave for excluding peer q, or NULL. */
static const char *excluded_reason(const cJSON *res, int q)
{
    const cJSON *ex = cJSON_GetObjectItem(res, "excluded");
    for (const cJSON *e = ex ? ex->child : NULL; e; e = e->next)
        if (cJSON_GetObjectItem(e, "peer")->valueint == q)
            return cJSON_GetObjectItem(e, "reason")->valuestring;
    return NULL;
}

static int in_array(const cJSON *a, int v)
{
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next)
        if (e->valueint == v)
            return 1;
    return 0;
}

/* ---- setup ----------------------------------------------------------------- */

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N_PEERS, .password = PASSWORD, .with_nats = 1,
                          .timeout_ms = 5000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    if (auth_NewKey(&master) != SP_OK)
        return -1;
    auth_Configure(&master);
    if (sw_ConnectNats(&W, &nc) != 0)
        return -1;

    snprintf(W.job.id, sizeof W.job.id, "rejoin-test");
    W.job.model.kind = MODEL_LOGREG;
    W.job.train_samples = 600;
    W.job.test_samples = 100;
    W.job.heartbeat_timeout_ms = HB_MS;
    return 0;
}

static int world_Down(void **state)
{
    (void)state;
    sync_Destroy(nc);
    sw_Down(&W);
    return 0;
}

/* ---- init: fresh run and resumed run ------------------------------------- */

static void test_init_resume_keeps_models_and_reports_applied(void **state)
{
    (void)state;
    cJSON *res;
    assert_int_equal(call(step_Init, make_req(-1, -1), &res), SP_OK);
    W.shape = cJSON_Duplicate(cJSON_GetObjectItem(res, "shape"), 1);
    W.P = (size_t)cJSON_GetObjectItem(res, "params")->valuedouble;
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "resumed")));
    cJSON_Delete(res);

    /* A run got as far as: peer 0 applied 7, peer 1 applied 6 (the driver
     * died between their updates), peer 2 lost its model. */
    put_params(0, "params", 1.0f);
    set_applied(0, 7);
    put_params(1, "params", 2.0f);
    set_applied(1, 6);
    char k[128];
    key(k, sizeof k, "params:%d", 2);
    assert_int_equal(store_Delete(W.db[2], k), SP_OK);
    set_applied(2, 5);

    /* The killed run had decided iteration 8's live set; nobody applied 8. */
    char *d = NULL;
    size_t dn = 0;
    int same = 0, found = 1;
    assert_int_equal(sync_Decide(nc, W.job.id, "live", 8, "1", "{\"live\":[0]}", 12, &d, &dn,
                                 &same), SP_OK);
    free(d);
    assert_int_equal(sync_Announce(nc, W.job.id, "avg", 8, 0, NULL, 0), SP_OK);

    cJSON *req = make_req(-1, -1);
    cJSON_AddBoolToObject(req, "resume", 1);
    assert_int_equal(call(step_Init, req, &res), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "resumed")));
    /* The resumed run decides again; announcements stay. */
    assert_int_equal(sync_Decision(nc, W.job.id, "live", 8, &d, &dn, &found), SP_OK);
    assert_int_equal(found, 0);
    int member = 0, got = 0;
    sync_arrival arr;
    assert_int_equal(sync_Await(nc, W.job.id, "avg", 8, &member, 1, 2000, &arr, &got), SP_OK);
    assert_int_equal(got, 1);
    sync_ArrivalsFree(&arr, 1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "stream_reset")));
    const cJSON *applied = cJSON_GetObjectItem(res, "applied");
    assert_int_equal(cJSON_GetArraySize(applied), N_PEERS);
    assert_int_equal(cJSON_GetArrayItem(applied, 0)->valueint, 7);
    assert_int_equal(cJSON_GetArrayItem(applied, 1)->valueint, 6);
    /* The peer without a model got the initial one and no marker. */
    assert_int_equal(cJSON_GetArrayItem(applied, 2)->valueint, -1);
    assert_int_equal(get_applied(2), -1);
    cJSON_Delete(res);
    float *p0 = get_params(0, "params");
    assert_true(p0[0] == 1.0f); /* kept */
    free(p0);

    /* A fresh (not resumed) init resets everything. */
    assert_int_equal(call(step_Init, make_req(-1, -1), &res), SP_OK);
    cJSON_Delete(res);
    assert_int_equal(get_applied(0), -1);
    p0 = get_params(0, "params");
    float *p1 = get_params(1, "params");
    assert_memory_equal(p0, p1, sizeof(float) * W.P);
    free(p0);
    free(p1);
}

static void test_init_resume_reports_unreachable_peer(void **state)
{
    (void)state;
    fx_Kill(&W.peer[2], SIGKILL, 1);
    cJSON *req = make_req(-1, -1), *res;
    cJSON_AddBoolToObject(req, "resume", 1);
    assert_int_equal(call(step_Init, req, &res), SP_OK);
    const cJSON *applied = cJSON_GetObjectItem(res, "applied");
    assert_true(cJSON_IsNumber(cJSON_GetArrayItem(applied, 0)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(applied, 2)));
    cJSON_Delete(res);
    assert_int_equal(fx_RestartRedis(&W.peer[2], PASSWORD, 1, 0), 0);
    store_Destroy(W.db[2]);
    W.db[2] = sw_Connect(&W, W.peer[2].port);
    /* It lost everything (no AOF here): init puts the initial model back. */
    assert_int_equal(call(step_Init, make_req(-1, -1), &res), SP_OK);
    cJSON_Delete(res);
}

/* ---- rejoin ------------------------------------------------------------------ */

/* Peer p's side of the handshake with the join step: its admission ticket. */
static void authenticate(int p, char ticket[AUTH_HEX_SIZE])
{
    cJSON *req = make_req(p, -1), *res;
    cJSON_AddStringToObject(req, "action", "challenge");
    assert_int_equal(call(step_Join, req, &res), SP_OK);
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE];
    snprintf(nonce, sizeof nonce, "%s", cJSON_GetObjectItem(res, "nonce")->valuestring);
    cJSON_Delete(res);
    auth_key key;
    auth_PeerKey(&master, W.job.id, p, &key);
    auth_Respond(&key, W.job.id, p, nonce, mac);
    req = make_req(p, -1);
    cJSON_AddStringToObject(req, "action", "verify");
    cJSON_AddStringToObject(req, "nonce", nonce);
    cJSON_AddStringToObject(req, "response", mac);
    assert_int_equal(call(step_Join, req, &res), SP_OK);
    snprintf(ticket, AUTH_HEX_SIZE, "%s", cJSON_GetObjectItem(res, "ticket")->valuestring);
    cJSON_Delete(res);
}

static cJSON *rejoin_With(int p, int source, long t, const char *ticket, spStatus want)
{
    cJSON *req = make_req(p, t), *res;
    cJSON_AddNumberToObject(req, "source", source);
    if (ticket)
        cJSON_AddStringToObject(req, "ticket", ticket);
    assert_int_equal(call(step_Rejoin, req, &res), want);
    return res;
}

static cJSON *rejoin(int p, int source, long t, spStatus want)
{
    char ticket[AUTH_HEX_SIZE];
    authenticate(p, ticket);
    return rejoin_With(p, source, t, ticket, want);
}

static void test_rejoin_copies_the_live_peers_model(void **state)
{
    (void)state;
    put_params(0, "params", 3.0f);
    put_params(0, "mom", 0.5f);
    set_applied(0, 11);
    /* Peer 2 came back from its AOF with the model of iteration 4. */
    put_params(2, "params", -1.0f);
    set_applied(2, 4);
    cJSON *res = rejoin(2, 0, 12, SP_OK);
    assert_int_equal(cJSON_GetObjectItem(res, "joined_at")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(res, "restored_applied")->valueint, 4);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "momentum")));
    cJSON_Delete(res);
    float *a = get_params(0, "params"), *b = get_params(2, "params");
    assert_memory_equal(a, b, sizeof(float) * W.P);
    free(a);
    free(b);
    a = get_params(0, "mom");
    b = get_params(2, "mom");
    assert_memory_equal(a, b, sizeof(float) * W.P);
    free(a);
    free(b);
    assert_int_equal(get_applied(2), 11);

    /* The "join" for 12 is on the stream for the live peers' barriers. */
    int member = 2, got = 0;
    sync_arrival arr;
    assert_int_equal(sync_Await(nc, W.job.id, "join", 12, &member, 1, 2000, &arr, &got),
                     SP_OK);
    assert_int_equal(got, 1);
    sync_ArrivalsFree(&arr, 1);
}

static void test_rejoin_needs_the_peers_own_ticket(void **state)
{
    (void)state;
    set_applied(0, 11);
    put_params(1, "params", 7.0f);
    char t1[AUTH_HEX_SIZE], t2[AUTH_HEX_SIZE];
    assert_null(rejoin_With(1, 0, 12, NULL, SP_ERR_AUTH));
    const char *forged = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_null(rejoin_With(1, 0, 12, forged, SP_ERR_AUTH));
    /* Another peer's ticket does not admit peer 1. */
    authenticate(2, t2);
    assert_null(rejoin_With(1, 0, 12, t2, SP_ERR_AUTH));
    /* Nothing was copied by the refused attempts. */
    float *p1 = get_params(1, "params");
    assert_true(p1[0] == 7.0f);
    free(p1);
    authenticate(1, t1);
    cJSON_Delete(rejoin_With(1, 0, 12, t1, SP_OK));
    /* A retry with the same ticket works (the step is idempotent). */
    cJSON_Delete(rejoin_With(1, 0, 12, t1, SP_OK));
}

static void test_rejoin_refuses_a_source_at_another_iteration(void **state)
{
    (void)state;
    set_applied(0, 11);
    /* The source already applied 11: joining at 11 would miss nothing... but
     * its model is not the one before 11. */
    assert_null(rejoin(1, 0, 11, SP_ERR_CONFLICT));
    assert_null(rejoin(1, 0, 13, SP_ERR_CONFLICT));
    assert_null(rejoin(1, 1, 12, SP_ERR_INVALID)); /* from itself */
    /* A source without a model. */
    char k[128];
    key(k, sizeof k, "params:%d", 0);
    assert_int_equal(store_Delete(W.db[0], k), SP_OK);
    assert_null(rejoin(1, 0, 12, SP_ERR_NOT_FOUND));
    put_params(0, "params", 3.0f);
}

/* ---- barrier: heartbeats and joiners --------------------------------------------- */

static void test_barrier_excludes_a_peer_whose_heartbeat_stopped(void **state)
{
    (void)state;
    beater b = {.beat = {1, 1, 0}}; /* peer 2 is dead: silent */
    beater_Start(&b);
    notify(0, 20);
    /* Peer 1 is alive but slow: it never announces within the wait. */
    cJSON *res = barrier(0, 20, 4000, NULL);
    beater_Stop(&b);
    assert_string_equal(excluded_reason(res, 2), "heartbeat lost");
    assert_string_equal(excluded_reason(res, 1), "missed the barrier");
    const cJSON *live = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "context"), "live");
    assert_int_equal(cJSON_GetArraySize(live), 1);
    cJSON_Delete(res);
}

static void test_barrier_trusts_no_silence_when_it_cannot_hear_itself(void **state)
{
    (void)state;
    /* Nobody's heartbeat arrives (as during a NATS outage): the silence
     * proves nothing, so peers are only given up at the timeout. */
    notify(0, 21);
    cJSON *res = barrier(0, 21, 2000, NULL);
    assert_string_equal(excluded_reason(res, 1), "missed the barrier");
    assert_string_equal(excluded_reason(res, 2), "missed the barrier");
    cJSON_Delete(res);
}

static void test_barrier_includes_announced_joiners(void **state)
{
    (void)state;
    /* Peer 2 rejoins at 30 (announced by the rejoin step); peer 1 is named
     * as a joiner but never announced, so it is not waited for. */
    set_applied(0, 29);
    cJSON_Delete(rejoin(2, 0, 30, SP_OK));
    notify(0, 30);
    notify(2, 30);
    cJSON *live = cJSON_CreateArray();
    cJSON_AddItemToArray(live, cJSON_CreateNumber(0));
    cJSON *req = make_req(0, 30), *res;
    cJSON_AddItemToObject(req, "live", live);
    cJSON_AddNumberToObject(req, "timeout_ms", 3000);
    cJSON *joiners = cJSON_CreateArray();
    cJSON_AddItemToArray(joiners, cJSON_CreateNumber(2));
    cJSON_AddItemToArray(joiners, cJSON_CreateNumber(1));
    cJSON_AddItemToObject(req, "joiners", joiners);
    assert_int_equal(call(step_Barrier, req, &res), SP_OK);
    const cJSON *arrived = cJSON_GetObjectItem(res, "arrived");
    assert_int_equal(cJSON_GetArraySize(arrived), 2);
    assert_true(in_array(arrived, 0) && in_array(arrived, 2));
    assert_true(in_array(cJSON_GetObjectItem(res, "joined"), 2));
    assert_false(in_array(cJSON_GetObjectItem(res, "missing"), 1));
    /* "live" is in peer order, whatever order members were listed in. */
    const cJSON *ctx_live = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "context"), "live");
    assert_int_equal(cJSON_GetArrayItem(ctx_live, 0)->valueint, 0);
    assert_int_equal(cJSON_GetArrayItem(ctx_live, 1)->valueint, 2);
    cJSON_Delete(res);
}

/* ---- barrier: one decided live set per iteration ------------------------- */

static cJSON *barrier_Live(int p, long t, int timeout_ms, int n, const int *live)
{
    cJSON *req = make_req(p, t), *res;
    cJSON_AddNumberToObject(req, "timeout_ms", timeout_ms);
    cJSON *l = cJSON_AddArrayToObject(req, "live");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(l, cJSON_CreateNumber(live[i]));
    assert_int_equal(call(step_Barrier, req, &res), SP_OK);
    return res;
}

static const cJSON *ctx_live(const cJSON *res)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(res, "context"), "live");
}

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Peer 2 announces after peer 0's barrier gave up on it: peer 0 decided
 * {0,1}, and every later barrier of the iteration answers {0,1} - peer 1's,
 * although it saw all three, and peer 2's own, which learns it was left out
 * ("self_excluded") instead of training on by itself. */
static void test_barriers_share_one_decision(void **state)
{
    (void)state;
    const int all[] = {0, 1, 2};
    notify(0, 40);
    notify(1, 40);
    cJSON *r0 = barrier_Live(0, 40, 300, 3, all);
    assert_int_equal(cJSON_GetArraySize(ctx_live(r0)), 2);
    assert_string_equal(excluded_reason(r0, 2), "missed the barrier");
    assert_int_equal(cJSON_GetObjectItem(r0, "decided_by")->valueint, 0);
    assert_null(cJSON_GetObjectItem(r0, "self_excluded"));
    /* The wait that ran out is reported, with whom it waited for. */
    const cJSON *to = cJSON_GetArrayItem(cJSON_GetObjectItem(r0, "timeouts"), 0);
    assert_string_equal(cJSON_GetObjectItem(to, "wait")->valuestring, "avg");
    assert_true(in_array(cJSON_GetObjectItem(to, "members"), 2));
    assert_true(cJSON_GetObjectItem(to, "duration_ms")->valuedouble >= 250);
    cJSON_Delete(r0);

    notify(2, 40);
    cJSON *r1 = barrier_Live(1, 40, 5000, 3, all);
    assert_int_equal(cJSON_GetArraySize(ctx_live(r1)), 2);
    assert_false(in_array(ctx_live(r1), 2));
    assert_string_equal(excluded_reason(r1, 2), "missed the barrier"); /* the decider's words */
    assert_null(cJSON_GetObjectItem(r1, "timeouts"));
    cJSON_Delete(r1);
    cJSON *r2 = barrier_Live(2, 40, 5000, 3, all);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r2, "self_excluded")));
    assert_false(in_array(ctx_live(r2), 2));
    assert_int_equal(cJSON_GetArraySize(ctx_live(r2)), 2);
    cJSON_Delete(r2);
}

/* A barrier still waiting for a peer that never comes adopts the decision
 * another barrier made, instead of waiting out its own timeout. */
static void test_waiting_barrier_adopts_the_decision(void **state)
{
    (void)state;
    const int all[] = {0, 1, 2};
    notify(0, 41);
    cJSON_Delete(barrier_Live(0, 41, 300, 3, all)); /* decides {0} */
    notify(2, 41);
    long long t0 = ms_now();
    cJSON *r = barrier_Live(2, 41, 20000, 3, all);
    long long took = ms_now() - t0;
    print_message("a barrier waiting for peer 1 adopted the decision after %lld ms\n", took);
    assert_true(took < 5000);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "self_excluded")));
    assert_int_equal(cJSON_GetArraySize(ctx_live(r)), 1);
    assert_int_equal(cJSON_GetArrayItem(ctx_live(r), 0)->valueint, 0);
    cJSON_Delete(r);
}

/* notify sends the checksum of the model the peer starts the iteration
 * from; the barrier keeps the peers on the model most of them share and
 * leaves out the one whose model drifted, which then rejoins. */
static void test_barrier_leaves_out_a_drifted_model(void **state)
{
    (void)state;
    /* What notify announces is the CRC32C of params:0's values. */
    notify(0, 42);
    int member = 0, got = 0;
    sync_arrival arr;
    assert_int_equal(sync_Await(nc, W.job.id, "avg", 42, &member, 1, 2000, &arr, &got), SP_OK);
    assert_int_equal(got, 1);
    char k[128], want[16];
    key(k, sizeof k, "params:%d", 0);
    uint8_t *blob = NULL;
    size_t len = 0;
    assert_int_equal(store_GetBlob(W.db[0], k, &blob, &len), SP_OK);
    snprintf(want, sizeof want, "\"%08x\"", crc32c(0, blob + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE));
    assert_non_null(strstr(arr.payload, want));
    free(blob);
    sync_ArrivalsFree(&arr, 1);

    /* Peers 0 and 2 start iteration 43 from one model, peer 1 from another. */
    const char *models[] = {"{\"model\":\"0000aaaa\"}", "{\"model\":\"0000bbbb\"}",
                            "{\"model\":\"0000aaaa\"}"};
    for (int p = 0; p < 3; p++)
        assert_int_equal(sync_Announce(nc, W.job.id, "avg", 43, p, models[p], strlen(models[p])),
                         SP_OK);
    const int all[] = {0, 1, 2};
    cJSON *r = barrier_Live(1, 43, 3000, 3, all); /* even when it decides itself */
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "self_excluded")));
    assert_string_equal(excluded_reason(r, 1), "model differs");
    assert_true(in_array(ctx_live(r), 0) && in_array(ctx_live(r), 2));
    cJSON_Delete(r);
    r = barrier_Live(0, 43, 3000, 3, all);
    assert_null(cJSON_GetObjectItem(r, "self_excluded"));
    assert_int_equal(cJSON_GetArraySize(ctx_live(r)), 2);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_resume_keeps_models_and_reports_applied),
        cmocka_unit_test(test_init_resume_reports_unreachable_peer),
        cmocka_unit_test(test_rejoin_copies_the_live_peers_model),
        cmocka_unit_test(test_rejoin_needs_the_peers_own_ticket),
        cmocka_unit_test(test_rejoin_refuses_a_source_at_another_iteration),
        cmocka_unit_test(test_barrier_excludes_a_peer_whose_heartbeat_stopped),
        cmocka_unit_test(test_barrier_trusts_no_silence_when_it_cannot_hear_itself),
        cmocka_unit_test(test_barrier_includes_announced_joiners),
        cmocka_unit_test(test_barriers_share_one_decision),
        cmocka_unit_test(test_waiting_barrier_adopts_the_decision),
        cmocka_unit_test(test_barrier_leaves_out_a_drifted_model),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
