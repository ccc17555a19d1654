/* job.c - defaults, validation and the JSON form of a job's configuration. */
#include "job/job.h"
#include "core/names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void job_Defaults(job_config *j)
{
    memset(j, 0, sizeof *j);
    j->arch = ARCH_SINGLE;
    snprintf(j->id, sizeof j->id, "spirt");
    j->model.kind = MODEL_MLP;
    j->model.n_hidden = 1;
    j->model.hidden[0] = 128;
    snprintf(j->dataset, sizeof j->dataset, "fashion-mnist");
    j->workers = 1;
    j->minibatches = 1;
    j->epochs = 1;
    j->batch = 64;
    optim_Defaults(&j->optim, OPTIM_SGD);
    j->optim.lr = 0.05f;
    j->agg.kind = AGG_MEAN;
    j->agg.trim = 1;
    j->agg.f = 1;
    attack_Defaults(&j->attack);
    j->seed = 42;
    j->sync_timeout_ms = 30000;
    j->significance = 0.5f;
    j->heartbeat_timeout_ms = 3000;
    j->kill_peer = -1;
    j->restart_after_s = -1;
}

static const sp_name arch_names[] = {
    {ARCH_SINGLE, "single"},
    {ARCH_SPIRT, "spirt"},
    {ARCH_MLLESS, "mlless"},
    {ARCH_SCATTER_REDUCE, "scatter-reduce"},
    {ARCH_ALL_REDUCE, "all-reduce"},
};

spStatus job_ParseArch(const char *name, arch_kind *out)
{
    int v;
    if (names_Find(arch_names, NAMES_COUNT(arch_names), name, 0, &v)) {
        *out = (arch_kind)v;
        return SP_OK;
    }
    return sp_Error(SP_ERR_INVALID,
                    "unknown architecture '%s' (expected single, spirt, mlless, "
                    "scatter-reduce or all-reduce)", name);
}

const char *job_ArchName(arch_kind a) { return names_Of(arch_names, NAMES_COUNT(arch_names), a); }

int job_PerPeerDatabases(arch_kind a) { return a == ARCH_SPIRT; }

