/* ctest-lock: machine (trains, or times a server) */
/* ctest-label: slow */
/* test_faults.c - SPIRT's fault-tolerance claim, end to end, as a user
 * exercises it:
 *   - a peer's redis-server SIGKILLed at iteration T (--kill-peer): the job
 *     completes with the other peers, the failure and the heartbeat-based
 *     exclusion are in the report, the accuracy stays close to the
 *     fault-free run's;
 *   - the same with --restart-after: the peer's Redis comes back from its
 *     AOF (nothing it applied is lost), the peer copies the live model,
 *     rejoins and ends with the same model as the others;
 *   - the driver SIGKILLed mid-job and started again with --resume against
 *     the same running services (servers started here, functions in
 *     process): it continues after the last applied iteration; a peer's
 *     redis-server SIGKILLed meanwhile and restarted with AOF (fsync
 *     always) still holds exactly the committed model;
 *   - nats-server killed and restarted (same port and store) mid-job: the
 *     job continues without losing a peer.
 * Runs are short (8000 training samples, 2 epochs). */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "fixture.h"
#include "store/store.h"

#define PASSWORD "faults-secret"
#define NATS_USER "spirt"
#define NATS_PASS "faults-nats-secret"
#define ACC_TOLERANCE 0.03 /* a peer missing for part of the run */

static char dir[256];
static double ref_local = NAN;   /* fault-free accuracy, local runner */
static double ref_cluster = NAN; /* fault-free accuracy, the fixtures below */
static char ref_crc[16];         /* ... and its final model's digest */

/* Services for the cluster-mode runs: 2 peers (peer 0 with AOF, fsync
 * always), a shared Redis, NATS with credentials. */
static fx_server peer[2], shared, nats;

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    return dir[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        fx_Stop(&peer[i]);
    fx_Stop(&shared);
    fx_Stop(&nats);
    cli_RemoveDir(dir);
    return 0;
}

/* ---- report helpers ----------------------------------------------------------- */

static const cJSON *details(const cJSON *r)
{
    const cJSON *d = cJSON_GetObjectItem(r, "details");
    assert_non_null(d);
    return d;
}

static int array_Has(const cJSON *a, int v)
{
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next)
        if (cJSON_IsNumber(e) && e->valueint == v)
            return 1;
    return 0;
}

/* The first object of array `name` in details whose "peer" is p. */
static const cJSON *event_For(const cJSON *r, const char *name, int p)
{
    const cJSON *a = cJSON_GetObjectItem(details(r), name);
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next)
        if ((int)cli_Num(e, "peer") == p)
            return e;
    return NULL;
}

static const char *final_Crc(const cJSON *r, int p)
{
    const cJSON *e = event_For(r, "final_models", p);
    const cJSON *c = e ? cJSON_GetObjectItem(e, "crc32c") : NULL;
    return cJSON_IsString(c) ? c->valuestring : "";
}

/* ---- local runs (the runner starts everything) ------------------------------ */

static cJSON *train_Local(const char *name, const char *transport, const char *const *extra)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[48] = {"train", "--arch", "spirt", "--workers", "3", "--minibatches", "2",
                            "--batch", "32", "--transport", transport, "--epochs", "2",
                            "--train-samples", "8000", "--test-samples", "1000", "--lr", "0.1",
                            "--heartbeat-timeout", "1000", "--report", report};
    int n = 23;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    cJSON *r = cli_Report(dir, cli_Run(dir, 600, args), name, report);
    return r;
}

static void fault_free_reference(void **state)
{
    (void)state;
    cJSON *r = train_Local("ref", "inproc", NULL);
    ref_local = cli_Num(r, "test_accuracy");
    print_message("fault-free: accuracy %.4f, %d iterations\n", ref_local,
                  (int)cli_Num(r, "iterations"));
    assert_true(ref_local > 0.7);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(details(r), "failed_peers")), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(details(r), "models_agree")));
    cJSON_Delete(r);
}

