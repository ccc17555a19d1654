/* test_step_table.c - the step table and the one wrapper every step runs
 * through (steps_Invoke), without any server: the table entries, the
 * request shape each step declares being enforced before the step touches
 * Redis or NATS, the wrapper's prologue and epilogue, and the named limits
 * and iterations-per-epoch formula the job and the steps share.
 * ctest-label: unit
 *
 * No Redis, NATS or function process is started. The steps are configured
 * with 127.0.0.1:1 (nothing listens there) as every database: a wrapper
 * that reached for a connection before rejecting a bad request would
 * answer 503, not 400. A request that names an address itself is refused
 * before anything else, and a listening socket it names sees no
 * connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "job/job.h"
#include "steps/request.h"
#include "steps/step_ctx.h"
#include "steps/steps.h"

#define DEAD "127.0.0.1:1"

static job_config test_job(void)
{
    job_config j;
    job_Defaults(&j);
    snprintf(j.id, sizeof j.id, "unit");
    j.workers = 2;
    j.minibatches = 3;
    return j;
}

/* The configuration of every test: two peer databases and the shared one,
 * all unreachable; no NATS. */
static steps_config g_dead;

static int configure_Dead(void **state)
{
    (void)state;
    memset(&g_dead, 0, sizeof g_dead);
    snprintf(g_dead.redis_peers, sizeof g_dead.redis_peers, "%s,%s", DEAD, DEAD);
    snprintf(g_dead.redis_shared, sizeof g_dead.redis_shared, "%s", DEAD);
    g_dead.timeout_ms = 500;
    return steps_Configure(&g_dead) == SP_OK ? 0 : -1;
}

/* A well-formed request for peer 0 of two at iteration 1 (Fashion-MNIST's
 * shape), every database unreachable. */
static cJSON *base_req(const job_config *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "job", job_ToJson(j));
    cJSON_AddItemToObject(o, "shape", cJSON_Parse("[1,28,28,10]"));
    cJSON_AddNumberToObject(o, "iteration", 1);
    cJSON_AddNumberToObject(o, "peer", 0);
    return o;
}

static cJSON *with(cJSON *o, const char *k, const char *json)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    if (json)
        cJSON_AddItemToObject(o, k, cJSON_Parse(json));
    return o;
}

/* Runs h on a consumed request; checks the status and that the message
 * names `needle`, and that a failure leaves no answer fields behind that
 * only the wrapper writes. */
static void expect(rt_handler h, cJSON *body, spStatus want, const char *needle)
{
    rt_request r = {.body = body};
    cJSON *res = cJSON_CreateObject();
    sp_ClearError();
    spStatus st = h(&r, res, NULL);
    if (st != want || (needle && !strstr(sp_LastError(), needle)))
        fail_msg("answered %s \"%s\", wanted %s naming \"%s\"", sp_StatusName(st),
                 sp_LastError(), sp_StatusName(want), needle ? needle : "");
    if (st != SP_OK)
        assert_null(cJSON_GetObjectItem(res, "timings"));
    cJSON_Delete(res);
    cJSON_Delete(body);
}

/* ---- the table ---------------------------------------------------------- */

static void test_table_lists_every_step_of_steps_def(void **state)
{
    (void)state;
    int n;
    const step_def *const *all = steps_All(&n);
    static const char *const names[] = {
#define STEP(name, Fn) #name,
#include "steps/steps.def"
#undef STEP
    };
    assert_int_equal(n, (int)(sizeof names / sizeof names[0]));
    for (int i = 0; i < n; i++) {
        assert_string_equal(all[i]->name, names[i]);
        assert_ptr_equal(steps_Find(names[i]), all[i]);
        assert_non_null(all[i]->handler);
        assert_non_null(all[i]->run);
        /* Only join may not be retried: verify consumes its nonce. */
        assert_int_equal(all[i]->idempotent, strcmp(names[i], "join") != 0);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(all[k]->name, all[i]->name);
    }
    assert_ptr_equal(steps_Find("gradient")->handler, step_Gradient);
    assert_ptr_equal(&step_def_chunk_reduce, steps_Find("chunk_reduce"));
    assert_null(steps_Find("nope"));
    assert_null(steps_Find(NULL));
}

