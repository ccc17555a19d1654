/* runner.c - starting and stopping the local system. */
#include "driver/runner.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/clock.h"
#include "core/env_names.h"
#include "core/net.h"
#include "driver/runner_child.h"
#include "driver/server_conf.h"
#include "ml/blas_tune.h"
#include "runtime/http_client.h"
#include "store/store.h"

/* ---- processes ------------------------------------------------------- */

/* Paths of the run dir's files: "<dir>/<name><suffix>". */
static void run_Path(const runner *r, const char *name, const char *suffix, char *out,
                     size_t cap)
{
    snprintf(out, cap, "%s/%s%s", r->dir, name, suffix);
}

/* Signal path: the pids we must not leave behind. */
static volatile pid_t live_pids[RUNNER_MAX_PROCS];

/* Set by the signal path: children ending now were told to. */
static volatile sig_atomic_t stopped_by_signal;

/* Records a started child (pid 0: about to be started) in slot idx. */
static void track_Pid(runner *r, int idx, pid_t pid)
{
    r->procs[idx].cpu_ended_ms += r->procs[idx].cpu_ms; /* a restart: the old one's CPU stays */
    r->procs[idx].cpu_ms = 0;
    r->procs[idx].pid = pid;
    live_pids[idx] = pid;
    reaper_Watch(&r->reap, pid);
}

static void track(runner *r, pid_t pid, int port, const char *name)
{
    runner_proc *p = &r->procs[r->n_procs];
    p->port = port;
    snprintf(p->name, sizeof p->name, "%s", name);
    track_Pid(r, r->n_procs, pid);
    r->n_procs++;
}

/* ---- a child that died ---------------------------------------------------- */

/* The message about child p, which ended with wait status `status`: what
 * happened, where its log is and how the log ends. Marks the logs kept. */
static void proc_Died(runner *r, const runner_proc *p, int status, const char *when, char *out,
                      size_t cap)
{
    char why[96], log[400], tail[1600];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) == 127) /* child_Spawn's "cannot run" */
        snprintf(why, sizeof why, "could not be run (is its package installed?)");
    else
        snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
    run_Path(r, p->name, ".log", log, sizeof log);
    child_LogTail(log, tail, sizeof tail);
    snprintf(out, cap, "%s %s%s; its log %s (kept) ends with:\n%s", p->name, why, when, log,
             tail);
    r->keep_logs = 1;
}

static spStatus wait_started(runner *r, int idx, int timeout_ms)
{
    runner_proc *p = &r->procs[idx];
    int64_t end = clock_NowMs() + timeout_ms;
    while (clock_NowMs() < end) {
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            char msg[2400];
            proc_Died(r, p, st, " during start-up", msg, sizeof msg);
            return sp_Error(SP_ERR_UNAVAILABLE, "%s", msg);
        }
        if (net_PortOpen(p->port))
            return SP_OK;
        child_SleepMs(20);
    }
    r->keep_logs = 1;
    return sp_Error(SP_ERR_TIMEOUT, "%s did not listen on port %d within %d ms (its log %s/%s.log "
                    "is kept)", p->name, p->port, timeout_ms, r->dir, p->name);
}

spStatus runner_Check(runner *r)
{
    char msg[8192];
    size_t len = 0;
    for (int i = 0; i < r->n_procs && !stopped_by_signal; i++) {
        runner_proc *p = &r->procs[i];
        int st;
        if (p->pid <= 0 || waitpid(p->pid, &st, WNOHANG) != p->pid)
            continue;
        p->pid = 0;
        live_pids[i] = 0;
        char one[2400];
        proc_Died(r, p, st, "", one, sizeof one);
        if (len < sizeof msg - 1)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", len ? "\n" : "", one);
    }
    return len ? sp_Error(SP_ERR_UNAVAILABLE, "%s", msg) : SP_OK;
}

spStatus runner_Explain(runner *r, spStatus st)
{
    char failed[SP_ERROR_MAX];
    snprintf(failed, sizeof failed, "%s", sp_LastError());
    if (runner_Check(r) == SP_OK)
        return sp_Error(st, "%s", failed);
    char died[SP_ERROR_MAX];
    snprintf(died, sizeof died, "%s", sp_LastError());
    return sp_Error(st, "%s\n%s", failed, died);
}

