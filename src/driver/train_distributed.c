/* train_distributed.c - a distributed training run from start to end:
 * bring up (or find) the servers and functions, initialise the job, run the
 * workflow, tear everything down. */
#include "driver/train.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include <cblas.h>

#include "core/clock.h"
#include "core/env_names.h"
#include "core/secret_env.h"
#include "auth/auth.h"
#include "driver/arch.h"
#include "driver/executor.h"
#include "driver/faults.h"
#include "driver/invoke.h"
#include "driver/liveness.h"
#include "driver/peer_check.h"
#include "driver/resume.h"
#include "driver/runner.h"
#include "runtime/http_client.h"
#include "steps/steps.h"
#include "steps/fields.h"

/* Everything one run holds, so cleanup has one place to look. */
typedef struct {
    const job_config *job;
    const arch_def *arch;
    runner run;
    int local;               /* the runner started servers */
    invoker inv;
    cJSON *base;
    /* Where the servers are: the driver reads the final models (and, on
     * resume, the peers' state) there, and configures in-process steps
     * with them; requests never carry them (the functions of a cluster are
     * configured with the same addresses, docs/deploy.md). */
    char peers[JOB_MAX_PEER_DATABASES][128];
    int n_peers;
    char shared[256];
    char nats[256];
    /* fault tolerance */
    steps_config creds;      /* what steps (and the driver's probes) log in with */
    store_addr peer_addrs[JOB_MAX_PEER_DATABASES];
    liveness *live;
    faults *faults;
    exec_hooks hooks;
    int down[256];           /* resume: peers whose database did not answer */
    long start;              /* resume: first iteration to run */
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

/* The --peers list into out (at most JOB_MAX_PEER_DATABASES); returns how
 * many, -1 for more. */
static int peers_Split(const job_config *j, char (*out)[128])
{
    char list[sizeof j->peers];
    snprintf(list, sizeof list, "%s", j->peers);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= JOB_MAX_PEER_DATABASES)
            return -1;
        snprintf(out[n++], 128, "%s", tok);
    }
    return n;
}

/* The credentials a run in running services reads from its environment,
 * each also accepted as NAME_FILE (a mounted Secret). */
static const char *const cluster_secrets[] = {ENV_TOKEN, ENV_REDIS_PASSWORD, ENV_NATS_PASSWORD,
                                              ENV_AUTH_KEY};
#define N_CLUSTER_SECRETS (sizeof cluster_secrets / sizeof cluster_secrets[0])

/* Checked by train_CheckDistributed before this runs. */
static spStatus cluster_Endpoints(dist_run *d)
{
    /* From here on every reader of these finds them with getenv. */
    spStatus st = secret_EnvFromFiles(cluster_secrets, N_CLUSTER_SECRETS);
    if (st)
        return st;
    const job_config *j = d->job;
    d->n_peers = peers_Split(j, d->peers);
    snprintf(d->shared, sizeof d->shared, "%s", j->shared_redis);
    snprintf(d->nats, sizeof d->nats, "%s", j->nats);
    snprintf(d->inv.url_template, sizeof d->inv.url_template, "%s", j->functions);
    const char *token = getenv(ENV_TOKEN);
    snprintf(d->inv.token, sizeof d->inv.token, "%s", token ? token : "");
    return SP_OK;
}

/* Failed peers rejoin where each peer owns its database (SPIRT). */
static int rejoin_Enabled(const arch_def *a)
{
    return job_PerPeerDatabases(a->kind) && a->tolerates_failures;
}

/* The distinct steps an architecture needs, plus init and evaluate (and
 * rejoin where failed peers come back). */
