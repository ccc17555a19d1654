/* dense_models.c - the models that are a stack of dense layers:
 *   logreg  softmax (multinomial logistic) regression: one dense layer
 *           straight into softmax (hidden sizes in the spec are ignored);
 *   mlp     dense layers with ReLU between them.
 * Both run on layers.c's dense stack; they differ only in its shape. */
#include "ml/layers.h"
#include "ml/model_internal.h"

/* Widest hidden layer accepted: keeps every n x width product far from
 * int overflow in the BLAS calls. */
#define MLP_MAX_WIDTH 65536

static void dense_StackOf(const model_spec *s, dense_stack *d)
{
    int hidden = s->kind == MODEL_MLP ? s->n_hidden : 0;
    d->n_layers = hidden + 1;
    d->sizes[0] = s->in_c * s->in_h * s->in_w;
    for (int i = 0; i < hidden; i++)
        d->sizes[i + 1] = s->hidden[i];
    d->sizes[hidden + 1] = s->classes;
}

static spStatus logreg_Check(const model_spec *s)
{
    (void)s;
    return SP_OK;
}

static spStatus mlp_Check(const model_spec *s)
{
    if (s->n_hidden < 1 || s->n_hidden > MODEL_MAX_HIDDEN)
        return sp_Error(SP_ERR_INVALID, "mlp needs 1..%d hidden layers, got %d",
                        MODEL_MAX_HIDDEN, s->n_hidden);
    for (int i = 0; i < s->n_hidden; i++)
        if (s->hidden[i] < 1 || s->hidden[i] > MLP_MAX_WIDTH)
            return sp_Error(SP_ERR_INVALID, "mlp hidden layer %d has size %d (want 1..%d)", i,
                            s->hidden[i], MLP_MAX_WIDTH);
    return SP_OK;
}

static size_t dense_ModelParamCount(const model_spec *s)
{
    dense_stack d;
    dense_StackOf(s, &d);
    return dense_ParamCount(&d);
}

static void dense_ModelInit(const model_spec *s, float *params, uint64_t seed)
{
    dense_stack d;
    dense_StackOf(s, &d);
    dense_Init(&d, params, seed, 1);
}

static size_t dense_ModelScratchFloats(const model_spec *s, int n)
{
    dense_stack d;
    dense_StackOf(s, &d);
    return dense_ScratchFloats(&d, n);
}

static float *dense_ModelForward(model *m, const float *params, const float *x, int n)
{
    dense_stack d;
    dense_StackOf(&m->spec, &d);
    return dense_Forward(&d, params, x, n, m->scratch);
}

static void dense_ModelBackward(model *m, const float *params, const float *x, int n,
                                float *grad, int accumulate)
{
    dense_stack d;
    dense_StackOf(&m->spec, &d);
    /* No input gradient: nothing upstream of the first layer learns. */
    dense_Backward(&d, params, x, n, m->scratch, grad, accumulate, NULL);
}

const model_spec_ops logreg_spec_ops = {logreg_Check, dense_ModelParamCount};
const model_spec_ops mlp_spec_ops = {mlp_Check, dense_ModelParamCount};

const model_ops logreg_ops = {
    .init = dense_ModelInit,
    .scratch_floats = dense_ModelScratchFloats,
    .forward = dense_ModelForward,
    .backward = dense_ModelBackward,
    .chunk = 1024,
};

const model_ops mlp_ops = {
    .init = dense_ModelInit,
    .scratch_floats = dense_ModelScratchFloats,
    .forward = dense_ModelForward,
    .backward = dense_ModelBackward,
    .chunk = 1024,
};
