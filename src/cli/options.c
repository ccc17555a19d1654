/* options.c - the option table behind `spirt train`. */
#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef spStatus (*opt_setter)(job_config *j, const char *v);

/* Which architectures an option means something for: a bit per arch_kind. */
#define A_SINGLE (1u << ARCH_SINGLE)
#define A_SPIRT (1u << ARCH_SPIRT)
#define A_MLLESS (1u << ARCH_MLLESS)
#define A_DIST (A_SPIRT | A_MLLESS | 1u << ARCH_SCATTER_REDUCE | 1u << ARCH_ALL_REDUCE)
#define A_ALL (A_SINGLE | A_DIST)

/* Further limits: only over HTTP (not with --transport inproc); only for
 * `spirt train` (`spirt compare` chooses the architectures and writes its
 * own reports). */
#define O_HTTP 1u
#define O_TRAIN 2u

typedef struct {
    const char *name;    /* without leading dashes */
    const char *metavar; /* NULL for flags */
    unsigned archs;      /* A_*: where the option applies */
    unsigned only;       /* O_*: 0 or further limits */
    const char *help;
    opt_setter set;
} option_def;

static spStatus parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return sp_Error(SP_ERR_INVALID, "'%s' is not an integer in [%ld, %ld]", v, lo, hi);
    *out = x;
    return SP_OK;
}

static spStatus parse_float(const char *v, float *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return sp_Error(SP_ERR_INVALID, "'%s' is not a finite number", v);
    *out = (float)x;
    return SP_OK;
}

static spStatus parse_int(const char *v, int lo, int hi, int *out)
{
    long x;
    spStatus st = parse_long(v, lo, hi, &x);
    if (st == SP_OK)
        *out = (int)x;
    return st;
}

