/* train_distributed.c - a distributed training run from start to end:
 * bring up (or find) the servers and functions, initialise the job, run the
 * workflow, tear everything down. */
#include "driver/train.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/clock.h"
#include "driver/arch.h"
#include "driver/executor.h"
#include "driver/invoke.h"
#include "driver/runner.h"
#include "runtime/http_client.h"
#include "steps/steps.h"

/* Everything one run holds, so cleanup has one place to look. */
typedef struct {
    const job_config *job;
    const arch_def *arch;
    runner run;
    int local;               /* the runner started servers */
    invoker inv;
    cJSON *base;
    char peers[64][128];
    int n_peers;
    char shared[256];
    char nats[256];
} dist_run;

static void on_signal(int sig)
{
    (void)sig;
    executor_RequestStop();
    runner_KillAllFromSignal();
}

static int cluster_Mode(const job_config *j)
{
    return j->functions[0] || j->peers[0] || j->shared_redis[0] || j->nats[0];
}

static spStatus cluster_Endpoints(dist_run *d)
{
    const job_config *j = d->job;
    if (!j->peers[0] || !j->shared_redis[0] || !j->nats[0] || (!j->functions[0] && !j->transport_inproc))
        return sp_Error(SP_ERR_INVALID, "to use running services give all of --peers, "
                        "--shared-redis, --nats and --functions (or --transport inproc)");
    char list[sizeof j->peers];
    snprintf(list, sizeof list, "%s", j->peers);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (d->n_peers >= 64)
            return sp_Error(SP_ERR_INVALID, "--peers: at most 64 addresses");
        snprintf(d->peers[d->n_peers++], sizeof d->peers[0], "%s", tok);
    }
    snprintf(d->shared, sizeof d->shared, "%s", j->shared_redis);
    snprintf(d->nats, sizeof d->nats, "%s", j->nats);
    snprintf(d->inv.url_template, sizeof d->inv.url_template, "%s", j->functions);
    const char *token = getenv("SPIRT_TOKEN");
    snprintf(d->inv.token, sizeof d->inv.token, "%s", token ? token : "");
    if (d->arch->per_peer_databases && d->n_peers < j->workers)
        return sp_Error(SP_ERR_INVALID, "--peers lists %d database(s) for %d workers",
                        d->n_peers, j->workers);
    return SP_OK;
}

/* The distinct steps an architecture needs, plus init and evaluate. */
static int steps_Needed(const arch_def *a, const char **out)
{
    int n = 0;
    out[n++] = "init";
    out[n++] = "evaluate";
    for (int s = 0; s < a->n_steps; s++) {
        int seen = 0;
        for (int k = 0; k < n; k++)
            seen |= strcmp(out[k], a->steps[s].step) == 0;
        if (!seen)
            out[n++] = a->steps[s].step;
    }
    return n;
}

static spStatus local_Start(dist_run *d, const train_observer *obs)
{
    const job_config *j = d->job;
    const char *steps[32];
    int n = steps_Needed(d->arch, steps);
    runner_options o = {.peers = d->arch->per_peer_databases ? j->workers : 1,
                        .steps = steps, .n_steps = j->transport_inproc ? 0 : n};
    spStatus st = runner_Start(&d->run, &o);
    if (st)
        return st;
    d->local = 1;
    runner *r = &d->run;
    for (int p = 0; p < r->n_peers; p++)
        snprintf(d->peers[p], sizeof d->peers[0], "127.0.0.1:%d", r->peer_ports[p]);
    d->n_peers = r->n_peers;
    snprintf(d->shared, sizeof d->shared, "127.0.0.1:%d", r->shared_port);
    snprintf(d->nats, sizeof d->nats, "nats://127.0.0.1:%d", r->nats_port);
    snprintf(d->inv.token, sizeof d->inv.token, "%s", r->token);
    for (int i = 0; i < r->n_functions; i++) {
        snprintf(d->inv.local[i].step, sizeof d->inv.local[i].step, "%s", r->functions[i].step);
        snprintf(d->inv.local[i].url, sizeof d->inv.local[i].url, "http://127.0.0.1:%d/",
                 r->functions[i].port);
    }
    d->inv.n_local = r->n_functions;
    train_Notify(obs, "started %d peer redis-server(s)%s, a shared redis-server, nats-server "
                 "and %d function process(es) under %s", r->n_peers,
                 r->module_loaded ? " with the spirt module" : " (module not found: client-side math)",
                 r->n_functions, r->dir);
    return SP_OK;
}

