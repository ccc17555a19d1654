/* bench_models.c - single-process training throughput and accuracy of the
 * spirt models (src/ml) on a real dataset; the C side of
 * scripts/bench_torch.py. Not part of the build: compile by hand against a
 * build tree, e.g.
 *
 *   cc -O2 -Isrc scripts/bench_models.c build/libspirt_core.a \
 *      $(pkg-config --libs openblas zlib) -lm -lpthread -o /tmp/bench_models
 *
 *   /tmp/bench_models --model mlp --samples 60000          # throughput only
 *   /tmp/bench_models --model cnn --epochs 5 --optim momentum --lr 0.01
 *
 * Throughput mode times minibatch gather + forward/backward + optimizer
 * step and prints {"model":..., "samples_per_second":...}; epoch mode also
 * prints test accuracy after every epoch. It switches OpenBLAS to its best
 * kernels for the CPU (ml/blas_tune.h) unless SPIRT_BLAS_TUNE=0; the JSON
 * names the kernel set ("blas_core") and OPENBLAS_NUM_THREADS applies. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/dataset.h"
#include "ml/blas_tune.h"
#include "ml/model.h"
#include "ml/optim.h"

typedef struct {
    const char *model, *hidden, *optim, *data;
    int batch, epochs;
    long samples;
    float lr, momentum, wd;
    unsigned long seed;
} bench_opts;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int parse_Args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){"mlp", "128", "sgd", "fashion-mnist", 64, 0, 0, 0.05f, -1.0f, 0.0f, 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--hidden")) o->hidden = v;
        else if (!strcmp(a, "--optim")) o->optim = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--samples")) o->samples = atol(v);
        else if (!strcmp(a, "--lr")) o->lr = (float)atof(v);
        else if (!strcmp(a, "--momentum")) o->momentum = (float)atof(v);
        else if (!strcmp(a, "--wd")) o->wd = (float)atof(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoul(v, NULL, 10);
        else return -1;
    }
    if (o->batch <= 0 || (o->epochs <= 0 && o->samples <= 0))
        return -1;
    return 0;
}

static int fail(const char *what, spStatus st)
{
    fprintf(stderr, "bench_models: %s: %s (%s)\n", what, sp_LastError(), sp_StatusName(st));
    return 1;
}

int main(int argc, char **argv)
{
    /* Best OpenBLAS kernels for this CPU (SPIRT_BLAS_TUNE=0 keeps its own). */
    blas_ReexecTuned(argv);
    bench_opts o;
    if (parse_Args(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_models [--model mlp|cnn|logreg] [--hidden 128] "
                        "[--optim sgd|momentum|adam] [--lr F] [--momentum F] [--wd F] "
                        "[--batch N] (--epochs E | --samples N) [--seed S] [--data NAME]\n");
        return 2;
    }
    dataset train, test;
    spStatus st = dataset_Open(o.data, &train, &test);
    if (st != SP_OK)
        return fail("loading data", st);

    model_spec spec;
    memset(&spec, 0, sizeof spec);
    if ((st = model_ParseKind(o.model, &spec.kind)) != SP_OK)
        return fail("model", st);
    spec.in_c = train.c;
    spec.in_h = train.h;
    spec.in_w = train.w;
    if (spec.kind != MODEL_CNN) {
        spec.in_c = spec.in_h = 1;
        spec.in_w = (int)train.dim;
    }
    spec.classes = train.classes;
    if (spec.kind == MODEL_MLP && (st = model_ParseHidden(o.hidden, &spec)) != SP_OK)
        return fail("hidden sizes", st);
    model *m;
    if ((st = model_Create(&spec, &m)) != SP_OK)
        return fail("model", st);

    optim_config oc;
    optim_kind ok;
    if ((st = optim_ParseKind(o.optim, &ok)) != SP_OK)
        return fail("optimizer", st);
    optim_Defaults(&oc, ok);
    oc.lr = o.lr;
    oc.weight_decay = o.wd;
    if (o.momentum >= 0.0f)
        oc.momentum = o.momentum;

    size_t np = model_ParamCount(m), dim = train.dim;
    float *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g);
    float *state = calloc((size_t)optim_StateFactor(&oc) * np + 1, sizeof *state);
    float *x = malloc((size_t)o.batch * dim * sizeof *x);
    int32_t *y = malloc((size_t)o.batch * sizeof *y);
    uint32_t *perm = malloc(train.n * sizeof *perm);
    if (!p || !g || !state || !x || !y || !perm) {
        fprintf(stderr, "bench_models: out of memory\n");
        return 1;
    }
    model_Init(m, p, o.seed);

    long steps_per_epoch = (long)(train.n / (size_t)o.batch);
    long total_steps = o.samples > 0 ? o.samples / o.batch : steps_per_epoch * o.epochs;
    long step = 0;
    double busy = 0.0;
    float loss = 0.0f;
    for (long epoch = 0; step < total_steps; epoch++) {
        dataset_EpochOrder(train.n, o.seed, epoch, 0, perm);
        double t0 = now_s();
        long k;
        for (k = 0; k < steps_per_epoch && step < total_steps; k++, step++) {
            dataset_Gather(&train, 0, perm + (size_t)k * (size_t)o.batch, o.batch, x, y);
            if ((st = model_LossGrad(m, p, x, y, o.batch, g, &loss)) != SP_OK)
                return fail("training step", st);
            optim_Step(&oc, np, p, g, state, step + 1);
        }
        double dt = now_s() - t0;
        busy += dt;
        if (o.epochs > 0) {
            float tl;
            int correct;
            if ((st = model_Evaluate(m, p, test.x, test.y, (int)test.n, &tl, &correct)) != SP_OK)
                return fail("evaluating", st);
            printf("{\"epoch\":%ld,\"train_loss\":%.4f,\"test_loss\":%.4f,"
                   "\"test_accuracy\":%.4f,\"samples_per_second\":%.1f}\n",
                   epoch + 1, loss, tl, (double)correct / (double)test.n,
                   (double)k * o.batch / dt);
            fflush(stdout);
        }
    }
    printf("{\"model\":\"%s\",\"samples_per_second\":%.1f,\"batch\":%d,\"optim\":\"%s\","
           "\"lr\":%g,\"momentum\":%g,\"final_loss\":%.4f,\"blas_core\":\"%s\","
           "\"blas_threads\":%d}\n",
           o.model, (double)step * o.batch / busy, o.batch, o.optim, oc.lr, oc.momentum, loss,
           openblas_get_corename(), openblas_get_num_threads());
    free(p);
    free(g);
    free(state);
    free(x);
    free(y);
    free(perm);
    model_Destroy(m);
    dataset_Free(&train);
    dataset_Free(&test);
    return 0;
}