static spStatus start_proc(runner *r, const char *name, int port, char *const argv[],
                           char *const env[])
{
    if (r->n_procs >= RUNNER_MAX_PROCS)
        return sp_Error(SP_ERR_INVALID, "too many processes for the local runner");
    char log[400];
    snprintf(log, sizeof log, "%s/%s.log", r->dir, name);
    pid_t pid = child_Spawn(argv, env, log);
    if (pid < 0)
        return sp_Error(SP_ERR_IO, "fork for %s failed: %s", name, strerror(errno));
    track(r, pid, port, name);
    return wait_started(r, r->n_procs - 1, 15000);
}

/* ---- secrets and paths ----------------------------------------------- */

static spStatus random_hex(char *out, size_t chars)
{
    unsigned char buf[64];
    size_t n = chars / 2;
    if (n > sizeof buf || RAND_bytes(buf, (int)n) != 1)
        return sp_Error(SP_ERR_IO, "no random bytes for local secrets (OpenSSL RAND_bytes)");
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
    out[2 * n] = '\0';
    return SP_OK;
}

const char *runner_BinDir(void)
{
    static char dir[512];
    if (dir[0])
        return dir;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
        snprintf(dir, sizeof dir, ".");
        return dir;
    }
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return dir;
}

static const char *module_Path(void)
{
    static char path[600];
    const char *env = getenv("SPIRT_MODULE");
    if (env && env[0])
        return access(env, R_OK) == 0 ? env : NULL;
    snprintf(path, sizeof path, "%s/../lib/spirt_redis.so", runner_BinDir());
    return access(path, R_OK) == 0 ? path : NULL;
}

/* ---- servers ----------------------------------------------------------- */

/* Every peer's redis-server (and the shared one): the settings, the ACL user
 * and its password go into <name>.conf (mode 0600); only that path is on
 * the command line. */
