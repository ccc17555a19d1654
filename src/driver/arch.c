/* arch.c - the workflow tables of the distributed architectures. */
#include "driver/arch.h"

#include <stddef.h>

/* SPIRT (docs/design.md): each peer averages its M gradients inside its own
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

/* MLLESS: every worker applies its own update in sparsify and sends only
 * its significant steps as sparse updates in the shared Redis; apply adds
 * the others' to its replica. A supervisor, a step of the first live worker
 * each iteration, paces them. The steps that mostly wait for the others
 * count as synchronization; sparsify (own update) and apply (the others')
 * are the update. */
static const arch_step mlless_steps[] = {
    {"minibatch", FAN_MINIBATCH, CAT_COMPUTE},
    {"gradient", FAN_MINIBATCH, CAT_COMPUTE},
    {"average", FAN_WORKER, CAT_COMM},
    {"sparsify", FAN_WORKER, CAT_UPDATE},
    {"supervisor", FAN_LEADER, CAT_SYNC},
    {"apply", FAN_WORKER, CAT_SYNC},
};

/* ScatterReduce (LambdaML): every worker owns one chunk of the gradient. */
static const arch_step scatter_reduce_steps[] = {
    {"minibatch", FAN_MINIBATCH, CAT_COMPUTE},
    {"gradient", FAN_MINIBATCH, CAT_COMPUTE},
    {"average", FAN_WORKER, CAT_COMM},
    {"scatter", FAN_WORKER, CAT_COMM},
    {"chunk_reduce", FAN_WORKER, CAT_SYNC},
    {"chunk_gather", FAN_WORKER, CAT_COMM},
    {"update", FAN_WORKER, CAT_UPDATE},
};

/* AllReduce (LambdaML): the master (first live worker) reduces for all. */
static const arch_step all_reduce_steps[] = {
    {"minibatch", FAN_MINIBATCH, CAT_COMPUTE},
    {"gradient", FAN_MINIBATCH, CAT_COMPUTE},
    {"average", FAN_WORKER, CAT_COMM},
    {"notify", FAN_WORKER, CAT_SYNC},
    {"master_reduce", FAN_LEADER, CAT_COMM},
    {"fetch_reduced", FAN_WORKER, CAT_SYNC},
    {"update", FAN_WORKER, CAT_UPDATE},
};

#define ARCH_N(a) (int)(sizeof a / sizeof a[0])

static const arch_def archs[] = {
    {ARCH_SPIRT, spirt_steps, ARCH_N(spirt_steps), 1},
    /* One shared database for every worker; a lost worker stops the job. */
    {ARCH_MLLESS, mlless_steps, ARCH_N(mlless_steps), 0},
    {ARCH_SCATTER_REDUCE, scatter_reduce_steps, ARCH_N(scatter_reduce_steps), 0},
    {ARCH_ALL_REDUCE, all_reduce_steps, ARCH_N(all_reduce_steps), 0},
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
