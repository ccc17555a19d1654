/* test_await_stress.c - the announce/await handshake many times over with a
 * short timeout, as ScatterReduce's workers do it twice per iteration:
 * every round each worker announces, then waits for the others'
 * announcements of the same round. Every announcement is made, so a wait
 * that ends by timeout is a lost wake-up (sync/await.c: an announcement
 * routed before the waiter subscribed but stored after it read the stream),
 * and a hang is the teardown race of libnats 3.4 (sync/sync_internal.h).
 * Busy threads keep the CPUs contended, which is what widens both windows
 * (before the fix a run lost a wait about one time in three). Contention
 * (or a sanitizer build) can also starve an announcer past the waiter's
 * deadline; that wait ended rightly, so a timeout counts as lost only when
 * every missing announcement had been stored well before the deadline.
 * ctest-lock: machine (times waits, loads the CPUs) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "sync/sync.h"

#define WORKERS 4
#define ROUNDS 600
#define TIMEOUT_MS 500
#define BUSY 2
#define DEADLINE_S 120 /* the whole run; a hang fails the test instead */
#define SLACK_MS 100   /* an announcement stored this long before the deadline must be seen */

static fx_server g_nats;
static volatile int g_stop;
/* When each worker's announcement of each round was stored (ms since the
 * test's clock started; 0 = not yet): sync_Announce returns after the
 * stream's ack. */
static _Atomic int64_t g_stored[WORKERS][ROUNDS];

static int64_t now_Ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 + 1; /* never 0 */
}

typedef struct {
    int w;
    sync_conn *c;
    int timeouts, late, errors;
    long first_timeout;
    char error[256];
    pthread_t th;
} worker;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done;

static void *worker_Main(void *arg)
{
    worker *k = arg;
    int others[WORKERS], n = 0;
    for (int i = 0; i < WORKERS; i++)
        if (i != k->w)
            others[n++] = i;
    k->first_timeout = -1;
    for (long r = 0; r < ROUNDS; r++) {
        sync_arrival a[WORKERS];
        int got = 0;
        if (sync_Announce(k->c, "stress", "x", r, k->w, NULL, 0) != SP_OK) {
            if (!k->errors++)
                snprintf(k->error, sizeof k->error, "%s", sp_LastError());
            continue;
        }
        atomic_store(&g_stored[k->w][r], now_Ms());
        int64_t deadline = now_Ms() + TIMEOUT_MS;
        if (sync_Await(k->c, "stress", "x", r, others, n, TIMEOUT_MS, a, &got) != SP_OK) {
            if (!k->errors++)
                snprintf(k->error, sizeof k->error, "%s", sp_LastError());
            continue;
        }
        int lost = got < n;
        for (int i = 0; i < n && lost; i++) {
            int64_t at = atomic_load(&g_stored[others[i]][r]);
            if (!a[i].arrived && (at == 0 || at > deadline - SLACK_MS))
                lost = 0; /* that announcer was late: the timeout was right */
        }
        sync_ArrivalsFree(a, n);
        if (got < n && !lost)
            k->late++;
        else if (lost && k->timeouts++ == 0)
            k->first_timeout = r;
    }
    pthread_mutex_lock(&g_mu);
    g_done++;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void *busy_Main(void *arg)
{
    volatile unsigned long *x = arg;
    while (!g_stop)
        (*x)++;
    return NULL;
}

static void no_wait_times_out(void **state)
{
    (void)state;
    worker k[WORKERS];
    pthread_t busy[BUSY];
    unsigned long spin[BUSY];
    memset(k, 0, sizeof k);
    for (int i = 0; i < WORKERS; i++) {
        sync_addr a;
        memset(&a, 0, sizeof a);
        snprintf(a.url, sizeof a.url, "nats://127.0.0.1:%d", g_nats.port);
        a.timeout_ms = 5000;
        k[i].w = i;
        assert_int_equal(sync_Connect(&a, &k[i].c), SP_OK);
    }
    assert_int_equal(sync_EnsureStream(k[0].c, "stress"), SP_OK);
    for (int i = 0; i < BUSY; i++)
        assert_int_equal(pthread_create(&busy[i], NULL, busy_Main, &spin[i]), 0);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&k[i].th, NULL, worker_Main, &k[i]), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&g_mu);
    while (g_done < WORKERS && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0)
        ;
    int done = g_done;
    pthread_mutex_unlock(&g_mu);
    g_stop = 1;
    for (int i = 0; i < BUSY; i++)
        pthread_join(busy[i], NULL);
    if (done < WORKERS)
        fail_msg("%d of %d workers still waiting after %d s: a wait hung", WORKERS - done,
                 WORKERS, DEADLINE_S);
    int timeouts = 0, errors = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(k[i].th, NULL);
        print_message("worker %d: %d of %d waits lost an announcement (first in round %ld), "
                      "%d waited out a late one, %d errors%s%s\n",
                      i, k[i].timeouts, ROUNDS, k[i].first_timeout, k[i].late, k[i].errors,
                      k[i].errors ? ": " : "", k[i].error);
        timeouts += k[i].timeouts;
        errors += k[i].errors;
        sync_Destroy(k[i].c);
    }
    assert_int_equal(errors, 0);
    assert_int_equal(timeouts, 0);
}

static int setup(void **state)
{
    (void)state;
    return fx_StartNats(&g_nats, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    fx_Stop(&g_nats);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_wait_times_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
