/* attack.h - Byzantine peers for experiments: what f chosen peers do to the
 * data they contribute, so the robust aggregation rules can be measured.
 *
 * A poisoned peer runs the same workflow as an honest one; only its
 * contribution changes, where a real attacker would change it:
 *   label-flip  its gradients are computed on labels y -> classes-1-y;
 *   sign-flip   the average it publishes is multiplied by -scale;
 *   gaussian    the average it publishes is replaced by N(0, sigma^2) noise,
 *               drawn deterministically from (job seed, peer, iteration) so a
 *               retried step publishes the same values;
 *   corrupt     one byte of the published blob is flipped after it is
 *               sealed (a damaged or tampered message): the integrity check
 *               must catch it.
 * Everything else (its barrier, its own update) stays honest. */
#ifndef SPIRT_ATTACK_H
#define SPIRT_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum {
    ATTACK_NONE = 0,
    ATTACK_SIGN_FLIP = 1,
    ATTACK_GAUSSIAN = 2,
    ATTACK_LABEL_FLIP = 3,
    ATTACK_CORRUPT = 4
} attack_kind;

#define ATTACK_MAX_LISTED 64

typedef struct {
    attack_kind kind;
    int n_listed;                  /* --attackers 0,3: these peers ... */
    int listed[ATTACK_MAX_LISTED];
    int count;                     /* ... or --attackers-count F: the last F */
    float scale;                   /* sign-flip: x -> -scale * x (default 4) */
    float sigma;                   /* gaussian: standard deviation (default 1) */
} attack_config;

void attack_Defaults(attack_config *c);

/* "none" | "sign-flip" | "gaussian" | "label-flip" | "corrupt". */
spStatus attack_ParseKind(const char *name, attack_kind *out);
const char *attack_KindName(attack_kind k);
/* "0,3": distinct peer indices (checked against the worker count later). */
spStatus attack_ParseList(const char *list, attack_config *c);

/* Ranges and consistency against the job's worker count, with messages
 * naming the options: attackers need an attack and vice versa, indices
 * < workers, at least one honest peer left. */
spStatus attack_Validate(const attack_config *c, int workers);

/* Whether `peer` is poisoned in a job of `workers` peers. */
int attack_IsAttacker(const attack_config *c, int peer, int workers);

/* True for the kinds applied to the published average. */
int attack_OnAverage(const attack_config *c);

/* Sign flip or Gaussian replacement of a peer's average x[0..n) in place
 * (other kinds leave x alone). Deterministic in (seed, peer, iteration). */
void attack_Poison(const attack_config *c, uint64_t seed, int peer, long iteration, float *x,
                   size_t n);

/* y -> classes-1-y for every label. */
void attack_FlipLabels(int classes, int32_t *y, size_t n);

/* The byte of a wire blob of `len` bytes that `corrupt` flips: inside the
 * payload (past the header), varying with the iteration. */
size_t attack_CorruptOffset(size_t header, size_t len, long iteration);

#endif
