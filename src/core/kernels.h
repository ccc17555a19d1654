/* kernels.h - the float loops of every parameter update and mean in spirt.
 *
 * One source, compiled into spirt_core (ml/optim.c, ml/aggregate.c,
 * core/tensor.c, the client-side fallback in store/store_ops.c) and into
 * the Redis module (SPIRT.AVG, SPIRT.UPDATE; see redis-module/CMakeLists.txt),
 * so a single-process run, the client-side fallback and the in-database
 * path compute bit-identical results from the same inputs. The rounding
 * order is part of the contract:
 *
 *   sgd        w = w - lr * (g + wd * w)
 *   momentum   d = g + wd * w;  v = mom * v + d;  w = w - lr * v
 *              (weight decay joins the gradient before the velocity, as
 *              in PyTorch's SGD)
 *   mean       acc = x_0;  acc += x_j for j = 1..k-1 in the order given;
 *              out = acc * (1/k): one rounded reciprocal, not a division
 *              per element. Callers that name their sources (SPIRT.AVG
 *              and its fallback) pass one pointer per argument, repeats
 *              included, so the argument list alone fixes the order.
 *
 * Every operation is one IEEE single-precision op: no FMA contraction
 * (GCC's ISO C mode does not contract; kernels.c turns clang's off), so the
 * vectorized body and the scalar tail, and every build, round alike.
 *
 * Pointers need no alignment: Redis string payloads start 24 bytes into an
 * sds buffer. `ufloat` is a float with alignment 1, so the compiler emits
 * unaligned vector loads instead of assuming 4- or 16-byte alignment, which
 * would be undefined behaviour there. A float* converts to it implicitly.
 * No dependency beyond libc, so the module can compile this file as is. */
#ifndef SPIRT_KERNELS_H
#define SPIRT_KERNELS_H

#include <stddef.h>

typedef float ufloat __attribute__((aligned(1)));

/* w -= lr * (g + wd * w); w and g must not overlap. */
void kern_Sgd(ufloat *w, const ufloat *g, size_t n, float lr, float wd);

/* v = mom * v + (g + wd * w); w -= lr * v; w, g and v must not overlap. */
void kern_SgdMomentum(ufloat *w, const ufloat *g, ufloat *v, size_t n, float lr, float mom,
                      float wd);

/* out = (x_0 + x_1 + ... + x_{k-1}) * (1/k), summed left to right in
 * cache-sized blocks so every source is read once and out written once.
 * A source may appear more than once (it is summed each time); out may be
 * one of the sources (the same pointer), not a partial overlap. k >= 1. */
void kern_Mean(ufloat *out, const ufloat *const *srcs, int k, size_t n);

/* ---- sparse tensors ----
 *
 * The payload of a WIRE_SPARSE_F32 tensor: `count` pairs of 8 bytes, a
 * uint32 index and then a float32 value (host order, unaligned), indices
 * strictly increasing. The sparse kernels compute what the dense ones do on
 * the dense vector with zeros elsewhere, in the same rounding order: an
 * absent element contributes nothing (x + 0 = x), and an update touches
 * only the listed elements (and their momentum) - the "lazy" update of the
 * sparse models (ml/optim.h optim_StepRows). */
#define KERN_PAIR 8

/* The union of the k sources' indices, each value the sum over the sources
 * holding it, in argument order, times (1/k), as kern_Mean. out (room for
 * the sum of the counts) must not overlap a source; pos is k scratch
 * slots. Returns the pairs written. */
size_t kern_MeanSparse(unsigned char *out, const unsigned char *const *srcs,
                       const size_t *counts, int k, size_t *pos);

/* kern_Sgd / kern_SgdMomentum on the listed elements of w (and v); every
 * index must be below w's length. */
void kern_SgdSparse(ufloat *w, const unsigned char *pairs, size_t count, float lr, float wd);
void kern_SgdMomentumSparse(ufloat *w, ufloat *v, const unsigned char *pairs, size_t count,
                            float lr, float mom, float wd);

/* The MLLESS significance filter (steps/mlless.h), on the quantity a
 * replica applies: acc = acc_in + scale * src (acc_in NULL: zeros); every
 * element with |acc_i| > thr * |w_i| is written to pairs as (i, acc_i) in
 * ascending order and zeroed in acc, the rest stay (the residual). pairs
 * has room for n. acc must not overlap src or w; acc_in may be acc.
 * Returns the pairs written. */
size_t kern_Filter(ufloat *acc, const ufloat *acc_in, const ufloat *src, float scale,
                   const ufloat *w, size_t n, float thr, unsigned char *pairs);

#endif
