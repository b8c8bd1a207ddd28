/* test_rng.c — src/rng.c: known answers, determinism, stream independence
 * and the distributions (tolerances of a few standard errors, fixed seeds so
 * a run is reproducible). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/rng.h"
#include "gg_check.h"

#define N_DRAWS 1000000

/* xoshiro256** reference outputs for the state {1, 2, 3, 4} (Vigna's
 * xoshiro256starstar.c), and for gg_rng_seed(42, 7) as computed by an
 * independent Python transcription of splitmix64 + xoshiro256**. */
START_TEST(test_known_answers) {
  gg_rng_t r = {.s = {1, 2, 3, 4}};
  const uint64_t ref[4] = {11520u, 0u, 1509978240u, 1215971899390074240ull};
  for (int i = 0; i < 4; i++) ck_assert_uint_eq(gg_rng_u64(&r), ref[i]);

  gg_rng_seed(&r, 42, 7);
  const uint64_t seeded[4] = {0x62737c38a122f17bull, 0xea6ebb82a9ba9dafull, 0xd441ca1af7a73d34ull,
                              0x98876492b1a0996aull};
  for (int i = 0; i < 4; i++) ck_assert_uint_eq(gg_rng_u64(&r), seeded[i]);

  gg_rng_seed(&r, 0, 0);
  ck_assert_uint_eq(gg_rng_u64(&r), 0xfb5405f7bd79c540ull);
}
END_TEST

START_TEST(test_same_seed_same_sequence) {
  gg_rng_t a, b;
  gg_rng_seed(&a, 12345, GG_STREAM_INIT(3));
  gg_rng_seed(&b, 12345, GG_STREAM_INIT(3));
  for (int i = 0; i < 10000; i++) ck_assert_uint_eq(gg_rng_u64(&a), gg_rng_u64(&b));
  /* The doubles are functions of the integers, so they repeat too. */
  for (int i = 0; i < 1000; i++) ck_assert(gg_rng_normal(&a) == gg_rng_normal(&b));
}
END_TEST

/* Pearson correlation of the uniforms of two generators over n draws. */
static double correlation(gg_rng_t *a, gg_rng_t *b, int n) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (int i = 0; i < n; i++) {
    double x = gg_rng_uniform(a), y = gg_rng_uniform(b);
    sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
  }
  double cov = sab / n - (sa / n) * (sb / n);
  return cov / sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
}

START_TEST(test_streams_and_seeds_differ) {
  /* Neighbouring streams, neighbouring seeds, and a (seed, stream) swap all
   * give unrelated sequences: no equal words and no correlation beyond 5
   * standard errors (1/sqrt(n)). */
  const uint64_t pairs[4][4] = {{0, 0, 0, 1},
                                {0, GG_STREAM_INIT(0), 0, GG_STREAM_INIT(1)},
                                {1, 5, 2, 5},
                                {3, 4, 4, 3}};
  for (int p = 0; p < 4; p++) {
    gg_rng_t a, b;
    gg_rng_seed(&a, pairs[p][0], pairs[p][1]);
    gg_rng_seed(&b, pairs[p][2], pairs[p][3]);
    int equal = 0;
    for (int i = 0; i < 1000; i++) equal += gg_rng_u64(&a) == gg_rng_u64(&b);
    ck_assert_int_eq(equal, 0);
    const int n = 100000;
    double rho = correlation(&a, &b, n);
    ck_assert_msg(fabs(rho) < 5.0 / sqrt(n), "pair %d: correlation %g", p, rho);
  }
}
END_TEST

START_TEST(test_uniform_moments) {
  gg_rng_t r;
  gg_rng_seed(&r, 2024, 1);
  double s = 0, s2 = 0, lo = 1, hi = 0;
  for (int i = 0; i < N_DRAWS; i++) {
    double u = gg_rng_uniform(&r);
    ck_assert(u >= 0.0 && u < 1.0);
    s += u;
    s2 += u * u;
    if (u < lo) lo = u;
    if (u > hi) hi = u;
  }
  const double n = N_DRAWS, mean = s / n, var = s2 / n - mean * mean;
  /* mean: SE = sqrt(1/12 / n); variance: SE = sqrt((mu4 - sigma^4) / n)
   * with mu4 = 1/80, sigma^4 = 1/144, so mu4 - sigma^4 = 1/180. */
  ck_assert_msg(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n), "mean %g", mean);
  ck_assert_msg(fabs(var - 1.0 / 12) < 5 * sqrt(1.0 / 180 / n), "var %g", var);
  ck_assert(lo < 1e-5 && hi > 1 - 1e-5);
}
END_TEST

