/* malloc_tune.c - see malloc_tune.h. */
#include "core/malloc_tune.h"

#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int malloc_Tune(void)
{
#if defined(__GLIBC__)
    const char *off = getenv("SPIRT_MALLOC_TUNE"), *tunables = getenv("GLIBC_TUNABLES");
    if ((off && strcmp(off, "0") == 0) || (tunables && strstr(tunables, "glibc.malloc.")))
        return 0;
    /* Trim first: an explicit mmap threshold would otherwise leave the trim
     * threshold at its default until set. */
    return mallopt(M_TRIM_THRESHOLD, (int)MALLOC_TUNE_TRIM) == 1 &&
           mallopt(M_MMAP_THRESHOLD, (int)MALLOC_TUNE_MMAP) == 1 &&
           mallopt(M_ARENA_MAX, MALLOC_TUNE_ARENAS) == 1;
#else
    return 0;
#endif
}
