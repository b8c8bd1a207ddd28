/* gg_check.h — the runner every serial Check suite ends its main() with
 * (the MPI suite, test_comm.c, runs its own: no fork, one rank reports). */
#ifndef GG_TESTS_GG_CHECK_H
#define GG_TESTS_GG_CHECK_H

#include <check.h>

/* Run every test of s (each in a forked child, Check's default), free the
 * runner, and return the exit status: 0 when all passed, else 1. */
static inline int gg_check_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

#endif