static int steps_Needed(const arch_def *a, const char **out)
{
    int n = 0;
    out[n++] = "init";
    out[n++] = "evaluate";
    if (rejoin_Enabled(a)) {
        out[n++] = "rejoin";
        out[n++] = "join"; /* verifies a rejoining peer's identity (auth) */
    }
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
    /* A peer killed by fault injection restarts from its AOF. */
    runner_options o = {.peers = job_PerPeerDatabases(j->arch) ? j->workers : 1,
                        .steps = steps, .n_steps = j->transport_inproc ? 0 : n,
                        .appendonly = j->kill_peer >= 0};
    spStatus st = runner_Start(&d->run, &o);
    if (st)
        return st;
    d->local = 1;
    runner *r = &d->run;
    /* The driver derives each peer's key from the run's master key to
     * answer join challenges for it (driver/join_auth.h); in-process, the
     * join step verifies with it too. */
    auth_key master;
    if ((st = auth_KeyFromHex(r->auth_key, &master)))
        return st;
    auth_Configure(&master);
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

/* The configuration steps use: the servers' addresses, and the runner's
 * secrets or the environment's when the services run elsewhere. In-process
 * steps are configured with it (function processes of a local run get the
 * same from the runner); the driver's own probes (liveness, peer check)
 * use the credentials too. */
static void creds_Build(dist_run *d)
{
    steps_config c;
    memset(&c, 0, sizeof c);
    size_t used = 0;
    for (int p = 0; p < d->n_peers && used < sizeof c.redis_peers; p++)
        used += (size_t)snprintf(c.redis_peers + used, sizeof c.redis_peers - used, "%s%s",
                                 p ? "," : "", d->peers[p]);
    snprintf(c.redis_shared, sizeof c.redis_shared, "%s", d->shared);
    const char *pw = d->local ? d->run.redis_password : getenv(ENV_REDIS_PASSWORD);
    const char *user = getenv(ENV_REDIS_USER);
    snprintf(c.redis_password, sizeof c.redis_password, "%s", pw ? pw : "");
    snprintf(c.redis_user, sizeof c.redis_user, "%s",
             d->local ? d->run.redis_user : (user ? user : ""));
    snprintf(c.nats_url, sizeof c.nats_url, "%s", d->nats);
    const char *nu = d->local ? d->run.nats_user : getenv(ENV_NATS_USER);
    const char *np = d->local ? d->run.nats_password : getenv(ENV_NATS_PASSWORD);
    snprintf(c.nats_user, sizeof c.nats_user, "%s", nu ? nu : "");
    snprintf(c.nats_password, sizeof c.nats_password, "%s", np ? np : "");
    const char *dd = getenv(ENV_DATA_DIR);
    snprintf(c.data_dir, sizeof c.data_dir, "%s", dd ? dd : "");
    c.timeout_ms = 10000;
    d->creds = c;
}

/* In-process steps read their configuration from here instead of the env. */
static spStatus inproc_Configure(dist_run *d)
{
    return steps_Configure(&d->creds);
}

/* What every request carries. No address: a function connects only where
 * its own configuration says, and a worker is named by its index. */
static cJSON *base_Build(dist_run *d)
{
    cJSON *b = cJSON_CreateObject();
    /* The steps learn from the job whether rows and gradients are sparse. */
    job_config sent = *d->job;
    sent.model.sparse = train_SparseRows(d->job);
    cJSON_AddItemToObject(b, FIELD_JOB, job_ToJson(&sent));
    return b;
}

/* init loads the dataset and the initial model; its answer fixes the shape
 * and how many iterations make an epoch. A resumed run keeps the models and
 * gets init's "applied" (*applied, caller deletes). */
static spStatus job_Init(dist_run *d, long *iters, cJSON **applied)
{
    cJSON *resp = NULL, *req = d->job->resume ? cJSON_Duplicate(d->base, 1) : NULL;
    if (req)
        cJSON_AddBoolToObject(req, FIELD_RESUME, 1);
    spStatus st = invoker_Call(&d->inv, "init", req ? req : d->base, &resp, NULL);
    cJSON_Delete(req);
    if (st)
        return st;
    *applied = cJSON_DetachItemFromObjectCaseSensitive(resp, FIELD_APPLIED);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(resp, FIELD_SHAPE);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(resp, FIELD_TRAIN_SAMPLES);
    if (!cJSON_IsArray(shape) || !cJSON_IsNumber(n)) {
        cJSON_Delete(resp);
        return sp_Error(SP_ERR_FORMAT, "init answered without shape / train_samples");
    }
    cJSON_AddItemToObject(d->base, FIELD_SHAPE, cJSON_Duplicate(shape, 1));
    st = job_ItersPerEpoch(d->job, (size_t)n->valuedouble, iters);
    cJSON_Delete(resp);
    if (st)
        return st;
    cJSON_AddNumberToObject(d->base, FIELD_ITERS_PER_EPOCH, (double)*iters);
    return SP_OK;
}

/* ---- fault tolerance ------------------------------------------------------ */

static void hook_Hold(void *ctx, long t)
{
    faults_Inject(((dist_run *)ctx)->faults, t);
}

static void hook_Member(void *ctx, int w, int in_job)
{
    liveness_SetMember(((dist_run *)ctx)->live, w, in_job);
}

static int hook_PeerUp(void *ctx, int w)
{
    return liveness_DbUp(((dist_run *)ctx)->live, w);
}

/* What a distributed run may ask for, checked before anything starts. */
spStatus train_CheckDistributed(const job_config *j)
{
    const arch_def *a = arch_Get(j->arch);
    if (!a)
        return sp_Error(SP_ERR_INVALID, "architecture '%s' is not available in this build",
                        job_ArchName(j->arch));
    if (j->model.kind == MODEL_SVM && j->arch == ARCH_MLLESS)
        return sp_Error(SP_ERR_INVALID, "--model svm does not train with --arch mlless yet (its "
                        "exchange steps are dense)");
    if (j->model.kind == MODEL_SVM && !dataset_IsLibsvmPath(j->dataset))
        return sp_Error(SP_ERR_INVALID, "--model svm with a distributed --arch reads sparse "
                        "rows: give a LibSVM --dataset (.svm, .libsvm, .txt)");
    if (train_SparseRows(j) && j->agg.kind != AGG_MEAN)
        return sp_Error(SP_ERR_INVALID, "--aggregator %s: a sparse model's averages are "
                        "combined by the mean only", agg_KindName(j->agg.kind));
    if (j->resume && !cluster_Mode(j))
        return sp_Error(SP_ERR_INVALID, "--resume continues a job in running services: give "
                        "--peers, --shared-redis and --nats (a local run's servers are gone)");
    if (j->resume && !rejoin_Enabled(a))
        return sp_Error(SP_ERR_INVALID, "--resume is available for architectures whose peers "
                        "own their databases (spirt)");
    if (j->kill_peer >= 0 && (cluster_Mode(j) || !job_PerPeerDatabases(j->arch)))
        return sp_Error(SP_ERR_INVALID, "--kill-peer needs a local run (it SIGKILLs a "
                        "redis-server the runner started) of an architecture with per-peer "
                        "databases (spirt)");
    if (!cluster_Mode(j))
        return SP_OK;
    if (!j->peers[0] || !j->shared_redis[0] || !j->nats[0] || (!j->functions[0] && !j->transport_inproc))
        return sp_Error(SP_ERR_INVALID, "to use running services give all of --peers, "
                        "--shared-redis, --nats and --functions (or --transport inproc)");
    char secret[SECRET_MAX + 1];
    for (size_t i = 0; i < N_CLUSTER_SECRETS; i++) {
        spStatus st = secret_Get(cluster_secrets[i], secret, sizeof secret);
        memset(secret, 0, sizeof secret);
        if (st)
            return st;
    }
    char peers[JOB_MAX_PEER_DATABASES][128];
    int n = peers_Split(j, peers);
    if (n < 0)
        return sp_Error(SP_ERR_INVALID, "--peers: at most %d addresses", JOB_MAX_PEER_DATABASES);
    if (job_PerPeerDatabases(j->arch) && n < j->workers)
        return sp_Error(SP_ERR_INVALID, "--peers lists %d database(s) for %d workers", n,
                        j->workers);
    return SP_OK;
}

/* Heartbeats of the live peers and the probes a failed peer waits on to
 * rejoin; then fault injection. Without heartbeats (NATS unreachable) the
 * job still runs: a dead peer is excluded at the sync timeout instead. */
static spStatus ft_Start(dist_run *d, const train_observer *obs)
{
    const job_config *j = d->job;
    for (int p = 0; p < d->n_peers; p++) {
        spStatus st = store_ParseAddr(d->peers[p], &d->peer_addrs[p]);
        if (st)
            return sp_Wrap(st, "peer %d address", p);
        snprintf(d->peer_addrs[p].user, sizeof d->peer_addrs[p].user, "%s", d->creds.redis_user);
        snprintf(d->peer_addrs[p].password, sizeof d->peer_addrs[p].password, "%s",
                 d->creds.redis_password);
        d->peer_addrs[p].timeout_ms = 2000;
    }
    if (rejoin_Enabled(d->arch)) {
        sync_addr na;
        memset(&na, 0, sizeof na);
        snprintf(na.url, sizeof na.url, "%s", d->nats);
        snprintf(na.user, sizeof na.user, "%s", d->creds.nats_user);
        snprintf(na.password, sizeof na.password, "%s", d->creds.nats_password);
        na.timeout_ms = 2000;
        /* The barrier trusts silence only with 4 beats per timeout. */
        int hb = j->heartbeat_timeout_ms > 0 ? j->heartbeat_timeout_ms : 2000;
        liveness_config lc = {.job = j->id, .nats = &na, .peers = d->peer_addrs,
                              .n_peers = j->workers, .interval_ms = hb / 4 > 10 ? hb / 4 : 10};
        if (liveness_Start(&lc, &d->live) != SP_OK) {
            train_Notify(obs, "no heartbeats (%s): failed peers are excluded at the sync "
                         "timeout and cannot rejoin", sp_LastError());
            sp_ClearError();
        }
    }
    spStatus st = faults_Start(j, d->local ? &d->run : NULL, obs, &d->faults);
    d->hooks = (exec_hooks){.ctx = d, .hold_at = faults_At(d->faults),
                            .on_hold = d->faults ? hook_Hold : NULL, .member = hook_Member,
                            .peer_up = d->live ? hook_PeerUp : NULL};
    return st;
}

/* Every live worker's final model, by checksum: the architectures keep one
 * model per worker (in its own database, or under its index in the shared
 * one), and they must all end with the same one (but MLLESS's). When they do not, *differ
 * (SP_ERROR_MAX bytes) names the peers that differ and 1 is returned: the
 * run then fails, so exit 0 always comes with models_agree. */
static int final_Models(dist_run *d, train_result *res, char *differ)
{
    cJSON *det = res->details;
    const cJSON *alive = cJSON_GetObjectItemCaseSensitive(det, "live_at_end");
    int n_workers = d->job->workers, which[JOB_MAX_WORKERS], n = 0, agree;
    if (!cJSON_IsArray(alive))
        return 0;
    for (const cJSON *v = alive->child; v && n < JOB_MAX_WORKERS; v = v->next)
        if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < n_workers)
            which[n++] = (int)v->valuedouble;
    store_addr *addrs = job_PerPeerDatabases(d->job->arch) ? d->peer_addrs : NULL;
    store_addr *shared = NULL;
    if (!addrs) {
        shared = calloc((size_t)n_workers, sizeof *shared);
        if (!shared || store_ParseAddr(d->shared, &shared[0]) != SP_OK) {
            free(shared);
            return 0;
        }
        snprintf(shared[0].user, sizeof shared[0].user, "%s", d->creds.redis_user);
        snprintf(shared[0].password, sizeof shared[0].password, "%s", d->creds.redis_password);
        shared[0].timeout_ms = 2000;
        for (int w = 1; w < n_workers; w++)
            shared[w] = shared[0];
        addrs = shared;
    }
    cJSON *models = peercheck_Models(addrs, which, n, d->job->id, &agree);
    cJSON_AddItemToObject(det, "final_models", models);
    cJSON_AddBoolToObject(det, "models_agree", agree);
    free(shared);
    /* MLLESS's replicas differ by the steps not yet sent (steps/mlless.h). */
    return !agree && d->job->arch != ARCH_MLLESS && peercheck_Differ(models, differ, SP_ERROR_MAX);
}

