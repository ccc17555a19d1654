/* model.c - the model API: spec parsing and validation, parameter init,
 * argument checks, the loss, and chunked forward/backward over the kinds in
 * dense_models.c (logreg, mlp) and cnn.c; sparse_linear.c has the sparse
 * linear models' calls. */
#include "ml/model.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ml/layers.h"
#include "ml/model_internal.h"

#define MODEL_MAX_CLASSES 65536
#define MODEL_MAX_INPUT (1 << 24)
#define MODEL_MAX_PARAMS ((size_t)1 << 30)
#define MODEL_MAX_HIDDEN_SIZE 65536

/* Names and shapes only: the compute (ops_For) is referenced by
 * model_Create alone, so checking a spec links no model's math. */
static const struct {
    model_kind kind;
    const char *name;
    const model_spec_ops *spec_ops;
} kinds[] = {
    {MODEL_LOGREG, "logreg", &logreg_spec_ops},
    {MODEL_MLP, "mlp", &mlp_spec_ops},
    {MODEL_CNN, "cnn", &cnn_spec_ops},
    {MODEL_SVM, "svm", &svm_spec_ops},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

spStatus model_ParseKind(const char *name, model_kind *out)
{
    if (!name || !out)
        return sp_Error(SP_ERR_INVALID, "model kind: missing name");
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcasecmp(name, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return SP_OK;
        }
    return sp_Error(SP_ERR_INVALID, "unknown model \"%s\" (want logreg, mlp, cnn or svm)", name);
}

const char *model_KindName(model_kind k)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "unknown";
}

spStatus model_ParseHidden(const char *list, model_spec *spec)
{
    if (!list || !spec)
        return sp_Error(SP_ERR_INVALID, "hidden sizes: missing list");
    int sizes[MODEL_MAX_HIDDEN], n = 0;
    const char *p = list;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!isdigit((unsigned char)*p))
            return sp_Error(SP_ERR_INVALID, "hidden sizes \"%s\": expected a number at offset %d",
                            list, (int)(p - list));
        errno = 0;
        char *end;
        long v = strtol(p, &end, 10);
        if (errno || v < 1 || v > MODEL_MAX_HIDDEN_SIZE)
            return sp_Error(SP_ERR_INVALID, "hidden sizes \"%s\": size out of range 1..%d", list,
                            MODEL_MAX_HIDDEN_SIZE);
        if (n == MODEL_MAX_HIDDEN)
            return sp_Error(SP_ERR_INVALID, "hidden sizes \"%s\": more than %d layers", list,
                            MODEL_MAX_HIDDEN);
        sizes[n++] = (int)v;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return sp_Error(SP_ERR_INVALID, "hidden sizes \"%s\": unexpected '%c'", list, *p);
        p++;
    }
    spec->n_hidden = n;
    memcpy(spec->hidden, sizes, (size_t)n * sizeof(int));
    return SP_OK;
}

static const model_ops *ops_For(const model_spec *s)
{
    switch (s->kind) {
    case MODEL_LOGREG: return s->sparse ? &sparse_logreg_ops : &logreg_ops;
    case MODEL_MLP: return &mlp_ops;
    case MODEL_CNN: return &cnn_ops;
    case MODEL_SVM: return &svm_ops;
    }
    return NULL;
}

static const model_spec_ops *spec_OpsFor(model_kind k)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].spec_ops;
    return NULL;
}

/* Only the MLP has hidden layers; the others' sizes are ignored. Only the
 * linear models read sparse rows (svm always); the others read them
 * expanded. */
static void spec_Normalize(model_spec *s)
{
    if (s->kind != MODEL_MLP) {
        s->n_hidden = 0;
        memset(s->hidden, 0, sizeof s->hidden);
    }
    s->sparse = model_SpecIsSparse(s);
}

int model_SpecIsSparse(const model_spec *spec)
{
    return spec->kind == MODEL_SVM || (spec->kind == MODEL_LOGREG && spec->sparse);
}

