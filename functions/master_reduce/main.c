/* spirt-fn-master_reduce - the AllReduce master reduce step as an HTTP function
 * (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"master_reduce", step_MasterReduce, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
