/* train.h - running a training job, whatever its architecture.
 *
 * train_Run dispatches on job->arch: `single` trains in this process; the
 * distributed architectures run their workflow through the executor. Progress
 * flows out through an observer so the CLI (progress bar), `spirt compare`
 * (curves) and tests see the same events. */
#ifndef SPIRT_TRAIN_H
#define SPIRT_TRAIN_H

#include <cJSON.h>

#include "core/status.h"
#include "data/dataset.h"
#include "job/job.h"
#include "ml/model.h"

typedef struct {
    /* After each iteration: epoch (1-based), iteration within the epoch
     * (1-based) of iters_per_epoch, smoothed training loss, samples so far. */
    void (*on_iteration)(void *ctx, int epoch, long iter, long iters_per_epoch, float loss,
                         long samples_done);
    /* After each epoch's evaluation on the test set. */
    void (*on_epoch)(void *ctx, int epoch, float test_accuracy, float test_loss,
                     double elapsed_s);
    /* Notable events (failed peer, fallback to client-side averaging ...). */
    void (*on_event)(void *ctx, const char *message);
    void *ctx;
} train_observer;

typedef struct {
    double train_seconds;       /* wall time of the training loop (no setup) */
    double setup_seconds;       /* starting servers, loading data, init */
    float test_accuracy;
    float test_loss;
    float final_loss;           /* smoothed training loss at the end */
    double samples_per_second;  /* training samples processed / train_seconds */
    long iterations;
    long samples;
    int epochs_run;
    /* Architecture-specific report fields (step timings, bytes moved, failed
     * peers, ...) and the curve: [{"t","epoch","iteration","loss"[,"test_accuracy"]}]. */
    cJSON *details;
    cJSON *history;
} train_result;

/* Everything about the job that can be checked before anything starts:
 * the fields (job_Validate) and how they combine with the architecture and
 * with running services (--resume, --kill-peer, --peers ...). Its failures
 * are the user's to fix (SP_ERR_INVALID naming the options); train_Run
 * checks the same first. */
spStatus train_Check(const job_config *job);
spStatus train_Run(const job_config *job, const train_observer *obs, train_result *res);
void train_ResultFree(train_result *res);

/* Shared by every architecture: open the job's dataset (applying the sample
 * limits) and build the model spec that fits it. */
spStatus train_OpenData(const job_config *job, dataset *train, dataset *test, model_spec *spec);
/* 1 when a distributed job trains a sparse model on sparse rows: svm, or
 * logreg on a LibSVM file, with any --arch but mlless (whose exchange steps
 * are dense: logreg trains there on expanded rows). */
int train_SparseRows(const job_config *job);
/* Mean loss and accuracy of params on a dataset, in batches. */
spStatus train_Evaluate(model *m, const float *params, const dataset *d, float *loss,
                        float *accuracy);

/* Observer helpers that tolerate NULL callbacks. */
void train_Notify(const train_observer *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends one point to res->history. acc < 0 means "no evaluation here". */
void train_RecordPoint(train_result *res, double t, int epoch, long iteration, float loss,
                       float acc);

/* details.iteration_ms: p50 / p99 / max of iteration wall times v[0..n-1]
 * (ms, sorted in place; nearest rank) and their count - a mean hides the
 * one iteration that waited 30 s. */
void train_IterationTimes(cJSON *details, double *v, long n);

/* Per-architecture entry points (driver/train_<arch>.c). */
spStatus train_Single(const job_config *job, const train_observer *obs, train_result *res);
spStatus train_Distributed(const job_config *job, const train_observer *obs, train_result *res);
spStatus train_CheckDistributed(const job_config *job);

#endif
