/* sparse_mean.h - a sparse model's averages in the exchange steps
 * (aggregate, master_reduce, fetch_reduced, scatter, chunk_reduce,
 * chunk_gather): read whole and checked, their mean, and ScatterReduce's
 * chunks of them (the pairs whose index falls in a chunk's range, indices
 * kept), all as WIRE_SPARSE_F32 blobs of the model's length. */
#ifndef SPIRT_SPARSE_MEAN_H
#define SPIRT_SPARSE_MEAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "store/store.h"

/* The sparse tensor at key (dense length n): checksum, pairs and length
 * checked; *blob (malloc'd, *len bytes) is its wire blob. */
spStatus sparse_Get(store *s, const char *key, size_t n, uint8_t **blob, size_t *len);
/* The mean (kern_MeanSparse) of k blobs sparse_Get returned, as a new
 * blob; a non-finite mean is SP_ERR_INVALID. */
spStatus sparse_Mean(uint8_t *const *blobs, int k, size_t n, uint8_t **out, size_t *len);

/* The pairs of a checked blob whose index is in [from, to), as a new blob. */
spStatus sparse_Slice(const uint8_t *blob, size_t from, size_t to, uint8_t **out, size_t *len);
/* Checked blobs whose index ranges are disjoint and ascending, joined in
 * that order into one blob of dense length n. */
spStatus sparse_Concat(uint8_t *const *blobs, int k, size_t n, uint8_t **out, size_t *len);

#endif