static spStatus redis_Spawn(runner *r, int idx, int appendonly)
{
    runner_proc *p = &r->procs[idx];
    char dir[400], conf[400], log[400];
    run_Path(r, p->name, "", dir, sizeof dir);
    run_Path(r, p->name, ".conf", conf, sizeof conf);
    run_Path(r, p->name, ".log", log, sizeof log);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sp_Error(SP_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    const char *module = module_Path();
    redis_conf c = {.port = p->port, .dir = dir, .appendonly = appendonly,
                    .user = r->redis_user, .password = r->redis_password, .module = module};
    spStatus st = conf_WriteRedis(conf, &c);
    if (st)
        return st;
    r->module_loaded = module != NULL;
    char *argv[] = {"redis-server", conf, NULL};
    pid_t pid = child_Spawn(argv, NULL, log);
    if (pid < 0)
        return sp_Error(SP_ERR_IO, "fork for %s failed: %s", p->name, strerror(errno));
    track_Pid(r, idx, pid);
    return wait_started(r, idx, 15000);
}

static spStatus start_redis(runner *r, const char *name, int appendonly, int *port_out)
{
    if (r->n_procs >= RUNNER_MAX_PROCS)
        return sp_Error(SP_ERR_INVALID, "too many processes for the local runner");
    *port_out = net_FreePort();
    track(r, 0, *port_out, name);
    spStatus st = redis_Spawn(r, r->n_procs - 1, appendonly);
    if (st)
        return sp_Wrap(st, "starting redis-server");
    return SP_OK;
}

static spStatus start_nats(runner *r)
{
    int port = net_FreePort();
    char conf[400], store[400];
    run_Path(r, "nats", ".conf", conf, sizeof conf);
    run_Path(r, "nats", "", store, sizeof store);
    nats_conf c = {.port = port, .store_dir = store, .user = r->nats_user,
                   .password = r->nats_password};
    spStatus st = conf_WriteNats(conf, &c);
    if (st)
        return st;
    char *argv[] = {"nats-server", "-c", conf, NULL};
    r->nats_port = port;
    st = start_proc(r, "nats", port, argv, NULL);
    if (st)
        return sp_Wrap(st, "starting nats-server");
    return SP_OK;
}

/* The secrets function processes read: one file of mode 0600 each, named
 * in runner.h. */
static spStatus write_Secrets(runner *r)
{
    const struct {
        const char *file, *value;
    } secrets[] = {
        {RUNNER_TOKEN_FILE, r->token},
        {RUNNER_REDIS_PASSWORD_FILE, r->redis_password},
        {RUNNER_NATS_PASSWORD_FILE, r->nats_password},
        {RUNNER_AUTH_KEY_FILE, r->auth_key},
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        char path[400];
        run_Path(r, secrets[i].file, "", path, sizeof path);
        spStatus st = conf_WriteSecret(path, secrets[i].value);
        if (st)
            return st;
    }
    return SP_OK;
}

static spStatus start_function(runner *r, const char *step)
{
    int port = net_FreePort();
    char bin[700], name[48];
    snprintf(bin, sizeof bin, "%s/spirt-fn-%s", runner_BinDir(), step);
    if (access(bin, X_OK) != 0)
        return sp_Error(SP_ERR_NOT_FOUND, "function binary %s is missing (build spirt first)", bin);
    snprintf(name, sizeof name, "fn-%s", step);
    char e_port[32], e_token[450], e_pw[450], e_nats[128], e_nuser[96], e_npw[450];
    char e_user[96], e_auth[450], e_shared[96];
    char e_peers[sizeof ENV_REDIS_PEERS + JOB_MAX_PEER_DATABASES * sizeof "127.0.0.1:65535,"];
    snprintf(e_port, sizeof e_port, "PORT=%d", port);
    /* Secrets as files (the values never appear in an environment); the
     * runtime reads SPIRT_<NAME>_FILE for the steps. */
    snprintf(e_token, sizeof e_token, "%s%s=%s/%s", ENV_TOKEN, ENV_FILE_SUFFIX, r->dir,
             RUNNER_TOKEN_FILE);
    snprintf(e_pw, sizeof e_pw, "%s%s=%s/%s", ENV_REDIS_PASSWORD, ENV_FILE_SUFFIX, r->dir,
             RUNNER_REDIS_PASSWORD_FILE);
    snprintf(e_user, sizeof e_user, "%s=%s", ENV_REDIS_USER, r->redis_user);
    /* Only the verifier of joining peers holds the master key. */
    snprintf(e_auth, sizeof e_auth, "%s%s=%s/%s", ENV_AUTH_KEY, ENV_FILE_SUFFIX, r->dir,
             RUNNER_AUTH_KEY_FILE);
    snprintf(e_nuser, sizeof e_nuser, "%s=%s", ENV_NATS_USER, r->nats_user);
    snprintf(e_npw, sizeof e_npw, "%s%s=%s/%s", ENV_NATS_PASSWORD, ENV_FILE_SUFFIX, r->dir,
             RUNNER_NATS_PASSWORD_FILE);
    /* Where the servers are: the function's only addresses (requests name
     * a peer by its index). Not secrets. */
    snprintf(e_nats, sizeof e_nats, "%s=nats://127.0.0.1:%d", ENV_NATS_URL, r->nats_port);
    snprintf(e_shared, sizeof e_shared, "%s=127.0.0.1:%d", ENV_REDIS_SHARED, r->shared_port);
    size_t used = (size_t)snprintf(e_peers, sizeof e_peers, "%s=", ENV_REDIS_PEERS);
    for (int p = 0; p < r->n_peers; p++)
        used += (size_t)snprintf(e_peers + used, sizeof e_peers - used, "%s127.0.0.1:%d",
                                 p ? "," : "", r->peer_ports[p]);
    /* The runtime listens on every interface by default (a container's
     * port); on this machine only the driver calls the functions. */
    char e_bind[] = "SPIRT_BIND=127.0.0.1";
    /* A function serves many requests at once on its own threads; OpenBLAS
     * threads on top of those only fight over the cores. */
    char e_blas[] = "OPENBLAS_NUM_THREADS=1";
    /* OpenBLAS's best kernels for this CPU (blas_tune.h): chosen here once,
     * where the library is loaded anyway, instead of by every function
     * re-executing itself at start. Steps without linear algebra ignore it. */
    const char *core = getenv("OPENBLAS_CORETYPE");
    if (!core || !core[0])
        core = blas_BetterCoretype();
    char e_core[64];
    snprintf(e_core, sizeof e_core, "OPENBLAS_CORETYPE=%s", core ? core : "");
    char *env[14] = {e_port, e_bind, e_token, e_pw, e_user, e_nats, e_nuser, e_npw, e_shared,
                     e_peers, e_blas};
    size_t n_env = 11;
    if (core)
        env[n_env++] = e_core;
    if (strcmp(step, "join") == 0)
        env[n_env++] = e_auth;
    char *argv[] = {bin, NULL};
    spStatus st = start_proc(r, name, port, argv, env);
    if (st)
        return st;
    snprintf(r->functions[r->n_functions].step, sizeof r->functions[0].step, "%s", step);
    r->functions[r->n_functions].port = port;
    r->n_functions++;
    return SP_OK;
}

/* A function is ready when /readyz says its Redis and NATS answer. */
static spStatus wait_ready(runner *r)
{
    for (int i = 0; i < r->n_functions; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", r->functions[i].port);
        int64_t end = clock_NowMs() + 15000;
        char last[600]; /* what the last probe got: the reason it is not ready */
        for (;;) {
            http_response resp = {0};
            spStatus st = http_Get(url, NULL, 2000, &resp);
            int code = resp.status;
            if (st)
                snprintf(last, sizeof last, "%s", sp_LastError());
            else
                snprintf(last, sizeof last, "/readyz answered %d %.400s", code,
                         resp.body ? resp.body : "");
            http_ResponseFree(&resp);
            if (st == SP_OK && code == 200)
                break;
            if (clock_NowMs() > end) {
                r->keep_logs = 1;
                return sp_Error(SP_ERR_TIMEOUT, "function %s not ready: %s; its log %s/fn-%s.log "
                                "is kept", r->functions[i].step, last, r->dir,
                                r->functions[i].step);
            }
            child_SleepMs(30);
        }
    }
    http_CloseCached();
    return SP_OK;
}

spStatus runner_Start(runner *r, const runner_options *o)
{
    memset(r, 0, sizeof *r);
    r->reap.fd = -1;
    if (o->peers < 1 || o->peers > JOB_MAX_PEER_DATABASES)
        return sp_Error(SP_ERR_INVALID, "the local runner supports 1 to %d peers, not %d",
                        JOB_MAX_PEER_DATABASES, o->peers);
    if (o->n_steps > RUNNER_MAX_FUNCTIONS)
        return sp_Error(SP_ERR_INVALID, "the local runner starts at most %d functions, not %d",
                        RUNNER_MAX_FUNCTIONS, o->n_steps);
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/spirt-run-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(r->dir))
        return sp_Error(SP_ERR_IO, "cannot create a temp dir under %s: %s",
                        tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
    stopped_by_signal = 0;
    spStatus st = reaper_Start(&r->reap, r->dir, getenv("SPIRT_KEEP_RUN_DIR") != NULL);
    if (st)
        goto fail;
    snprintf(r->nats_user, sizeof r->nats_user, "spirt");
    snprintf(r->redis_user, sizeof r->redis_user, "spirt");
    if ((st = random_hex(r->token, 64)) || (st = random_hex(r->redis_password, 64)) ||
        (st = random_hex(r->nats_password, 64)) || (st = random_hex(r->auth_key, 64)) ||
        (st = write_Secrets(r)))
        goto fail;
    r->n_peers = o->peers;
    for (int p = 0; p < o->peers; p++) {
        char name[32];
        snprintf(name, sizeof name, "redis-peer-%d", p);
        if ((st = start_redis(r, name, o->appendonly, &r->peer_ports[p])))
            goto fail;
    }
    if ((st = start_redis(r, "redis-shared", 0, &r->shared_port)) || (st = start_nats(r)))
        goto fail;
    for (int i = 0; i < o->n_steps; i++)
        if ((st = start_function(r, o->steps[i])))
            goto fail;
    if ((st = wait_ready(r)))
        goto fail;
    return SP_OK;
fail:
    /* A server that started and then died (Redis listens before it loads
     * its modules) is the likely cause of whatever failed after it. */
    st = runner_Explain(r, st);
    runner_Stop(r);
    return st;
}

/* rm -rf of the given paths (NULL-terminated, at most 126) under a run dir. */
static void remove_Paths(char *const paths[])
{
    char *argv[130] = {"rm", "-rf", "--"};
    int n = 3;
    for (int i = 0; paths[i] && n < 129; i++)
        if (strstr(paths[i], "/spirt-run-")) /* only ever remove what runner_Start created */
            argv[n++] = paths[i];
    if (n == 3)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* Everything in the run dir but the logs: the secrets, configurations,
 * databases and JetStream store go, the evidence stays. */
static void remove_AllButLogs(const char *dir)
{
    static char paths[128][400];
    char *list[129];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 128) {
        size_t len = strlen(e->d_name);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (len > 4 && !strcmp(e->d_name + len - 4, ".log")))
            continue;
        snprintf(paths[n], sizeof paths[n], "%s/%s", dir, e->d_name);
        list[n] = paths[n];
        n++;
    }
    if (d)
        closedir(d);
    list[n] = NULL;
    remove_Paths(list);
}

