/* blas_tune.c - see blas_tune.h. */
#include "ml/blas_tune.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *blas_BetterCoretype(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (getenv("OPENBLAS_CORETYPE"))
        return NULL;
    /* Only the generic fallbacks OpenBLAS uses for CPUs newer than it. */
    const char *core = openblas_get_corename();
    if (!core || (strcmp(core, "Haswell") != 0 && strcmp(core, "Zen") != 0))
        return NULL;
    __builtin_cpu_init();
    /* The instruction subsets the SkylakeX kernels use. */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
#endif
    return NULL;
}

void blas_ReexecTuned(char **argv)
{
#if defined(__linux__)
    const char *off = getenv("SPIRT_BLAS_TUNE");
    if (!argv || (off && strcmp(off, "0") == 0))
        return;
    const char *core = blas_BetterCoretype();
    if (!core)
        return;
    /* Set the guard too, so a failed switch can never loop. */
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv("SPIRT_BLAS_TUNE", "0", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: keep running with the kernels already loaded. */
    unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}