static spStatus spec_Check(const model_spec *s)
{
    const model_spec_ops *sops = spec_OpsFor(s->kind);
    if (!sops)
        return sp_Error(SP_ERR_INVALID, "unknown model kind %d", (int)s->kind);
    if (s->in_c < 1 || s->in_h < 1 || s->in_w < 1 ||
        (long long)s->in_c * s->in_h * s->in_w > MODEL_MAX_INPUT)
        return sp_Error(SP_ERR_INVALID, "%s: bad input shape %dx%dx%d", model_KindName(s->kind),
                        s->in_c, s->in_h, s->in_w);
    if (s->classes < 2 || s->classes > MODEL_MAX_CLASSES)
        return sp_Error(SP_ERR_INVALID, "%s: classes must be in 2..%d, got %d",
                        model_KindName(s->kind), MODEL_MAX_CLASSES, s->classes);
    spStatus st = sops->check(s);
    if (st != SP_OK)
        return st;
    /* Bound the size so every product of widths stays well inside int/size_t. */
    size_t np = sops->param_count(s);
    if (np > MODEL_MAX_PARAMS)
        return sp_Error(SP_ERR_INVALID, "%s: %zu parameters is more than the %zu supported",
                        model_KindName(s->kind), np, MODEL_MAX_PARAMS);
    return SP_OK;
}

spStatus model_Create(const model_spec *spec, model **out)
{
    if (!spec || !out)
        return sp_Error(SP_ERR_INVALID, "model_Create: missing spec or output");
    spStatus st = spec_Check(spec);
    if (st != SP_OK)
        return st;
    model *m = calloc(1, sizeof *m);
    if (!m)
        return sp_Error(SP_ERR_NOMEM, "model_Create: out of memory");
    m->spec = *spec;
    spec_Normalize(&m->spec);
    m->ops = ops_For(&m->spec);
    m->nparams = spec_OpsFor(spec->kind)->param_count(&m->spec);
    *out = m;
    return SP_OK;
}

spStatus model_SpecParamCount(const model_spec *spec, size_t *out)
{
    if (!spec || !out)
        return sp_Error(SP_ERR_INVALID, "model_SpecParamCount: missing spec or output");
    spStatus st = spec_Check(spec);
    if (st != SP_OK)
        return st;
    model_spec s = *spec;
    spec_Normalize(&s);
    *out = spec_OpsFor(s.kind)->param_count(&s);
    return SP_OK;
}

void model_Destroy(model *m)
{
    if (!m)
        return;
    free(m->scratch);
    free(m);
}

size_t model_ParamCount(const model *m) { return m->nparams; }
int model_IsSparse(const model *m) { return m->ops->sparse; }
const model_spec *model_Spec(const model *m) { return &m->spec; }

size_t model_InputDim(const model *m)
{
    return (size_t)m->spec.in_c * (size_t)m->spec.in_h * (size_t)m->spec.in_w;
}

void model_Init(const model *m, float *params, uint64_t seed)
{
    m->ops->init(&m->spec, params, seed);
}

/* Grows the scratch to fit n samples; keeps the old buffer on failure. */
static spStatus scratch_Reserve(model *m, int n)
{
    size_t need = m->ops->scratch_floats(&m->spec, n);
    if (need <= m->scratch_floats)
        return SP_OK;
    size_t bytes = (need * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p)
        return sp_Error(SP_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch",
                        model_KindName(m->spec.kind), bytes);
    free(m->scratch);
    m->scratch = p;
    m->scratch_floats = need;
    return SP_OK;
}

static spStatus args_Check(model *m, const float *params, const float *x, const int32_t *y,
                           int b)
{
    if (!m || !params || !x || !y)
        return sp_Error(SP_ERR_INVALID, "model: missing params, inputs or labels");
    if (m->ops->sparse)
        return sp_Error(SP_ERR_INVALID, "%s reads sparse rows (model_SparseLossGrad)",
                        model_KindName(m->spec.kind));
    if (b <= 0)
        return sp_Error(SP_ERR_INVALID, "%s: batch size must be positive, got %d",
                        model_KindName(m->spec.kind), b);
    for (int i = 0; i < b; i++)
        if (y[i] < 0 || y[i] >= m->spec.classes)
            return sp_Error(SP_ERR_INVALID, "%s: label %d of sample %d is outside 0..%d",
                            model_KindName(m->spec.kind), (int)y[i], i, m->spec.classes - 1);
    int chunk = b < m->ops->chunk ? b : m->ops->chunk;
    return scratch_Reserve(m, chunk);
}

spStatus model_LossGrad(model *m, const float *params, const float *x, const int32_t *y,
                        int b, float *grad, float *loss)
{
    if (!grad || !loss)
        return sp_Error(SP_ERR_INVALID, "model_LossGrad: missing grad or loss output");
    spStatus st = args_Check(m, params, x, y, b);
    if (st != SP_OK)
        return st;
    size_t dim = model_InputDim(m);
    double total = 0.0;
    /* Every chunk's dlogits carry 1/b, so the chunks' summed gradients are
     * the mean over the whole batch. */
    float scale = 1.0f / (float)b;
    for (int off = 0; off < b; off += m->ops->chunk) {
        int n = b - off < m->ops->chunk ? b - off : m->ops->chunk;
        const float *xc = x + (size_t)off * dim;
        float *logits = m->ops->forward(m, params, xc, n);
        total += layer_SoftmaxXent(logits, y + off, n, m->spec.classes, scale, NULL);
        m->ops->backward(m, params, xc, n, grad, off > 0);
    }
    *loss = (float)(total / b);
    return SP_OK;
}

