/* compare_table.c - derived numbers and the Markdown table of a comparison. */
#include "cli/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static cJSON *summary_Row(const cJSON *r, const cost_model *cost)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "details");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(d, "time_per_iteration_ms");
    double epochs = num(r, "epochs") > 0 ? num(r, "epochs") : 1;
    double iters_per_epoch = num(r, "iterations") / epochs;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "arch", str(r, "arch"));
    cJSON_AddNumberToObject(row, "workers", num(r, "workers"));
    cJSON_AddNumberToObject(row, "epoch_seconds", num(r, "train_seconds") / epochs);
    /* The per-iteration split, scaled to an epoch. */
    const char *names[] = {"compute", "communication", "synchronization", "update"};
    for (int i = 0; i < 4; i++) {
        char key[48];
        snprintf(key, sizeof key, "%s_seconds", names[i]);
        cJSON_AddNumberToObject(row, key, num(cats, names[i]) * iters_per_epoch / 1000.0);
    }
    cJSON_AddNumberToObject(row, "bytes_per_worker_per_iteration",
                            num(d, "bytes_per_worker_per_iteration"));
    cJSON_AddNumberToObject(row, "test_accuracy", num(r, "test_accuracy"));
    cJSON_AddNumberToObject(row, "final_loss", num(r, "final_loss"));
    double gbs = num(d, "invocation_seconds") * cost->memory_gb;
    double inv = num(d, "invocations");
    cJSON_AddNumberToObject(row, "invocations", inv);
    cJSON_AddNumberToObject(row, "gb_seconds", gbs);
    cJSON_AddNumberToObject(row, "cost_usd",
                            gbs * cost->price_gb_second + inv / 1e6 * cost->price_per_million);
    return row;
}

cJSON *compare_Summarize(cJSON *const *reports, int n, const cost_model *cost)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *c = cJSON_AddObjectToObject(s, "cost_model");
    cJSON_AddNumberToObject(c, "price_gb_second", cost->price_gb_second);
    cJSON_AddNumberToObject(c, "price_per_million_requests", cost->price_per_million);
    cJSON_AddNumberToObject(c, "memory_gb", cost->memory_gb);
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
        cJSON_AddItemToArray(rows, summary_Row(reports[i], cost));
    return s;
}

static void human_bytes(double b, char *out, size_t cap)
{
    if (b >= 1e6)
        snprintf(out, cap, "%.2f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(out, cap, "%.1f kB", b / 1e3);
    else
        snprintf(out, cap, "%.0f B", b);
}

char *compare_Markdown(const cJSON *summary)
{
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
#define EMIT(...) len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, __VA_ARGS__)
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(summary, "job");
    EMIT("Job: model %s, %g workers, %g epoch(s), batch %g, lr %g, seed %g\n\n",
         str(job, "model"), num(job, "workers"), num(job, "epochs"), num(job, "batch"),
         num(job, "lr"), num(job, "seed"));
    EMIT("| architecture | time/epoch (s) | compute (s) | communication (s) | "
         "synchronization (s) | update (s) | bytes/worker/iteration | test accuracy | "
         "invocations | est. cost (USD) |\n");
    EMIT("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(summary, "architectures")) {
        char bytes[32];
        human_bytes(num(row, "bytes_per_worker_per_iteration"), bytes, sizeof bytes);
        EMIT("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.4f | %.0f | %.6f |\n",
             str(row, "arch"), num(row, "epoch_seconds"), num(row, "compute_seconds"),
             num(row, "communication_seconds"), num(row, "synchronization_seconds"),
             num(row, "update_seconds"), bytes, num(row, "test_accuracy"),
             num(row, "invocations"), num(row, "cost_usd"));
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(summary, "cost_model");
    EMIT("\nCost: function GB-seconds x %g USD + invocations x %g USD per million, "
         "at %g GB per function.\n",
         num(c, "price_gb_second"), num(c, "price_per_million_requests"), num(c, "memory_gb"));
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
