/* test_comm.c — MPI helpers at 1, 2 and 4 ranks (run under mpiexec). */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/comm.h"
#include "gradguard/error.h"

static gg_comm_t C;

START_TEST(init_knows_ranks) {
  int r, s;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  ck_assert_int_eq(C.rank, r);
  ck_assert_int_eq(C.size, s);
  ck_assert_int_ge(C.local_size, 1);
  ck_assert_int_lt(C.local_rank, C.local_size);
  ck_assert(C.host[0] != 0);
}
END_TEST

START_TEST(agree_all_ok) {
  int failed = 123;
  ck_assert_int_eq(gg_comm_agree(&C, 0, &failed), 0);
  ck_assert_int_eq(failed, -1);
}
END_TEST

START_TEST(agree_reports_lowest_failing_rank) {
  /* each rank in turn fails alone; then the two highest fail with
   * different codes and the lower one's code wins */
  for (int bad = 0; bad < C.size; bad++) {
    int failed = -7;
    int rc = gg_comm_agree(&C, C.rank == bad ? GG_EDATA : 0, &failed);
    ck_assert_int_eq(rc, GG_EDATA);
    ck_assert_int_eq(failed, bad);
  }
  if (C.size >= 2) {
    int status = C.rank == C.size - 1 ? GG_ENOINPUT : C.rank == C.size - 2 ? GG_EIO : 0;
    int failed;
    ck_assert_int_eq(gg_comm_agree(&C, status, &failed), GG_EIO);
    ck_assert_int_eq(failed, C.size - 2);
  }
}
END_TEST

START_TEST(allreduce_sums_in_place) {
  enum { N = 1000 };
  float *b = malloc(N * sizeof *b);
  for (int i = 0; i < N; i++) b[i] = (float)(i + C.rank);
  ck_assert_int_eq(gg_comm_allreduce_sum(&C, b, N), 0);
  for (int i = 0; i < N; i++)
    ck_assert_float_eq(b[i], (float)(C.size * i + C.size * (C.size - 1) / 2));
  free(b);
  double d[2] = {1.5, (double)C.rank};
  ck_assert_int_eq(gg_comm_allreduce_sum_d(&C, d, 2), 0);
  ck_assert_double_eq(d[0], 1.5 * C.size);
  ck_assert_double_eq(d[1], C.size * (C.size - 1) / 2.0);
}
END_TEST

START_TEST(max_loc_finds_largest_and_lowest_rank) {
  /* ranks 0, 1, 2, 3 hold 10, 11, 0, 1: the largest is 11 on rank 1 (10 on
   * rank 0 when it runs alone) */
  double v = (double)(C.rank % 2) + (C.rank < 2 ? 10.0 : 0.0), max = -1;
  int at = -1;
  ck_assert_int_eq(gg_comm_max_loc(&C, v, &max, &at), 0);
  ck_assert_double_eq(max, C.size == 1 ? 10.0 : 11.0);
  ck_assert_int_eq(at, C.size == 1 ? 0 : 1);
  /* a tie goes to the lowest rank */
  ck_assert_int_eq(gg_comm_max_loc(&C, 7.0, &max, &at), 0);
  ck_assert_double_eq(max, 7.0);
  ck_assert_int_eq(at, 0);
}
END_TEST

START_TEST(identical_detects_divergence) {
  float w[64];
  for (int i = 0; i < 64; i++) w[i] = (float)i * 0.5f;
  ck_assert_int_eq(gg_comm_identical(&C, w, sizeof w), 1);
  if (C.rank == C.size - 1) w[17] = nextafterf(w[17], 100.0f);
  ck_assert_int_eq(gg_comm_identical(&C, w, sizeof w), C.size == 1);
}
END_TEST

/* Uneven blocks (rank k owns 3k+1 elements, the last block possibly
 * empty-ish) with integer-valued floats, so every sum is exact. */
static void blocks(int P, int *cnt, int *off, int *n) {
  *n = 0;
  for (int k = 0; k < P; k++) {
    cnt[k] = 3 * k + 1;
    off[k] = *n;
    *n += cnt[k];
  }
}

START_TEST(reduce_scatter_sums_own_block) {
  int cnt[64], off[64], n;
  blocks(C.size, cnt, off, &n);
  float *buf = malloc((size_t)n * sizeof *buf), *scratch = malloc(64 * sizeof *scratch);
  for (int i = 0; i < n; i++) buf[i] = (float)(i + 100 * C.rank);
  float *pending = (float *)1;
  ck_assert_int_eq(gg_comm_reduce_scatter_sum(&C, buf, cnt, off, scratch, &pending), 0);
  ck_assert(C.size == 1 ? pending == NULL : pending == scratch);
  /* sum over ranks of i + 100 q = P i + 100 P (P-1) / 2 */
  double want_extra = 100.0 * C.size * (C.size - 1) / 2;
  for (int i = 0; i < cnt[C.rank]; i++) {
    int j = off[C.rank] + i;
    float got = buf[j] + (pending ? pending[i] : 0.0f);
    ck_assert_double_eq(got, (double)C.size * j + want_extra);
  }
  /* the other blocks are untouched */
  for (int j = 0; j < n; j++)
    if (j < off[C.rank] || j >= off[C.rank] + cnt[C.rank]) ck_assert(buf[j] == (float)(j + 100 * C.rank));
  free(buf);
  free(scratch);
}
END_TEST

