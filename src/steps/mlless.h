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
 * Scale-in ("the loss curve flattens"): the mean loss over consecutive,
 * non-overlapping windows of MLLESS_WINDOW iterations; when a window's mean
 * improved on the previous window's by less than MLLESS_MIN_GAIN (relative),
 * one worker is removed - the highest-numbered live one, never the
 * supervisor's (live[0]) - and its unsent accumulator goes to the next
 * lower live worker (the heir). After a removal the comparison restarts, so
 * removals are at least two windows apart; the last worker is never
 * removed. */
#define MLLESS_STOP_STEPS 10
#define MLLESS_WINDOW 20
#define MLLESS_MIN_GAIN 0.01

typedef struct {
    long t;              /* last iteration decided; -1 before the first */
    int below;           /* consecutive iterations with the loss < target */
    double window_sum;   /* losses of the current window */
    int window_n;
    double prev_window;  /* mean of the last complete window; < 0 none */
} mlless_state;

typedef struct {
    int remove;          /* worker removed after this iteration, -1 none */
    int heir;            /* who receives its accumulator, -1 none */
    int stop;
    int below;           /* the state's count after this iteration */
} mlless_decision;

void mlless_StateInit(mlless_state *s);
/* Feeds iteration t's mean reported loss (has_loss = 0: no worker sent
 * one; the loss curve is then not advanced) for the n live workers (sorted
 * ascending) and decides. */
void mlless_Decide(mlless_state *s, long t, double loss, int has_loss, const int *live, int n,
                   int scale_in, double target_loss, mlless_decision *d);

#endif