static int valid_job_id(const char *s)
{
    if (!s[0])
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

spStatus job_Validate(const job_config *j)
{
    if (!valid_job_id(j->id))
        return sp_Error(SP_ERR_INVALID, "--job '%s': use letters, digits, '-' and '_' only", j->id);
    if (j->workers < 1 || j->workers > JOB_MAX_WORKERS)
        return sp_Error(SP_ERR_INVALID, "--workers %d: must be between 1 and %d", j->workers,
                        JOB_MAX_WORKERS);
    if (j->minibatches < 1 || j->minibatches > JOB_MAX_MINIBATCHES)
        return sp_Error(SP_ERR_INVALID, "--minibatches %d: must be between 1 and %d",
                        j->minibatches, JOB_MAX_MINIBATCHES);
    if (j->epochs < 1 || j->epochs > JOB_MAX_EPOCHS)
        return sp_Error(SP_ERR_INVALID, "--epochs %d: must be between 1 and %d", j->epochs,
                        JOB_MAX_EPOCHS);
    if (j->batch < 1 || j->batch > JOB_MAX_BATCH)
        return sp_Error(SP_ERR_INVALID, "--batch %d: must be between 1 and %d", j->batch,
                        JOB_MAX_BATCH);
    if (!(j->optim.lr > 0) || !isfinite(j->optim.lr))
        return sp_Error(SP_ERR_INVALID, "--lr %g: must be a positive number", j->optim.lr);
    if (!(j->optim.momentum >= 0 && j->optim.momentum < 1))
        return sp_Error(SP_ERR_INVALID, "--momentum %g: must be in [0, 1)", j->optim.momentum);
    if (!(j->optim.weight_decay >= 0) || !isfinite(j->optim.weight_decay))
        return sp_Error(SP_ERR_INVALID, "--weight-decay %g: must be >= 0", j->optim.weight_decay);
    if (j->train_samples < 0 || j->test_samples < 0)
        return sp_Error(SP_ERR_INVALID, "--train-samples/--test-samples must be >= 0");
    if (j->eval_every < 0)
        return sp_Error(SP_ERR_INVALID, "--eval-every %ld: must be >= 0 (0 = epoch ends only)",
                        j->eval_every);
    if (j->sync_timeout_ms < 10)
        return sp_Error(SP_ERR_INVALID, "--sync-timeout %d ms: must be at least 10",
                        j->sync_timeout_ms);
    if (j->heartbeat_timeout_ms < 0)
        return sp_Error(SP_ERR_INVALID, "--heartbeat-timeout %d ms: must be >= 0 (0 = off)",
                        j->heartbeat_timeout_ms);
    if (j->kill_peer >= j->workers)
        return sp_Error(SP_ERR_INVALID, "--kill-peer %d: there are only %d peers", j->kill_peer,
                        j->workers);
    if (j->kill_peer < 0 && j->restart_after_s >= 0)
        return sp_Error(SP_ERR_INVALID, "--restart-after needs --kill-peer");
    if (!(j->significance >= 0) || !isfinite(j->significance))
        return sp_Error(SP_ERR_INVALID, "--significance %g: must be >= 0", j->significance);
    if (j->slack < 0 || j->slack > JOB_MAX_SLACK)
        return sp_Error(SP_ERR_INVALID, "--slack %d: must be from 0 to %d", j->slack,
                        JOB_MAX_SLACK);
    /* Removing a worker and re-striding need every worker at the iteration
     * the supervisor decides. */
    if (j->slack > 0 && j->scale_in)
        return sp_Error(SP_ERR_INVALID, "--slack %d with --scale-in: scale-in needs synchronous "
                        "workers (--slack 0)", j->slack);
    if (j->agg.trim < 0 || j->agg.f < 0)
        return sp_Error(SP_ERR_INVALID, "--trim and --byzantine must be >= 0");
    spStatus st = attack_Validate(&j->attack, j->workers);
    if (st)
        return st;
    /* The poisoning lives in the gradient and average steps every
     * distributed architecture shares; only SPIRT's aggregate leaves a
     * corrupt input out (elsewhere the reader of a corrupt blob fails). */
    if (j->attack.kind != ATTACK_NONE && j->arch == ARCH_SINGLE)
        return sp_Error(SP_ERR_INVALID, "--attack needs a distributed --arch (peers to poison)");
    if (j->attack.kind == ATTACK_CORRUPT && j->arch != ARCH_SPIRT)
        return sp_Error(SP_ERR_INVALID, "--attack corrupt is available with --arch spirt only");
    return SP_OK;
}

spStatus job_ItersPerEpoch(const job_config *j, size_t n_train, long *iters)
{
    size_t shard = n_train / (size_t)j->workers;
    size_t per_iter = (size_t)j->minibatches * (size_t)j->batch;
    *iters = (long)(shard / per_iter);
    if (*iters < 1)
        return sp_Error(SP_ERR_INVALID,
                        "%zu training samples per worker are fewer than one iteration's %d "
                        "minibatch(es) of %d",
                        shard, j->minibatches, j->batch);
    return SP_OK;
}

/* "attack": {"kind","attackers":[...] | "attackers_count","scale","sigma"},
 * only when an attack is configured, so honest requests stay as they were. */
static void attack_ToJson(cJSON *o, const attack_config *a)
{
    if (a->kind == ATTACK_NONE)
        return;
    cJSON *x = cJSON_AddObjectToObject(o, "attack");
    cJSON_AddStringToObject(x, "kind", attack_KindName(a->kind));
    if (a->n_listed > 0) {
        cJSON *l = cJSON_AddArrayToObject(x, "attackers");
        for (int i = 0; i < a->n_listed; i++)
            cJSON_AddItemToArray(l, cJSON_CreateNumber(a->listed[i]));
    } else {
        cJSON_AddNumberToObject(x, "attackers_count", a->count);
    }
    cJSON_AddNumberToObject(x, "scale", a->scale);
    cJSON_AddNumberToObject(x, "sigma", a->sigma);
}

cJSON *job_ToJson(const job_config *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "arch", job_ArchName(j->arch));
    cJSON_AddStringToObject(o, "model", model_KindName(j->model.kind));
    cJSON *h = cJSON_AddArrayToObject(o, "hidden");
    for (int i = 0; i < j->model.n_hidden; i++)
        cJSON_AddItemToArray(h, cJSON_CreateNumber(j->model.hidden[i]));
    cJSON_AddBoolToObject(o, "sparse_input", j->model.sparse);
    cJSON_AddStringToObject(o, "dataset", j->dataset);
    cJSON_AddNumberToObject(o, "train_samples", (double)j->train_samples);
    cJSON_AddNumberToObject(o, "test_samples", (double)j->test_samples);
    cJSON_AddNumberToObject(o, "workers", j->workers);
    cJSON_AddNumberToObject(o, "minibatches", j->minibatches);
    cJSON_AddNumberToObject(o, "epochs", j->epochs);
    cJSON_AddNumberToObject(o, "batch", j->batch);
    cJSON_AddStringToObject(o, "optimizer", optim_KindName(j->optim.kind));
    cJSON_AddNumberToObject(o, "lr", j->optim.lr);
    cJSON_AddNumberToObject(o, "momentum", j->optim.momentum);
    cJSON_AddNumberToObject(o, "weight_decay", j->optim.weight_decay);
    cJSON_AddStringToObject(o, "aggregator", agg_KindName(j->agg.kind));
    cJSON_AddNumberToObject(o, "trim", j->agg.trim);
    cJSON_AddNumberToObject(o, "byzantine", j->agg.f);
    /* The seed is a 64-bit integer; JSON numbers are doubles, so send text. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "significance", j->significance);
    /* MLLESS's supervisor decides scale-in and stopping in a step. */
    cJSON_AddBoolToObject(o, "scale_in", j->scale_in);
    cJSON_AddNumberToObject(o, "slack", j->slack);
    cJSON_AddNumberToObject(o, "target_loss", j->target_loss);
    cJSON_AddNumberToObject(o, "sync_timeout_ms", j->sync_timeout_ms);
    cJSON_AddNumberToObject(o, "heartbeat_timeout_ms", j->heartbeat_timeout_ms);
    attack_ToJson(o, &j->attack);
    return o;
}

