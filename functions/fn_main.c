/* fn_main.c - bin/spirt-fn-<step>: one step of src/steps/steps.def as an
 * HTTP function (see steps/steps.h). functions/CMakeLists.txt compiles this
 * file once per step with SPIRT_STEP=<step>; referencing only that step's
 * step_def makes the linker take just its handler out of spirt_core. */
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
    const step_def *def = &FN_DEF(SPIRT_STEP);
    const rt_function fn = {def->name, def->handler, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
