/* spirt-fn-chunk_gather - the ScatterReduce chunk gather step as an HTTP function
 * (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"chunk_gather", step_ChunkGather, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
