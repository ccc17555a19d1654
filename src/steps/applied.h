/* applied.h - the {job}:applied:<p> marker: the last iteration whose update
 * peer p's model holds (written by update in the same command as the model,
 * store_UpdateMarked; cleared by init, set by rejoin to the source's).
 * Internal to src/steps. */
#ifndef SPIRT_STEPS_APPLIED_H
#define SPIRT_STEPS_APPLIED_H

#include "steps/request.h"
#include "store/store.h"

/* *last = -1 when peer has no marker; a marker that is not an iteration
 * number is SP_ERR_FORMAT naming the key. */
spStatus applied_Read(store *s, const step_req *q, int peer, long *last);
/* Sets the marker (t >= 0) or deletes it (t < 0). */
spStatus applied_Write(store *s, const step_req *q, int peer, long t);

#endif