/* ---- the declared request shape is enforced before any connection ------ */

static void test_missing_common_fields_are_400_naming_them(void **state)
{
    (void)state;
    job_config j = test_job();
    expect(step_Gradient, with(base_req(&j), "shape", NULL), SP_ERR_INVALID, "\"shape\"");
    expect(step_Average, with(base_req(&j), "iteration", NULL), SP_ERR_INVALID,
           "\"iteration\"");
    expect(step_Notify, with(base_req(&j), "peer", NULL), SP_ERR_INVALID, "\"peer\"");
    expect(step_Update, with(base_req(&j), "job", NULL), SP_ERR_INVALID, "\"job\"");
    expect(step_Barrier, with(base_req(&j), "peer", "5"), SP_ERR_INVALID, "\"peer\"");
    rt_request r = {.body = NULL};
    cJSON *res = cJSON_CreateObject();
    assert_int_equal(step_Evaluate(&r, res, NULL), SP_ERR_INVALID);
    cJSON_Delete(res);
}

static void test_minibatch_index_is_checked_against_the_job(void **state)
{
    (void)state;
    job_config j = test_job();
    expect(step_Gradient, base_req(&j), SP_ERR_INVALID, "missing field \"m\"");
    expect(step_Minibatch, with(base_req(&j), "m", "3"), SP_ERR_INVALID, "[0, 2]");
    expect(step_Gradient, with(base_req(&j), "m", "-1"), SP_ERR_INVALID, "\"m\"");
    expect(step_Gradient, with(base_req(&j), "m", "1.5"), SP_ERR_INVALID, "\"m\"");
    /* A request-level "minibatches" does not widen the range: M is the job's. */
    expect(step_Gradient, with(with(base_req(&j), "minibatches", "8"), "m", "5"),
           SP_ERR_INVALID, "[0, 2]");
    /* A good index passes the wrapper: the step then needs its database. */
    expect(step_Gradient, with(base_req(&j), "m", "2"), SP_ERR_UNAVAILABLE, NULL);
}

static void test_live_list_is_checked_before_the_database(void **state)
{
    (void)state;
    job_config j = test_job();
    expect(step_Scatter, with(base_req(&j), "live", "[1]"), SP_ERR_INVALID,
           "must include the calling worker 0");
    expect(step_Apply, with(base_req(&j), "live", "[0,0]"), SP_ERR_INVALID, "listed twice");
    expect(step_ChunkGather, with(base_req(&j), "live", "[0,2]"), SP_ERR_INVALID, "\"live\"");
    /* Steps of the first live worker only refuse another caller. */
    cJSON *r = with(base_req(&j), "peer", "1");
    expect(step_Supervisor, with(r, "live", "[1,0]"), SP_ERR_INVALID,
           "supervisor runs on the first live worker (0), not on worker 1");
    expect(step_MasterReduce, with(with(base_req(&j), "peer", "1"), "live", NULL),
           SP_ERR_INVALID, "master_reduce runs on the first live worker (0)");
    /* The first live worker gets as far as its database. */
    expect(step_MasterReduce, with(base_req(&j), "live", "[1,0]"), SP_ERR_UNAVAILABLE, NULL);
}

/* ---- addresses come from the function's configuration only -------------- */