spStatus model_Evaluate(model *m, const float *params, const float *x, const int32_t *y,
                        int b, float *loss, int *correct)
{
    spStatus st = args_Check(m, params, x, y, b);
    if (st != SP_OK)
        return st;
    size_t dim = model_InputDim(m);
    double total = 0.0;
    int hits = 0;
    for (int off = 0; off < b; off += m->ops->chunk) {
        int n = b - off < m->ops->chunk ? b - off : m->ops->chunk, h;
        float *logits = m->ops->forward(m, params, x + (size_t)off * dim, n);
        total += layer_SoftmaxXent(logits, y + off, n, m->spec.classes, 0.0f, &h);
        hits += h;
    }
    if (loss)
        *loss = (float)(total / b);
    if (correct)
        *correct = hits;
    return SP_OK;
}

/* ---- sparse linear models ---- */

/* The model's loss over n rows of logits (see layer_SoftmaxXent). */
static double sparse_Loss(const model *m, float *logits, const int32_t *y, int n, float scale,
                          int *correct)
{
    if (m->spec.kind == MODEL_SVM)
        return layer_MulticlassHinge(logits, y, n, m->spec.classes, scale, correct);
    return layer_SoftmaxXent(logits, y, n, m->spec.classes, scale, correct);
}

static spStatus sparse_Args(model *m, const float *w, const csr_rows *x, const int32_t *y)
{
    if (!m || !w || !x || !y)
        return sp_Error(SP_ERR_INVALID, "model: missing params, inputs or labels");
    if (!m->ops->sparse)
        return sp_Error(SP_ERR_INVALID, "%s reads dense rows (model_LossGrad)",
                        model_KindName(m->spec.kind));
    if (x->n == 0 || x->n > (size_t)m->ops->chunk)
        return sp_Error(SP_ERR_INVALID, "%s: batch size must be in 1..%d, got %zu",
                        model_KindName(m->spec.kind), m->ops->chunk, x->n);
    for (size_t i = 0; i < x->n; i++)
        if (y[i] < 0 || y[i] >= m->spec.classes)
            return sp_Error(SP_ERR_INVALID, "%s: label %d of sample %zu is outside 0..%d",
                            model_KindName(m->spec.kind), (int)y[i], i, m->spec.classes - 1);
    return scratch_Reserve(m, (int)x->n);
}

spStatus model_SparseLossGrad(model *m, const float *w, const csr_rows *x,
                              const csr_touched *t, const int32_t *y, float *grad, float *loss)
{
    if (!t || !grad || !loss)
        return sp_Error(SP_ERR_INVALID, "model_SparseLossGrad: missing rows, grad or loss");
    spStatus st = sparse_Args(m, w, x, y);
    if (st || (st = csr_Check(x, model_InputDim(m))))
        return st;
    if (t->n_cols == 0 || t->cols[t->n_cols - 1] != model_InputDim(m))
        return sp_Error(SP_ERR_INVALID, "model_SparseLossGrad: the touched rows must end with "
                                        "the bias row %zu", model_InputDim(m));
    int n = (int)x->n, k = m->spec.classes;
    const float *bias = w + (t->n_cols - 1) * (size_t)k;
    linear_Logits(w, bias, x, t->local, k, m->scratch);
    double total = sparse_Loss(m, m->scratch, y, n, 1.0f / (float)n, NULL);
    linear_Backward(x, t->local, k, m->scratch, t->n_cols, grad);
    *loss = (float)(total / n);
    return SP_OK;
}

spStatus model_SparseEvaluate(model *m, const float *params, const csr_rows *x,
                              const int32_t *y, float *loss, int *correct)
{
    spStatus st = sparse_Args(m, params, x, y);
    if (st)
        return st;
    if ((st = csr_Check(x, model_InputDim(m))))
        return st;
    int n = (int)x->n, hits;
    const float *bias = params + model_InputDim(m) * (size_t)m->spec.classes;
    linear_Logits(params, bias, x, NULL, m->spec.classes, m->scratch);
    double total = sparse_Loss(m, m->scratch, y, n, 0.0f, &hits);
    if (loss)
        *loss = (float)(total / n);
    if (correct)
        *correct = hits;
    return SP_OK;
}
