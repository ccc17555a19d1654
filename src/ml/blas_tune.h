/* blas_tune.h - picking faster OpenBLAS kernels than it picks itself.
 *
 * Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know AMD Zen 4/5 and
 * falls back to its AVX2 "Haswell" kernels although those CPUs run its
 * AVX-512 "SkylakeX" kernels correctly and much faster (sgemm for the MLP
 * 784-128-10 at batch 64: 1.75x). The kernel set is chosen once, when the
 * library loads, from OPENBLAS_CORETYPE, so a process can only switch by
 * re-executing itself with that variable set. */
#ifndef SPIRT_BLAS_TUNE_H
#define SPIRT_BLAS_TUNE_H

/* The OPENBLAS_CORETYPE value worth forcing on this CPU, or NULL when
 * OpenBLAS's own choice is already the best known (or the variable is set). */
const char *blas_BetterCoretype(void);

/* Call first thing in main(): when blas_BetterCoretype() names a kernel set
 * and the variable is unset, sets OPENBLAS_CORETYPE and re-executes the
 * program (/proc/self/exe, same argv and environment). Returns only when it
 * did not re-execute (nothing to do, not Linux/x86-64, or exec failed), so
 * callers simply carry on. SPIRT_BLAS_TUNE=0 turns it off. */
void blas_ReexecTuned(char **argv);

#endif
