/* rng.h - small deterministic PRNG (xoshiro256**, seeded by splitmix64).
 *
 * Everything random in spirt (weight init, shuffling, attacks) draws from an
 * rng seeded from the job seed plus a purpose-specific stream id, so a run is
 * reproducible bit-for-bit on any machine and in any process. */
#ifndef SPIRT_RNG_H
#define SPIRT_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } rng;

/* Seeds from (seed, stream): different streams give independent sequences. */
void rng_Seed(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_Next(rng *r);
/* Uniform in [0, 1). */
float rng_Uniform(rng *r);
/* Standard normal (Box-Muller). */
float rng_Normal(rng *r);
/* Uniform integer in [0, n), unbiased. */
uint64_t rng_Below(rng *r, uint64_t n);

#endif