static spStatus copy_str(const char *v, char *dst, size_t cap)
{
    if (strlen(v) >= cap)
        return sp_Error(SP_ERR_INVALID, "value is longer than %zu characters", cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return SP_OK;
}

/* One setter per option keeps the table declarative. */
static spStatus set_arch(job_config *j, const char *v) { return job_ParseArch(v, &j->arch); }
static spStatus set_job(job_config *j, const char *v) { return copy_str(v, j->id, sizeof j->id); }
static spStatus set_model(job_config *j, const char *v) { return model_ParseKind(v, &j->model.kind); }
static spStatus set_hidden(job_config *j, const char *v) { return model_ParseHidden(v, &j->model); }
static spStatus set_dataset(job_config *j, const char *v) { return copy_str(v, j->dataset, sizeof j->dataset); }
static spStatus set_train_samples(job_config *j, const char *v) { return parse_long(v, 0, 100000000, &j->train_samples); }
static spStatus set_test_samples(job_config *j, const char *v) { return parse_long(v, 0, 100000000, &j->test_samples); }
static spStatus set_workers(job_config *j, const char *v) { return parse_int(v, 1, JOB_MAX_WORKERS, &j->workers); }
static spStatus set_minibatches(job_config *j, const char *v) { return parse_int(v, 1, JOB_MAX_MINIBATCHES, &j->minibatches); }
static spStatus set_epochs(job_config *j, const char *v) { return parse_int(v, 1, JOB_MAX_EPOCHS, &j->epochs); }
static spStatus set_batch(job_config *j, const char *v) { return parse_int(v, 1, JOB_MAX_BATCH, &j->batch); }
static spStatus set_lr(job_config *j, const char *v) { return parse_float(v, &j->optim.lr); }
static spStatus set_momentum(job_config *j, const char *v) { return parse_float(v, &j->optim.momentum); }
static spStatus set_wd(job_config *j, const char *v) { return parse_float(v, &j->optim.weight_decay); }
static spStatus set_aggregator(job_config *j, const char *v) { return agg_ParseKind(v, &j->agg.kind); }
static spStatus set_trim(job_config *j, const char *v) { return parse_int(v, 0, 1000, &j->agg.trim); }
static spStatus set_byzantine(job_config *j, const char *v) { return parse_int(v, 0, 1000, &j->agg.f); }
static spStatus set_attack(job_config *j, const char *v) { return attack_ParseKind(v, &j->attack.kind); }
static spStatus set_attackers(job_config *j, const char *v) { return attack_ParseList(v, &j->attack); }
static spStatus set_attackers_count(job_config *j, const char *v) { return parse_int(v, 0, JOB_MAX_WORKERS, &j->attack.count); }
static spStatus set_attack_scale(job_config *j, const char *v) { return parse_float(v, &j->attack.scale); }
static spStatus set_attack_sigma(job_config *j, const char *v) { return parse_float(v, &j->attack.sigma); }
static spStatus set_sync_timeout(job_config *j, const char *v) { return parse_int(v, 10, JOB_MAX_WAIT_MS, &j->sync_timeout_ms); }
static spStatus set_significance(job_config *j, const char *v) { return parse_float(v, &j->significance); }
static spStatus set_target_loss(job_config *j, const char *v) { return parse_float(v, &j->target_loss); }
static spStatus set_eval_every(job_config *j, const char *v) { return parse_long(v, 0, 1000000000L, &j->eval_every); }
static spStatus set_functions(job_config *j, const char *v) { return copy_str(v, j->functions, sizeof j->functions); }
static spStatus set_peers(job_config *j, const char *v) { return copy_str(v, j->peers, sizeof j->peers); }
static spStatus set_shared(job_config *j, const char *v) { return copy_str(v, j->shared_redis, sizeof j->shared_redis); }
static spStatus set_nats(job_config *j, const char *v) { return copy_str(v, j->nats, sizeof j->nats); }
static spStatus set_report(job_config *j, const char *v) { return copy_str(v, j->report, sizeof j->report); }

static spStatus set_optimizer(job_config *j, const char *v)
{
    float lr = j->optim.lr, mom = j->optim.momentum, wd = j->optim.weight_decay;
    optim_kind k;
    spStatus st = optim_ParseKind(v, &k);
    if (st)
        return st;
    optim_Defaults(&j->optim, k);
    /* Keep an explicitly chosen lr / weight decay; momentum follows the kind. */
    j->optim.lr = lr;
    j->optim.weight_decay = wd;
    if (k != OPTIM_MOMENTUM)
        j->optim.momentum = mom;
    return SP_OK;
}

static spStatus set_seed(job_config *j, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-')
        return sp_Error(SP_ERR_INVALID, "'%s' is not a non-negative integer", v);
    j->seed = s;
    return SP_OK;
}

static spStatus set_transport(job_config *j, const char *v)
{
    if (strcmp(v, "http") == 0)
        j->transport_inproc = 0;
    else if (strcmp(v, "inproc") == 0)
        j->transport_inproc = 1;
    else
        return sp_Error(SP_ERR_INVALID, "'%s' is not a transport (http or inproc)", v);
    return SP_OK;
}

static spStatus set_scale_in(job_config *j, const char *v) { (void)v; j->scale_in = 1; return SP_OK; }
static spStatus set_slack(job_config *j, const char *v) { return parse_int(v, 0, JOB_MAX_SLACK, &j->slack); }
static spStatus set_quiet(job_config *j, const char *v) { (void)v; j->quiet = 1; return SP_OK; }
static spStatus set_heartbeat(job_config *j, const char *v) { return parse_int(v, 0, JOB_MAX_WAIT_MS, &j->heartbeat_timeout_ms); }
static spStatus set_kill_peer(job_config *j, const char *v) { return parse_int(v, 0, 255, &j->kill_peer); }
static spStatus set_kill_at(job_config *j, const char *v) { return parse_long(v, 0, 1000000000L, &j->kill_at_iteration); }
static spStatus set_resume(job_config *j, const char *v) { (void)v; j->resume = 1; return SP_OK; }

static spStatus set_restart_after(job_config *j, const char *v)
{
    float s;
    spStatus st = parse_float(v, &s);
    if (st == SP_OK && !(s >= 0 && s <= 86400))
        st = sp_Error(SP_ERR_INVALID, "'%s' is not a number of seconds in [0, 86400]", v);
    if (st == SP_OK)
        j->restart_after_s = s;
    return st;
}

/* Every option of `spirt train` / `spirt compare`: what it takes, where it
 * applies (an option the command line gives where it does not apply is
 * refused, see options_CheckApplies), its help line and its setter. */
static const option_def options[] = {
    {"arch", "ARCH", A_ALL, O_TRAIN, "single | spirt | mlless | scatter-reduce | all-reduce (default single)", set_arch},
    {"model", "MODEL", A_ALL, 0, "logreg | mlp | cnn | svm (default mlp)", set_model},
    {"hidden", "SIZES", A_ALL, 0, "MLP hidden layer sizes, e.g. 128 or 256,128 (default 128)", set_hidden},
    {"dataset", "NAME|PATH", A_ALL, 0, "fashion-mnist, mnist, an IDX directory, a .svm or .csv file", set_dataset},
    {"epochs", "N", A_ALL, 0, "passes over the training set (default 1)", set_epochs},
    {"batch", "N", A_ALL, 0, "samples per minibatch (default 64)", set_batch},
    {"lr", "RATE", A_ALL, 0, "learning rate (default 0.05)", set_lr},
    {"optimizer", "NAME", A_ALL, 0, "sgd | momentum | adam (default sgd)", set_optimizer},
    {"momentum", "MU", A_ALL, 0, "momentum coefficient (default 0; 0.9 with --optimizer momentum)", set_momentum},
    {"weight-decay", "WD", A_ALL, 0, "L2 weight decay (default 0)", set_wd},
    {"seed", "N", A_ALL, 0, "seed for init and shuffling (default 42)", set_seed},
    {"workers", "N", A_DIST, 0, "peers or workers (default 1)", set_workers},
    {"minibatches", "M", A_DIST, 0, "minibatches per worker per iteration (default 1)", set_minibatches},
    {"aggregator", "RULE", A_SPIRT, 0, "mean | trimmed-mean | median | krum | multi-krum", set_aggregator},
    {"trim", "B", A_SPIRT, 0, "trimmed mean: values dropped at each end (default 1)", set_trim},
    {"byzantine", "F", A_SPIRT, 0, "Krum: number of Byzantine peers tolerated (default 1)", set_byzantine},
    {"attack", "KIND", A_DIST, 0, "experiments: none | sign-flip | gaussian | label-flip | corrupt", set_attack},
    {"attackers", "LIST", A_DIST, 0, "peers that attack, e.g. 0,3", set_attackers},
    {"attackers-count", "F", A_DIST, 0, "the last F peers attack (instead of --attackers)", set_attackers_count},
    {"attack-scale", "K", A_DIST, 0, "sign-flip: publish -K times the average (default 4)", set_attack_scale},
    {"attack-sigma", "S", A_DIST, 0, "gaussian: publish N(0, S^2) noise (default 1)", set_attack_sigma},
    {"sync-timeout", "MS", A_DIST, 0, "barrier timeout before a peer counts as failed (default 30000)", set_sync_timeout},
    {"significance", "V", A_MLLESS, 0, "send a coordinate once its unsent step exceeds v/sqrt(t+1) of its weight (default 0.5)", set_significance},
    {"scale-in", NULL, A_MLLESS, 0, "let the supervisor remove a worker when its predicted loss stays within tolerance past the knee (survivors merge its model and re-stride the data)", set_scale_in},
    {"slack", "S", A_MLLESS, 0, "a worker may run at most S iterations ahead of the slowest (default 0: synchronous; not with --scale-in)", set_slack},
    {"target-loss", "L", A_ALL, 0, "stop once the training loss is below L (mlless: for 10 iterations in a row; default off)", set_target_loss},
    {"eval-every", "N", A_ALL, 0, "also evaluate test accuracy every N iterations (default 0: epoch ends)", set_eval_every},
    {"train-samples", "N", A_ALL, 0, "use only the first N training samples (default all)", set_train_samples},
    {"test-samples", "N", A_ALL, 0, "evaluate on the first N test samples (default all)", set_test_samples},
    {"transport", "T", A_DIST, 0, "http (each step a function process, default) | inproc", set_transport},
    {"functions", "URL", A_DIST, O_HTTP, "use running functions: URL template with {step}", set_functions},
    {"peers", "LIST", A_DIST, 0, "use running per-peer Redis: host:port,host:port,... (the same as the functions' SPIRT_REDIS_PEERS)", set_peers},
    {"shared-redis", "ADDR", A_DIST, 0, "use a running shared Redis host:port (the functions' SPIRT_REDIS_SHARED)", set_shared},
    {"nats", "URL", A_DIST, 0, "use a running NATS server nats://host:port (the functions' SPIRT_NATS_URL)", set_nats},
    {"job", "NAME", A_DIST, 0, "job name, namespaces keys and subjects (default spirt)", set_job},
    {"heartbeat-timeout", "MS", A_SPIRT, 0, "exclude a peer whose heartbeat stopped this long (default 3000, 0 = off)", set_heartbeat},
    {"kill-peer", "P", A_SPIRT, 0, "fault injection: SIGKILL peer P's redis-server (local runs)", set_kill_peer},
    {"at-iteration", "T", A_SPIRT, 0, "... at the start of iteration T (default 0)", set_kill_at},
    {"restart-after", "SECONDS", A_SPIRT, 0, "... and restart it from its AOF after SECONDS; it rejoins", set_restart_after},
    {"resume", NULL, A_SPIRT, 0, "continue an interrupted job from the state in --peers/--shared-redis/--nats", set_resume},
    {"report", "FILE", A_ALL, O_TRAIN, "write a JSON report to FILE (checked before training starts)", set_report},
    {"quiet", NULL, A_ALL, 0, "no progress output", set_quiet},
};
#define N_OPTIONS (sizeof options / sizeof options[0])
_Static_assert(N_OPTIONS <= OPTIONS_MAX, "options_given holds a flag per option");

static const option_def *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static spStatus apply_env(job_config *j)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char var[64] = "SPIRT_";
        size_t k = strlen(var);
        for (const char *p = options[i].name; *p && k + 1 < sizeof var; p++)
            var[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        var[k] = '\0';
        const char *v = getenv(var);
        if (!v || !v[0])
            continue;
        if (!options[i].metavar && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0))
            continue;
        spStatus st = options[i].set(j, v);
        if (st)
            return sp_Wrap(st, "environment %s", var);
    }
    return SP_OK;
}

