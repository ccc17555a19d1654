/* arch.c - the workflow tables of the distributed architectures. */
#include "driver/arch.h"

#include <stddef.h>

/* SPIRT (DESIGN.md): each peer averages its M gradients inside its own
 * Redis, announces, waits for the live peers, aggregates their averages and
 * updates in its database. */
static const arch_step spirt_steps[] = {
    {"minibatch", FAN_MINIBATCH, CAT_COMPUTE},
    {"gradient", FAN_MINIBATCH, CAT_COMPUTE},
    {"average", FAN_WORKER, CAT_COMM},
    {"notify", FAN_WORKER, CAT_SYNC},
    {"barrier", FAN_WORKER, CAT_SYNC},
    {"aggregate", FAN_WORKER, CAT_COMM},
    {"update", FAN_WORKER, CAT_UPDATE},
};

static const arch_def archs[] = {
    {ARCH_SPIRT, spirt_steps, sizeof spirt_steps / sizeof spirt_steps[0], 1, 1},
};

const arch_def *arch_Get(arch_kind k)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (archs[i].kind == k)
            return &archs[i];
    return NULL;
}

const char *arch_CatName(time_cat c)
{
    switch (c) {
    case CAT_COMPUTE: return "compute";
    case CAT_COMM: return "communication";
    case CAT_SYNC: return "synchronization";
    case CAT_UPDATE: return "update";
    case CAT_N: break;
    }
    return "other";
}
