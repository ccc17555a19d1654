/* spirt-fn-join - the peer authentication verifier as an HTTP function (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"join", step_Join, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
