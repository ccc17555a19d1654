/* chunks.h - how ScatterReduce splits a P-element vector among N owners
 * (docs/architectures.md): chunk r starts at (P/N)*r + min(P%N, r) and holds
 * P/N + (r < P%N) elements, so the first P%N chunks are one element longer,
 * the chunks tile [0, P) in order, and lengths differ by at most one. */
#ifndef SPIRT_STEPS_CHUNKS_H
#define SPIRT_STEPS_CHUNKS_H

#include <stddef.h>

/* Offset and length of chunk r (0 <= r < N, N >= 1) of a P-vector. */
void chunk_Range(size_t P, int N, int r, size_t *off, size_t *len);

#endif
