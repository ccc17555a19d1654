/* registry.c - every step of steps.def, by name: the table the in-process
 * driver and the tests look steps up in. Function binaries never reference
 * this file, so the linker leaves the other steps out of them. */
#include <string.h>

#include "steps/steps.h"

static const step_def *const g_steps[] = {
#define STEP(name, Fn) &step_def_##name,
#include "steps/steps.def"
#undef STEP
};

const step_def *const *steps_All(int *n)
{
    *n = (int)(sizeof g_steps / sizeof g_steps[0]);
    return g_steps;
}

const step_def *steps_Find(const char *name)
{
    for (size_t i = 0; name && i < sizeof g_steps / sizeof g_steps[0]; i++)
        if (strcmp(g_steps[i]->name, name) == 0)
            return g_steps[i];
    return NULL;
}
