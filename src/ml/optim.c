/* optim.c - SGD, heavy-ball momentum and Adam on flat vectors. */
#include "ml/optim.h"
#include "core/names.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/kernels.h"

static const sp_name kinds[] = {{OPTIM_SGD, "sgd"}, {OPTIM_MOMENTUM, "momentum"},
                                {OPTIM_ADAM, "adam"}};

spStatus optim_ParseKind(const char *name, optim_kind *out)
{
    if (!name || !out)
        return sp_Error(SP_ERR_INVALID, "optimizer: missing name");
    int v;
    if (names_Find(kinds, NAMES_COUNT(kinds), name, 1, &v)) {
        *out = (optim_kind)v;
        return SP_OK;
    }
    return sp_Error(SP_ERR_INVALID, "unknown optimizer \"%s\" (want sgd, momentum or adam)",
                    name);
}

const char *optim_KindName(optim_kind k) { return names_Of(kinds, NAMES_COUNT(kinds), k); }

void optim_Defaults(optim_config *c, optim_kind k)
{
    memset(c, 0, sizeof *c);
    c->kind = k;
    c->lr = 0.05f;
    if (k == OPTIM_MOMENTUM)
        c->momentum = 0.9f;
    if (k == OPTIM_ADAM) {
        /* Adam's step is ~lr per coordinate regardless of gradient scale,
         * so the SGD default of 0.05 would blow a model up; 1e-3 is the
         * usual choice. */
        c->lr = 0.001f;
        c->beta1 = 0.9f;
        c->beta2 = 0.999f;
        c->eps = 1e-8f;
    }
}

int optim_StateFactor(const optim_config *c)
{
    switch (c->kind) {
    case OPTIM_SGD: return c->momentum > 0.0f ? 1 : 0;
    case OPTIM_MOMENTUM: return 1;
    case OPTIM_ADAM: return 2;
    }
    return 0;
}

/* SGD and momentum are the kernels the Redis module and the client-side
 * store update run too (core/kernels.h): a single-process run updates
 * bit-for-bit like the distributed ones. */

static void step_Sgd(const optim_config *c, size_t n, float *w, const float *g)
{
    kern_Sgd(w, g, n, c->lr, c->weight_decay);
}

/* Heavy ball: v = mu*v + (g + wd*w); w -= lr*v. */
static void step_Momentum(const optim_config *c, size_t n, float *w, const float *g, float *v)
{
    kern_SgdMomentum(w, g, v, n, c->lr, c->momentum, c->weight_decay);
}

/* m and v: the first and second moments of w's n floats. */
static void step_Adam(const optim_config *c, size_t n, float *w, const float *g, float *m,
                      float *v, long step)
{
    const float b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
    if (step < 1)
        step = 1;
    /* Bias correction folded into the step size and epsilon:
     * lr * mhat / (sqrt(vhat) + eps) with mhat = m/bc1, vhat = v/bc2. */
    const double bc1 = 1.0 - pow((double)b1, (double)step);
    const double bc2 = 1.0 - pow((double)b2, (double)step);
    const float a = (float)((double)c->lr / bc1);
    const float rbc2 = (float)(1.0 / sqrt(bc2));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= a * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

void optim_Step(const optim_config *c, size_t n, float *params, const float *grad,
                float *state, long step)
{
    switch (c->kind) {
    case OPTIM_SGD:
        if (c->momentum > 0.0f)
            step_Momentum(c, n, params, grad, state);
        else
            step_Sgd(c, n, params, grad);
        return;
    case OPTIM_MOMENTUM:
        step_Momentum(c, n, params, grad, state);
        return;
    case OPTIM_ADAM:
        step_Adam(c, n, params, grad, state, state + n, step);
        return;
    }
}

void optim_StepRows(const optim_config *c, size_t n, size_t width, float *params,
                    const uint32_t *rows, size_t k, const float *grad, float *state, long step)
{
    int sf = optim_StateFactor(c);
    for (size_t i = 0; i < k; i++) {
        size_t at = (size_t)rows[i] * width;
        const float *g = grad + i * width;
        if (c->kind == OPTIM_ADAM)
            step_Adam(c, width, params + at, g, state + at, state + n + at, step);
        else if (sf)
            step_Momentum(c, width, params + at, g, state + at);
        else
            step_Sgd(c, width, params + at, g);
    }
}
