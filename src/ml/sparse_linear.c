/* sparse_linear.c - the linear models on sparse rows (model.h): logreg
 * (softmax) on sparse inputs and svm (multi-class hinge), one parameter row
 * of `classes` floats per feature and a bias row last. model.c checks the
 * arguments and applies the loss; this file maps rows to scores and score
 * gradients back to parameter rows, touching only the rows a batch holds. */
#include <string.h>

#include "ml/model_internal.h"

static size_t linear_ParamCount(const model_spec *s)
{
    return ((size_t)s->in_c * (size_t)s->in_h * (size_t)s->in_w + 1) * (size_t)s->classes;
}

static spStatus svm_Check(const model_spec *s)
{
    (void)s;
    return SP_OK;
}

/* Zero: the loss is convex, and a feature never seen stays exactly 0. */
static void linear_Init(const model_spec *s, float *params, uint64_t seed)
{
    (void)seed;
    memset(params, 0, linear_ParamCount(s) * sizeof *params);
}

static size_t linear_ScratchFloats(const model_spec *s, int n)
{
    return (size_t)n * (size_t)s->classes;
}

void linear_Logits(const float *w, const float *bias, const csr_rows *x, const uint32_t *local,
                   int classes, float *logits)
{
    size_t base = x->ptr[0];
    for (size_t i = 0; i < x->n; i++) {
        float *out = logits + i * (size_t)classes;
        memcpy(out, bias, sizeof *out * (size_t)classes);
        for (size_t k = x->ptr[i]; k < x->ptr[i + 1]; k++) {
            size_t row = local ? local[k - base] : x->col[k];
            const float *wr = w + row * (size_t)classes;
            float v = x->val[k];
            for (int c = 0; c < classes; c++)
                out[c] += v * wr[c];
        }
    }
}

void linear_Backward(const csr_rows *x, const uint32_t *local, int classes,
                     const float *dlogits, size_t n_rows, float *grad)
{
    size_t base = x->ptr[0];
    memset(grad, 0, sizeof *grad * n_rows * (size_t)classes);
    float *gbias = grad + (n_rows - 1) * (size_t)classes;
    for (size_t i = 0; i < x->n; i++) {
        const float *d = dlogits + i * (size_t)classes;
        for (int c = 0; c < classes; c++)
            gbias[c] += d[c];
        for (size_t k = x->ptr[i]; k < x->ptr[i + 1]; k++) {
            float *gr = grad + (size_t)local[k - base] * (size_t)classes;
            float v = x->val[k];
            for (int c = 0; c < classes; c++)
                gr[c] += v * d[c];
        }
    }
}

const model_spec_ops svm_spec_ops = {svm_Check, linear_ParamCount};

const model_ops sparse_logreg_ops = {
    .init = linear_Init,
    .scratch_floats = linear_ScratchFloats,
    .chunk = 65536,
    .sparse = 1,
};

const model_ops svm_ops = {
    .init = linear_Init,
    .scratch_floats = linear_ScratchFloats,
    .chunk = 65536,
    .sparse = 1,
};