void runner_Stop(runner *r)
{
    /* Functions first (they drain), then the servers they use. */
    for (int i = r->n_procs - 1; i >= 0; i--) {
        child_Stop(r->procs[i].pid);
        r->procs[i].pid = 0;
        live_pids[i] = 0;
    }
    r->n_procs = 0;
    if (r->dir[0] && getenv("SPIRT_KEEP_RUN_DIR")) {
        /* kept whole, for debugging */
    } else if (r->dir[0] && r->keep_logs) {
        remove_AllButLogs(r->dir);
    } else if (r->dir[0]) {
        char *list[] = {r->dir, NULL};
        remove_Paths(list);
    }
    reaper_Finish(&r->reap);
    r->dir[0] = '\0';
}

/* ---- CPU ------------------------------------------------------------------ */

static void proc_Sample(runner_proc *p)
{
    double ms = p->pid > 0 ? child_CpuMs(p->pid) : -1;
    if (ms >= 0)
        p->cpu_ms = ms;
}

void runner_Cpu(runner *r, runner_cpu *out)
{
    memset(out, 0, sizeof *out);
    double reaper = r->reap.pid > 0 ? child_CpuMs(r->reap.pid) : -1;
    out->driver = reaper > 0 ? reaper : 0;
    for (int i = 0; i < r->n_procs; i++) {
        runner_proc *p = &r->procs[i];
        proc_Sample(p);
        double ms = p->cpu_ms + p->cpu_ended_ms;
        if (!strncmp(p->name, "fn-", 3))
            out->functions += ms;
        else if (!strncmp(p->name, "redis-", 6))
            out->redis += ms;
        else /* "nats", the one other kind */
            out->nats += ms;
    }
}

