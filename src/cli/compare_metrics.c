/* compare_metrics.c - the numbers a comparison derives from run reports:
 * what a run used and cost, when it reached a target, whether its
 * iteration times have a slow tail. No I/O. */
#include "cli/compare.h"

#include <math.h>

#include "job/job.h"

double compare_Num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *compare_Str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

run_usage compare_Usage(const cJSON *report, const cost_model *m)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "details");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(report, "arch");
    arch_kind arch = ARCH_SINGLE;
    if (!cJSON_IsString(a) || job_ParseArch(a->valuestring, &arch))
        arch = ARCH_SINGLE;
    run_usage u = {.seconds = compare_Num(report, "train_seconds"),
                   .iterations = compare_Num(report, "iterations")};
    if (arch == ARCH_SINGLE)
        return u;
    u.serverless = 1;
    /* The shared database holds the dataset (and is every worker's
     * database but SPIRT's, whose peers each have their own). */
    u.redis_instances = 1 + (job_PerPeerDatabases(arch) ? (int)compare_Num(report, "workers") : 0);
    u.nats_instances = 1;
    u.gb_seconds = compare_Num(d, "invocation_seconds") * m->memory_gb;
    u.invocations = compare_Num(d, "invocations");
    return u;
}

cost_split compare_Cost(const cost_model *m, const run_usage *u)
{
    double hours = u->seconds / 3600.0;
    cost_split c = {0};
    if (u->serverless) {
        c.functions = u->gb_seconds * m->price_gb_second +
                      u->invocations / 1e6 * m->price_per_million;
        c.databases = u->redis_instances * hours * m->price_redis_hour;
        c.messaging = u->nats_instances * hours * m->price_nats_hour;
    } else {
        c.vm = hours * m->price_vm_hour;
    }
    c.total = c.functions + c.databases + c.messaging + c.vm;
    return c;
}

double compare_CostAt(const cost_split *c, const run_usage *u, double t, double it)
{
    double by_time = u->seconds > 0 ? fmin(t / u->seconds, 1.0) : 1.0;
    double by_iter = u->iterations > 0 ? fmin(it / u->iterations, 1.0) : 1.0;
    return c->functions * by_iter + (c->databases + c->messaging + c->vm) * by_time;
}

target_reach compare_ToTarget(const cJSON *history, const char *key, double target, int below)
{
    target_reach r = {0};
    const cJSON *pt;
    cJSON_ArrayForEach(pt, history) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, key);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(pt, "t");
        if (!cJSON_IsNumber(v) || !cJSON_IsNumber(t) || !isfinite(v->valuedouble))
            continue;
        int hit = below ? v->valuedouble <= target : v->valuedouble >= target;
        if (hit && (!r.reached || t->valuedouble < r.seconds)) {
            r.reached = 1;
            r.seconds = t->valuedouble;
            r.iteration = compare_Num(pt, "iteration");
        }
    }
    return r;
}

int compare_SlowTail(double p50, double p99)
{
    return p50 > 0 && p99 > COMPARE_TAIL_RATIO * p50;
}
