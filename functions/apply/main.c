/* spirt-fn-apply - the MLLESS apply step as an HTTP function
 * (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"apply", step_Apply, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
