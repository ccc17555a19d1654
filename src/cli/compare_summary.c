/* compare_summary.c - the comparison's JSON summary: a row per run with
 * its time split, time to target, iteration-time tail and whole cost. */
#include "cli/compare.h"

#include <stdio.h>

static void add_reach(cJSON *row, const cJSON *r, const compare_target *target)
{
    if (!target->key)
        return;
    target_reach at = compare_ToTarget(cJSON_GetObjectItemCaseSensitive(r, "history"),
                                       target->key, target->value, target->below);
    cJSON_AddItemToObject(row, "seconds_to_target",
                          at.reached ? cJSON_CreateNumber(at.seconds) : cJSON_CreateNull());
    cJSON_AddItemToObject(row, "iterations_to_target",
                          at.reached ? cJSON_CreateNumber(at.iteration) : cJSON_CreateNull());
}

static void add_cost(cJSON *row, const cJSON *r, const cost_model *cost)
{
    run_usage u = compare_Usage(r, cost);
    cost_split c = compare_Cost(cost, &u);
    cJSON_AddBoolToObject(row, "serverless", u.serverless);
    cJSON_AddNumberToObject(row, "invocations", u.invocations);
    cJSON_AddNumberToObject(row, "gb_seconds", u.gb_seconds);
    cJSON_AddNumberToObject(row, "redis_instances", u.redis_instances);
    cJSON_AddNumberToObject(row, "nats_instances", u.nats_instances);
    cJSON *b = cJSON_AddObjectToObject(row, "cost_breakdown_usd");
    cJSON_AddNumberToObject(b, "functions", c.functions);
    cJSON_AddNumberToObject(b, "databases", c.databases);
    cJSON_AddNumberToObject(b, "messaging", c.messaging);
    cJSON_AddNumberToObject(b, "vm", c.vm);
    cJSON_AddNumberToObject(row, "cost_usd", c.total);
}

/* The p50 / p99 iteration times (details.iteration_ms), flagged when the
 * tail is long; absent from a report without them. */
static void add_tail(cJSON *row, const cJSON *r)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "details");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(d, "iteration_ms");
    if (!cJSON_IsObject(it))
        return;
    cJSON_AddNumberToObject(row, "iteration_p50_ms", compare_Num(it, "p50"));
    cJSON_AddNumberToObject(row, "iteration_p99_ms", compare_Num(it, "p99"));
    cJSON_AddBoolToObject(row, "slow_tail", compare_SlowTail(compare_Num(it, "p50"), compare_Num(it, "p99")));
}

static cJSON *summary_Row(const cJSON *r, const cost_model *cost, const compare_target *target)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "details");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(d, "time_per_iteration_ms");
    double epochs = compare_Num(r, "epochs") > 0 ? compare_Num(r, "epochs") : 1;
    double iters_per_epoch = compare_Num(r, "iterations") / epochs;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "arch", compare_Str(r, "arch"));
    cJSON_AddNumberToObject(row, "workers", compare_Num(r, "workers"));
    cJSON_AddNumberToObject(row, "epoch_seconds", compare_Num(r, "train_seconds") / epochs);
    /* The per-iteration split, scaled to an epoch. */
    const char *names[] = {"compute", "communication", "synchronization", "update"};
    for (int i = 0; i < 4; i++) {
        char key[48];
        snprintf(key, sizeof key, "%s_seconds", names[i]);
        cJSON_AddNumberToObject(row, key, compare_Num(cats, names[i]) * iters_per_epoch / 1000.0);
    }
    cJSON_AddNumberToObject(row, "bytes_per_worker_per_iteration",
                            compare_Num(d, "bytes_per_worker_per_iteration"));
    cJSON_AddNumberToObject(row, "test_accuracy", compare_Num(r, "test_accuracy"));
    cJSON_AddNumberToObject(row, "final_loss", compare_Num(r, "final_loss"));
    cJSON_AddNumberToObject(row, "iterations", compare_Num(r, "iterations"));
    add_reach(row, r, target);
    add_tail(row, r);
    add_cost(row, r, cost);
    return row;
}

cJSON *compare_Summarize(cJSON *const *reports, int n, const cost_model *cost,
                         const compare_target *target)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(s, "cost_model");
    const struct {
        const char *key;
        double value;
    } prices[] = {{"price_gb_second", cost->price_gb_second},
                  {"price_per_million_requests", cost->price_per_million},
                  {"memory_gb", cost->memory_gb},
                  {"price_redis_hour", cost->price_redis_hour},
                  {"price_nats_hour", cost->price_nats_hour},
                  {"price_vm_hour", cost->price_vm_hour}};
    for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++)
        cJSON_AddNumberToObject(c, prices[i].key, prices[i].value);
    if (target->key) {
        cJSON *t = cJSON_AddObjectToObject(s, "target");
        cJSON_AddStringToObject(t, "metric", target->key);
        cJSON_AddNumberToObject(t, "value", target->value);
    }
    if (n > 0) {
        cJSON *job = cJSON_AddObjectToObject(s, "job");
        const char *keys[] = {"model", "dataset", "workers", "minibatches", "epochs", "batch",
                              "lr", "seed"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(reports[0], keys[i]);
            if (v)
                cJSON_AddItemToObject(job, keys[i], cJSON_Duplicate(v, 1));
        }
    }
    cJSON *rows = cJSON_AddArrayToObject(s, "architectures");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(rows, summary_Row(reports[i], cost, target));
    return s;
}
