/* step_invoke.c - the one wrapper every step runs through (steps.h
 * steps_Invoke): the prologue and epilogue the handlers share, driven by
 * the step's table entry. */
#include <stdlib.h>

#include "steps/collective.h"
#include "steps/step_ctx.h"

/* The STEP_* work, in the order the handlers did it before they shared
 * this wrapper, so a request with several faults gets the same answer. */
static spStatus invoke_Prepare(step_ctx *c)
{
    unsigned need = c->def->need;
    spStatus st;
    if ((need & STEP_LIVE) && (st = live_Get(&c->q, &c->live, &c->n_live, &c->rank)))
        return st;
    if ((need & STEP_FIRST_LIVE) == STEP_FIRST_LIVE && c->rank != 0)
        return sp_Error(SP_ERR_INVALID, "%s runs on the first live worker (%d), not on worker %d",
                        c->def->name, c->live[0], c->q.peer);
    if ((need & STEP_OWN) && (st = req_OwnStore(&c->q, &c->own)))
        return st;
    return SP_OK;
}

spStatus steps_Invoke(const step_def *def, const rt_request *req, cJSON *res)
{
    step_ctx c = {.def = def, .req = req};
    io_Init(&c.io);
    spStatus st = req_Parse(req, def->need, &c.q);
    if (st)
        return st;
    if ((st = invoke_Prepare(&c)) == SP_OK && (st = def->run(&c, res)) == SP_OK)
        io_Answer(res, &c.io);
    free(c.live);
    return st;
}
