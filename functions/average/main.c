/* spirt-fn-average - the SPIRT "average" step as an HTTP function (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"average", step_Average, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
