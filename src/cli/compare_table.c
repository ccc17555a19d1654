/* compare_table.c - the Markdown tables of a comparison. */
#include "cli/compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void human_bytes(double b, char *out, size_t cap)
{
    if (b >= 1e6)
        snprintf(out, cap, "%.2f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(out, cap, "%.1f kB", b / 1e3);
    else
        snprintf(out, cap, "%.0f B", b);
}

/* "12.34" or "not reached" (null), "-" without a target. */
static void fmt_reach(const cJSON *row, const char *key, const char *fmt, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    if (cJSON_IsNumber(v))
        snprintf(out, cap, fmt, v->valuedouble);
    else
        snprintf(out, cap, "%s", cJSON_IsNull(v) ? "not reached" : "-");
}

static void fmt_tail(const cJSON *row, char *out, size_t cap)
{
    if (!cJSON_GetObjectItemCaseSensitive(row, "iteration_p50_ms")) {
        snprintf(out, cap, "-");
        return;
    }
    snprintf(out, cap, "%.3g / %.3g%s", compare_Num(row, "iteration_p50_ms"), compare_Num(row, "iteration_p99_ms"),
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "slow_tail")) ? " **slow tail**"
                                                                               : "");
}

char *compare_Markdown(const cJSON *summary)
{
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
#define EMIT(...) len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, __VA_ARGS__)
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(summary, "job");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(summary, "target");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(summary, "architectures");
    EMIT("Job: model %s, %g workers, %g epoch(s), batch %g, lr %g, seed %g\n\n",
         compare_Str(job, "model"), compare_Num(job, "workers"), compare_Num(job, "epochs"), compare_Num(job, "batch"),
         compare_Num(job, "lr"), compare_Num(job, "seed"));
    EMIT("| architecture | time/epoch (s) | compute (s) | communication (s) | "
         "synchronization (s) | update (s) | bytes/worker/iteration | test accuracy | "
         "time to target (s) | iterations to target | iteration p50 / p99 (ms) |\n");
    EMIT("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        char bytes[32], secs[32], iters[32], tail[64];
        human_bytes(compare_Num(row, "bytes_per_worker_per_iteration"), bytes, sizeof bytes);
        fmt_reach(row, "seconds_to_target", "%.2f", secs, sizeof secs);
        fmt_reach(row, "iterations_to_target", "%.0f", iters, sizeof iters);
        fmt_tail(row, tail, sizeof tail);
        EMIT("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.4f | %s | %s | %s |\n",
             compare_Str(row, "arch"), compare_Num(row, "epoch_seconds"), compare_Num(row, "compute_seconds"),
             compare_Num(row, "communication_seconds"), compare_Num(row, "synchronization_seconds"),
             compare_Num(row, "update_seconds"), bytes, compare_Num(row, "test_accuracy"), secs, iters, tail);
    }
    if (target)
        EMIT("\nTarget: %s %s %g. Times are training time from the first iteration, "
             "evaluations excluded (as the reports' train_seconds).\n",
             compare_Str(target, "metric"), strcmp(compare_Str(target, "metric"), "loss") ? ">=" : "<=",
             compare_Num(target, "value"));
    EMIT("A run is flagged **slow tail** when its p99 iteration time exceeds %g x its "
         "median.\n\n", COMPARE_TAIL_RATIO);
    EMIT("| architecture | runs on | Redis | NATS | invocations | functions (USD) | "
         "databases (USD) | messaging (USD) | VM (USD) | total (USD) |\n");
    EMIT("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    cJSON_ArrayForEach(row, rows) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(row, "cost_breakdown_usd");
        EMIT("| %s | %s | %.0f | %.0f | %.0f | %.6f | %.6f | %.6f | %.6f | %.6f |\n",
             compare_Str(row, "arch"),
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "serverless")) ? "functions"
                                                                              : "one VM",
             compare_Num(row, "redis_instances"), compare_Num(row, "nats_instances"), compare_Num(row, "invocations"),
             compare_Num(b, "functions"), compare_Num(b, "databases"), compare_Num(b, "messaging"), compare_Num(b, "vm"),
             compare_Num(row, "cost_usd"));
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(summary, "cost_model");
    EMIT("\nCost: function GB-seconds x %g USD + invocations x %g USD per million, at %g GB per "
         "function; Redis instances x %g USD/hour, NATS servers x %g USD/hour, `single`'s VM "
         "x %g USD/hour, each instance for the run's training time.\n",
         compare_Num(c, "price_gb_second"), compare_Num(c, "price_per_million_requests"), compare_Num(c, "memory_gb"),
         compare_Num(c, "price_redis_hour"), compare_Num(c, "price_nats_hour"), compare_Num(c, "price_vm_hour"));
#undef EMIT
    if (len >= cap) {
        free(buf);
        return NULL;
    }
    return buf;
}

spStatus compare_WriteMarkdown(const char *path, const cJSON *summary)
{
    char *md = compare_Markdown(summary);
    if (!md)
        return sp_Error(SP_ERR_NOMEM, "cannot render the comparison table");
    FILE *f = fopen(path, "w");
    int ok = f && fputs(md, f) >= 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    free(md);
    return ok ? SP_OK : sp_Error(SP_ERR_IO, "cannot write %s", path);
}
