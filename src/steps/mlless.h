/* mlless.h - the pure parts of MLLESS (no Redis, no NATS): the significance
 * threshold, the sparse wire encoding of what is sent, and the supervisor's
 * stopping / scale-in policy. The steps sparsify, supervisor and apply wrap
 * them with storage and synchronization.
 *
 * Replicas (the MLLess paper's insignificance-bounded synchronous model).
 * Every worker p keeps its own model params:p. It applies its own update
 * at once and in full; of the steps it applied it sends only the
 * significant ones, and it adds the significant steps the others sent.
 * So replica p holds every step of p plus the significant part of every
 * other worker's; they differ by the residuals not yet sent.
 *
 * Significance filter (core/kernels.h kern_Filter). acc holds the steps p
 * applied and has not sent (acc += lr * g with SGD, lr * v with momentum:
 * the quantity subtracted from the weights). Coordinate i is significant at
 * iteration t when that step, relative to the weight, passes the threshold
 *     |acc_i / w_i| > v / sqrt(t + 1)        (v = --significance)
 * tested as |acc_i| > thr * |w_i|, so a zero weight makes any nonzero acc_i
 * significant. Significant coordinates are sent as (index, acc_i) and reset
 * to 0; the rest keep accumulating (the residual). v = 0 sends every
 * nonzero coordinate every iteration. */
#ifndef SPIRT_STEPS_MLLESS_H
#define SPIRT_STEPS_MLLESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* v / sqrt(t + 1). */
float mlless_Threshold(float v, long t);

/* ---- sparse updates on the wire (core/wire.h dtype WIRE_SPARSE_F32) ------
 * count (index, value) pairs, dense length n in the header's extra field. */
spStatus sparse_Encode(const uint32_t *idx, const float *val, size_t k, size_t n, uint8_t **out,
                       size_t *len);
/* Decodes into malloc'd idx/val (k pairs). The blob must be a valid sparse
 * tensor of dense length n with strictly increasing indices below n and
 * finite values: else SP_ERR_FORMAT (not a sparse tensor / corrupt) or
 * SP_ERR_INVALID (wrong length, bad index or value). */
spStatus sparse_Decode(const uint8_t *blob, size_t len, size_t n, uint32_t **idx, float **val,
                       size_t *k);
/* dense[idx_j] += scale * val_j for every pair (and touched[idx_j] = 1
 * unless touched is NULL), with the same checks as sparse_Decode (nothing
 * is changed when the blob is rejected). */
spStatus sparse_AddInto(const uint8_t *blob, size_t len, size_t n, float scale, float *dense,
                        uint8_t *touched, size_t *k);

/* ---- supervisor policy --------------------------------------------------
 * Stop (the MLLess supervisor's rule): the mean reported loss has stayed
 * below the target (target > 0) for MLLESS_STOP_STEPS consecutive
 * iterations. An iteration in which no worker reported a loss neither
 * counts nor breaks the run.
 * Scale-in (the auto-tuner, --scale-in). The loss is smoothed as the mean
 * over consecutive intervals of MLLESS_INTERVAL iterations; its derivative
 * is the drop d_k = m_{k-1} - m_k from one interval to the next. The knee
 * is the first interval whose drop is at most MLLESS_KNEE_FRAC of the
 * steepest drop seen. From the knee on, at the end of every interval the
 * supervisor predicts the loss over the next interval: with n workers it
 * keeps falling by d_k; with n - 1 each iteration sees (n-1)/n of the
 * samples, so by d_k (n-1)/n. When the two predictions differ by at most
 * MLLESS_TOLERANCE of the loss (d_k / n <= tol * m_k), one worker is
 * removed - the highest-numbered live one, never the supervisor's
 * (live[0]) nor the last. So at most one removal an interval.
 * The survivors merge the removed worker's model into theirs: they add its
 * residual (the steps it applied and never sent, apply.c), so every
 * survivor holds all of its steps.
 *
 * Re-striding. With scale-in on, minibatches are dealt from a cursor over
 * all minibatches of the epoch, so a removed worker's shard is still
 * visited: the epoch's N*I*M minibatches (N workers at the start, I
 * iterations an epoch, M minibatches an iteration) are numbered g = c*N*M
 * + s*M + j for column c < I, shard s < N, j < M, which is slot c*M + j of
 * shard s; at iteration t, the live worker of rank k takes g = cursor(t) +
 * k*M + m for its minibatch m, and cursor(t+1) = cursor(t) + n*M for the n
 * workers live at t (0 at each epoch's start). With every worker live,
 * that is each worker's own shard, as without scale-in. */
#define MLLESS_STOP_STEPS 10
#define MLLESS_INTERVAL 20
#define MLLESS_KNEE_FRAC 0.25
#define MLLESS_TOLERANCE 0.005

typedef struct {
    long t;              /* last iteration decided; -1 before the first */
    int below;           /* consecutive iterations with the loss < target */
    double window_sum;   /* losses of the current interval */
    int window_n;
    double prev;         /* mean of the last complete interval; < 0 none */
    double peak;         /* the steepest drop between intervals seen */
    int knee;            /* the knee was passed */
    long cursor;         /* re-striding: the cursor of iteration t + 1 */
} mlless_state;

typedef struct {
    int remove;          /* worker removed after this iteration, -1 none */
    int stop;
    int below;           /* the state's count after this iteration */
    long cursor;         /* the cursor of iteration t + 1 */
} mlless_decision;

void mlless_StateInit(mlless_state *s);
/* Feeds iteration t's mean reported loss (has_loss = 0: no worker sent
 * one; the loss curve is then not advanced) for the n live workers (sorted
 * ascending) and decides; M minibatches an iteration, `iters` iterations
 * an epoch (for the cursor). */
typedef struct {
    int scale_in;
    double target_loss;
    int M;
    long iters;
} mlless_policy;
void mlless_Decide(mlless_state *s, const mlless_policy *p, long t, double loss, int has_loss,
                   const int *live, int n, mlless_decision *d);

/* Re-striding: the shard and slot of minibatch m of the worker of rank k
 * at cursor (N workers at the start, M minibatches an iteration). */
void mlless_Restride(long cursor, int rank, int m, int M, int N, int *shard, long *slot);

#endif