static void kill_peer_job_goes_on(void **state)
{
    (void)state;
    const char *extra[] = {"--kill-peer", "1", "--at-iteration", "10", NULL};
    cJSON *r = train_Local("kill", "inproc", extra);
    double acc = cli_Num(r, "test_accuracy");
    long total = (long)cli_Num(r, "iterations");
    const cJSON *d = details(r);
    print_message("peer 1 killed at iteration 10: accuracy %.4f (fault-free %.4f), %ld "
                  "worker-iterations lost\n", acc, ref_local, (long)cli_Num(d, "iterations_lost"));
    /* The job ran to the end with the others. */
    assert_int_equal(total, 82);
    assert_true(fabs(acc - ref_local) <= ACC_TOLERANCE);
    const cJSON *f = event_For(r, "failed_peers", 1);
    assert_non_null(f);
    assert_int_equal((int)cli_Num(f, "iteration"), 10);
    /* Excluded because its heartbeat stopped, not after the 30 s sync timeout. */
    const cJSON *x = event_For(r, "exclusions", 1);
    assert_non_null(x);
    assert_string_equal(cJSON_GetObjectItem(x, "reason")->valuestring, "heartbeat lost");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "rejoins")), 0);
    const cJSON *live = cJSON_GetObjectItem(d, "live_at_end");
    assert_int_equal(cJSON_GetArraySize(live), 2);
    assert_false(array_Has(live, 1));
    assert_int_equal((long)cli_Num(d, "iterations_lost"), total - 10);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "faults"), 0);
    assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring, "kill-peer");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "ok")));
    cJSON_Delete(r);
}

static void kill_and_restart_peer_rejoins(void **state)
{
    (void)state;
    /* Over HTTP, so the rejoin function process is exercised too. */
    const char *extra[] = {"--kill-peer", "2", "--at-iteration", "15", "--restart-after", "1",
                           NULL};
    cJSON *r = train_Local("rejoin", "http", extra);
    double acc = cli_Num(r, "test_accuracy");
    const cJSON *d = details(r);
    const cJSON *j = event_For(r, "rejoins", 2);
    assert_non_null(j);
    long at = (long)cli_Num(j, "iteration");
    print_message("peer 2 killed at 15, restarted after 1 s, rejoined at %ld: accuracy %.4f "
                  "(fault-free %.4f), %ld worker-iterations lost\n", at, acc, ref_local,
                  (long)cli_Num(d, "iterations_lost"));
    assert_int_equal((int)cli_Num(r, "iterations"), 82);
    assert_true(fabs(acc - ref_local) <= ACC_TOLERANCE);
    assert_non_null(event_For(r, "failed_peers", 2));
    /* It joined at the next iteration the others had not started... */
    assert_true(at > 15 && at < 82);
    assert_int_equal((long)cli_Num(d, "iterations_lost"), at - 15);
    /* ... its Redis came back from the AOF with everything it had applied
     * (all peers applied 14 before the kill) ... */
    assert_int_equal((int)cli_Num(j, "restored_applied"), 14);
    const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "faults"), 1);
    assert_string_equal(cJSON_GetObjectItem(ev, "kind")->valuestring, "restart-peer");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ev, "ok")));
    /* ... and it took part again: it ends with the others' model. */
    assert_true(array_Has(cJSON_GetObjectItem(d, "live_at_end"), 2));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "final_models")), 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    assert_string_equal(final_Crc(r, 2), final_Crc(r, 0));
    cJSON_Delete(r);
}

