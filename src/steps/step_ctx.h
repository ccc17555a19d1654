/* step_ctx.h - what every step's run function gets from the one wrapper
 * (steps_Invoke, steps.h) and how a step file defines its table entry.
 * Internal to src/steps.
 *
 * A step file states its request shape once, in its STEP_DEFINE line; the
 * wrapper does the prologue every handler used to repeat (parse and check
 * those fields, start the timings, the live list, the own database) and
 * the epilogue (timings and bytes into the answer, free the request), so
 * the run function holds only the step's own logic. */
#ifndef SPIRT_STEPS_STEP_CTX_H
#define SPIRT_STEPS_STEP_CTX_H

#include "steps/request.h"
#include "steps/step_util.h"
#include "steps/steps.h"

/* Work of the wrapper a step_def's `need` can ask for besides the REQ_*
 * request fields (bits above those of request.h). Done in this order after
 * req_Parse, before the run function. */
enum {
    /* "live" (default every worker), sorted; the caller must be in it:
     * c->live, c->n_live and c->rank, the caller's position (collective.h) */
    STEP_LIVE = 1 << 8,
    /* STEP_LIVE, and the step runs on the first live worker only (the
     * MLLESS supervisor, the AllReduce master): another caller is 400 */
    STEP_FIRST_LIVE = (1 << 9) | STEP_LIVE,
    /* c->own: the caller's own database (req_OwnStore) */
    STEP_OWN = 1 << 10
};

struct step_ctx {
    const step_def *def;
    const rt_request *req;  /* its deadline bounds the step's waits */
    step_req q;             /* the parsed request (need's REQ_* fields) */
    step_io io;             /* timings and bytes, answered on success */
    int *live, n_live, rank; /* STEP_LIVE */
    store *own;             /* STEP_OWN */
};

/* The table entry of a step, in its own file: step_def_<name> with the
 * request shape `need` (REQ_* | STEP_*) and the idempotent flag, and the
 * rt_handler step_<Fn> that runs it through steps_Invoke. The step's logic
 * is `static spStatus <name>_Run(step_ctx *c, cJSON *res)`, defined after
 * this line. Used once per step file, so a function binary that references
 * step_def_<name> links this file's step and no other. */
#define STEP_DEFINE(name, Fn, need, idempotent)                                          \
    static spStatus name##_Run(step_ctx *c, cJSON *res);                                 \
    const step_def step_def_##name = {#name, step_##Fn, idempotent, need, name##_Run};   \
    spStatus step_##Fn(const rt_request *req, cJSON *res, void *ctx)                     \
    {                                                                                    \
        (void)ctx;                                                                       \
        return steps_Invoke(&step_def_##name, req, res);                                 \
    }

#endif
