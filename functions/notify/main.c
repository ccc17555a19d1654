/* spirt-fn-notify - the SPIRT "notify" step as an HTTP function (see steps/steps.h). */
#include "runtime/runtime.h"
#include "steps/steps.h"

int main(int argc, char **argv)
{
    const rt_function fn = {"notify", step_Notify, steps_Ready, NULL};
    return runtime_Main(&fn, argc, argv);
}
