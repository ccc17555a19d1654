/* cnn.c - LeNet-style convolutional net:
 *   conv 5x5 (CNN_C1 filters, pad 2) + ReLU + maxpool 2
 *   conv 5x5 (CNN_C2 filters, no pad) + ReLU + maxpool 2
 *   dense CNN_FC1 + ReLU, dense CNN_FC2 + ReLU, dense classes.
 * The second conv layer runs over the whole chunk as one im2col + one sgemm
 * in the CNHW layout described in layers.h; the first, with only 6 filters
 * over the raw image, is a direct convolution (conv_direct.c).
 *
 * Parameters, in order: W1 [C1][in_c][5][5], b1 [C1], W2 [C2][C1][5][5],
 * b2 [C2], then the dense stack (flattened features in [c][y][x] order). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ml/layers.h"
#include "ml/model_internal.h"

#define CNN_K 5
#define CNN_C1 6
#define CNN_C2 16
#define CNN_FC1 120
#define CNN_FC2 84
#define CNN_MAX_C 16
#define CNN_MAX_SIDE 512

/* conv1 runs on the direct kernels, which bound its sizes. */
_Static_assert(CNN_C1 <= CONV_DIRECT_MAX_F, "conv1 filters exceed the direct kernels");
_Static_assert(CNN_K * CNN_K <= CONV_DIRECT_MAX_KK, "conv1 kernel exceeds the direct kernels");
_Static_assert(CNN_MAX_C * CNN_K * CNN_K <= CONV_DIRECT_MAX_K,
               "conv1 inputs exceed the direct kernels");

/* Shapes derived from the spec, shared by every function below. */
typedef struct {
    conv_geom g1, g2;      /* each followed by its 2x2 pool (g.ph x g.pw) */
    int k1, k2;            /* weights per filter: in_c*25, C1*25 */
    int flat;              /* dense input width */
    size_t off_b1, off_w2, off_b2, off_fc;
    dense_stack fc;
} cnn_shape;

static void cnn_Shape(const model_spec *s, cnn_shape *c)
{
    c->g1 = conv_Geom(s->in_c, s->in_h, s->in_w, CNN_K, CNN_K / 2);
    c->g2 = conv_Geom(CNN_C1, c->g1.ph, c->g1.pw, CNN_K, 0);
    c->k1 = s->in_c * CNN_K * CNN_K;
    c->k2 = CNN_C1 * CNN_K * CNN_K;
    c->flat = CNN_C2 * c->g2.ph * c->g2.pw;
    c->off_b1 = (size_t)CNN_C1 * (size_t)c->k1;
    c->off_w2 = c->off_b1 + CNN_C1;
    c->off_b2 = c->off_w2 + (size_t)CNN_C2 * (size_t)c->k2;
    c->off_fc = c->off_b2 + CNN_C2;
    c->fc.n_layers = 3;
    c->fc.sizes[0] = c->flat;
    c->fc.sizes[1] = CNN_FC1;
    c->fc.sizes[2] = CNN_FC2;
    c->fc.sizes[3] = s->classes;
}

static spStatus cnn_Check(const model_spec *s)
{
    if (s->in_c > CNN_MAX_C)
        return sp_Error(SP_ERR_INVALID, "cnn takes at most %d input channels, got %d", CNN_MAX_C,
                        s->in_c);
    /* Two 2x2 pools around a 5x5 valid conv: the side must halve evenly,
     * lose 4, and halve evenly again to at least 1. */
    if (s->in_h < 12 || s->in_w < 12 || s->in_h % 4 || s->in_w % 4 ||
        s->in_h > CNN_MAX_SIDE || s->in_w > CNN_MAX_SIDE)
        return sp_Error(SP_ERR_INVALID,
                        "cnn needs image sides that are multiples of 4 in 12..%d, got %dx%d",
                        CNN_MAX_SIDE, s->in_h, s->in_w);
    return SP_OK;
}

/* He-normal scale for a layer followed by ReLU. */
static float he_Std(int fan_in) { return sqrtf(2.0f / (float)fan_in); }

static size_t cnn_ParamCount(const model_spec *s)
{
    cnn_shape c;
    cnn_Shape(s, &c);
    return c.off_fc + dense_ParamCount(&c.fc);
}

static void cnn_Init(const model_spec *s, float *params, uint64_t seed)
{
    cnn_shape c;
    cnn_Shape(s, &c);
    layer_FillNormal(params, (size_t)CNN_C1 * (size_t)c.k1, he_Std(c.k1), seed, 1);
    memset(params + c.off_b1, 0, CNN_C1 * sizeof(float));
    layer_FillNormal(params + c.off_w2, (size_t)CNN_C2 * (size_t)c.k2, he_Std(c.k2), seed, 2);
    memset(params + c.off_b2, 0, CNN_C2 * sizeof(float));
    dense_Init(&c.fc, params + c.off_fc, seed, 3);
}

/* Scratch, each piece reused between forward and backward where lifetimes
 * allow: the conv outputs z1/z2 (quadrant order, see layers.h) become their
 * own gradients, and cols2 becomes dcols2 once the W2 gradient (its only
 * other reader) is done. */
