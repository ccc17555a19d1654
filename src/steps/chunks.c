/* chunks.c - the ScatterReduce chunk formula (chunks.h). */
#include "steps/chunks.h"

void chunk_Range(size_t P, int N, int r, size_t *off, size_t *len)
{
    size_t n = (size_t)N, i = (size_t)r;
    size_t base = P / n, rem = P % n;
    *off = base * i + (i < rem ? i : rem);
    *len = base + (i < rem ? 1 : 0);
}
