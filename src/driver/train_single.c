/* train_single.c - the reference: one process, no distribution.
 *
 * Every distributed architecture is measured against this loop, so it uses
 * the same data order (shard 0 of 1), model, init and optimizer code. */
#include "driver/train.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/tensor.h"
#include "ml/optim.h"

typedef struct {
    model *m;
    float *params, *grad, *state, *x;
    int32_t *y;
    uint32_t *order;
    /* sparse models: the batch, its touched rows and their parameters */
    dataset_batch batch;
    csr_touched touched;
    float *w;
    double *iter_ms; /* each step's wall time, for details.iteration_ms */
} single_state;

static void single_Free(single_state *s)
{
    model_Destroy(s->m);
    free(s->params);
    free(s->grad);
    free(s->state);
    free(s->x);
    free(s->y);
    free(s->order);
    dataset_BatchFree(&s->batch);
    csr_TouchedFree(&s->touched);
    free(s->w);
    free(s->iter_ms);
}

static spStatus single_Alloc(single_state *s, const model_spec *spec, const job_config *job,
                             const dataset *train)
{
    spStatus st = model_Create(spec, &s->m);
    if (st)
        return st;
    size_t p = model_ParamCount(s->m);
    int sf = optim_StateFactor(&job->optim);
    s->params = tensor_Alloc(p);
    s->grad = tensor_Alloc(p);
    s->state = tensor_Alloc(sf ? (size_t)sf * p : 1);
    /* A dense model reads a batch of expanded rows; a sparse one at most
     * every parameter row. */
    if (model_IsSparse(s->m))
        s->w = tensor_Alloc(p);
    else
        s->x = tensor_Alloc((size_t)job->batch * train->dim);
    s->y = malloc(sizeof(int32_t) * (size_t)job->batch);
    s->order = malloc(sizeof(uint32_t) * (train->n ? train->n : 1));
    if (!s->params || !s->grad || !s->state || !(s->x || s->w) || !s->y || !s->order)
        return sp_Error(SP_ERR_NOMEM, "out of memory for a model of %zu parameters", p);
    model_Init(s->m, s->params, job->seed);
    return SP_OK;
}

/* One step of a sparse model: the batch's rows, the parameter rows they
 * touch, their gradient, and the update of those rows alone. */
static spStatus single_SparseStep(single_state *s, const job_config *job, const dataset *train,
                                  const uint32_t *idx, int b, long step, float *loss)
{
    csr_rows x;
    spStatus st = dataset_GatherSparse(train, 0, idx, b, &s->batch, &x, s->y);
    if (st || (st = csr_Touch(&x, (uint32_t)train->dim, &s->touched)))
        return st;
    const csr_touched *t = &s->touched;
    size_t k = (size_t)model_Spec(s->m)->classes;
    for (size_t i = 0; i < t->n_cols; i++)
        memcpy(s->w + i * k, s->params + (size_t)t->cols[i] * k, k * sizeof *s->w);
    if ((st = model_SparseLossGrad(s->m, s->w, &x, t, s->y, s->grad, loss)))
        return st;
    optim_StepRows(&job->optim, model_ParamCount(s->m), k, s->params, t->cols, t->n_cols,
                   s->grad, s->state, step);
    return SP_OK;
}

/* One step of a dense model over expanded rows. */
static spStatus single_DenseStep(single_state *s, const job_config *job, const dataset *train,
                                 const uint32_t *idx, int b, long step, float *loss)
{
    dataset_Gather(train, 0, idx, b, s->x, s->y);
    spStatus st = model_LossGrad(s->m, s->params, s->x, s->y, b, s->grad, loss);
    if (st == SP_OK)
        optim_Step(&job->optim, model_ParamCount(s->m), s->params, s->grad, s->state, step);
    return st;
}

spStatus train_Single(const job_config *job, const train_observer *obs, train_result *res)
{
    double t0 = clock_Now();
    dataset train = {0}, test = {0};
    model_spec spec;
    single_state s = {0};
    spStatus st = train_OpenData(job, &train, &test, &spec);
    if (st == SP_OK)
        st = single_Alloc(&s, &spec, job, &train);
    if (st)
        goto out;
    res->setup_seconds = clock_Now() - t0;

    /* Only full batches, as every distributed architecture runs them: a
     * last partial batch would be one more, noisier step than theirs (a
     * 32-sample remainder at batch 256 costs the final model points of test
     * accuracy), and the comparison would not be on equal terms. */
    job_config one = *job;
    one.workers = one.minibatches = 1;
    long iters;
    if ((st = job_ItersPerEpoch(&one, train.n, &iters)))
        goto out;
    if (!(s.iter_ms = malloc(sizeof *s.iter_ms * (size_t)(iters * job->epochs)))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    double start = clock_Now();
    float smooth = -1;
    long step = 0;
    double eval_seconds = 0; /* excluded from training time */
    float tl, acc;
    for (int epoch = 1; epoch <= job->epochs; epoch++) {
        dataset_EpochOrder(train.n, job->seed, epoch, 0, s.order);
        for (long it = 0; it < iters; it++) {
            size_t off = (size_t)it * (size_t)job->batch;
            int b = job->batch;
            float loss;
            double s0 = clock_Now();
            ++step;
            st = model_IsSparse(s.m)
                     ? single_SparseStep(&s, job, &train, s.order + off, b, step, &loss)
                     : single_DenseStep(&s, job, &train, s.order + off, b, step, &loss);
            if (st)
                goto out;
            s.iter_ms[step - 1] = (clock_Now() - s0) * 1000;
            smooth = smooth < 0 ? loss : 0.95f * smooth + 0.05f * loss;
            res->samples += b;
            if (obs && obs->on_iteration)
                obs->on_iteration(obs->ctx, epoch, it + 1, iters, smooth, res->samples);
            if (it % 50 == 0)
                train_RecordPoint(res, clock_Now() - start - eval_seconds, epoch, step, smooth, -1);
            /* --eval-every: a point on the curve inside the epoch (its end has one anyway) */
            if (job->eval_every > 0 && step % job->eval_every == 0 && it + 1 < iters) {
                double e0 = clock_Now(), t = e0 - start - eval_seconds;
                if ((st = train_Evaluate(s.m, s.params, &test, &tl, &acc)))
                    goto out;
                eval_seconds += clock_Now() - e0;
                train_RecordPoint(res, t, epoch, step, smooth, acc);
            }
        }
        double train_time = clock_Now() - start - eval_seconds, e0 = clock_Now();
        if ((st = train_Evaluate(s.m, s.params, &test, &tl, &acc)))
            goto out;
        eval_seconds += clock_Now() - e0;
        res->epochs_run = epoch;
        res->test_accuracy = acc;
        res->test_loss = tl;
        train_RecordPoint(res, train_time, epoch, step, smooth, acc);
        if (obs && obs->on_epoch)
            obs->on_epoch(obs->ctx, epoch, acc, tl, train_time);
        if (job->target_loss > 0 && smooth < job->target_loss) {
            train_Notify(obs, "training loss %.4f below target %.4f: stopping", smooth,
                         job->target_loss);
            break;
        }
    }
    res->iterations = step;
    train_IterationTimes(res->details, s.iter_ms, step);
    res->final_loss = smooth;
    res->train_seconds = clock_Now() - start - eval_seconds;
    res->samples_per_second = res->train_seconds > 0 ? res->samples / res->train_seconds : 0;
out:
    single_Free(&s);
    dataset_Free(&train);
    dataset_Free(&test);
    return st;
}
