/* optim.h - optimizers applied to a flat parameter vector.
 *
 * State (momentum / Adam moments) is a flat vector too, so SPIRT can keep it
 * inside a peer's Redis next to the parameters. */
#ifndef SPIRT_OPTIM_H
#define SPIRT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum { OPTIM_SGD = 1, OPTIM_MOMENTUM = 2, OPTIM_ADAM = 3 } optim_kind;

typedef struct {
    optim_kind kind;
    float lr;
    float momentum;      /* OPTIM_MOMENTUM (and SGD if > 0) */
    float weight_decay;  /* L2 added to the gradient: g += wd * w */
    float beta1, beta2, eps; /* Adam */
} optim_config;

spStatus optim_ParseKind(const char *name, optim_kind *out);
const char *optim_KindName(optim_kind k);
/* Fills defaults: lr 0.05, momentum 0.9 for OPTIM_MOMENTUM, Adam 0.9/0.999/1e-8. */
void optim_Defaults(optim_config *c, optim_kind k);

/* Floats of state the optimizer needs per parameter (0, 1 or 2). */
int optim_StateFactor(const optim_config *c);

/* One step: params -= update(grad). `state` has optim_StateFactor(c) * n
 * floats (zero-initialised before the first step); `step` counts from 1
 * (Adam's bias correction). grad is not modified. */
void optim_Step(const optim_config *c, size_t n, float *params, const float *grad,
                float *state, long step);

/* optim_Step on some rows of the parameter vector (n floats, rows of
 * `width`): row rows[i] takes grad + i*width, rows absent from the list and
 * their state stay as they are ("lazy" momentum, weight decay and Adam: a
 * row moves only on the steps whose gradient touches it, as the sparse
 * models' updates are defined everywhere in spirt). Rows must be distinct. */
void optim_StepRows(const optim_config *c, size_t n, size_t width, float *params,
                    const uint32_t *rows, size_t k, const float *grad, float *state, long step);

#endif