/* A server or function of a local run that died explains more than the
 * error it caused ("Connection refused"): the failure names it, with the end
 * of its log (which the runner keeps). A death the run survived (a failed
 * peer) is told as an event. Checked before fault injection stops, which
 * ends a restarted peer's redis-server on purpose. */
static spStatus local_Casualties(dist_run *d, spStatus st, const train_observer *obs)
{
    if (st)
        return runner_Explain(&d->run, st);
    if (runner_Check(&d->run) != SP_OK) {
        train_Notify(obs, "%s", sp_LastError());
        sp_ClearError();
    }
    return SP_OK;
}

/* The report's fault-tolerance evidence, then everything stops. The model
 * check comes first: a restarted peer's redis-server dies with the fault
 * injection thread. Returns final_Models' verdict. */
static int ft_Finish(dist_run *d, train_result *res, char *differ)
{
    cJSON *det = res->details;
    int differs = final_Models(d, res, differ);
    if (d->live) {
        cJSON *hb = cJSON_AddArrayToObject(det, "heartbeats");
        for (int w = 0; w < d->job->workers; w++)
            cJSON_AddItemToArray(hb, cJSON_CreateNumber((double)liveness_Beats(d->live, w)));
    }
    if (d->faults)
        cJSON_AddItemToObject(det, "faults", faults_Events(d->faults));
    faults_Stop(d->faults);
    liveness_Stop(d->live);
    d->faults = NULL;
    d->live = NULL;
    return differs;
}

