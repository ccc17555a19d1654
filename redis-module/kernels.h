/* kernels.h - the float loops behind SPIRT.AVG and SPIRT.UPDATE.
 *
 * Tensors are read and written in place inside Redis string values, whose
 * payload starts 24 bytes into an sds buffer and so has no useful alignment.
 * `ufloat` is a float with alignment 1: the compiler then emits unaligned
 * vector loads instead of assuming 4- or 16-byte alignment, which would be
 * undefined behaviour here. Only little-endian hosts are supported (the wire
 * payload is little-endian and is used as host floats). */
#ifndef SPIRT_MODULE_KERNELS_H
#define SPIRT_MODULE_KERNELS_H

#include <stddef.h>

#include "redismodule_api.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the spirt Redis module computes on wire payloads directly: little-endian hosts only"
#endif

typedef float ufloat __attribute__((aligned(1)));

/* out = scale * sum_j weights[j] * srcs[j], in cache-sized blocks so out is
 * written once and every source is read once. out may alias srcs[0] only
 * (the caller orders the sources so). */
MOD_LOCAL void kern_WeightedMean(ufloat *out, const ufloat *const *srcs, const float *weights,
                                 int nsrc, size_t n, float scale);

/* w -= lr * (g + wd * w) */
MOD_LOCAL void kern_Sgd(ufloat *w, const ufloat *g, size_t n, float lr, float wd);

/* v = mom * v + g + wd * w; w -= lr * v */
MOD_LOCAL void kern_SgdMomentum(ufloat *w, const ufloat *g, ufloat *v, size_t n, float lr,
                                float mom, float wd);

#endif
