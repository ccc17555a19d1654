/* resume.h - continuing an interrupted job from its peers' databases.
 *
 * `spirt train ... --resume` against the running services of a job whose
 * driver died: init (with "resume": true) keeps every peer's model and
 * reports the last iteration each one applied. The run goes on at the
 * iteration after the furthest peer's. Peers that are behind (the driver
 * died between the peers' updates of one iteration, or a peer had been
 * excluded) re-authenticate and copy that peer's model with the rejoin step
 * (without a join announcement), so every live peer starts from the same
 * model and no
 * applied iteration is lost; peers whose database does not answer start
 * on standby and rejoin once it does. */
#ifndef SPIRT_RESUME_H
#define SPIRT_RESUME_H

#include <cJSON.h>

#include "driver/invoke.h"
#include "driver/train.h"

/* applied: init's "applied" array (one entry per worker: number or null).
 * Fills *start and down[workers]; adds "resume" to details. */
spStatus resume_Plan(const invoker *inv, const cJSON *base, const cJSON *applied, int workers,
                     const train_observer *obs, long *start, int *down, cJSON *details);

#endif