/* ---- CPU ------------------------------------------------------------------ */

/* CPU (user + system) of the run so far, ms: this process's (every thread,
 * in-process steps included) and, locally, every process the runner
 * started. */
static void cpu_Read(dist_run *d, runner_cpu *c)
{
    struct rusage ru;
    memset(c, 0, sizeof *c);
    if (d->local)
        runner_Cpu(&d->run, c);
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c->driver += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-3;
}

/* details.cpu: ms per iteration by kind of process between the first
 * iteration and the last, the set-up before (servers, functions, init) and
 * the whole run's total. A cluster's processes are not ours to read. */
static void cpu_Report(const dist_run *d, train_result *res, const runner_cpu *a,
                       const runner_cpu *b)
{
    cJSON *c = cJSON_AddObjectToObject(res->details, "cpu");
    long iters = res->iterations - d->start;
    double per = iters > 0 ? 1.0 / (double)iters : 0;
    const char *kind[] = {"driver", "functions", "redis", "nats"};
    double at_a[] = {a->driver, a->functions, a->redis, a->nats};
    double at_b[] = {b->driver, b->functions, b->redis, b->nats};
    int kinds = d->local ? 4 : 1;
    double setup = 0, whole = 0;
    cJSON_AddStringToObject(c, "scope", d->local ? "local: driver, functions, redis-servers, "
                            "nats-server" : "driver only");
    for (int k = 0; k < kinds; k++) {
        cJSON_AddNumberToObject(c, kind[k], (at_b[k] - at_a[k]) * per);
        setup += at_a[k];
        whole += at_b[k];
    }
    cJSON_AddNumberToObject(c, "total", (whole - setup) * per);
    cJSON_AddNumberToObject(c, "iterations", (double)iters);
    cJSON_AddNumberToObject(c, "setup_ms", setup);
    cJSON_AddNumberToObject(c, "whole_run_ms", whole);
}

