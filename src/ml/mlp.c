/* mlp.c - multilayer perceptron: dense layers with ReLU between them. */
#include "ml/layers.h"
#include "ml/model_internal.h"

/* Widest hidden layer accepted: keeps every n x width product far from
 * int overflow in the BLAS calls. */
#define MLP_MAX_WIDTH 65536

static void mlp_Stack(const model_spec *s, dense_stack *d)
{
    d->n_layers = s->n_hidden + 1;
    d->sizes[0] = s->in_c * s->in_h * s->in_w;
    for (int i = 0; i < s->n_hidden; i++)
        d->sizes[i + 1] = s->hidden[i];
    d->sizes[s->n_hidden + 1] = s->classes;
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

static size_t mlp_ParamCount(const model_spec *s)
{
    dense_stack d;
    mlp_Stack(s, &d);
    return dense_ParamCount(&d);
}

static void mlp_Init(const model_spec *s, float *params, uint64_t seed)
{
    dense_stack d;
    mlp_Stack(s, &d);
    dense_Init(&d, params, seed, 1);
}

static size_t mlp_ScratchFloats(const model_spec *s, int n)
{
    dense_stack d;
    mlp_Stack(s, &d);
    return dense_ScratchFloats(&d, n);
}

static float *mlp_Forward(model *m, const float *params, const float *x, int n)
{
    dense_stack d;
    mlp_Stack(&m->spec, &d);
    return dense_Forward(&d, params, x, n, m->scratch);
}

static void mlp_Backward(model *m, const float *params, const float *x, int n, float *grad,
                         int accumulate)
{
    dense_stack d;
    mlp_Stack(&m->spec, &d);
    /* No input gradient: nothing upstream of the first layer learns. */
    dense_Backward(&d, params, x, n, m->scratch, grad, accumulate, NULL);
}

const model_ops mlp_ops = {
    .check = mlp_Check,
    .param_count = mlp_ParamCount,
    .init = mlp_Init,
    .scratch_floats = mlp_ScratchFloats,
    .forward = mlp_Forward,
    .backward = mlp_Backward,
    .chunk = 1024,
};
