/* model_internal.h - what model.c shares with the per-kind files
 * (dense_models.c, cnn.c, sparse_linear.c). Not part of the public API.
 *
 * model.c owns validation of the call arguments, the loss, chunking of large
 * batches and scratch growth; a kind only maps a chunk of inputs to logits
 * (forward) and the logits' gradient back to parameter gradients (backward),
 * using scratch laid out by itself as a pure function of the chunk size. */
#ifndef SPIRT_MODEL_INTERNAL_H
#define SPIRT_MODEL_INTERNAL_H

#include "ml/model.h"

/* What checking and sizing a kind's spec needs, apart from its compute
 * (model_ops): a binary that only checks specs (every step's request
 * parser) links none of the kinds' math, nor OpenBLAS. */
typedef struct model_spec_ops {
    /* Kind-specific spec checks (model.c has already checked the common fields). */
    spStatus (*check)(const model_spec *s);
    size_t (*param_count)(const model_spec *s);
} model_spec_ops;

typedef struct model_ops {
    void (*init)(const model_spec *s, float *params, uint64_t seed);
    /* Floats of scratch needed to forward+backward n samples. */
    size_t (*scratch_floats)(const model_spec *s, int n);
    /* Returns the n x classes logits, stored inside scratch. */
    float *(*forward)(model *m, const float *params, const float *x, int n);
    /* dlogits (n x classes, already scaled) sit where forward put the logits.
     * accumulate=0 overwrites grad, 1 adds to it (later chunks of a batch). */
    void (*backward)(model *m, const float *params, const float *x, int n, float *grad,
                     int accumulate);
    /* Largest chunk one pass handles: bounds scratch memory for big batches. */
    int chunk;
    /* Sparse linear kinds (model.h): forward and backward are NULL. */
    int sparse;
} model_ops;

/* sparse_linear.c: the n x classes scores of CSR rows x against parameter
 * rows w (an entry's row: local[k - x->ptr[0]], or its column when local is
 * NULL) plus the bias row; and the gradient of n_rows parameter rows (the
 * bias row last, as csr_Touch lays them out) from the scores' gradient,
 * overwriting grad. */
void linear_Logits(const float *w, const float *bias, const csr_rows *x, const uint32_t *local,
                   int classes, float *logits);
void linear_Backward(const csr_rows *x, const uint32_t *local, int classes,
                     const float *dlogits, size_t n_rows, float *grad);

struct model {
    model_spec spec;
    const model_ops *ops;
    size_t nparams;
    float *scratch;          /* 64-byte aligned */
    size_t scratch_floats;   /* current capacity */
};

extern const model_spec_ops logreg_spec_ops;
extern const model_spec_ops mlp_spec_ops;
extern const model_spec_ops cnn_spec_ops;
extern const model_spec_ops svm_spec_ops;
extern const model_ops logreg_ops;
extern const model_ops mlp_ops;
extern const model_ops cnn_ops;
extern const model_ops sparse_logreg_ops;
extern const model_ops svm_ops;

#endif
