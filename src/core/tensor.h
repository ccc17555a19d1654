/* tensor.h - float32 vector ops on flat arrays, OpenBLAS-backed where it pays.
 *
 * Parameters and gradients in spirt are one flat float32 vector per model, so
 * these take (pointer, length) rather than a tensor object. */
#ifndef SPIRT_TENSOR_H
#define SPIRT_TENSOR_H

#include <stddef.h>

/* y += a * x */
void tensor_Axpy(size_t n, float a, const float *x, float *y);
/* x *= a */
void tensor_Scale(size_t n, float a, float *x);
/* Sum of squares and L2 distance squared. */
double tensor_Dot(size_t n, const float *x, const float *y);
double tensor_Dist2(size_t n, const float *x, const float *y);
/* True if every element is finite. */
int tensor_AllFinite(size_t n, const float *x);
/* out = mean of k vectors, rounded as every mean in spirt (core/kernels.h);
 * out may be one of them. */
void tensor_Mean(size_t n, int k, const float *const *xs, float *out);
/* 64-byte aligned allocation zeroed, freed with free(); NULL on failure. */
float *tensor_Alloc(size_t n);

#endif
