/* test_sync.c - sync over a real nats-server with JetStream: announcements
 * reach waiters that come later, missing members are reported after the
 * timeout, jobs/iterations/topics stay apart, a NATS restart is survived,
 * heartbeats tell live members from silent ones, credentials are enforced,
 * the first proposal of a decision wins for every proposer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "sync/heartbeat.h"
#include "sync/sync.h"

static fx_server g_nats;
static sync_conn *g_conn;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sync_addr addr_for(int port, const char *user, const char *pass, int timeout_ms)
{
    sync_addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.url, sizeof a.url, "nats://127.0.0.1:%d", port);
    if (user)
        snprintf(a.user, sizeof a.user, "%s", user);
    if (pass)
        snprintf(a.password, sizeof a.password, "%s", pass);
    a.timeout_ms = timeout_ms;
    return a;
}

static int group_setup(void **state)
{
    (void)state;
    if (fx_StartNats(&g_nats, NULL, NULL) != 0)
        return -1;
    sync_addr a = addr_for(g_nats.port, NULL, NULL, 3000);
    if (sync_Connect(&a, &g_conn) != SP_OK) {
        fprintf(stderr, "connect: %s\n", sp_LastError());
        fx_Stop(&g_nats);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sync_Destroy(g_conn);
    sync_CachedCloseAll();
    fx_Stop(&g_nats);
    return 0;
}

static void announce_text(sync_conn *c, const char *job, const char *topic, long it, int m,
                          const char *text)
{
    spStatus s = sync_Announce(c, job, topic, it, m, text, text ? strlen(text) : 0);
    if (s != SP_OK)
        fail_msg("announce %s/%s/%ld/%d: %s", job, topic, it, m, sp_LastError());
}

/* Awaits members and returns how many arrived (out filled). */
static int await_members(sync_conn *c, const char *job, const char *topic, long it,
                         const int *members, int n, int timeout_ms, sync_arrival *out)
{
    int got = -1;
    spStatus s = sync_Await(c, job, topic, it, members, n, timeout_ms, out, &got);
    if (s != SP_OK)
        fail_msg("await %s/%s/%ld: %s", job, topic, it, sp_LastError());
    return got;
}

/* ---- announce / await ---------------------------------------------------- */

static void test_late_waiter_sees_earlier_announcements(void **state)
{
    (void)state;
    assert_int_equal(sync_EnsureStream(g_conn, "late"), SP_OK);
    announce_text(g_conn, "late", "grad", 3, 0, "{\"loss\":0.5}");
    announce_text(g_conn, "late", "grad", 3, 1, "{\"loss\":0.25}");
    announce_text(g_conn, "late", "grad", 3, 2, "{\"loss\":0.125}");

    int members[] = {2, 0, 1};
    sync_arrival out[3];
    assert_int_equal(await_members(g_conn, "late", "grad", 3, members, 3, 5000, out), 3);
    const char *want[] = {"{\"loss\":0.125}", "{\"loss\":0.5}", "{\"loss\":0.25}"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].member, members[i]);
        assert_int_equal(out[i].arrived, 1);
        assert_non_null(out[i].payload);
        assert_string_equal(out[i].payload, want[i]);
        assert_int_equal(out[i].len, strlen(want[i]));
    }
    sync_ArrivalsFree(out, 3);
}

typedef struct {
    sync_conn *conn;
    const char *job;
    int member;
    int delay_ms;
    spStatus result;
} late_announcer;

static void *announce_later(void *arg)
{
    late_announcer *la = arg;
    usleep((useconds_t)la->delay_ms * 1000);
    la->result = sync_Announce(la->conn, la->job, "ready", 0, la->member, "x", 1);
    return NULL;
}

