/* layers.h - building blocks shared by the models: a dense (fully connected)
 * stack with ReLU between layers, softmax cross-entropy, and the pieces of a
 * batched convolution (im2col / col2im, fused bias+ReLU+2x2 max-pool).
 *
 * Convolution activations use a "CNHW" layout: channel-major across the whole
 * batch ([C][N][H][W]), so one conv layer over a batch is a single sgemm
 *   out[F x N*OH*OW] = W[F x C*K*K] * cols[C*K*K x N*OH*OW]
 * (or, for layers with very few filters, a direct kernel over the same
 * layout) and bias, pooling and the weight gradient all walk contiguous
 * arrays.
 * The hot elementwise loops use GCC/Clang vector extensions, so they are
 * SIMD on any target without relying on the optimizer's cost model. */
#ifndef SPIRT_LAYERS_H
#define SPIRT_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

/* ---- dense stack: sizes[0] inputs -> ... -> sizes[n_layers] outputs ---- */

#define DENSE_MAX_LAYERS 12

typedef struct {
    int n_layers;                     /* weight layers */
    int sizes[DENSE_MAX_LAYERS + 1];  /* widths, input first */
} dense_stack;

/* Per layer: W [out x in] row-major, then b [out]. */
size_t dense_ParamCount(const dense_stack *d);
/* He-normal for layers followed by ReLU, Xavier-normal for the last;
 * layer l draws from rng stream stream0 + l. Biases are zero. */
void dense_Init(const dense_stack *d, float *params, uint64_t seed, uint64_t stream0);
size_t dense_ScratchFloats(const dense_stack *d, int n);
/* Returns the n x sizes[n_layers] logits (inside scratch). */
float *dense_Forward(const dense_stack *d, const float *params, const float *x, int n,
                     float *scratch);
/* Gradient of the layers' parameters from the dlogits stored where the
 * logits were; dx (n x sizes[0]) receives the input gradient unless NULL. */
void dense_Backward(const dense_stack *d, const float *params, const float *x, int n,
                    float *scratch, float *grad, int accumulate, float *dx);

/* ---- loss ---- */

/* Rows of n x classes logits: returns the summed cross-entropy. When
 * grad_scale != 0 the logits are replaced by grad_scale * (softmax - onehot).
 * correct (if not NULL) gets the count of argmax hits. */
double layer_SoftmaxXent(float *logits, const int32_t *y, int n, int classes,
                         float grad_scale, int *correct);

/* The same for the multi-class hinge (Crammer-Singer; with two classes the
 * binary SVM's hinge on the difference of the two scores):
 * max(0, 1 + max_{j != y} s_j - s_y). Its gradient puts grad_scale on the
 * best rival and -grad_scale on y when the margin is violated, else 0. */
double layer_MulticlassHinge(float *logits, const int32_t *y, int n, int classes,
                             float grad_scale, int *correct);

/* ---- convolution in CNHW, each conv followed by a 2x2 max-pool ----
 *
 * A conv output plane is stored in "quadrant order": the four positions of
 * every pooling window go to four separate planes, so a channel's outputs
 * over the batch are [q][s][py][px] with q = 2*dy + dx, y = 2*py + dy,
 * x = 2*px + dx. Pooling is then an elementwise max over four contiguous
 * arrays. im2col produces its columns in that order (the sgemm does not
 * care), reading the input through "phase" images (even/odd rows x even/odd
 * columns of the padded plane, pre-shifted) in which every (tap, quadrant,
 * sample) block of cols is one contiguous run. */

typedef struct {
    int c, h, w;     /* input channels and plane */
    int k, pad;      /* square kernel, zero padding, stride 1 */
    int oh, ow;      /* conv output plane (even) */
    int ph, pw;      /* pooled plane: oh/2 x ow/2 */
    int qh;          /* phase image rows: half the padded height, rounded up */
} conv_geom;

/* Stride-1 conv geometry; oh and ow must come out even (a pool follows)
 * and w + 2*pad at most 1000 (phase rows are staged on the stack). */
conv_geom conv_Geom(int c, int h, int w, int k, int pad);
/* Floats of scratch conv_Im2col / conv_Col2im need for n samples. */
size_t conv_PhaseFloats(const conv_geom *g, int n);
/* cols [c*k*k][4][n][ph][pw]: row (c*k+ky)*k+kx holds in[c][s][y+ky-pad][x+kx-pad]
 * (0 outside) for every output position in quadrant order. Writes every
 * element of cols. */
void conv_Im2col(const conv_geom *g, int n, const float *in, float *phase, float *cols);
/* The adjoint: din [c][n][h][w] = cols scattered back and summed (din is
 * overwritten, no pre-zeroing needed). */
void conv_Col2im(const conv_geom *g, int n, const float *cols, float *phase, float *din);

/* Phase images of every channel of an NCHW batch, channel after channel
 * (g->c * conv_PhaseFloats(g, n) floats): the direct kernels' input. */
void conv_PhaseSplitNchw(const conv_geom *g, int n, const float *x, float *phase);
/* Offset, inside one channel's phase images, of the ph x pw run read by tap
 * (ky, kx) for quadrant q of sample 0; sample s's run is s*qh*pw further. */
size_t conv_PhaseRun(const conv_geom *g, int n, int ky, int kx, int q);

/* Direct convolution for layers with few filters (f <= CONV_DIRECT_MAX_F),
 * where im2col + sgemm is dominated by copying and by sgemm's handling of
 * tiny matrix sides. Both read the phase images of conv_PhaseSplitNchw.
 * z [f][4][n][ph*pw] = W [f][c*k*k] applied at every output position. */
#define CONV_DIRECT_MAX_F 8
#define CONV_DIRECT_MAX_K 400  /* c*k*k */
#define CONV_DIRECT_MAX_KK 49  /* k*k: kernels up to 7x7 */
void conv_DirectForward(const conv_geom *g, int n, int f, const float *W, const float *phase,
                        float *z);
/* dW [f][c*k*k] (set or added) from dz [f][4][n][ph*pw]. */
void conv_DirectWeightGrad(const conv_geom *g, int n, int f, const float *dz,
                           const float *phase, float *dW, int accumulate);

/* out [c][len] = relu(max over q of z[c][q][len] + bias[c]), len = n*ph*pw. */
void pool_Forward(int c, size_t len, const float *z, const float *bias, float *out);
/* Gradient through pool+ReLU+bias: z [c][4][len] holds the pre-activations
 * on entry and dz on return (the first maximal position of a window takes
 * dout, the rest 0; nothing passes where ReLU clipped). dbias (c) is set or
 * added to. */
void pool_Backward(int c, size_t len, float *z, const float *out, const float *dout,
                   float *dbias, int accumulate);

/* Normal(0, std) weights from rng stream (seed, stream). */
void layer_FillNormal(float *w, size_t len, float std, uint64_t seed, uint64_t stream);

#endif
