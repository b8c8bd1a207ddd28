/* rng.c — xoshiro256** seeded through splitmix64 (see rng.h).
 *
 * Everything here is integer arithmetic except the final conversions, so a
 * (seed, stream) pair gives the same sequence on every rank and platform.
 * References: Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators" (2018); Lemire, "Fast random integer generation in an
 * interval" (2019).
 */
#include "gradguard/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* splitmix64: advances *x by the golden-ratio increment and returns a
 * well-mixed 64-bit word (a bijection of the new *x). */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void gg_rng_seed(gg_rng_t *r, uint64_t seed, uint64_t stream) {
  /* The splitmix state is hash(seed) XOR (stream * odd constant): for a fixed
   * seed distinct streams give distinct states (multiplication by an odd
   * number is a bijection), and for a fixed stream distinct seeds do too
   * (splitmix64's output is a bijection of its input). The four outputs
   * that follow are then unrelated across (seed, stream) pairs. */
  uint64_t x = seed;
  uint64_t h = splitmix64(&x);
  x = h ^ (stream * 0xd1342543de82ef95ull);
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  /* The all-zero state is the one fixed point of xoshiro; splitmix64 cannot
   * produce four zero outputs in a row, but say so in code. */
  if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

uint64_t gg_rng_u64(gg_rng_t *r) {
  uint64_t *s = r->s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* u = (top 53 bits) * 2^-53: every value k * 2^-53, k in [0, 2^53), equally
 * likely; exact in a double. */
double gg_rng_uniform(gg_rng_t *r) { return (double)(gg_rng_u64(r) >> 11) * 0x1.0p-53; }

/* Box-Muller: z = sqrt(-2 ln(1 - u1)) cos(2 pi u2). 1 - u1 lies in (0, 1],
 * so the logarithm is finite. The sine half is discarded so that the
 * generator carries no hidden state beyond s[4]. */
double gg_rng_normal(gg_rng_t *r) {
  const double two_pi = 6.283185307179586476925286766559;
  double u1 = gg_rng_uniform(r);
  double u2 = gg_rng_uniform(r);
  return sqrt(-2.0 * log(1.0 - u1)) * cos(two_pi * u2);
}

/* High and low 64 bits of the 128-bit product a * b. The portable path and
 * the __int128 path give identical results. */
static uint64_t mul_hilo(uint64_t a, uint64_t b, uint64_t *lo) {
#ifdef __SIZEOF_INT128__
  __extension__ unsigned __int128 p = (unsigned __int128)a * b;
  *lo = (uint64_t)p;
  return (uint64_t)(p >> 64);
#else
  uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  *lo = (mid << 32) | (p00 & 0xffffffffu);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

/* Lemire's nearly-divisionless method: floor(x * n / 2^64) for a uniform
 * 64-bit x is uniform on [0, n) once the x whose low product word falls
 * below 2^64 mod n are rejected (fewer than n of the 2^64 values). */
uint64_t gg_rng_below(gg_rng_t *r, uint64_t n) {
  if (n == 0) return 0; /* documented precondition n > 0; stay defined */
  uint64_t lo;
  uint64_t hi = mul_hilo(gg_rng_u64(r), n, &lo);
  if (lo < n) {
    const uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    while (lo < threshold) hi = mul_hilo(gg_rng_u64(r), n, &lo);
  }
  return hi;
}

/* Fisher-Yates (Durstenfeld): position i takes a uniform pick among
 * perm[0..i], so all n! orders are equally likely. */
void gg_rng_permutation(gg_rng_t *r, uint32_t *perm, size_t n) {
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)gg_rng_below(r, (uint64_t)i);
    uint32_t tmp = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = tmp;
  }
}