/* In-process steps read their credentials from here instead of the env. */
static void inproc_Configure(dist_run *d)
{
    steps_config c;
    memset(&c, 0, sizeof c);
    const char *pw = d->local ? d->run.redis_password : getenv("SPIRT_REDIS_PASSWORD");
    const char *user = getenv("SPIRT_REDIS_USER");
    snprintf(c.redis_password, sizeof c.redis_password, "%s", pw ? pw : "");
    snprintf(c.redis_user, sizeof c.redis_user, "%s", d->local ? "" : (user ? user : ""));
    snprintf(c.nats_url, sizeof c.nats_url, "%s", d->nats);
    const char *nu = d->local ? d->run.nats_user : getenv("SPIRT_NATS_USER");
    const char *np = d->local ? d->run.nats_password : getenv("SPIRT_NATS_PASSWORD");
    snprintf(c.nats_user, sizeof c.nats_user, "%s", nu ? nu : "");
    snprintf(c.nats_password, sizeof c.nats_password, "%s", np ? np : "");
    const char *dd = getenv("SPIRT_DATA_DIR");
    snprintf(c.data_dir, sizeof c.data_dir, "%s", dd ? dd : "");
    c.timeout_ms = 10000;
    steps_Configure(&c);
}

static cJSON *base_Build(dist_run *d)
{
    const job_config *j = d->job;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "job", job_ToJson(j));
    cJSON *peers = cJSON_AddArrayToObject(b, "peers");
    /* Architectures with one shared database give every worker the same one. */
    for (int w = 0; w < j->workers; w++)
        cJSON_AddItemToArray(peers, cJSON_CreateString(
            d->arch->per_peer_databases ? d->peers[w] : d->shared));
    cJSON_AddStringToObject(b, "shared", d->shared);
    cJSON_AddNumberToObject(b, "workers", j->workers);
    cJSON_AddNumberToObject(b, "minibatches", j->minibatches);
    return b;
}

/* init loads the dataset and the initial model; its answer fixes the shape
 * and how many iterations make an epoch. */
static spStatus job_Init(dist_run *d, long *iters)
{
    cJSON *resp = NULL;
    spStatus st = invoker_Call(&d->inv, "init", d->base, &resp, NULL);
    if (st)
        return st;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(resp, "shape");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(resp, "train_samples");
    if (!cJSON_IsArray(shape) || !cJSON_IsNumber(n)) {
        cJSON_Delete(resp);
        return sp_Error(SP_ERR_FORMAT, "init answered without shape / train_samples");
    }
    cJSON_AddItemToObject(d->base, "shape", cJSON_Duplicate(shape, 1));
    const job_config *j = d->job;
    long shard = (long)n->valuedouble / j->workers;
    *iters = shard / ((long)j->minibatches * j->batch);
    cJSON_Delete(resp);
    if (*iters < 1)
        return sp_Error(SP_ERR_INVALID, "%ld training samples per worker are fewer than one "
                        "iteration's %d minibatch(es) of %d", shard, j->minibatches, j->batch);
    cJSON_AddNumberToObject(d->base, "iters_per_epoch", (double)*iters);
    return SP_OK;
}

spStatus train_Distributed(const job_config *job, const train_observer *obs, train_result *res)
{
    double t0 = clock_Now();
    dist_run *d = calloc(1, sizeof *d);
    if (!d)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    d->job = job;
    d->arch = arch_Get(job->arch);
    d->inv.inproc = job->transport_inproc;
    d->inv.timeout_ms = job->sync_timeout_ms + 60000;
    d->inv.retries = 4;
    spStatus st = SP_OK;
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (!d->arch)
        st = sp_Error(SP_ERR_INVALID, "architecture '%s' is not available in this build",
                      job_ArchName(job->arch));
    else if (cluster_Mode(job))
        st = cluster_Endpoints(d);
    else
        st = local_Start(d, obs);
    long iters = 0;
    if (!st) {
        if (job->transport_inproc) {
            inproc_Configure(d);
            /* Worker threads already use the cores; see the runner's env. */
            openblas_set_num_threads(1);
        }
        d->base = base_Build(d);
        st = job_Init(d, &iters);
    }
    if (!st) {
        res->setup_seconds = clock_Now() - t0;
        exec_plan plan = {.job = job, .arch = d->arch, .inv = &d->inv, .base = d->base,
                          .iters_per_epoch = iters, .obs = obs};
        st = executor_Run(&plan, res);
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sp_LastError());
    http_CloseCached();
    if (d->local)
        runner_Stop(&d->run);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    cJSON_Delete(d->base);
    free(d);
    if (st)
        sp_Error(st, "%s", msg);
    return st;
}