/* Field readers: absent fields keep their defaults, present ones must have
 * the right type and range. */
static spStatus get_int(const cJSON *o, const char *k, int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return SP_OK;
    /* Range first (also rejects NaN): converting an out-of-range double to
     * an integer is undefined behaviour. */
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return sp_Error(SP_ERR_INVALID, "job.%s: expected an integer in [%d, %d]", k, lo, hi);
    *out = (int)v->valuedouble;
    return SP_OK;
}

static spStatus get_long(const cJSON *o, const char *k, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return SP_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= 0 && d <= 1e12) || d != floor(d))
        return sp_Error(SP_ERR_INVALID, "job.%s: expected a non-negative integer", k);
    *out = (long)v->valuedouble;
    return SP_OK;
}

static spStatus get_float(const cJSON *o, const char *k, float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return SP_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return sp_Error(SP_ERR_INVALID, "job.%s: expected a finite number", k);
    *out = (float)v->valuedouble;
    return SP_OK;
}

static spStatus get_bool(const cJSON *o, const char *k, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return SP_OK;
    if (!cJSON_IsBool(v))
        return sp_Error(SP_ERR_INVALID, "job.%s: expected true or false", k);
    *out = cJSON_IsTrue(v);
    return SP_OK;
}

static spStatus get_str(const cJSON *o, const char *k, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return SP_OK;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return sp_Error(SP_ERR_INVALID, "job.%s: expected a string shorter than %zu", k, cap);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return SP_OK;
}

static spStatus get_kinds(const cJSON *o, job_config *j)
{
    char name[64];
    spStatus st;
    name[0] = 0;
    if ((st = get_str(o, "arch", name, sizeof name)) || (name[0] && (st = job_ParseArch(name, &j->arch))))
        return st;
    name[0] = 0;
    if ((st = get_str(o, "model", name, sizeof name)) ||
        (name[0] && (st = model_ParseKind(name, &j->model.kind))))
        return st;
    name[0] = 0;
    if ((st = get_str(o, "optimizer", name, sizeof name)) ||
        (name[0] && (st = optim_ParseKind(name, &j->optim.kind))))
        return st;
    name[0] = 0;
    if ((st = get_str(o, "aggregator", name, sizeof name)) ||
        (name[0] && (st = agg_ParseKind(name, &j->agg.kind))))
        return st;
    return SP_OK;
}

static spStatus get_hidden(const cJSON *o, job_config *j)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hidden");
    if (!h)
        return SP_OK;
    int n = cJSON_GetArraySize(h);
    if (!cJSON_IsArray(h) || n > MODEL_MAX_HIDDEN)
        return sp_Error(SP_ERR_INVALID, "job.hidden: expected an array of at most %d sizes",
                        MODEL_MAX_HIDDEN);
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(h, i);
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65536)
            return sp_Error(SP_ERR_INVALID, "job.hidden[%d]: expected a size in [1, 65536]", i);
        j->model.hidden[i] = (int)v->valuedouble;
    }
    j->model.n_hidden = n;
    return SP_OK;
}