spStatus options_Parse(int argc, char **argv, int first, job_config *j, int *help,
                       options_given *given)
{
    *help = 0;
    memset(given, 0, sizeof *given);
    spStatus st = apply_env(j);
    if (st)
        return st;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return SP_OK;
        }
        if (strncmp(a, "--", 2) != 0)
            return sp_Error(SP_ERR_INVALID, "unexpected argument '%s' (options start with --)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const option_def *o = find_option(name, len);
        if (!o)
            return sp_Error(SP_ERR_INVALID, "unknown option '--%.*s' (see --help)", (int)len, name);
        const char *val = NULL;
        if (o->metavar) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return sp_Error(SP_ERR_INVALID, "option --%s needs a value (%s)", o->name, o->metavar);
        } else if (eq) {
            return sp_Error(SP_ERR_INVALID, "option --%s takes no value", o->name);
        }
        if ((st = o->set(j, val)))
            return sp_Wrap(st, "--%s", o->name);
        given->set[o - options] = 1;
    }
    return SP_OK;
}

/* "spirt, mlless" for a mask of architectures. */
static void arch_List(unsigned archs, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int k = ARCH_SINGLE; k <= ARCH_ALL_REDUCE && len < cap; k++)
        if (archs & 1u << k)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                                    job_ArchName((arch_kind)k));
}

