/* spirt-fn-minibatch - the SPIRT "minibatch" step as an HTTP function (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"minibatch", step_Minibatch, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