/* ---- cluster mode: services started here, functions in process --------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void services_Up(void)
{
    if (peer[0].pid > 0)
        return;
    assert_int_equal(fx_StartRedis(&peer[0], PASSWORD, 1, 1), 0);
    assert_int_equal(fx_StartRedis(&peer[1], PASSWORD, 1, 0), 0);
    assert_int_equal(fx_StartRedis(&shared, PASSWORD, 0, 0), 0);
    assert_int_equal(fx_StartNats(&nats, NATS_USER, NATS_PASS), 0);
}

/* Starts `spirt train` against the fixtures; returns its pid. */
static pid_t cluster_Spawn(const char *job, const char *report, int resume)
{
    static char peers[128], shared_addr[64], nats_url[64];
    snprintf(peers, sizeof peers, "127.0.0.1:%d,127.0.0.1:%d", peer[0].port, peer[1].port);
    snprintf(shared_addr, sizeof shared_addr, "127.0.0.1:%d", shared.port);
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", nats.port);
    char *argv[] = {(char *)fx_BinPath("spirt"), "train", "--arch", "spirt", "--workers", "2",
                    "--minibatches", "2", "--batch", "32", "--transport", "inproc",
                    "--epochs", "2", "--train-samples", "8000", "--test-samples", "1000",
                    "--lr", "0.1", "--heartbeat-timeout", "1000", "--peers", peers,
                    "--shared-redis", shared_addr, "--nats", nats_url, "--job", (char *)job,
                    "--report", (char *)report, resume ? "--resume" : NULL, NULL};
    /* The master key a peer that is brought level re-authenticates with. */
    char *env[] = {"SPIRT_REDIS_PASSWORD=" PASSWORD, "SPIRT_NATS_USER=" NATS_USER,
                   "SPIRT_NATS_PASSWORD=" NATS_PASS,
                   "SPIRT_AUTH_KEY=5e1f0c2a9b8d7e6f5a4b3c2d1e0f9a8b"
                   "7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
                   NULL};
    char log[400];
    snprintf(log, sizeof log, "%s/spirt.log", dir);
    unlink(log);
    pid_t pid = fx_Spawn(argv, env, log);
    assert_true(pid > 0);
    return pid;
}

/* Waits for the driver; its exit status, -1 on timeout (then killed). */
static int cluster_Wait(pid_t pid, int timeout_s)
{
    long long end = now_ms() + (long long)timeout_s * 1000;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(20);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static cJSON *cluster_Train(const char *job, int resume)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s%s.json", dir, job, resume ? "-resumed" : "");
    int rc = cluster_Wait(cluster_Spawn(job, report, resume), 600);
    cJSON *r = cli_Report(dir, rc, job, report);
    return r;
}

static store *peer_Store(int p)
{
    store_addr a;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", peer[p].port);
    assert_int_equal(store_ParseAddr(s, &a), SP_OK);
    snprintf(a.password, sizeof a.password, "%s", PASSWORD);
    store *st;
    assert_int_equal(store_Connect(&a, &st), SP_OK);
    return st;
}

/* applied:<p> of a job, -1 when absent. */
static long applied_Get(store *s, const char *job, int p)
{
    char key[128], text[32];
    uint8_t *b = NULL;
    size_t n = 0;
    snprintf(key, sizeof key, "{%s}:applied:%d", job, p);
    if (store_GetBlob(s, key, &b, &n) != SP_OK) {
        sp_ClearError();
        return -1;
    }
    snprintf(text, sizeof text, "%.*s", (int)n, (const char *)b);
    free(b);
    return atol(text);
}

/* Waits until peer 0 applied iteration `at` of the job (the driver runs). */
static void progress_Wait(const char *job, long at, pid_t driver)
{
    store *s = peer_Store(0);
    long long end = now_ms() + 120000;
    long a = -1;
    while ((a = applied_Get(s, job, 0)) < at) {
        int st;
        if (waitpid(driver, &st, WNOHANG) == driver)
            fail_msg("the driver ended before iteration %ld:\n%s", at, cli_Log(dir));
        if (now_ms() > end)
            fail_msg("no progress to iteration %ld (at %ld)", at, a);
        sleep_ms(5);
    }
    store_Destroy(s);
}

static void cluster_reference(void **state)
{
    (void)state;
    services_Up();
    cJSON *r = cluster_Train("ref", 0);
    ref_cluster = cli_Num(r, "test_accuracy");
    snprintf(ref_crc, sizeof ref_crc, "%s", final_Crc(r, 0));
    print_message("fault-free (running services): accuracy %.4f, model %s\n", ref_cluster,
                  ref_crc);
    assert_true(ref_cluster > 0.7);
    assert_int_equal((int)cli_Num(r, "iterations"), 124);
    cJSON_Delete(r);
}