START_TEST(test_uniform_53_bits) {
  /* Every value is k * 2^-53: multiplying back gives an integer. */
  gg_rng_t r;
  gg_rng_seed(&r, 9, 9);
  int low_bit_set = 0;
  for (int i = 0; i < 1000; i++) {
    double k = gg_rng_uniform(&r) * 0x1.0p53;
    ck_assert(k == floor(k));
    low_bit_set += fmod(k, 2.0) == 1.0;
  }
  /* ... and the lowest of the 53 bits is used (about half odd). */
  ck_assert_int_gt(low_bit_set, 400);
  ck_assert_int_lt(low_bit_set, 600);
}
END_TEST

START_TEST(test_normal_moments) {
  gg_rng_t r;
  gg_rng_seed(&r, 77, 3);
  double s = 0, s2 = 0, s4 = 0;
  long beyond3 = 0;
  double *x = malloc(N_DRAWS * sizeof *x);
  ck_assert_ptr_nonnull(x);
  for (int i = 0; i < N_DRAWS; i++) {
    x[i] = gg_rng_normal(&r);
    ck_assert(isfinite(x[i]));
    s += x[i];
    beyond3 += fabs(x[i]) > 3.0;
  }
  const double n = N_DRAWS, mean = s / n;
  for (int i = 0; i < N_DRAWS; i++) {
    double d = x[i] - mean;
    s2 += d * d;
    s4 += d * d * d * d;
  }
  free(x);
  const double var = s2 / n, kurt = s4 / n / (var * var) - 3.0;
  /* SEs for N(0,1): mean 1/sqrt(n), variance sqrt(2/n), excess kurtosis
   * sqrt(24/n); P(|z| > 3) = 0.0026998 with binomial SE. */
  ck_assert_msg(fabs(mean) < 5 / sqrt(n), "mean %g", mean);
  ck_assert_msg(fabs(var - 1.0) < 5 * sqrt(2 / n), "var %g", var);
  ck_assert_msg(fabs(kurt) < 5 * sqrt(24 / n), "excess kurtosis %g", kurt);
  const double p3 = 0.0026997960632601866;
  ck_assert_msg(fabs(beyond3 / n - p3) < 5 * sqrt(p3 * (1 - p3) / n), "P(|z|>3) = %g", beyond3 / n);
}
END_TEST

START_TEST(test_below_bounds) {
  gg_rng_t r;
  gg_rng_seed(&r, 5, 5);
  const uint64_t ns[] = {1, 2, 3, 7, 1000, 0xffffffffull, 0x8000000000000001ull, UINT64_MAX};
  for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++)
    for (int i = 0; i < 10000; i++) ck_assert_uint_lt(gg_rng_below(&r, ns[j]), ns[j]);
  /* n = 2 reaches both values, n = 1 only 0. */
  int seen[2] = {0, 0};
  for (int i = 0; i < 100; i++) seen[gg_rng_below(&r, 2)] = 1;
  ck_assert(seen[0] && seen[1]);
  ck_assert_uint_eq(gg_rng_below(&r, 1), 0);
}
END_TEST

/* Pearson chi-square of counts against equal expected counts. */
static double chi_square(const long *count, int k, long n) {
  double e = (double)n / k, chi = 0;
  for (int i = 0; i < k; i++) chi += (count[i] - e) * (count[i] - e) / e;
  return chi;
}