START_TEST(allgather_and_gather0_fill_blocks) {
  int cnt[64], off[64], n;
  blocks(C.size, cnt, off, &n);
  float *buf = malloc((size_t)n * sizeof *buf);
  /* each rank knows its own block only; -1 elsewhere */
  for (int j = 0; j < n; j++) buf[j] = -1;
  for (int i = 0; i < cnt[C.rank]; i++) buf[off[C.rank] + i] = (float)(off[C.rank] + i);
  ck_assert_int_eq(gg_comm_gather0(&C, buf, cnt, off), 0);
  for (int j = 0; j < n; j++) {
    int mine = j >= off[C.rank] && j < off[C.rank] + cnt[C.rank];
    ck_assert(buf[j] == (C.rank == 0 || mine ? (float)j : -1.0f));
  }
  ck_assert_int_eq(gg_comm_allgather(&C, buf, cnt, off), 0);
  for (int j = 0; j < n; j++) ck_assert(buf[j] == (float)j);
  free(buf);
}
END_TEST

START_TEST(shm_shares_params_and_grads) {
  /* one node: every rank sees rank 0's parameters and every rank's
   * gradient buffer after a sync; enable = 0 on any rank keeps it off */
  gg_shm_t s;
  const size_t np = 1000, ng = 37;
  ck_assert_int_eq(gg_comm_shm_init(&C, &s, np, ng, 1), 0);
  if (C.size == 1) {
    ck_assert_int_eq(s.active, 0); /* one rank has nothing to share */
    gg_comm_shm_free(&s);
    return;
  }
  ck_assert_int_eq(s.active, 1);
  ck_assert_ptr_nonnull(s.params);
  ck_assert_uint_eq((uintptr_t)s.grads[0] % 64, 0);
  for (size_t i = 0; i < ng; i++) ck_assert(s.grads[C.rank][i] == 0.0f); /* zeroed */
  if (C.rank == 0)
    for (size_t i = 0; i < np; i++) s.params[i] = (float)i + 0.5f;
  for (size_t i = 0; i < ng; i++) s.grads[C.rank][i] = (float)(C.rank * 1000 + (int)i);
  ck_assert_int_eq(gg_comm_shm_sync(&C, &s), 0);
  for (size_t i = 0; i < np; i++) ck_assert(s.params[i] == (float)i + 0.5f);
  for (int r = 0; r < C.size; r++)
    for (size_t i = 0; i < ng; i++) ck_assert(s.grads[r][i] == (float)(r * 1000 + (int)i));
  /* rank 0's gradient does not overlap its parameters */
  ck_assert(s.grads[0] >= s.params + np);
  ck_assert_int_eq(gg_comm_shm_sync(&C, &s), 0); /* nobody frees while others read */
  gg_comm_shm_free(&s);
  ck_assert_int_eq(s.active, 0);
  /* the last rank says no: nobody allocates */
  ck_assert_int_eq(gg_comm_shm_init(&C, &s, np, ng, C.rank != C.size - 1), 0);
  ck_assert_int_eq(s.active, 0);
  gg_comm_shm_free(&s);
}
END_TEST

START_TEST(default_threads_positive) {
  int t = gg_comm_default_threads(&C);
  ck_assert_int_ge(t, 1);
}
END_TEST

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  if (gg_comm_init(&C, MPI_COMM_WORLD)) MPI_Abort(MPI_COMM_WORLD, 1);
  Suite *s = suite_create("comm");
  TCase *tc = tcase_create("comm");
  tcase_add_test(tc, init_knows_ranks);
  tcase_add_test(tc, agree_all_ok);
  tcase_add_test(tc, agree_reports_lowest_failing_rank);
  tcase_add_test(tc, allreduce_sums_in_place);
  tcase_add_test(tc, max_loc_finds_largest_and_lowest_rank);
  tcase_add_test(tc, identical_detects_divergence);
  tcase_add_test(tc, default_threads_positive);
  tcase_add_test(tc, reduce_scatter_sums_own_block);
  tcase_add_test(tc, allgather_and_gather0_fill_blocks);
  tcase_add_test(tc, shm_shares_params_and_grads);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK); /* MPI state must stay in this process */
  srunner_run_all(sr, C.rank == 0 ? CK_NORMAL : CK_SILENT);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  /* a failure on any rank fails the test on every rank */
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  gg_comm_free(&C);
  MPI_Finalize();
  return any ? 1 : 0;
}
