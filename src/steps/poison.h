/* poison.h - where a Byzantine peer (ml/attack.h) changes what it
 * contributes, kept in the data path so the other peers really receive the
 * poisoned values. Internal to src/steps. */
#ifndef SPIRT_STEPS_POISON_H
#define SPIRT_STEPS_POISON_H

#include <stdint.h>

#include "steps/request.h"
#include "steps/step_util.h"

/* Whether the request's peer is one of the job's attackers with `kind`'s
 * family of attacks (label flipping / poisoning the published average). */
int poison_FlipsLabels(const step_req *q);
int poison_OnAverage(const step_req *q);

/* Rewrites the average at `key` on s as the attacker publishes it: sign
 * flipped, replaced by Gaussian noise, or with one byte flipped after it
 * was sealed. Idempotent: a retried step publishes the same bytes. */
spStatus poison_Average(const step_req *q, store *s, const char *key, step_io *io);

#endif