/* The waiter blocks on new messages too, not only on the replayed ones. */
static void test_waiter_gets_announcement_made_while_waiting(void **state)
{
    (void)state;
    announce_text(g_conn, "while", "ready", 0, 0, "x");
    late_announcer la = {g_conn, "while", 1, 300, SP_ERR_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, announce_later, &la), 0);
    int members[] = {0, 1};
    sync_arrival out[2];
    int got = await_members(g_conn, "while", "ready", 0, members, 2, 15000, out);
    pthread_join(th, NULL);
    assert_int_equal(la.result, SP_OK);
    assert_int_equal(got, 2);
    assert_int_equal(out[1].arrived, 1);
    sync_ArrivalsFree(out, 2);
}

static void test_missing_member_reported_after_timeout(void **state)
{
    (void)state;
    announce_text(g_conn, "miss", "grad", 7, 0, "a");
    announce_text(g_conn, "miss", "grad", 7, 2, "c");
    int members[] = {0, 1, 2};
    sync_arrival out[3];
    long long t0 = now_ms();
    int got = await_members(g_conn, "miss", "grad", 7, members, 3, 600, out);
    long long took = now_ms() - t0;
    assert_int_equal(got, 2);
    assert_int_equal(out[0].arrived, 1);
    assert_string_equal(out[0].payload, "a");
    assert_int_equal(out[1].arrived, 0);
    assert_null(out[1].payload);
    assert_int_equal(out[1].len, 0);
    assert_int_equal(out[2].arrived, 1);
    assert_string_equal(out[2].payload, "c");
    /* Not a timing measurement: only proves the wait is bounded (no hang). */
    assert_true(took < 600 + 10000);
    sync_ArrivalsFree(out, 3);
}

static void test_payload_round_trip_and_limits(void **state)
{
    (void)state;
    size_t big = 65536;
    char *buf = malloc(big);
    assert_non_null(buf);
    for (size_t i = 0; i < big; i++)
        buf[i] = (char)('a' + (i * 7) % 26);
    assert_int_equal(sync_Announce(g_conn, "pay", "t", 0, 0, buf, big), SP_OK);
    assert_int_equal(sync_Announce(g_conn, "pay", "t", 0, 1, NULL, 0), SP_OK);
    assert_int_equal(sync_Announce(g_conn, "pay", "t", 0, 2, buf, big + 1), SP_ERR_TOO_LARGE);
    assert_int_equal(sync_Announce(g_conn, "pay", "t", 0, 3, NULL, 5), SP_ERR_INVALID);

    int members[] = {0, 1};
    sync_arrival out[2];
    assert_int_equal(await_members(g_conn, "pay", "t", 0, members, 2, 5000, out), 2);
    assert_int_equal(out[0].len, big);
    assert_memory_equal(out[0].payload, buf, big);
    assert_int_equal(out[0].payload[big], '\0');
    assert_int_equal(out[1].arrived, 1);
    assert_null(out[1].payload);
    assert_int_equal(out[1].len, 0);
    sync_ArrivalsFree(out, 2);
    free(buf);
}

static void assert_not_seen(const char *job, const char *topic, long it, int member)
{
    int members[] = {member};
    sync_arrival out[1];
    assert_int_equal(await_members(g_conn, job, topic, it, members, 1, 400, out), 0);
    assert_int_equal(out[0].arrived, 0);
    sync_ArrivalsFree(out, 1);
}

static void test_jobs_are_isolated(void **state)
{
    (void)state;
    announce_text(g_conn, "iso-a", "grad", 0, 0, "from a");
    assert_not_seen("iso-b", "grad", 0, 0);
    /* '.' and '_' map to different streams: no cross-talk between them. */
    announce_text(g_conn, "iso.x", "grad", 0, 0, "dot");
    assert_not_seen("iso_x", "grad", 0, 0);
    announce_text(g_conn, "iso_x", "grad", 0, 1, "underscore");
    assert_not_seen("iso.x", "grad", 0, 1);

    int members[] = {0};
    sync_arrival out[1];
    assert_int_equal(await_members(g_conn, "iso.x", "grad", 0, members, 1, 5000, out), 1);
    assert_string_equal(out[0].payload, "dot");
    sync_ArrivalsFree(out, 1);
}

