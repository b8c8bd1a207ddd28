/* test_nn_float.c — the float build of the numeric core where it differs
 * from the double build checked by test_nn: the vectorizable tanh. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "gradguard/nn.h"
#include "gg_check.h"

START_TEST(tanh_matches_double_tanh) {
  enum { N = 400001 };
  float *z = malloc(N * sizeof *z), *a = malloc(N * sizeof *a);
  for (int i = 0; i < N; i++) z[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
  gg_act_forward(GG_ACT_TANH, z, a, N);
  double worst = 0;
  for (int i = 0; i < N; i++) {
    double r = tanh((double)z[i]);
    if (r != 0) worst = fmax(worst, fabs(a[i] - r) / fabs(r));
  }
  ck_assert_msg(worst < 4e-7, "max relative error %g", worst);
  free(z);
  free(a);
}
END_TEST

START_TEST(tanh_special_values) {
  float z[] = {0.0f, -0.0f, 1e-30f, 3e-4f, 9.0f, -50.0f, INFINITY, -INFINITY, NAN};
  float a[9];
  gg_act_forward(GG_ACT_TANH, z, a, 9);
  ck_assert(a[0] == 0.0f && !signbit(a[0]));
  ck_assert(a[1] == 0.0f && signbit(a[1]));
  ck_assert_float_eq(a[2], 1e-30f);
  ck_assert_float_eq_tol(a[3], (float)tanh(3e-4), 1e-10f);
  ck_assert_float_eq(a[4], 1.0f);
  ck_assert_float_eq(a[5], -1.0f);
  ck_assert_float_eq(a[6], 1.0f);
  ck_assert_float_eq(a[7], -1.0f);
  ck_assert(isnan(a[8]));
}
END_TEST

START_TEST(tanh_backward_uses_its_forward) {
  /* a' = 1 - a^2 from the approximated a: consistent with the forward */
  float z[3] = {-1.5f, 0.25f, 2.0f}, a[3], d[3] = {1, 1, 1};
  gg_act_forward(GG_ACT_TANH, z, a, 3);
  gg_act_backward(GG_ACT_TANH, z, a, d, d, 3, 0);
  for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(d[i], 1 - a[i] * a[i], 1e-7f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nn_float");
  TCase *tc = tcase_create("nn_float");
  tcase_add_test(tc, tanh_matches_double_tanh);
  tcase_add_test(tc, tanh_special_values);
  tcase_add_test(tc, tanh_backward_uses_its_forward);
  suite_add_tcase(s, tc);
  return gg_check_run(s);
}
