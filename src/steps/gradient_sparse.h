/* gradient_sparse.h - the gradient step of a sparse model (svm, logreg on
 * sparse rows; gradient.c hands the request over). */
#ifndef SPIRT_GRADIENT_SPARSE_H
#define SPIRT_GRADIENT_SPARSE_H

#include "steps/step_ctx.h"

/* Minibatch m's rows (sparse, from the shared Redis), only the parameter
 * rows they touch (from the peer's Redis), and the gradient of those rows
 * stored at key as a sparse tensor (WIRE_SPARSE_F32, every element of
 * every touched row listed, index row * classes + class) of the model's
 * parameter count. *loss and *rows answer like the dense step's. */
spStatus gradient_Sparse(step_ctx *c, store *shared, const char *key, float *loss,
                         size_t *rows);

#endif