START_TEST(test_below_chi_square) {
  gg_rng_t r;
  gg_rng_seed(&r, 31337, 0);
  /* n = 10: 9 degrees of freedom, P(chi2 > 40) < 1e-5. */
  long count[10] = {0};
  for (int i = 0; i < N_DRAWS; i++) count[gg_rng_below(&r, 10)]++;
  double chi = chi_square(count, 10, N_DRAWS);
  ck_assert_msg(chi < 40.0, "chi2 %g with 9 dof", chi);

  /* n = 3 * 2^62, where the shortcuts are visibly biased: u64 % n puts half
   * of the mass in [0, 2^62), and floor(x n / 2^64) without the rejection
   * step puts 1/2 on values == 0 (mod 3). Both chi-squares have 2 dof, P(chi2
   * > 25) < 4e-6. */
  const uint64_t n = 3ull << 62;
  long third[3] = {0}, mod3[3] = {0};
  const long draws = 300000;
  for (long i = 0; i < draws; i++) {
    uint64_t v = gg_rng_below(&r, n);
    ck_assert_uint_lt(v, n);
    third[v >> 62]++;
    mod3[v % 3]++;
  }
  ck_assert_msg(chi_square(third, 3, draws) < 25.0, "thirds %ld %ld %ld", third[0], third[1], third[2]);
  ck_assert_msg(chi_square(mod3, 3, draws) < 25.0, "residues %ld %ld %ld", mod3[0], mod3[1], mod3[2]);
}
END_TEST

START_TEST(test_permutation_is_permutation) {
  const size_t n = 10007;
  uint32_t *p = malloc(n * sizeof *p);
  unsigned char *seen = calloc(n, 1);
  ck_assert(p && seen);
  gg_rng_t r;
  gg_rng_seed(&r, 1, GG_STREAM_SHUFFLE(0));
  gg_rng_permutation(&r, p, n);
  size_t fixed = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_lt(p[i], n);
    ck_assert(!seen[p[i]]);
    seen[p[i]] = 1;
    fixed += p[i] == i;
  }
  /* Fixed points of a random permutation are ~Poisson(1). */
  ck_assert_uint_lt(fixed, 10);
  free(seen);
  free(p);

  /* Edge cases: n = 0 touches nothing, n = 1 is the identity. */
  uint32_t one = 12345;
  gg_rng_permutation(&r, &one, 0);
  ck_assert_uint_eq(one, 12345);
  gg_rng_permutation(&r, &one, 1);
  ck_assert_uint_eq(one, 0);
}
END_TEST

START_TEST(test_permutation_depends_on_stream_only) {
  enum { N = 1000 };
  static uint32_t a[N], b[N], c[N];
  gg_rng_t r;
  gg_rng_seed(&r, 8, GG_STREAM_SHUFFLE(1));
  gg_rng_permutation(&r, a, N);
  gg_rng_seed(&r, 8, GG_STREAM_SHUFFLE(1));
  gg_rng_permutation(&r, b, N);
  gg_rng_seed(&r, 8, GG_STREAM_SHUFFLE(2));
  gg_rng_permutation(&r, c, N);
  ck_assert(memcmp(a, b, sizeof a) == 0);
  int same = 0;
  for (int i = 0; i < N; i++) same += a[i] == c[i];
  ck_assert_int_lt(same, 10);
}
END_TEST

START_TEST(test_permutation_uniform) {
  /* All 24 orders of 4 elements equally likely: 23 dof, P(chi2 > 60) < 5e-5. */
  gg_rng_t r;
  gg_rng_seed(&r, 4, 4);
  long count[24] = {0};
  const long draws = 240000;
  for (long i = 0; i < draws; i++) {
    uint32_t p[4];
    gg_rng_permutation(&r, p, 4);
    /* Lehmer code -> index in [0, 24). */
    int idx = 0;
    for (int j = 0; j < 4; j++) {
      int smaller = 0;
      for (int k = j + 1; k < 4; k++) smaller += p[k] < p[j];
      idx = idx * (4 - j) + smaller;
    }
    count[idx]++;
  }
  double chi = chi_square(count, 24, draws);
  ck_assert_msg(chi < 60.0, "chi2 %g with 23 dof", chi);
}
END_TEST

static Suite *rng_suite(void) {
  Suite *s = suite_create("rng");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_known_answers);
  tcase_add_test(tc, test_same_seed_same_sequence);
  tcase_add_test(tc, test_streams_and_seeds_differ);
  tcase_add_test(tc, test_uniform_moments);
  tcase_add_test(tc, test_uniform_53_bits);
  tcase_add_test(tc, test_normal_moments);
  tcase_add_test(tc, test_below_bounds);
  tcase_add_test(tc, test_below_chi_square);
  tcase_add_test(tc, test_permutation_is_permutation);
  tcase_add_test(tc, test_permutation_depends_on_stream_only);
  tcase_add_test(tc, test_permutation_uniform);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return gg_check_run(rng_suite());
}
