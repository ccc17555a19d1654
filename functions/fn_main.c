/* fn_main.c - bin/spirt-fn-<step>: one step of src/steps/steps.def as an
 * HTTP function (see steps/steps.h). functions/CMakeLists.txt compiles this
 * file once per step with SPIRT_STEP=<step>; referencing only that step's
 * step_def makes the linker take just its handler out of spirt_core. */
#include <stdlib.h> /* defines __GLIBC__ with glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "runtime/runtime.h"
#include "steps/steps.h"

#ifndef SPIRT_STEP
#error "build with -DSPIRT_STEP=<step name from src/steps/steps.def>"
#endif

/* step_def_<SPIRT_STEP>, expanding the macro first. */
#define FN_DEF_(step) step_def_##step
#define FN_DEF(step) FN_DEF_(step)

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    /* Every request allocates and frees the same few buffers of 0.1-2 MB
     * (tensors, Redis replies and commands). With glibc's defaults they are
     * mmap'd and unmapped, or trimmed from the thread's arena, on every
     * request and faulted in again on the next: in a profile that cost more
     * CPU than the step itself. Keep them: blocks below 32 MB come from the
     * heap, and an arena gives memory back only beyond 64 MB free. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
    const step_def *def = &FN_DEF(SPIRT_STEP);
    const rt_function fn = {def->name, def->handler, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