static void test_iterations_and_topics_do_not_mix(void **state)
{
    (void)state;
    announce_text(g_conn, "iters", "grad", 1, 0, "i1m0");
    announce_text(g_conn, "iters", "grad", 1, 1, "i1m1");
    announce_text(g_conn, "iters", "grad", 2, 0, "i2m0");
    announce_text(g_conn, "iters", "avg", 2, 1, "avg");
    announce_text(g_conn, "iters", "grad", 12, 1, "i12m1"); /* 1 vs 12: no prefix match */

    int members[] = {0, 1};
    sync_arrival out[2];
    assert_int_equal(await_members(g_conn, "iters", "grad", 2, members, 2, 500, out), 1);
    assert_int_equal(out[0].arrived, 1);
    assert_string_equal(out[0].payload, "i2m0");
    assert_int_equal(out[1].arrived, 0);
    sync_ArrivalsFree(out, 2);

    assert_int_equal(await_members(g_conn, "iters", "grad", 1, members, 2, 5000, out), 2);
    assert_string_equal(out[0].payload, "i1m0");
    assert_string_equal(out[1].payload, "i1m1");
    sync_ArrivalsFree(out, 2);
}

static void test_duplicates_and_extra_members(void **state)
{
    (void)state;
    announce_text(g_conn, "dup", "grad", 0, 0, "first");
    announce_text(g_conn, "dup", "grad", 0, 0, "second"); /* a retried step */
    for (int m = 1; m < 5; m++)
        announce_text(g_conn, "dup", "grad", 0, m, "x");
    int members[] = {0, 3};
    sync_arrival out[2];
    assert_int_equal(await_members(g_conn, "dup", "grad", 0, members, 2, 5000, out), 2);
    assert_string_equal(out[0].payload, "first");
    assert_int_equal(out[1].member, 3);
    sync_ArrivalsFree(out, 2);
}

typedef struct {
    int port;
    spStatus result;
} ensure_arg;

static void *ensure_in_thread(void *arg)
{
    ensure_arg *ea = arg;
    sync_addr a = addr_for(ea->port, NULL, NULL, 3000);
    sync_conn *c = NULL;
    ea->result = sync_Connect(&a, &c);
    if (ea->result == SP_OK)
        ea->result = sync_EnsureStream(c, "race");
    sync_Destroy(c);
    return NULL;
}

static void test_ensure_stream_idempotent_and_racing(void **state)
{
    (void)state;
    assert_int_equal(sync_EnsureStream(g_conn, "idem"), SP_OK);
    announce_text(g_conn, "idem", "grad", 0, 0, "kept");
    assert_int_equal(sync_EnsureStream(g_conn, "idem"), SP_OK);
    /* Ensuring again must not wipe what is stored. */
    int members[] = {0};
    sync_arrival out[1];
    assert_int_equal(await_members(g_conn, "idem", "grad", 0, members, 1, 5000, out), 1);
    sync_ArrivalsFree(out, 1);

    ensure_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (ensure_arg){g_nats.port, SP_ERR_INTERNAL};
        assert_int_equal(pthread_create(&th[i], NULL, ensure_in_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].result, SP_OK);
    }

    assert_int_equal(sync_DeleteStream(g_conn, "idem"), SP_OK);
    assert_int_equal(sync_DeleteStream(g_conn, "idem"), SP_OK);
    /* Deleted stream: announcing re-creates it, old announcements are gone. */
    announce_text(g_conn, "idem", "grad", 0, 1, "new");
    int both[] = {0, 1};
    sync_arrival out2[2];
    assert_int_equal(await_members(g_conn, "idem", "grad", 0, both, 2, 400, out2), 1);
    assert_int_equal(out2[0].arrived, 0);
    assert_int_equal(out2[1].arrived, 1);
    sync_ArrivalsFree(out2, 2);
}

