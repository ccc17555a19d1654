/* logreg.c - softmax (multinomial logistic) regression: one dense layer
 * straight into softmax. Hidden sizes in the spec are ignored. */
#include "ml/layers.h"
#include "ml/model_internal.h"

static void logreg_Stack(const model_spec *s, dense_stack *d)
{
    d->n_layers = 1;
    d->sizes[0] = s->in_c * s->in_h * s->in_w;
    d->sizes[1] = s->classes;
}

static spStatus logreg_Check(const model_spec *s)
{
    (void)s;
    return SP_OK;
}

static size_t logreg_ParamCount(const model_spec *s)
{
    dense_stack d;
    logreg_Stack(s, &d);
    return dense_ParamCount(&d);
}

static void logreg_Init(const model_spec *s, float *params, uint64_t seed)
{
    dense_stack d;
    logreg_Stack(s, &d);
    dense_Init(&d, params, seed, 1);
}

static size_t logreg_ScratchFloats(const model_spec *s, int n)
{
    dense_stack d;
    logreg_Stack(s, &d);
    return dense_ScratchFloats(&d, n);
}

static float *logreg_Forward(model *m, const float *params, const float *x, int n)
{
    dense_stack d;
    logreg_Stack(&m->spec, &d);
    return dense_Forward(&d, params, x, n, m->scratch);
}

static void logreg_Backward(model *m, const float *params, const float *x, int n, float *grad,
                            int accumulate)
{
    dense_stack d;
    logreg_Stack(&m->spec, &d);
    dense_Backward(&d, params, x, n, m->scratch, grad, accumulate, NULL);
}

const model_ops logreg_ops = {
    .check = logreg_Check,
    .param_count = logreg_ParamCount,
    .init = logreg_Init,
    .scratch_floats = logreg_ScratchFloats,
    .forward = logreg_Forward,
    .backward = logreg_Backward,
    .chunk = 1024,
};
