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
#include "cluster.h"
#include "fixture.h"
#include "store/store.h"

#define ACC_TOLERANCE 0.03 /* a peer missing for part of the run */

static char dir[256];
static cl_services cl;           /* the cluster-mode runs' services */
static double ref_local = NAN;   /* fault-free accuracy, local runner */
static double ref_cluster = NAN; /* fault-free accuracy, the fixtures below */
static char ref_crc[16];         /* ... and its final model's digest */

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    return dir[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cl_Down(&cl);
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

/* The cluster-mode runs: 2 peers (peer 0 with AOF, fsync always). */
static void services_Up(void)
{
    if (cl.peer[0].pid <= 0)
        assert_int_equal(cl_Up(&cl, 2, 1u << 0), 0);
}

/* Starts `spirt train` against the services; returns its pid. */
static pid_t cluster_Spawn(const char *job, const char *report, int resume)
{
    const char *args[] = {"--arch", "spirt", "--workers", "2", "--minibatches", "2", "--batch",
                          "32", "--transport", "inproc", "--epochs", "2", "--train-samples",
                          "8000", "--test-samples", "1000", "--lr", "0.1", "--heartbeat-timeout",
                          "1000", resume ? "--resume" : NULL, NULL};
    return cl_Spawn(&cl, job, report, args);
}

static cJSON *cluster_Train(const char *job, int resume)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s%s.json", cl.dir, job, resume ? "-resumed" : "");
    int rc = cli_WaitExit(cluster_Spawn(job, report, resume), 600);
    return cli_Report(cl.dir, rc, job, report);
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
    snprintf(report, sizeof report, "%s/resume-first.json", cl.dir);
    pid_t driver = cluster_Spawn("rs", report, 0);
    cl_WaitApplied(&cl, "rs", 0, 30, driver);
    kill(driver, SIGKILL);
    waitpid(driver, NULL, 0);

    /* The committed state of peer 0, then its redis-server is SIGKILLed
     * too and restarted from its AOF: nothing acknowledged may be lost. */
    store *s = cl_PeerStore(&cl, 0), *s1 = cl_PeerStore(&cl, 1);
    uint8_t *before = NULL, *after = NULL;
    size_t n_before = 0, n_after = 0;
    long applied0 = cl_Applied(s, "rs", 0), applied1 = cl_Applied(s1, "rs", 1);
    assert_int_equal(store_GetBlob(s, "{rs}:params:0", &before, &n_before), SP_OK);
    store_Destroy(s);
    store_Destroy(s1);
    fx_Kill(&cl.peer[0], SIGKILL, 1);
    assert_int_equal(fx_RestartRedis(&cl.peer[0], CL_PASSWORD, 1, 1), 0);
    s = cl_PeerStore(&cl, 0);
    for (int i = 0; i < 400 && store_GetBlob(s, "{rs}:params:0", &after, &n_after) != SP_OK;
         i++) {
        sp_ClearError(); /* LOADING while the AOF is replayed (up to 20 s) */
        store_Destroy(s);
        usleep(50000);
        s = cl_PeerStore(&cl, 0);
    }
    assert_non_null(after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before);
    assert_int_equal(cl_Applied(s, "rs", 0), applied0);
    store_Destroy(s);
    free(before);
    free(after);
    print_message("driver killed with peers at %ld/%ld; peer 0's Redis SIGKILLed and "
                  "restarted: params and applied marker intact\n", applied0, applied1);
    /* Peer 1 lost its model meanwhile: the resumed run must bring it level
     * (it re-authenticates and copies peer 0's) instead of mixing models. */
    s1 = cl_PeerStore(&cl, 1);
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
    snprintf(report, sizeof report, "%s/nats-restart.json", cl.dir);
    pid_t driver = cluster_Spawn("nr", report, 0);
    cl_WaitApplied(&cl, "nr", 0, 20, driver);
    /* Same port, same JetStream store: the job's stream survives. */
    fx_Kill(&cl.nats, SIGKILL, 1);
    sleep(1);
    assert_int_equal(fx_RestartNats(&cl.nats, CL_NATS_USER, CL_NATS_PASS), 0);
    int rc = cli_WaitExit(driver, 600);
    if (rc != 0)
        print_error("spirt train exited %d:\n%s\n", rc, cli_Log(cl.dir));
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
