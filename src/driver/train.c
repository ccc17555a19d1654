/* train.c - dispatch and the pieces every architecture shares. */
#include "driver/train.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

spStatus train_Check(const job_config *job)
{
    spStatus st = job_Validate(job);
    if (st || job->arch == ARCH_SINGLE)
        return st;
    return train_CheckDistributed(job);
}

spStatus train_Run(const job_config *job, const train_observer *obs, train_result *res)
{
    memset(res, 0, sizeof *res);
    res->details = cJSON_CreateObject();
    res->history = cJSON_CreateArray();
    spStatus st = train_Check(job);
    if (st)
        return st;
    if (job->arch == ARCH_SINGLE)
        return train_Single(job, obs, res);
    return train_Distributed(job, obs, res);
}

void train_ResultFree(train_result *res)
{
    cJSON_Delete(res->details);
    cJSON_Delete(res->history);
    res->details = res->history = NULL;
}

static void limit_rows(dataset *d, long limit)
{
    if (limit > 0 && (size_t)limit < d->n)
        d->n = (size_t)limit;
}

spStatus train_OpenData(const job_config *job, dataset *train, dataset *test, model_spec *spec)
{
    spStatus st = dataset_Open(job->dataset, train, test);
    if (st)
        return st;
    limit_rows(train, job->train_samples);
    limit_rows(test, job->test_samples);
    *spec = job->model;
    spec->in_c = train->c;
    spec->in_h = train->h;
    spec->in_w = train->w;
    spec->classes = train->classes > test->classes ? train->classes : test->classes;
    return SP_OK;
}

spStatus train_Evaluate(model *m, const float *params, const dataset *d, float *loss,
                        float *accuracy)
{
    const int chunk = 500;
    double loss_sum = 0;
    long correct = 0;
    for (size_t off = 0; off < d->n; off += chunk) {
        int b = (int)(d->n - off < (size_t)chunk ? d->n - off : (size_t)chunk);
        float l;
        int c;
        spStatus st = model_Evaluate(m, params, d->x + off * d->dim, d->y + off, b, &l, &c);
        if (st)
            return st;
        loss_sum += (double)l * b;
        correct += c;
    }
    *loss = d->n ? (float)(loss_sum / (double)d->n) : 0.0f;
    *accuracy = d->n ? (float)correct / (float)d->n : 0.0f;
    return SP_OK;
}

void train_Notify(const train_observer *o, const char *fmt, ...)
{
    if (!o || !o->on_event)
        return;
    char msg[SP_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->on_event(o->ctx, msg);
}

void train_RecordPoint(train_result *res, double t, int epoch, long iteration, float loss,
                       float acc)
{
    if (!res->history)
        return;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "t", t);
    cJSON_AddNumberToObject(p, "epoch", epoch);
    cJSON_AddNumberToObject(p, "iteration", (double)iteration);
    cJSON_AddNumberToObject(p, "loss", loss);
    if (acc >= 0)
        cJSON_AddNumberToObject(p, "test_accuracy", acc);
    cJSON_AddItemToArray(res->history, p);
}
