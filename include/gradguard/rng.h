/* rng.h — gradguard's one random number generator.
 *
 * xoshiro256** seeded through splitmix64 from (seed, stream): every random
 * thing in a run (initialization of each layer, the shuffle of each epoch)
 * draws from its own stream, so it depends only on --seed and on what it is,
 * never on the rank count or on what was drawn before. Identical on every
 * rank and every platform (integer arithmetic; doubles from 53 bits).
 */
#ifndef GRADGUARD_RNG_H
#define GRADGUARD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t s[4];
} gg_rng_t;

/* Streams used by the library (stream numbers are part of reproducibility). */
#define GG_STREAM_INIT(layer) (0x1000u + (uint64_t)(layer))
#define GG_STREAM_SHUFFLE(epoch) (0x100000000ull + (uint64_t)(epoch))

void gg_rng_seed(gg_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t gg_rng_u64(gg_rng_t *r);
/* Uniform in [0, 1) with 53 random bits. */
double gg_rng_uniform(gg_rng_t *r);
/* Standard normal (Box-Muller, both uniforms drawn per call: stateless). */
double gg_rng_normal(gg_rng_t *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t gg_rng_below(gg_rng_t *r, uint64_t n);
/* perm[i] = i, then a Fisher-Yates shuffle. */
void gg_rng_permutation(gg_rng_t *r, uint32_t *perm, size_t n);

#endif