spStatus options_CheckApplies(const options_given *given, const job_config *j, unsigned archs,
                              int compare)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_def *o = &options[i];
        if (!given->set[i])
            continue; /* defaults and the environment are never refused */
        if (compare && (o->only & O_TRAIN))
            return sp_Error(SP_ERR_INVALID, "--%s does not apply to spirt compare (it runs "
                            "--archs and writes its reports to --out)", o->name);
        if (!(o->archs & archs)) {
            char where[96];
            arch_List(o->archs, where, sizeof where);
            if (compare)
                return sp_Error(SP_ERR_INVALID, "--%s does not apply to any architecture of "
                                "--archs (only to %s)", o->name, where);
            return sp_Error(SP_ERR_INVALID, "--%s does not apply to --arch %s (only to %s)",
                            o->name, job_ArchName(j->arch), where);
        }
        if ((o->only & O_HTTP) && j->transport_inproc)
            return sp_Error(SP_ERR_INVALID, "--%s does not apply to --transport inproc (the "
                            "steps run in this process)", o->name);
    }
    return SP_OK;
}

unsigned options_ArchMask(arch_kind a) { return 1u << a; }

void options_PrintHelp(FILE *f)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char left[48], where[96] = "";
        snprintf(left, sizeof left, "--%s%s%s", options[i].name, options[i].metavar ? " " : "",
                 options[i].metavar ? options[i].metavar : "");
        if (options[i].archs == A_DIST)
            snprintf(where, sizeof where, " [distributed]");
        else if (options[i].archs != A_ALL) {
            where[0] = ' ';
            where[1] = '[';
            arch_List(options[i].archs, where + 2, sizeof where - 3);
            strcat(where, "]");
        }
        fprintf(f, "  %-26s %s%s\n", left, options[i].help, where);
    }
    fprintf(f, "\nEvery option can also be set in the environment as SPIRT_<OPTION>\n"
               "(e.g. SPIRT_WORKERS=4); the command line wins. An option given on the\n"
               "command line where it does not apply (see [brackets]) is refused; the\n"
               "environment's are not (a Job's environment serves every architecture).\n"
               "\nRunning services' credentials (with --peers, --shared-redis, --nats):\n"
               "SPIRT_TOKEN, SPIRT_REDIS_USER, SPIRT_REDIS_PASSWORD, SPIRT_NATS_USER,\n"
               "SPIRT_NATS_PASSWORD, SPIRT_AUTH_KEY; each secret may instead be the path of\n"
               "a file holding it, as SPIRT_<NAME>_FILE (a mounted Secret).\n"
               "\nExit status: 0 done; 2 bad usage (unknown, malformed or conflicting options,\n"
               "an option that does not apply, an unwritable --report, a secret file\n"
               "that cannot be used); 1 anything else\n"
               "(data errors, a server that failed, a failed run).\n");
}