static void test_requests_naming_addresses_are_refused_unconnected(void **state)
{
    (void)state;
    int port, fd = fx_TrapOpen(&port);
    assert_true(fd >= 0);
    char peers[96], shared[64], nats[64];
    snprintf(peers, sizeof peers, "[\"127.0.0.1:%d\",\"127.0.0.1:%d\"]", port, port);
    snprintf(shared, sizeof shared, "\"127.0.0.1:%d\"", port);
    snprintf(nats, sizeof nats, "\"nats://127.0.0.1:%d\"", port);
    const struct {
        const char *field, *json, *var;
    } named[] = {{"peers", peers, "SPIRT_REDIS_PEERS"},
                 {"shared", shared, "SPIRT_REDIS_SHARED"},
                 {"nats", nats, "SPIRT_NATS_URL"}};
    job_config j = test_job();
    int n;
    const step_def *const *all = steps_All(&n);
    /* Every step, SPIRT's and the others' jobs, otherwise good requests. */
    for (int a = 0; a < 2; a++) {
        j.arch = a ? ARCH_MLLESS : ARCH_SPIRT;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
                char field[16];
                snprintf(field, sizeof field, "\"%s\"", named[k].field);
                cJSON *body = with(with(base_req(&j), "m", "0"), named[k].field, named[k].json);
                expect(all[i]->handler, cJSON_Duplicate(body, 1), SP_ERR_INVALID, field);
                expect(all[i]->handler, body, SP_ERR_INVALID, named[k].var);
            }
    }
    assert_int_equal(fx_TrapConnections(fd), 0);
    /* The trap does see a connection: a function configured with it. */
    steps_config c = g_dead;
    snprintf(c.redis_peers, sizeof c.redis_peers, "127.0.0.1:%d,127.0.0.1:%d", port, port);
    c.timeout_ms = 200;
    assert_int_equal(steps_Configure(&c), SP_OK);
    j.arch = ARCH_SPIRT;
    expect(step_Average, base_req(&j), SP_ERR_TIMEOUT, NULL);
    assert_true(fx_TrapConnections(fd) >= 1);
    assert_int_equal(steps_Configure(&g_dead), SP_OK);
    close(fd);
}

static void test_peer_index_must_be_within_the_configured_databases(void **state)
{
    (void)state;
    job_config j = test_job(); /* the function is configured with 2 peer databases */
    j.arch = ARCH_SPIRT;
    j.workers = 4;
    expect(step_Average, with(base_req(&j), "peer", "3"), SP_ERR_INVALID,
           "\"peer\": 3 is beyond the 2 peer database(s) the function is configured with "
           "(SPIRT_REDIS_PEERS)");
    expect(step_Notify, with(base_req(&j), "peer", "2"), SP_ERR_INVALID, "SPIRT_REDIS_PEERS");
    expect(step_Rejoin, with(base_req(&j), "peer", "2"), SP_ERR_INVALID, "SPIRT_REDIS_PEERS");
    /* A step that reads every worker's database needs all of them. */
    expect(step_Aggregate, base_req(&j), SP_ERR_INVALID, "the job's 4 workers");
    expect(step_Init, base_req(&j), SP_ERR_INVALID, "SPIRT_REDIS_PEERS");
    /* Within the list, a step gets as far as the (dead) database. */
    expect(step_Average, with(base_req(&j), "peer", "1"), SP_ERR_UNAVAILABLE, NULL);
    /* The job's workers bound the index, whatever is configured. */
    j.workers = 2;
    expect(step_Average, with(base_req(&j), "peer", "2"), SP_ERR_INVALID, "\"peer\"");
    /* Workers that share the shared Redis are not bounded by the peer list. */
    j.arch = ARCH_MLLESS;
    j.workers = 4;
    expect(step_Average, with(base_req(&j), "peer", "3"), SP_ERR_UNAVAILABLE, "shared redis");
}