static spStatus get_attack(const cJSON *o, attack_config *a)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "attack");
    if (!x)
        return SP_OK;
    if (!cJSON_IsObject(x))
        return sp_Error(SP_ERR_INVALID, "job.attack: expected an object");
    char kind[32] = "";
    spStatus st;
    if ((st = get_str(x, "kind", kind, sizeof kind)) ||
        (kind[0] && (st = attack_ParseKind(kind, &a->kind))) ||
        (st = get_int(x, "attackers_count", 0, JOB_MAX_WORKERS, &a->count)) ||
        (st = get_float(x, "scale", &a->scale)) || (st = get_float(x, "sigma", &a->sigma)))
        return sp_Wrap(st, "job.attack");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(x, "attackers");
    if (!l)
        return SP_OK;
    int n = cJSON_GetArraySize(l);
    if (!cJSON_IsArray(l) || n > ATTACK_MAX_LISTED)
        return sp_Error(SP_ERR_INVALID, "job.attack.attackers: expected at most %d peer indices",
                        ATTACK_MAX_LISTED);
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(l, i);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < JOB_MAX_WORKERS) ||
            v->valuedouble != floor(v->valuedouble))
            return sp_Error(SP_ERR_INVALID, "job.attack.attackers[%d]: expected a peer index", i);
        a->listed[i] = (int)v->valuedouble;
        for (int k = 0; k < i; k++)
            if (a->listed[k] == a->listed[i])
                return sp_Error(SP_ERR_INVALID, "job.attack.attackers: peer %d listed twice",
                                a->listed[i]);
    }
    a->n_listed = n;
    return SP_OK;
}

spStatus job_FromJson(const cJSON *o, job_config *j)
{
    if (!cJSON_IsObject(o))
        return sp_Error(SP_ERR_INVALID, "job: expected an object");
    char seed[32] = "";
    spStatus st;
    if ((st = get_str(o, "id", j->id, sizeof j->id)) || (st = get_kinds(o, j)) ||
        (st = get_hidden(o, j)) || (st = get_str(o, "dataset", j->dataset, sizeof j->dataset)) ||
        (st = get_long(o, "train_samples", &j->train_samples)) ||
        (st = get_long(o, "test_samples", &j->test_samples)) ||
        (st = get_int(o, "workers", 1, JOB_MAX_WORKERS, &j->workers)) ||
        (st = get_int(o, "minibatches", 1, JOB_MAX_MINIBATCHES, &j->minibatches)) ||
        (st = get_int(o, "epochs", 1, JOB_MAX_EPOCHS, &j->epochs)) ||
        (st = get_int(o, "batch", 1, JOB_MAX_BATCH, &j->batch)) ||
        (st = get_float(o, "lr", &j->optim.lr)) ||
        (st = get_float(o, "momentum", &j->optim.momentum)) ||
        (st = get_float(o, "weight_decay", &j->optim.weight_decay)) ||
        (st = get_int(o, "trim", 0, 1000, &j->agg.trim)) ||
        (st = get_int(o, "byzantine", 0, 1000, &j->agg.f)) ||
        (st = get_float(o, "significance", &j->significance)) ||
        (st = get_bool(o, "scale_in", &j->scale_in)) ||
        (st = get_int(o, "slack", 0, JOB_MAX_SLACK, &j->slack)) ||
        (st = get_bool(o, "sparse_input", &j->model.sparse)) ||
        (st = get_float(o, "target_loss", &j->target_loss)) ||
        (st = get_int(o, "sync_timeout_ms", 10, JOB_MAX_WAIT_MS, &j->sync_timeout_ms)) ||
        (st = get_int(o, "heartbeat_timeout_ms", 0, JOB_MAX_WAIT_MS, &j->heartbeat_timeout_ms)) ||
        (st = get_str(o, "seed", seed, sizeof seed)) || (st = get_attack(o, &j->attack)))
        return st;
    if (seed[0]) {
        char *end;
        unsigned long long s = strtoull(seed, &end, 10);
        if (*end)
            return sp_Error(SP_ERR_INVALID, "job.seed: expected a decimal integer string");
        j->seed = s;
    }
    return job_Validate(j);
}