/* ---- decisions --------------------------------------------------------- */

static char *decide(sync_conn *c, const char *job, long it, const char *id, const char *text,
                    int *same)
{
    char *d = NULL;
    size_t n = 0;
    spStatus s = sync_Decide(c, job, "live", it, id, text, strlen(text), &d, &n, same);
    if (s != SP_OK)
        fail_msg("decide %s/%ld/%s: %s", job, it, id, sp_LastError());
    assert_int_equal(n, strlen(d));
    return d;
}

static void expect_decision(const char *job, long it, const char *want)
{
    char *d = NULL;
    size_t n = 0;
    int found = 0;
    assert_int_equal(sync_Decision(g_conn, job, "live", it, &d, &n, &found), SP_OK);
    assert_int_equal(found, want != NULL);
    if (want)
        assert_string_equal(d, want);
    else
        assert_null(d);
    free(d);
}

static void test_decision_first_proposal_wins(void **state)
{
    (void)state;
    int same = -1;
    expect_decision("dec", 5, NULL);
    char *d = decide(g_conn, "dec", 5, "a", "A", &same); /* no stream yet: made */
    assert_string_equal(d, "A");
    assert_int_equal(same, 1);
    free(d);
    d = decide(g_conn, "dec", 5, "b", "B", &same);
    assert_string_equal(d, "A");
    assert_int_equal(same, 0);
    free(d);
    /* An equal proposal is known by its id alone: the server acknowledges
     * it as a duplicate, nothing is read (one round trip) - which is why
     * equal ids must mean interchangeable proposals. */
    d = decide(g_conn, "dec", 5, "a", "A, said again", &same);
    assert_string_equal(d, "A, said again");
    assert_int_equal(same, 1);
    free(d);
    expect_decision("dec", 5, "A");
    /* Iterations, topics and jobs decide apart; waits do not see decisions. */
    d = decide(g_conn, "dec", 6, "b", "B", &same);
    assert_string_equal(d, "B");
    free(d);
    expect_decision("dec2", 5, NULL);
    int members[] = {0};
    sync_arrival out[1];
    assert_int_equal(await_members(g_conn, "dec", "live", 5, members, 1, 200, out), 0);
    sync_ArrivalsFree(out, 1);

    char *x = NULL;
    size_t n = 0;
    assert_int_equal(sync_Decide(g_conn, "dec", "live", 7, "no spaces", "A", 1, &x, &n, &same),
                     SP_ERR_INVALID);
    assert_int_equal(sync_Decide(g_conn, "dec", "live", 7, "a", "", 0, &x, &n, &same),
                     SP_ERR_INVALID);
    assert_int_equal(sync_Decide(g_conn, "dec", "live", -1, "a", "A", 1, &x, &n, &same),
                     SP_ERR_INVALID);
    assert_null(x);
}

typedef struct {
    int port, who;
    char got[20][16];
    int same[20];
    spStatus result;
} proposer;

static void *propose_in_thread(void *arg)
{
    proposer *p = arg;
    sync_addr a = addr_for(p->port, NULL, NULL, 3000);
    sync_conn *c = NULL;
    p->result = sync_Connect(&a, &c);
    for (long it = 0; p->result == SP_OK && it < 20; it++) {
        char id[16], text[16], *d = NULL;
        size_t n = 0;
        snprintf(id, sizeof id, "p%d", p->who);
        snprintf(text, sizeof text, "P%d", p->who);
        p->result = sync_Decide(c, "race-dec", "live", it, id, text, strlen(text), &d, &n,
                                &p->same[it]);
        if (p->result == SP_OK)
            snprintf(p->got[it], sizeof p->got[it], "%s", d);
        free(d);
    }
    sync_Destroy(c);
    return NULL;
}

