/* spirt-fn-chunk_reduce - the ScatterReduce chunk reduce step as an HTTP function
 * (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"chunk_reduce", step_ChunkReduce, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