typedef struct {
    float *phase1;         /* input phase images, all channels (conv1 is direct) */
    float *z1, *p1;
    float *cols2, *z2, *p2;
    float *phase2;         /* one channel's phase images for conv2's im2col/col2im */
    float *f0, *df0, *dp2, *dp1;
    float *dense;
} cnn_views;

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t cnn_Layout(const model_spec *s, const cnn_shape *c, int n, float *base,
                         cnn_views *v)
{
    size_t nn = (size_t)n, off = 0;
    size_t q1 = (size_t)c->g1.oh * (size_t)c->g1.ow, q2 = (size_t)c->g2.oh * (size_t)c->g2.ow;
    size_t p1 = (size_t)c->g1.ph * (size_t)c->g1.pw, p2 = (size_t)c->g2.ph * (size_t)c->g2.pw;
#define TAKE(field, floats)                                                                    \
    do {                                                                                       \
        if (v)                                                                                 \
            v->field = (void *)(base + off);                                                   \
        off += up16(floats);                                                                   \
    } while (0)
    TAKE(phase1, (size_t)s->in_c * conv_PhaseFloats(&c->g1, n));
    TAKE(z1, CNN_C1 * q1 * nn);
    TAKE(p1, CNN_C1 * p1 * nn);
    TAKE(cols2, (size_t)c->k2 * q2 * nn);
    TAKE(z2, CNN_C2 * q2 * nn);
    TAKE(p2, CNN_C2 * p2 * nn);
    TAKE(phase2, conv_PhaseFloats(&c->g2, n));
    TAKE(f0, (size_t)c->flat * nn);
    TAKE(df0, (size_t)c->flat * nn);
    TAKE(dp2, CNN_C2 * p2 * nn);
    TAKE(dp1, CNN_C1 * p1 * nn);
    TAKE(dense, dense_ScratchFloats(&c->fc, n));
#undef TAKE
    return off;
}

static size_t cnn_ScratchFloats(const model_spec *s, int n)
{
    cnn_shape c;
    cnn_Shape(s, &c);
    return cnn_Layout(s, &c, n, NULL, NULL);
}

/* [a][b][len] -> [b][a][len] block transpose: pooled CNHW features <-> one
 * row per sample for the dense layers. */
static void block_Transpose(const float *src, int a, int b, size_t len, float *dst)
{
    for (int i = 0; i < a; i++)
        for (int j = 0; j < b; j++)
            memcpy(dst + ((size_t)j * (size_t)a + (size_t)i) * len,
                   src + ((size_t)i * (size_t)b + (size_t)j) * len, len * sizeof(float));
}

static float *cnn_Forward(model *m, const float *params, const float *x, int n)
{
    cnn_shape c;
    cnn_views v;
    const model_spec *s = &m->spec;
    cnn_Shape(s, &c);
    cnn_Layout(s, &c, n, m->scratch, &v);
    int n1 = n * c.g1.oh * c.g1.ow, n2 = n * c.g2.oh * c.g2.ow;

    conv_PhaseSplitNchw(&c.g1, n, x, v.phase1);
    conv_DirectForward(&c.g1, n, CNN_C1, params, v.phase1, v.z1);
    pool_Forward(CNN_C1, (size_t)n1 / 4, v.z1, params + c.off_b1, v.p1);

    conv_Im2col(&c.g2, n, v.p1, v.phase2, v.cols2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, CNN_C2, n2, c.k2, 1.0f,
                params + c.off_w2, c.k2, v.cols2, n2, 0.0f, v.z2, n2);
    pool_Forward(CNN_C2, (size_t)n2 / 4, v.z2, params + c.off_b2, v.p2);

    block_Transpose(v.p2, CNN_C2, n, (size_t)c.g2.ph * (size_t)c.g2.pw, v.f0);
    return dense_Forward(&c.fc, params + c.off_fc, v.f0, n, v.dense);
}

static void cnn_Backward(model *m, const float *params, const float *x, int n, float *grad,
                         int accumulate)
{
    cnn_shape c;
    cnn_views v;
    const model_spec *s = &m->spec;
    cnn_Shape(s, &c);
    cnn_Layout(s, &c, n, m->scratch, &v);
    int n1 = n * c.g1.oh * c.g1.ow, n2 = n * c.g2.oh * c.g2.ow;
    float beta = accumulate ? 1.0f : 0.0f;
    (void)x; /* phase1 already holds everything conv1 needs from the input */

    dense_Backward(&c.fc, params + c.off_fc, v.f0, n, v.dense, grad + c.off_fc, accumulate,
                   v.df0);
    block_Transpose(v.df0, n, CNN_C2, (size_t)c.g2.ph * (size_t)c.g2.pw, v.dp2);

    float *dz2 = v.z2, *dcols2 = v.cols2;
    pool_Backward(CNN_C2, (size_t)n2 / 4, dz2, v.p2, v.dp2, grad + c.off_b2, accumulate);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CNN_C2, c.k2, n2, 1.0f, dz2, n2,
                v.cols2, n2, beta, grad + c.off_w2, c.k2);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c.k2, n2, CNN_C2, 1.0f,
                params + c.off_w2, c.k2, dz2, n2, 0.0f, dcols2, n2);
    conv_Col2im(&c.g2, n, dcols2, v.phase2, v.dp1);

    float *dz1 = v.z1;
    pool_Backward(CNN_C1, (size_t)n1 / 4, dz1, v.p1, v.dp1, grad + c.off_b1, accumulate);
    conv_DirectWeightGrad(&c.g1, n, CNN_C1, dz1, v.phase1, grad, accumulate);
}

const model_spec_ops cnn_spec_ops = {cnn_Check, cnn_ParamCount};

const model_ops cnn_ops = {
    .init = cnn_Init,
    .scratch_floats = cnn_ScratchFloats,
    .forward = cnn_Forward,
    .backward = cnn_Backward,
    .chunk = 128,
};