static runner_proc *find_proc(runner *r, const char *name)
{
    for (int i = 0; i < r->n_procs; i++)
        if (strcmp(r->procs[i].name, name) == 0)
            return &r->procs[i];
    return NULL;
}

spStatus runner_KillPeer(runner *r, int peer)
{
    char name[32];
    snprintf(name, sizeof name, "redis-peer-%d", peer);
    runner_proc *p = find_proc(r, name);
    if (!p || p->pid <= 0)
        return sp_Error(SP_ERR_NOT_FOUND, "peer %d has no running redis-server", peer);
    proc_Sample(p); /* its CPU until now stays in the report */
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return SP_OK;
}

spStatus runner_RestartPeer(runner *r, int peer)
{
    char name[32];
    snprintf(name, sizeof name, "redis-peer-%d", peer);
    runner_proc *p = find_proc(r, name);
    if (!p)
        return sp_Error(SP_ERR_NOT_FOUND, "peer %d is unknown", peer);
    /* Same port, dir and AOF: the peer comes back with what it acknowledged. */
    return redis_Spawn(r, (int)(p - r->procs), 1);
}

/* Called from a signal handler: only async-signal-safe work. */
void runner_KillAllFromSignal(void)
{
    stopped_by_signal = 1;
    for (int i = 0; i < RUNNER_MAX_PROCS; i++)
        if (live_pids[i] > 0)
            kill(live_pids[i], SIGTERM);
}
