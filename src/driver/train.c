/* train.c - dispatch and the pieces every architecture shares. */
#include "driver/train.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows scored per call when evaluating. */
#define TRAIN_EVAL_CHUNK 500

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
    spec->sparse = dataset_IsSparse(train);
    return SP_OK;
}

int train_SparseRows(const job_config *job)
{
    int linear = job->model.kind == MODEL_SVM || job->model.kind == MODEL_LOGREG;
    return linear && job->arch != ARCH_MLLESS && dataset_IsLibsvmPath(job->dataset);
}

/* Where evaluation reads rows from: a dense model expands a sparse
 * dataset's rows into x, a sparse model reads a dense dataset's non-zeros
 * through batch; otherwise the dataset's own arrays serve. */
typedef struct {
    uint32_t seq[TRAIN_EVAL_CHUNK]; /* 0, 1, 2, ...: a chunk's rows from its first */
    int32_t y[TRAIN_EVAL_CHUNK];
    float *x;
    dataset_batch batch;
} eval_bufs;

/* Rows off .. off+b-1 of d scored by m. */
static spStatus eval_Chunk(model *m, const float *params, const dataset *d, size_t off, int b,
                           eval_bufs *e, float *loss, int *correct)
{
    if (!model_IsSparse(m)) {
        const float *x = d->x + off * d->dim;
        if (dataset_IsSparse(d)) {
            dataset_Gather(d, off, e->seq, b, e->x, e->y);
            x = e->x;
        }
        return model_Evaluate(m, params, x, d->y + off, b, loss, correct);
    }
    csr_rows rows;
    if (dataset_IsSparse(d)) {
        rows = dataset_Rows(d, off, (size_t)b);
    } else {
        spStatus st = dataset_GatherSparse(d, off, e->seq, b, &e->batch, &rows, e->y);
        if (st)
            return st;
    }
    return model_SparseEvaluate(m, params, &rows, d->y + off, loss, correct);
}

spStatus train_Evaluate(model *m, const float *params, const dataset *d, float *loss,
                        float *accuracy)
{
    const int chunk = TRAIN_EVAL_CHUNK;
    double loss_sum = 0;
    long correct = 0;
    eval_bufs *e = calloc(1, sizeof *e);
    if (!e)
        return sp_Error(SP_ERR_NOMEM, "out of memory for evaluation");
    for (int i = 0; i < chunk; i++)
        e->seq[i] = (uint32_t)i;
    spStatus st = SP_OK;
    if (!model_IsSparse(m) && dataset_IsSparse(d) &&
        !(e->x = malloc(sizeof *e->x * (size_t)chunk * d->dim)))
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %d expanded rows of %zu features", chunk,
                      d->dim);
    for (size_t off = 0; st == SP_OK && off < d->n; off += chunk) {
        int b = (int)(d->n - off < (size_t)chunk ? d->n - off : (size_t)chunk);
        float l;
        int c;
        if ((st = eval_Chunk(m, params, d, off, b, e, &l, &c)))
            break;
        loss_sum += (double)l * b;
        correct += c;
    }
    free(e->x);
    dataset_BatchFree(&e->batch);
    free(e);
    if (st)
        return st;
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

static int dbl_Cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void train_IterationTimes(cJSON *d, double *v, long n)
{
    cJSON *o = cJSON_AddObjectToObject(d, "iteration_ms");
    if (n > 0)
        qsort(v, (size_t)n, sizeof *v, dbl_Cmp);
    const struct {
        const char *name;
        double q;
    } at[] = {{"p50", 0.50}, {"p99", 0.99}, {"max", 1.0}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        long k = (long)(at[i].q * (double)n + 0.999999) - 1;
        k = k < 0 ? 0 : k >= n ? n - 1 : k;
        cJSON_AddNumberToObject(o, at[i].name, n ? (double)(long long)(v[k] * 1000 + 0.5) / 1000
                                                 : 0);
    }
    cJSON_AddNumberToObject(o, "count", (double)n);
}