static void driver_sigkill_resume(void **state)
{
    (void)state;
    services_Up();
    char report[400];
    snprintf(report, sizeof report, "%s/resume-first.json", dir);
    pid_t driver = cluster_Spawn("rs", report, 0);
    progress_Wait("rs", 30, driver);
    kill(driver, SIGKILL);
    waitpid(driver, NULL, 0);

    /* The committed state of peer 0, then its redis-server is SIGKILLed
     * too and restarted from its AOF: nothing acknowledged may be lost. */
    store *s = peer_Store(0), *s1 = peer_Store(1);
    uint8_t *before = NULL, *after = NULL;
    size_t n_before = 0, n_after = 0;
    long applied0 = applied_Get(s, "rs", 0), applied1 = applied_Get(s1, "rs", 1);
    assert_int_equal(store_GetBlob(s, "{rs}:params:0", &before, &n_before), SP_OK);
    store_Destroy(s);
    store_Destroy(s1);
    fx_Kill(&peer[0], SIGKILL, 1);
    assert_int_equal(fx_RestartRedis(&peer[0], PASSWORD, 1, 1), 0);
    s = peer_Store(0);
    long long end = now_ms() + 20000;
    while (store_GetBlob(s, "{rs}:params:0", &after, &n_after) != SP_OK && now_ms() < end) {
        sp_ClearError(); /* LOADING while the AOF is replayed */
        store_Destroy(s);
        sleep_ms(50);
        s = peer_Store(0);
    }
    assert_non_null(after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before);
    assert_int_equal(applied_Get(s, "rs", 0), applied0);
    store_Destroy(s);
    free(before);
    free(after);
    print_message("driver killed with peers at %ld/%ld; peer 0's Redis SIGKILLed and "
                  "restarted: params and applied marker intact\n", applied0, applied1);
    /* Peer 1 lost its model meanwhile: the resumed run must bring it level
     * (it re-authenticates and copies peer 0's) instead of mixing models. */
    s1 = peer_Store(1);
    assert_int_equal(store_Delete(s1, "{rs}:params:1"), SP_OK);
    store_Destroy(s1);

    cJSON *r = cluster_Train("rs", 1);
    const cJSON *d = details(r);
    const cJSON *res = cJSON_GetObjectItem(d, "resume");
    assert_non_null(res);
    long from = (long)cli_Num(res, "from");
    long expect = applied0 + 1;
    double acc = cli_Num(r, "test_accuracy");
    print_message("resumed at %ld: accuracy %.4f (fault-free %.4f), model %s (fault-free %s)\n",
                  from, acc, ref_cluster, final_Crc(r, 0), ref_crc);
    assert_int_equal(from, expect);
    assert_true(from >= 31);
    assert_true(array_Has(cJSON_GetObjectItem(res, "caught_up"), 1));
    /* Every iteration of the job was run once: none lost, none repeated. */
    assert_int_equal((int)cli_Num(r, "iterations"), 124);
    assert_int_equal((long)cli_Num(d, "resumed_from"), from);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    assert_true(fabs(acc - ref_cluster) <= 0.01);
    cJSON_Delete(r);
}

static void nats_restart_mid_job(void **state)
{
    (void)state;
    services_Up();
    char report[400];
    snprintf(report, sizeof report, "%s/nats-restart.json", dir);
    pid_t driver = cluster_Spawn("nr", report, 0);
    progress_Wait("nr", 20, driver);
    /* Same port, same JetStream store: the job's stream survives. */
    fx_Kill(&nats, SIGKILL, 1);
    sleep_ms(1000);
    assert_int_equal(fx_RestartNats(&nats, NATS_USER, NATS_PASS), 0);
    int rc = cluster_Wait(driver, 600);
    if (rc != 0)
        print_error("spirt train exited %d:\n%s\n", rc, cli_Log(dir));
    assert_int_equal(rc, 0);
    cJSON *r = cli_ReadJson(report);
    assert_non_null(r);
    const cJSON *d = details(r);
    double acc = cli_Num(r, "test_accuracy");
    print_message("nats-server killed at iteration 20 and restarted after 1 s: accuracy %.4f "
                  "(fault-free %.4f), %d failed peer(s)\n", acc, ref_cluster,
                  cJSON_GetArraySize(cJSON_GetObjectItem(d, "failed_peers")));
    assert_int_equal((int)cli_Num(r, "iterations"), 124);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "failed_peers")), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "live_at_end")), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    assert_true(fabs(acc - ref_cluster) <= 0.01);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fault_free_reference),
        cmocka_unit_test(kill_peer_job_goes_on),
        cmocka_unit_test(kill_and_restart_peer_rejoins),
        cmocka_unit_test(cluster_reference),
        cmocka_unit_test(driver_sigkill_resume),
        cmocka_unit_test(nats_restart_mid_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
