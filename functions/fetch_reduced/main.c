/* spirt-fn-fetch_reduced - the AllReduce step fetching the reduced gradient, as an
 * HTTP function (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"fetch_reduced", step_FetchReduced, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