static void test_missing_configuration_is_503_naming_the_variable(void **state)
{
    (void)state;
    steps_config none = g_dead;
    none.redis_peers[0] = none.redis_shared[0] = none.nats_url[0] = '\0';
    assert_int_equal(steps_Configure(&none), SP_OK);
    job_config j = test_job();
    j.arch = ARCH_SPIRT;
    expect(step_Aggregate, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_PEERS");
    expect(step_Average, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_PEERS");
    expect(step_Init, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_SHARED");
    expect(step_Gradient, with(base_req(&j), "m", "0"), SP_ERR_UNAVAILABLE,
           "SPIRT_REDIS_SHARED");
    expect(step_Barrier, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_NATS_URL");
    j.arch = ARCH_MLLESS; /* every worker's database is the shared Redis */
    expect(step_Average, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_SHARED");
    /* Nothing to check: ready. */
    assert_int_equal(steps_Ready(NULL), SP_OK);

    /* A malformed address: steps_Configure says which; the steps that need
     * it, and /readyz, answer the same. */
    steps_config bad = g_dead;
    snprintf(bad.redis_peers, sizeof bad.redis_peers, "%s, h:99999", DEAD);
    sp_ClearError();
    assert_int_equal(steps_Configure(&bad), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "SPIRT_REDIS_PEERS entry 1"));
    j.arch = ARCH_SPIRT;
    expect(step_Average, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_PEERS entry 1");
    assert_int_equal(steps_Ready(NULL), SP_ERR_UNAVAILABLE);
    snprintf(bad.redis_peers, sizeof bad.redis_peers, "%s", DEAD);
    snprintf(bad.redis_shared, sizeof bad.redis_shared, ":6379");
    assert_int_equal(steps_Configure(&bad), SP_ERR_INVALID);
    expect(step_Init, base_req(&j), SP_ERR_UNAVAILABLE, "SPIRT_REDIS_SHARED");
    assert_int_equal(steps_Configure(&g_dead), SP_OK);
}

/* ---- the wrapper's prologue and epilogue, on a step of the test's own ---- */

static struct {
    int calls;
    long iteration;
    int peer, m, n_live, rank, live0, has_own;
    spStatus answer;
} g_probe;

static spStatus probe_Run(step_ctx *c, cJSON *res)
{
    g_probe.calls++;
    g_probe.iteration = c->q.iteration;
    g_probe.peer = c->q.peer;
    g_probe.m = c->q.m;
    g_probe.n_live = c->n_live;
    g_probe.rank = c->rank;
    g_probe.live0 = c->live ? c->live[0] : -1;
    g_probe.has_own = c->own != NULL;
    c->io.compute_ms = 1.5;
    cJSON_AddStringToObject(res, "probe", "ran");
    return g_probe.answer;
}

static const step_def probe_def = {"probe", NULL, 1, REQ_ITERATION | REQ_PEER | REQ_M | STEP_LIVE,
                                   probe_Run};

static spStatus probe_Call(cJSON *body, cJSON **res)
{
    rt_request r = {.body = body};
    *res = cJSON_CreateObject();
    spStatus st = steps_Invoke(&probe_def, &r, *res);
    cJSON_Delete(body);
    return st;
}

static void test_wrapper_runs_the_step_with_what_it_declared(void **state)
{
    (void)state;
    job_config j = test_job();
    cJSON *res;
    memset(&g_probe, 0, sizeof g_probe);
    g_probe.answer = SP_OK;
    cJSON *body = with(with(with(base_req(&j), "peer", "1"), "m", "2"), "live", "[1,0]");
    assert_int_equal(probe_Call(body, &res), SP_OK);
    assert_int_equal(g_probe.calls, 1);
    assert_int_equal(g_probe.iteration, 1);
    assert_int_equal(g_probe.peer, 1);
    assert_int_equal(g_probe.m, 2);
    assert_int_equal(g_probe.n_live, 2);
    assert_int_equal(g_probe.live0, 0); /* sorted */
    assert_int_equal(g_probe.rank, 1);
    assert_false(g_probe.has_own); /* not declared: no connection made */
    /* The epilogue: the step's fields, then timings and bytes. */
    assert_string_equal(cJSON_GetObjectItem(res, "probe")->valuestring, "ran");
    const cJSON *t = cJSON_GetObjectItem(res, "timings");
    assert_non_null(t);
    assert_true(cJSON_GetObjectItem(t, "compute_ms")->valuedouble == 1.5);
    assert_null(cJSON_GetObjectItem(t, "store_ms")); /* not applicable */
    assert_non_null(cJSON_GetObjectItem(res, "bytes"));
    cJSON_Delete(res);

    /* A failing step's answer gets no timings (the runtime sends the error). */
    g_probe.answer = sp_Error(SP_ERR_CONFLICT, "probe says no");
    assert_int_equal(probe_Call(with(base_req(&j), "m", "0"), &res), SP_ERR_CONFLICT);
    assert_null(cJSON_GetObjectItem(res, "timings"));
    cJSON_Delete(res);
    assert_int_equal(g_probe.calls, 2);

    /* A request the declaration rejects never reaches the step. */
    assert_int_equal(probe_Call(with(base_req(&j), "m", NULL), &res), SP_ERR_INVALID);
    cJSON_Delete(res);
    assert_int_equal(probe_Call(with(with(base_req(&j), "m", "0"), "live", "[1]"), &res),
                     SP_ERR_INVALID);
    cJSON_Delete(res);
    assert_int_equal(g_probe.calls, 2);
}

/* ---- limits and iterations per epoch, shared by job and steps ---------- */

static void test_named_limits_hold_in_job_and_request(void **state)
{
    (void)state;
    job_config j = test_job(), back;
    j.minibatches = JOB_MAX_MINIBATCHES;
    j.workers = JOB_MAX_WORKERS;
    assert_int_equal(job_Validate(&j), SP_OK);
    cJSON *o = job_ToJson(&j);
    job_Defaults(&back);
    assert_int_equal(job_FromJson(o, &back), SP_OK);
    assert_int_equal(back.minibatches, JOB_MAX_MINIBATCHES);
    cJSON_ReplaceItemInObject(o, "minibatches", cJSON_CreateNumber(JOB_MAX_MINIBATCHES + 1));
    assert_int_equal(job_FromJson(o, &back), SP_ERR_INVALID);
    cJSON_Delete(o);
    j.minibatches = JOB_MAX_MINIBATCHES + 1;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    j.minibatches = 1;
    j.workers = JOB_MAX_WORKERS + 1;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    assert_true(JOB_MAX_PEER_DATABASES <= JOB_MAX_WORKERS);

    /* The largest M a job allows: its last minibatch index passes req_Parse. */
    j = test_job();
    j.minibatches = JOB_MAX_MINIBATCHES;
    char m[16];
    snprintf(m, sizeof m, "%d", JOB_MAX_MINIBATCHES - 1);
    cJSON *body = with(base_req(&j), "m", m);
    rt_request r = {.body = body};
    step_req q;
    assert_int_equal(req_Parse(&r, REQ_ITERATION | REQ_PEER | REQ_M, &q), SP_OK);
    assert_int_equal(q.m, JOB_MAX_MINIBATCHES - 1);
    cJSON_Delete(body);
}

static void test_iters_per_epoch_formula(void **state)
{
    (void)state;
    job_config j = test_job(); /* 2 workers, 3 minibatches of 64 */
    long iters = -1;
    /* 1000 rows: shards of 500 = 2 iterations of 192 rows (116 left over). */
    assert_int_equal(job_ItersPerEpoch(&j, 1000, &iters), SP_OK);
    assert_int_equal(iters, 2);
    /* An odd count: the smaller shard (floor) decides. */
    assert_int_equal(job_ItersPerEpoch(&j, 769, &iters), SP_OK);
    assert_int_equal(iters, 2);
    assert_int_equal(job_ItersPerEpoch(&j, 767, &iters), SP_OK);
    assert_int_equal(iters, 1);
    sp_ClearError();
    assert_int_equal(job_ItersPerEpoch(&j, 383, &iters), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "191 training samples per worker"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lists_every_step_of_steps_def),
        cmocka_unit_test(test_missing_common_fields_are_400_naming_them),
        cmocka_unit_test(test_minibatch_index_is_checked_against_the_job),
        cmocka_unit_test(test_live_list_is_checked_before_the_database),
        cmocka_unit_test(test_requests_naming_addresses_are_refused_unconnected),
        cmocka_unit_test(test_peer_index_must_be_within_the_configured_databases),
        cmocka_unit_test(test_missing_configuration_is_503_naming_the_variable),
        cmocka_unit_test(test_wrapper_runs_the_step_with_what_it_declared),
        cmocka_unit_test(test_named_limits_hold_in_job_and_request),
        cmocka_unit_test(test_iters_per_epoch_formula),
    };
    return cmocka_run_group_tests(tests, configure_Dead, NULL);
}