/* Proposers racing from their own connections all leave with one decision
 * per iteration, and exactly one of them made it. */
static void test_decision_racing_proposers(void **state)
{
    (void)state;
    proposer p[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].port = g_nats.port;
        p[i].who = i;
        assert_int_equal(pthread_create(&th[i], NULL, propose_in_thread, &p[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].result, SP_OK);
    }
    for (int it = 0; it < 20; it++) {
        int winners = 0;
        for (int i = 0; i < 6; i++) {
            assert_string_equal(p[i].got[it], p[0].got[it]);
            winners += p[i].same[it];
        }
        assert_int_equal(winners, 1);
        expect_decision("race-dec", it, p[0].got[it]);
    }
}

/* A waiter that comes before any announcer (no stream yet) still works. */
static void test_waiter_before_stream_exists(void **state)
{
    (void)state;
    late_announcer la = {g_conn, "fresh", 0, 300, SP_ERR_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, announce_later, &la), 0);
    int members[] = {0};
    sync_arrival out[1];
    int got = await_members(g_conn, "fresh", "ready", 0, members, 1, 15000, out);
    pthread_join(th, NULL);
    assert_int_equal(la.result, SP_OK);
    assert_int_equal(got, 1);
    sync_ArrivalsFree(out, 1);
}

static void test_bad_input_is_rejected(void **state)
{
    (void)state;
    int members[] = {0, -1};
    sync_arrival out[2];
    int got = 99;
    assert_int_equal(sync_Announce(g_conn, "", "grad", 0, 0, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(g_conn, NULL, "grad", 0, 0, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(g_conn, "j", "a.b", 0, 0, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(g_conn, "j", "a*", 0, 0, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(g_conn, "j", "grad", -1, 0, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(g_conn, "j", "grad", 0, -2, NULL, 0), SP_ERR_INVALID);
    assert_int_equal(sync_Announce(NULL, "j", "grad", 0, 0, NULL, 0), SP_ERR_INVALID);
    char long_job[80];
    memset(long_job, 'j', sizeof long_job - 1);
    long_job[sizeof long_job - 1] = '\0';
    assert_int_equal(sync_EnsureStream(g_conn, long_job), SP_ERR_INVALID);
    assert_int_equal(sync_Await(g_conn, "j", "grad", 0, members, 2, 100, out, &got),
                     SP_ERR_INVALID);
    assert_int_equal(got, 0);
    sync_ArrivalsFree(out, 2); /* safe: out was initialised */
    assert_int_equal(sync_Await(g_conn, "j", "grad", 0, members, 1, 0, out, &got),
                     SP_ERR_INVALID);
    assert_int_equal(sync_Await(g_conn, "j", "grad", 0, members, -1, 100, out, &got),
                     SP_ERR_INVALID);
    assert_int_equal(sync_Await(g_conn, "j", "x y", 0, members, 1, 100, out, &got),
                     SP_ERR_INVALID);
    assert_true(strstr(sp_LastError(), "topic") != NULL);
    /* Nothing to wait for: immediate success. */
    assert_int_equal(sync_Await(g_conn, "j", "grad", 0, members, 0, 100, out, &got), SP_OK);
    assert_int_equal(got, 0);
    assert_int_equal(sync_Heartbeat(g_conn, "j", -1), SP_ERR_INVALID);
    hb_watcher *w = NULL;
    assert_int_equal(hb_Watcher_Create(g_conn, "j", 0, &w), SP_ERR_INVALID);
    assert_null(w);
}

/* ---- connections --------------------------------------------------------- */

static void test_nats_down_is_unavailable_quickly(void **state)
{
    (void)state;
    int port = fx_FreePort(); /* nothing listens there */
    sync_addr a = addr_for(port, NULL, NULL, 2000);
    sync_conn *c = (sync_conn *)&a; /* must be cleared on failure */
    long long t0 = now_ms();
    assert_int_equal(sync_Connect(&a, &c), SP_ERR_UNAVAILABLE);
    assert_true(now_ms() - t0 < 10000); /* bounded: no hang */
    assert_null(c);
    assert_non_null(strstr(sp_LastError(), a.url));
    assert_int_equal(sync_Cached(&a, &c), SP_ERR_UNAVAILABLE);
    assert_null(c);
}

static void test_cached_connection_is_shared(void **state)
{
    (void)state;
    sync_addr a = addr_for(g_nats.port, NULL, NULL, 3000);
    sync_conn *c1 = NULL, *c2 = NULL;
    assert_int_equal(sync_Cached(&a, &c1), SP_OK);
    assert_int_equal(sync_Cached(&a, &c2), SP_OK);
    assert_ptr_equal(c1, c2);
    assert_int_equal(sync_Ping(c1), SP_OK);
    /* Another user is another entry (this server ignores credentials). */
    sync_addr b = addr_for(g_nats.port, "other", "pw", 3000);
    sync_conn *c3 = NULL;
    assert_int_equal(sync_Cached(&b, &c3), SP_OK);
    assert_ptr_not_equal(c3, c1);
    sync_CachedCloseAll();
    assert_int_equal(sync_Cached(&a, &c2), SP_OK);
    assert_int_equal(sync_Ping(c2), SP_OK);
}

static pid_t restart_nats(fx_server *s)
{
    char port[16], store[300], log[300];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(store, sizeof store, "%s/js", s->dir);
    snprintf(log, sizeof log, "%s/nats-restarted.log", s->dir);
    char *argv[] = {"nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", store, NULL};
    pid_t pid = fx_Spawn(argv, NULL, log);
    if (pid > 0 && fx_WaitPort(s->port, 10000) != 0)
        return -1;
    return pid;
}

static void test_survives_nats_restart(void **state)
{
    (void)state;
    fx_server s;
    assert_int_equal(fx_StartNats(&s, NULL, NULL), 0);
    sync_addr a = addr_for(s.port, NULL, NULL, 1500);
    sync_conn *c = NULL;
    assert_int_equal(sync_Connect(&a, &c), SP_OK);
    announce_text(c, "restart", "grad", 0, 0, "before");

    fx_Kill(&s, SIGTERM, 1);
    /* Server gone: calls fail retryably within their timeout, never hang. */
    long long t0 = now_ms();
    spStatus st = sync_Announce(c, "restart", "grad", 0, 1, "after", 5);
    assert_int_equal(st, SP_ERR_UNAVAILABLE);
    fprintf(stderr, "announce while down: %s\n", sp_LastError());
    assert_true(sp_IsRetryable(st));
    int one[] = {0};
    sync_arrival o1[1];
    int got = -1;
    st = sync_Await(c, "restart", "grad", 0, one, 1, 500, o1, &got);
    assert_int_equal(st, SP_ERR_UNAVAILABLE);
    fprintf(stderr, "await while down: %s\n", sp_LastError());
    assert_int_equal(o1[0].arrived, 0);
    assert_int_equal(sync_Ping(c), SP_ERR_UNAVAILABLE);
    fprintf(stderr, "ping while down: %s\n", sp_LastError());
    assert_true(now_ms() - t0 < 30000);

    s.pid = restart_nats(&s);
    assert_true(s.pid > 0);
    /* Same sync_conn: libnats reconnects by itself; the first call may be
     * buffered until it has. The caller retries the failed announcement
     * (its outcome was unknown: it may have been stored once the server came
     * back); the message id makes the retry harmless either way. */
    announce_text(c, "restart", "grad", 0, 1, "after");
    announce_text(c, "restart", "grad", 1, 0, "next");
    assert_int_equal(sync_Ping(c), SP_OK);

    int members[] = {0, 1};
    sync_arrival out[2];
    /* Iteration 0: one announcement from before the restart (file storage
     * kept it), one from after. */
    assert_int_equal(await_members(c, "restart", "grad", 0, members, 2, 5000, out), 2);
    assert_string_equal(out[0].payload, "before");
    assert_string_equal(out[1].payload, "after");
    sync_ArrivalsFree(out, 2);
    assert_int_equal(await_members(c, "restart", "grad", 1, members, 1, 5000, out), 1);
    assert_string_equal(out[0].payload, "next");
    sync_ArrivalsFree(out, 1);

    sync_Destroy(c);
    fx_Stop(&s);
}

typedef struct {
    fx_server *server;
    sync_conn *conn;
    spStatus result;
} bouncer;

/* Stops NATS, brings it back on the same port and store, then announces
 * (retrying while the client reconnects, as a step's caller would). */
static void *bounce_then_announce(void *arg)
{
    bouncer *b = arg;
    usleep(300 * 1000);
    fx_Kill(b->server, SIGTERM, 1);
    usleep(500 * 1000);
    b->server->pid = restart_nats(b->server);
    b->result = SP_ERR_INTERNAL;
    for (int i = 0; i < 10 && b->result != SP_OK; i++)
        b->result = sync_Announce(b->conn, "span", "grad", 0, 1, "after", 5);
    return NULL;
}

/* A waiter already blocked when NATS restarts still gets the announcement
 * made after the restart (libnats re-creates the ordered consumer). */
static void test_await_spans_nats_restart(void **state)
{
    (void)state;
    fx_server s;
    assert_int_equal(fx_StartNats(&s, NULL, NULL), 0);
    sync_addr a = addr_for(s.port, NULL, NULL, 2000);
    sync_conn *c = NULL;
    assert_int_equal(sync_Connect(&a, &c), SP_OK);
    announce_text(c, "span", "grad", 0, 0, "before");

    bouncer b = {&s, c, SP_ERR_INTERNAL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bounce_then_announce, &b), 0);
    int members[] = {0, 1};
    sync_arrival out[2];
    int got = await_members(c, "span", "grad", 0, members, 2, 60000, out);
    pthread_join(th, NULL);
    assert_true(s.pid > 0);
    assert_int_equal(b.result, SP_OK);
    assert_int_equal(got, 2);
    assert_string_equal(out[0].payload, "before");
    assert_string_equal(out[1].payload, "after");
    sync_ArrivalsFree(out, 2);
    sync_Destroy(c);
    fx_Stop(&s);
}

static void test_credentials(void **state)
{
    (void)state;
    fx_server s;
    assert_int_equal(fx_StartNats(&s, "u", "p"), 0);
    sync_conn *c = NULL;

    sync_addr bad = addr_for(s.port, "u", "wrong", 2000);
    spStatus st = sync_Connect(&bad, &c);
    assert_int_equal(st, SP_ERR_AUTH);
    assert_null(c);
    assert_non_null(strstr(sp_LastError(), "credentials"));
    assert_null(strstr(sp_LastError(), "wrong")); /* never echo the password */

    sync_addr none = addr_for(s.port, NULL, NULL, 2000);
    assert_int_equal(sync_Connect(&none, &c), SP_ERR_AUTH);

    sync_addr good = addr_for(s.port, "u", "p", 2000);
    assert_int_equal(sync_Connect(&good, &c), SP_OK);
    announce_text(c, "cred", "grad", 0, 0, "ok");
    int members[] = {0};
    sync_arrival out[1];
    assert_int_equal(await_members(c, "cred", "grad", 0, members, 1, 5000, out), 1);
    sync_ArrivalsFree(out, 1);
    sync_Destroy(c);

    /* Credentials embedded in the URL are not shown in messages either. */
    sync_addr in_url = addr_for(s.port, NULL, NULL, 2000);
    snprintf(in_url.url, sizeof in_url.url, "nats://u:secret42@127.0.0.1:%d", s.port);
    assert_int_equal(sync_Connect(&in_url, &c), SP_ERR_AUTH);
    assert_null(strstr(sp_LastError(), "secret42"));
    fx_Stop(&s);
}

/* ---- heartbeats ---------------------------------------------------------- */

typedef struct {
    volatile int stop;
    int member;
    int beats;
} beater;

static void *beat_loop(void *arg)
{
    beater *b = arg;
    while (!b->stop) {
        if (sync_Heartbeat(g_conn, "hbjob", b->member) == SP_OK)
            b->beats++;
        usleep(100 * 1000);
    }
    return NULL;
}

static uint64_t stream_msgs(const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", g_nats.port);
    assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

static void test_heartbeat_watcher(void **state)
{
    (void)state;
    announce_text(g_conn, "hbjob", "grad", 0, 0, "x"); /* the job's stream exists */
    uint64_t stored = stream_msgs("SPIRT_hbjob");

    hb_watcher *w = NULL, *other = NULL;
    assert_int_equal(hb_Watcher_Create(g_conn, "hbjob", 700, &w), SP_OK);
    assert_int_equal(hb_Watcher_Create(g_conn, "hbjob2", 700, &other), SP_OK);
    assert_int_equal(hb_Watcher_Alive(w, 1), 0); /* never heard */
    assert_int_equal(hb_Watcher_Heard(w, 1), -1);

    beater live = {0, 1, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, beat_loop, &live), 0);
    assert_int_equal(sync_Heartbeat(g_conn, "hbjob", 2), SP_OK); /* then silent */

    /* Both become visible (bounded wait, not a timing assertion). */
    long long end = now_ms() + 10000;
    while ((!hb_Watcher_Alive(w, 1) || hb_Watcher_Heard(w, 2) < 0) && now_ms() < end)
        usleep(20 * 1000);
    assert_int_equal(hb_Watcher_Alive(w, 1), 1);
    assert_true(hb_Watcher_Heard(w, 2) >= 0);

    /* The silent member is declared dead once its beat is older than the
     * timeout, while the beating one stays alive. */
    end = now_ms() + 10000;
    while (hb_Watcher_Alive(w, 2) && now_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(hb_Watcher_Alive(w, 2), 0);
    assert_true(hb_Watcher_Heard(w, 2) > 700);
    assert_int_equal(hb_Watcher_Alive(w, 1), 1);

    live.stop = 1;
    pthread_join(th, NULL);
    assert_true(live.beats > 0);
    /* Other jobs' watchers hear nothing of this job. */
    assert_int_equal(hb_Watcher_Heard(other, 1), -1);
    /* Heartbeats are core NATS: nothing was stored in the job's stream. */
    assert_int_equal(stream_msgs("SPIRT_hbjob"), stored);
    hb_Watcher_Destroy(other);
    hb_Watcher_Destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_late_waiter_sees_earlier_announcements),
        cmocka_unit_test(test_waiter_gets_announcement_made_while_waiting),
        cmocka_unit_test(test_missing_member_reported_after_timeout),
        cmocka_unit_test(test_payload_round_trip_and_limits),
        cmocka_unit_test(test_jobs_are_isolated),
        cmocka_unit_test(test_iterations_and_topics_do_not_mix),
        cmocka_unit_test(test_duplicates_and_extra_members),
        cmocka_unit_test(test_ensure_stream_idempotent_and_racing),
        cmocka_unit_test(test_waiter_before_stream_exists),
        cmocka_unit_test(test_decision_first_proposal_wins),
        cmocka_unit_test(test_decision_racing_proposers),
        cmocka_unit_test(test_bad_input_is_rejected),
        cmocka_unit_test(test_nats_down_is_unavailable_quickly),
        cmocka_unit_test(test_cached_connection_is_shared),
        cmocka_unit_test(test_survives_nats_restart),
        cmocka_unit_test(test_await_spans_nats_restart),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_heartbeat_watcher),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
