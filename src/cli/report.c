/* report.c - the run report as JSON. */
#include "cli/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The robust rule and the injected attack, so a report of an experiment
 * says what was attacked and how it was defended. */
static void report_Byzantine(cJSON *r, const job_config *job)
{
    if (job->arch == ARCH_SPIRT)
        cJSON_AddStringToObject(r, "aggregator", agg_KindName(job->agg.kind));
    if (job->attack.kind == ATTACK_NONE)
        return;
    const attack_config *a = &job->attack;
    cJSON *x = cJSON_AddObjectToObject(r, "attack");
    cJSON_AddStringToObject(x, "kind", attack_KindName(a->kind));
    cJSON *l = cJSON_AddArrayToObject(x, "attackers");
    for (int p = 0; p < job->workers; p++)
        if (attack_IsAttacker(a, p, job->workers))
            cJSON_AddItemToArray(l, cJSON_CreateNumber(p));
    if (a->kind == ATTACK_SIGN_FLIP)
        cJSON_AddNumberToObject(x, "scale", a->scale);
    if (a->kind == ATTACK_GAUSSIAN)
        cJSON_AddNumberToObject(x, "sigma", a->sigma);
}

cJSON *report_Build(const job_config *job, const train_result *res)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "arch", job_ArchName(job->arch));
    cJSON_AddStringToObject(r, "job_id", job->id);
    cJSON_AddStringToObject(r, "model", model_KindName(job->model.kind));
    cJSON_AddStringToObject(r, "dataset", job->dataset);
    cJSON_AddNumberToObject(r, "workers", job->workers);
    cJSON_AddNumberToObject(r, "minibatches", job->minibatches);
    cJSON_AddNumberToObject(r, "epochs", res->epochs_run);
    cJSON_AddNumberToObject(r, "batch", job->batch);
    cJSON_AddNumberToObject(r, "lr", job->optim.lr);
    cJSON_AddStringToObject(r, "optimizer", optim_KindName(job->optim.kind));
    cJSON_AddNumberToObject(r, "momentum", job->optim.momentum);
    cJSON_AddNumberToObject(r, "seed", (double)job->seed);
    report_Byzantine(r, job);
    cJSON_AddNumberToObject(r, "iterations", (double)res->iterations);
    cJSON_AddNumberToObject(r, "samples", (double)res->samples);
    cJSON_AddNumberToObject(r, "setup_seconds", res->setup_seconds);
    cJSON_AddNumberToObject(r, "train_seconds", res->train_seconds);
    cJSON_AddNumberToObject(r, "test_accuracy", res->test_accuracy);
    cJSON_AddNumberToObject(r, "test_loss", res->test_loss);
    cJSON_AddNumberToObject(r, "final_loss", res->final_loss);
    cJSON_AddNumberToObject(r, "samples_per_second", res->samples_per_second);
    if (res->details)
        cJSON_AddItemToObject(r, "details", cJSON_Duplicate(res->details, 1));
    if (res->history)
        cJSON_AddItemToObject(r, "history", cJSON_Duplicate(res->history, 1));
    return r;
}

spStatus report_Check(const char *path)
{
    /* report_Write creates path.tmp and renames it to path: if that file
     * can be created now, the report can be written at the end. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sp_Error(SP_ERR_INVALID, "--report %s: is a directory", path);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return sp_Error(SP_ERR_INVALID, "--report %s: cannot write there: %s", path,
                        strerror(errno));
    close(fd);
    unlink(tmp);
    return SP_OK;
}

spStatus report_Write(const char *path, const cJSON *report)
{
    char *text = cJSON_Print(report);
    if (!text)
        return sp_Error(SP_ERR_NOMEM, "cannot render the report");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(text);
        return sp_Error(SP_ERR_IO, "cannot write report %s: %m", tmp);
    }
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return sp_Error(SP_ERR_IO, "cannot write report %s", path);
    }
    return SP_OK;
}