spStatus train_Distributed(const job_config *job, const train_observer *obs, train_result *res)
{
    double t0 = clock_Now();
    dist_run *d = calloc(1, sizeof *d);
    if (!d)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    d->job = job;
    d->arch = arch_Get(job->arch);
    d->inv.transport = job->transport_inproc ? &invoke_Inproc : &invoke_Http;
    d->inv.timeout_ms = job->sync_timeout_ms + 60000;
    d->inv.retries = 4;
    spStatus st = SP_OK;
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if ((st = train_CheckDistributed(job)))
        ;
    else if (cluster_Mode(job))
        st = cluster_Endpoints(d);
    else
        st = local_Start(d, obs);
    long iters = 0;
    cJSON *applied = NULL;
    if (!st) {
        creds_Build(d);
        if (job->transport_inproc) {
            st = inproc_Configure(d);
            /* Worker threads already use the cores; see the runner's env. */
            openblas_set_num_threads(1);
        }
        d->base = base_Build(d);
        if (!st)
            st = job_Init(d, &iters, &applied);
    }
    if (!st && job->resume)
        st = resume_Plan(&d->inv, d->base, applied, job->workers, obs, &d->start, d->down,
                         res->details);
    cJSON_Delete(applied);
    if (!st)
        st = ft_Start(d, obs);
    if (!st) {
        res->setup_seconds = clock_Now() - t0;
        exec_plan plan = {.job = job, .arch = d->arch, .inv = &d->inv, .base = d->base,
                          .iters_per_epoch = iters, .obs = obs,
                          .start_iteration = d->start, .down = job->resume ? d->down : NULL,
                          .rejoin = d->live && rejoin_Enabled(d->arch), .hooks = &d->hooks};
        runner_cpu cpu_start, cpu_end;
        cpu_Read(d, &cpu_start);
        st = executor_Run(&plan, res);
        cpu_Read(d, &cpu_end);
        cpu_Report(d, res, &cpu_start, &cpu_end);
    }
    if (d->local)
        st = local_Casualties(d, st, obs);
    char ft_msg[SP_ERROR_MAX], differ[SP_ERROR_MAX];
    snprintf(ft_msg, sizeof ft_msg, "%s", sp_LastError());
    int differs = ft_Finish(d, res, differ);
    if (st)
        sp_Error(st, "%s", ft_msg);
    else if (differs)
        st = sp_Error(SP_ERR_INTERNAL, "the run ended with the peers holding different "
                      "models: %s", differ);
    char msg[SP_ERROR_MAX];
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
