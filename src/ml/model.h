/* model.h - models on one flat float32 parameter vector.
 *
 * A model object holds only shapes and scratch buffers; parameters and
 * gradients live in caller-owned flat vectors whose layer order is fixed by
 * the model, so they can be stored, averaged and updated anywhere (Redis,
 * another process) as plain float32 blobs. A model object is not thread-safe:
 * give each thread its own (they are cheap; scratch grows on demand). */
#ifndef SPIRT_MODEL_H
#define SPIRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/csr.h"
#include "core/status.h"

typedef enum { MODEL_LOGREG = 1, MODEL_MLP = 2, MODEL_CNN = 3, MODEL_SVM = 4 } model_kind;

#define MODEL_MAX_HIDDEN 8

typedef struct {
    model_kind kind;
    int in_c, in_h, in_w;        /* input shape; dense inputs use c=1,h=1,w=dim */
    int classes;
    int n_hidden;                /* MLP hidden layer count */
    int hidden[MODEL_MAX_HIDDEN];/* MLP hidden sizes; CNN: unused (fixed LeNet) */
    int sparse;                  /* logreg: inputs are sparse rows (below); svm always is */
} model_spec;

typedef struct model model;

/* Parses "logreg" | "mlp" | "cnn" | "svm" (SP_ERR_INVALID otherwise). */
spStatus model_ParseKind(const char *name, model_kind *out);
const char *model_KindName(model_kind k);
/* Parses a hidden-size list "128" or "256,128" into spec->hidden. */
spStatus model_ParseHidden(const char *list, model_spec *spec);

/* Validates the spec (CNN needs h,w >= 12 and divisible shapes, etc). */
spStatus model_Create(const model_spec *spec, model **out);
void model_Destroy(model *m);
/* Checks the spec as model_Create does and gives the parameter count of its
 * model, without creating one (nor linking any model's compute code). */
spStatus model_SpecParamCount(const model_spec *spec, size_t *out);

size_t model_ParamCount(const model *m);
const model_spec *model_Spec(const model *m);
size_t model_InputDim(const model *m);

/* Deterministic init from a seed (He/Xavier-style scaling, zero biases). */
void model_Init(const model *m, float *params, uint64_t seed);

/* Forward + backward over a batch. x: b rows of model_InputDim floats,
 * y: b labels in [0, classes). Writes the mean-over-batch gradient into grad
 * (overwritten, model_ParamCount floats) and the mean cross-entropy into
 * *loss. Labels out of range are SP_ERR_INVALID. */
spStatus model_LossGrad(model *m, const float *params, const float *x, const int32_t *y,
                        int b, float *grad, float *loss);

/* Forward only: mean loss and number of correct argmax predictions. */
spStatus model_Evaluate(model *m, const float *params, const float *x, const int32_t *y,
                        int b, float *loss, int *correct);

/* ---- sparse linear models ----
 *
 * svm (multi-class hinge) and logreg on sparse inputs (spec.sparse) read
 * CSR rows (core/csr.h) and keep one parameter row per feature: (dim + 1)
 * rows of `classes` floats, row j feature j's weight to every class, row
 * dim the bias (zero-initialised). A batch needs and changes only the rows
 * of the features it holds and the bias row, so the two calls below work
 * on those rows alone, in the order of csr_Touch(x, dim, t): t->cols. The
 * dense calls above answer SP_ERR_INVALID for these models. */
int model_IsSparse(const model *m);
/* The same from a spec alone: svm, or logreg with spec.sparse. */
int model_SpecIsSparse(const model_spec *spec);
/* w: t->n_cols rows of `classes` floats, parameter rows t->cols; x's entries
 * are read through t->local. Writes the mean gradient over the batch into
 * grad (the same shape as w, overwritten) and the mean loss (cross-entropy
 * or hinge) into *loss. */
spStatus model_SparseLossGrad(model *m, const float *w, const csr_rows *x,
                              const csr_touched *t, const int32_t *y, float *grad, float *loss);
/* Forward over the whole parameter vector: mean loss and correct argmax
 * predictions of x.n rows. */
spStatus model_SparseEvaluate(model *m, const float *params, const csr_rows *x,
                              const int32_t *y, float *loss, int *correct);

#endif
