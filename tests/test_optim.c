/* test_optim.c — src/optim.c: every optimizer against its recurrence
 * written out in double below (three steps, weight decay off and on), the
 * fused update's clamp / weight clip / statistics on a hand example, the
 * equivalences between the entry points, and the learning-rate schedules
 * (torch's CosineAnnealingLR after a linear warmup, StepLR). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"
#include "gradguard/optim.h"
#include "gg_check.h"

/* |got - want| <= rel |want| (+ a floor for values that are ~0). */
#define ck_assert_rel(got, want, rel)                                                              \
  do {                                                                                             \
    double g_ = (got), w_ = (want);                                                                \
    ck_assert_msg(fabs(g_ - w_) <= (rel) * fabs(w_) + 1e-12, "%s = %.10g, expected %.10g (rel %g)", \
                  #got, g_, w_, (rel));                                                            \
  } while (0)

enum { N = 3, STEPS = 3 };
static const float W0[N] = {0.5f, -1.25f, 2.0f};
static const float G[STEPS][N] = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.25f}, {0.2f, 0.1f, -0.6f}};
static const double LR = 0.1, MU = 0.9, B1 = 0.9, B2 = 0.999, EPS = 1e-8;

/* The recurrences of optim.h in double, for one step t (1-based). */
static void ref_step(gg_opt_kind_t kind, double *w, double *s0, double *s1, const float *gf, double wd,
                     int t) {
  for (int i = 0; i < N; i++) {
    double g = gf[i];
    switch (kind) {
    case GG_OPT_SGD:
      g += wd * w[i];
      w[i] -= LR * g;
      break;
    case GG_OPT_MOMENTUM:
      g += wd * w[i];
      s0[i] = MU * s0[i] + g; /* buf = g on the first step, as in torch */
      w[i] -= LR * s0[i];
      break;
    case GG_OPT_NESTEROV:
      g += wd * w[i];
      s0[i] = MU * s0[i] + g;
      w[i] -= LR * (g + MU * s0[i]);
      break;
    case GG_OPT_ADAM:
    case GG_OPT_ADAMW: {
      if (kind == GG_OPT_ADAM)
        g += wd * w[i];
      else
        w[i] *= 1 - LR * wd;
      s0[i] = B1 * s0[i] + (1 - B1) * g;
      s1[i] = B2 * s1[i] + (1 - B2) * g * g;
      double bc1 = 1 - pow(B1, t), bc2 = 1 - pow(B2, t);
      w[i] -= LR / bc1 * s0[i] / (sqrt(s1[i]) / sqrt(bc2) + EPS);
      break;
    }
    default: ck_abort_msg("bad kind");
    }
  }
}

/* Three steps of kind with weight decay wd, against ref_step. */
static void check_against_reference(gg_opt_kind_t kind, double wd) {
  gg_optim_t opt;
  ck_assert_int_eq(gg_optim_init(&opt, kind, N, MU, B1, B2, EPS, wd), 0);
  float w[N];
  double rw[N], rs0[N] = {0}, rs1[N] = {0};
  for (int i = 0; i < N; i++) w[i] = W0[i], rw[i] = W0[i];
  for (int t = 1; t <= STEPS; t++) {
    gg_optim_step(&opt, w, G[t - 1], LR);
    ref_step(kind, rw, rs0, rs1, G[t - 1], wd, t);
    ck_assert_int_eq(opt.t, t);
    for (int i = 0; i < N; i++) {
      ck_assert_msg(fabs(w[i] - rw[i]) <= 1e-6 * fabs(rw[i]), "%s wd %g step %d w[%d] = %.9g, expected %.9g",
                    gg_opt_name(kind), wd, t, i, w[i], rw[i]);
      if (opt.n_slots > 0) ck_assert_rel(gg_optim_slot(&opt, 0)[i], rs0[i], 1e-6);
      if (opt.n_slots > 1) ck_assert_rel(gg_optim_slot(&opt, 1)[i], rs1[i], 1e-6);
    }
  }
  gg_optim_free(&opt);
}

START_TEST(test_sgd) {
  check_against_reference(GG_OPT_SGD, 0.0);
  check_against_reference(GG_OPT_SGD, 0.05);
}
END_TEST

START_TEST(test_momentum) {
  check_against_reference(GG_OPT_MOMENTUM, 0.0);
  check_against_reference(GG_OPT_MOMENTUM, 0.05);
}
END_TEST

START_TEST(test_nesterov) {
  check_against_reference(GG_OPT_NESTEROV, 0.0);
  check_against_reference(GG_OPT_NESTEROV, 0.05);
}
END_TEST

START_TEST(test_adam) {
  check_against_reference(GG_OPT_ADAM, 0.0);
  check_against_reference(GG_OPT_ADAM, 0.05);
}
END_TEST

START_TEST(test_adamw) {
  check_against_reference(GG_OPT_ADAMW, 0.0);
  check_against_reference(GG_OPT_ADAMW, 0.05);
}
END_TEST

START_TEST(test_first_steps_by_hand) {
  /* Independent of ref_step, two facts anyone can check on paper:
   * SGD with wd 0.5: w = 2, g = 1, lr 0.1 -> 2 - 0.1 (1 + 1) = 1.8.
   * Adam's first step is lr * sign(g) (m/sqrt(v) = g/|g| after the bias
   * corrections), up to eps. */
  gg_optim_t opt;
  float w = 2.0f, g = 1.0f;
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 1, 0, 0, 0, 0, 0.5), 0);
  gg_optim_step(&opt, &w, &g, 0.1);
  ck_assert_rel(w, 1.8, 1e-7);
  gg_optim_free(&opt);

  float wa[2] = {1.0f, 1.0f}, ga[2] = {0.003f, -250.0f};
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAM, 2, 0, 0.9, 0.999, 1e-8, 0), 0);
  gg_optim_step(&opt, wa, ga, 0.01);
  ck_assert_rel(wa[0], 0.99, 1e-6);
  ck_assert_rel(wa[1], 1.01, 1e-6);
  gg_optim_free(&opt);
}
END_TEST

START_TEST(test_adamw_vs_adam) {
  float wa[N], ww[N];
  gg_optim_t a, b;
  /* Without weight decay the two are the same algorithm, bit for bit. */
  ck_assert_int_eq(gg_optim_init(&a, GG_OPT_ADAM, N, 0, B1, B2, EPS, 0.0), 0);
  ck_assert_int_eq(gg_optim_init(&b, GG_OPT_ADAMW, N, 0, B1, B2, EPS, 0.0), 0);
  memcpy(wa, W0, sizeof wa);
  memcpy(ww, W0, sizeof ww);
  for (int t = 0; t < STEPS; t++) {
    gg_optim_step(&a, wa, G[t], LR);
    gg_optim_step(&b, ww, G[t], LR);
  }
  ck_assert(memcmp(wa, ww, sizeof wa) == 0);
  gg_optim_free(&a);
  gg_optim_free(&b);
  /* With it, coupled and decoupled decay differ: after one step, AdamW is
   * exactly the wd = 0 Adam step applied to w (1 - lr wd), while Adam's
   * normalized step barely sees the decay. */
  ck_assert_int_eq(gg_optim_init(&a, GG_OPT_ADAM, N, 0, B1, B2, EPS, 0.1), 0);
  ck_assert_int_eq(gg_optim_init(&b, GG_OPT_ADAMW, N, 0, B1, B2, EPS, 0.1), 0);
  memcpy(wa, W0, sizeof wa);
  memcpy(ww, W0, sizeof ww);
  gg_optim_step(&a, wa, G[0], LR);
  gg_optim_step(&b, ww, G[0], LR);
  for (int i = 0; i < N; i++) {
    ck_assert_msg(fabs(wa[i] - ww[i]) > 1e-3, "element %d: adam %g adamw %g", i, wa[i], ww[i]);
    /* AdamW: w (1 - 0.01) - lr sign(g) (first step). */
    double sign = G[0][i] > 0 ? 1.0 : -1.0;
    ck_assert_rel(ww[i], W0[i] * (1 - LR * 0.1) - LR * sign, 1e-6);
  }
  gg_optim_free(&a);
  gg_optim_free(&b);
}
END_TEST

START_TEST(test_fused_update_by_hand) {
  /* sgd, lr 0.1, no decay; scale 0.5, clamp 1, wclip 1.9:
   *   w        1     -2     0.5    3     (last: already outside wclip)
   *   g        4     -1     0.2    2
   *   scale g  2     -0.5   0.1    1     (1 == clamp: not changed)
   *   g'       1     -0.5   0.1    1     n_clamped = 1
   *   w - lr g' 0.9  -1.95  0.49   2.9
   *   clip     0.9   -1.9   0.49   1.9
   * and the sums: g2 = 1 + .25 + .01 + 1 = 2.26
   *   w2 = .81 + 3.61 + .2401 + 3.61 = 8.2701
   *   dw2 = .01 + .01 + .0001 + 1.21 = 1.2301
   *   wwold = .9 + 3.8 + .245 + 5.7 = 10.645
   *   wold2 = 1 + 4 + .25 + 9 = 14.25 */
  gg_optim_t opt;
  float w[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  const float g[4] = {4.0f, -1.0f, 0.2f, 2.0f};
  float gcopy[4];
  memcpy(gcopy, g, sizeof g);
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 4, 0, 0, 0, 0, 0), 0);
  gg_update_acc_t acc = {10, 20, 30, 40, 50, 60}; /* the update adds to acc */
  gg_optim_begin(&opt, 0.1);
  gg_optim_update(&opt, w, g, 0, 4, 0.5f, 1.0f, 1.9f, &acc);
  const double want[4] = {0.9, -1.9, 0.49, 1.9};
  for (int i = 0; i < 4; i++) ck_assert_rel(w[i], want[i], 1e-6);
  ck_assert(memcmp(g, gcopy, sizeof g) == 0); /* grads untouched */
  ck_assert_rel(acc.g2 - 10, 2.26, 1e-6);
  ck_assert(acc.n_clamped == 21.0);
  ck_assert_rel(acc.w2 - 30, 8.2701, 1e-6);
  ck_assert_rel(acc.dw2 - 40, 1.2301, 1e-6);
  ck_assert_rel(acc.wwold - 50, 10.645, 1e-6);
  ck_assert_rel(acc.wold2 - 60, 14.25, 1e-6);
  gg_optim_free(&opt);
}
END_TEST

START_TEST(test_fused_update_off_switches) {
  /* clamp <= 0 and wclip <= 0 mean "off": nothing clamped or counted. */
  gg_optim_t opt;
  float w[3] = {5.0f, -5.0f, 0.0f};
  const float g[3] = {-100.0f, 100.0f, 1.0f};
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 3, 0, 0, 0, 0, 0), 0);
  gg_update_acc_t acc = {0};
  gg_optim_begin(&opt, 0.1);
  gg_optim_update(&opt, w, g, 0, 3, 1.0f, 0.0f, 0.0f, &acc);
  ck_assert_rel(w[0], 15.0, 1e-7);
  ck_assert_rel(w[1], -15.0, 1e-7);
  ck_assert_rel(w[2], -0.1, 1e-7);
  ck_assert(acc.n_clamped == 0.0);
  ck_assert_rel(acc.g2, 20001.0, 1e-9);
  gg_optim_begin(&opt, 0.1);
  gg_optim_update(&opt, w, g, 0, 3, 1.0f, -1.0f, -1.0f, &acc);
  ck_assert_rel(w[0], 25.0, 1e-7);
  ck_assert(acc.n_clamped == 0.0);
  /* The clamp acts before the optimizer: Adam's moments see g', and an
   * empty range is a no-op. */
  gg_optim_free(&opt);
  float wa[2] = {0.0f, 0.0f};
  const float ga[2] = {10.0f, -0.25f};
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAM, 2, 0, 0.9, 0.999, 1e-8, 0), 0);
  gg_optim_begin(&opt, 0.01);
  memset(&acc, 0, sizeof acc);
  gg_optim_update(&opt, wa, ga, 1, 1, 1.0f, 0.5f, 0.0f, &acc);
  ck_assert(wa[0] == 0.0f && wa[1] == 0.0f && acc.g2 == 0.0);
  gg_optim_update(&opt, wa, ga, 0, 2, 1.0f, 0.5f, 0.0f, &acc);
  ck_assert_rel(gg_optim_slot(&opt, 0)[0], 0.1 * 0.5, 1e-6);
  ck_assert_rel(gg_optim_slot(&opt, 1)[0], 0.001 * 0.25, 1e-6);
  ck_assert_rel(gg_optim_slot(&opt, 0)[1], 0.1 * -0.25, 1e-6);
  ck_assert(acc.n_clamped == 1.0);
  gg_optim_free(&opt);
}
END_TEST

/* Deterministic pseudo-random test data in [-1, 1). */
static void fill(float *x, size_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)((s >> 8) * (1.0 / 8388608.0) - 1.0);
  }
}

START_TEST(test_step_equals_begin_update) {
  enum { M = 37 }; /* four blocks of 8 and a tail */
  for (int k = 0; k < GG_OPT__COUNT; k++) {
    gg_optim_t a, b;
    float wa[M], wb[M], g[M];
    fill(wa, M, 1);
    memcpy(wb, wa, sizeof wa);
    ck_assert_int_eq(gg_optim_init(&a, (gg_opt_kind_t)k, M, 0.9, 0.9, 0.999, 1e-8, 0.01), 0);
    ck_assert_int_eq(gg_optim_init(&b, (gg_opt_kind_t)k, M, 0.9, 0.9, 0.999, 1e-8, 0.01), 0);
    for (int t = 0; t < 4; t++) {
      fill(g, M, 10 + t);
      gg_optim_step(&a, wa, g, 0.05);
      gg_update_acc_t acc = {0};
      gg_optim_begin(&b, 0.05);
      gg_optim_update(&b, wb, g, 0, M, 1.0f, 0.0f, 0.0f, &acc);
    }
    ck_assert_msg(memcmp(wa, wb, sizeof wa) == 0, "%s: params differ", gg_opt_name((gg_opt_kind_t)k));
    if (a.n_slots)
      ck_assert(memcmp(a.state, b.state, (size_t)a.n_slots * M * sizeof(float)) == 0);
    ck_assert_int_eq(a.t, b.t);
    gg_optim_free(&a);
    gg_optim_free(&b);
  }
}
END_TEST

START_TEST(test_update_ranges_compose) {
  /* Disjoint ranges covering [0, n) give the same parameters and state as
   * one range; the sums agree up to the order of additions. */
  enum { M = 101 };
  for (int k = 0; k < GG_OPT__COUNT; k++) {
    gg_optim_t a, b;
    float wa[M], wb[M], g[M];
    fill(wa, M, 3);
    memcpy(wb, wa, sizeof wa);
    fill(g, M, 4);
    ck_assert_int_eq(gg_optim_init(&a, (gg_opt_kind_t)k, M, 0.9, 0.9, 0.999, 1e-8, 0.01), 0);
    ck_assert_int_eq(gg_optim_init(&b, (gg_opt_kind_t)k, M, 0.9, 0.9, 0.999, 1e-8, 0.01), 0);
    gg_update_acc_t acc_a = {0}, acc_b = {0};
    gg_optim_begin(&a, 0.05);
    gg_optim_update(&a, wa, g, 0, M, 0.7f, 0.3f, 0.9f, &acc_a);
    gg_optim_begin(&b, 0.05);
    gg_optim_update(&b, wb, g, 0, 13, 0.7f, 0.3f, 0.9f, &acc_b);
    gg_optim_update(&b, wb, g, 13, 14, 0.7f, 0.3f, 0.9f, &acc_b);
    gg_optim_update(&b, wb, g, 14, M, 0.7f, 0.3f, 0.9f, &acc_b);
    ck_assert(memcmp(wa, wb, sizeof wa) == 0);
    if (a.n_slots) ck_assert(memcmp(a.state, b.state, (size_t)a.n_slots * M * sizeof(float)) == 0);
    ck_assert_rel(acc_b.g2, acc_a.g2, 1e-12);
    ck_assert(acc_b.n_clamped == acc_a.n_clamped && acc_a.n_clamped > 10);
    ck_assert_rel(acc_b.w2, acc_a.w2, 1e-12);
    /* dw2 and wold2 (statistics only) add float lanes (optim.c): 1e-6 */
    ck_assert_rel(acc_b.dw2, acc_a.dw2, 1e-6);
    ck_assert_rel(acc_b.wwold, acc_a.wwold, 1e-12);
    ck_assert_rel(acc_b.wold2, acc_a.wold2, 1e-6);
    /* And the sums are those of the definitions. */
    float w0[M];
    fill(w0, M, 3);
    double g2 = 0, w2 = 0, dw2 = 0, ww = 0, wold2 = 0, nc = 0;
    for (int i = 0; i < M; i++) {
      double gs = 0.7f * g[i], gc = fmax(-0.3f, fmin(0.3f, gs));
      g2 += gc * gc;
      nc += fabs(gs) > 0.3f;
      w2 += (double)wa[i] * wa[i];
      dw2 += ((double)wa[i] - w0[i]) * ((double)wa[i] - w0[i]);
      ww += (double)wa[i] * w0[i];
      wold2 += (double)w0[i] * w0[i];
      ck_assert(fabs(wa[i]) <= 0.9f);
    }
    ck_assert_rel(acc_a.g2, g2, 1e-6);
    ck_assert(acc_a.n_clamped == nc);
    ck_assert_rel(acc_a.w2, w2, 1e-12);
    ck_assert_rel(acc_a.dw2, dw2, 1e-6);
    ck_assert_rel(acc_a.wwold, ww, 1e-12);
    ck_assert_rel(acc_a.wold2, wold2, 1e-6);
    gg_optim_free(&a);
    gg_optim_free(&b);
  }
}
END_TEST

START_TEST(test_begin_bias_corrections) {
  gg_optim_t opt;
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAM, 4, 0, 0.9, 0.999, 1e-8, 0), 0);
  ck_assert_int_eq(opt.t, 0);
  gg_optim_begin(&opt, 0.5);
  ck_assert_int_eq(opt.t, 1);
  ck_assert(opt.lr == 0.5);
  ck_assert_rel(opt.bc1, 0.1, 1e-12);
  ck_assert_rel(opt.bc2_sqrt, sqrt(0.001), 1e-12);
  gg_optim_begin(&opt, 0.25);
  gg_optim_begin(&opt, 0.25);
  ck_assert_int_eq(opt.t, 3);
  ck_assert_rel(opt.bc1, 1 - 0.729, 1e-12);
  ck_assert_rel(opt.bc2_sqrt, sqrt(1 - 0.999 * 0.999 * 0.999), 1e-12);
  gg_optim_free(&opt);
}
END_TEST

START_TEST(test_state_layout_and_names) {
  const int slots[GG_OPT__COUNT] = {0, 1, 1, 2, 2};
  for (int k = 0; k < GG_OPT__COUNT; k++) {
    gg_optim_t opt;
    ck_assert_int_eq(gg_optim_init(&opt, (gg_opt_kind_t)k, 1000, 0.9, 0.9, 0.999, 1e-8, 0), 0);
    ck_assert_int_eq(opt.n_slots, slots[k]);
    ck_assert_uint_eq(opt.n, 1000);
    for (size_t i = 0; i < (size_t)opt.n_slots * 1000; i++) ck_assert(opt.state[i] == 0.0f);
    if (opt.n_slots == 2) ck_assert_ptr_eq(gg_optim_slot(&opt, 1), opt.state + 1000);
    ck_assert_ptr_null(gg_optim_slot_name(&opt, opt.n_slots));
    ck_assert_ptr_null(gg_optim_slot_name(&opt, -1));
    if (k == GG_OPT_MOMENTUM || k == GG_OPT_NESTEROV)
      ck_assert_str_eq(gg_optim_slot_name(&opt, 0), "momentum_buffer");
    if (k == GG_OPT_ADAM || k == GG_OPT_ADAMW) {
      ck_assert_str_eq(gg_optim_slot_name(&opt, 0), "exp_avg");
      ck_assert_str_eq(gg_optim_slot_name(&opt, 1), "exp_avg_sq");
    }
    gg_optim_free(&opt);
    ck_assert_ptr_null(opt.state);
    gg_optim_free(&opt); /* twice is fine */
  }
  gg_optim_t zero;
  memset(&zero, 0, sizeof zero);
  gg_optim_free(&zero);
}
END_TEST

START_TEST(test_names) {
  const char *names[GG_OPT__COUNT] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
  for (int k = 0; k < GG_OPT__COUNT; k++) {
    ck_assert_str_eq(gg_opt_name((gg_opt_kind_t)k), names[k]);
    ck_assert_int_eq(gg_opt_parse(names[k]), k);
  }
  ck_assert_int_eq(gg_opt_parse("Adam"), -1);
  ck_assert_int_eq(gg_opt_parse("rmsprop"), -1);
  ck_assert_int_eq(gg_opt_parse(""), -1);
  ck_assert_int_eq(gg_opt_parse(NULL), -1);
}
END_TEST

START_TEST(test_init_rejects_bad_hyperparameters) {
  gg_optim_t opt;
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_NESTEROV, 4, 0.0, 0.9, 0.999, 1e-8, 0), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "nesterov"));
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_MOMENTUM, 4, -0.5, 0.9, 0.999, 1e-8, 0), GG_EUSAGE);
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAM, 4, 0.9, 1.0, 0.999, 1e-8, 0), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--beta1"));
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAMW, 4, 0.9, 0.9, -0.1, 1e-8, 0), GG_EUSAGE);
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_ADAM, 4, 0.9, 0.9, 0.999, -1e-8, 0), GG_EUSAGE);
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 4, 0.9, 0.9, 0.999, 1e-8, -0.1), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--weight-decay"));
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 4, 0.9, 0.9, 0.999, 1e-8, NAN), GG_EUSAGE);
  ck_assert_int_eq(gg_optim_init(&opt, (gg_opt_kind_t)GG_OPT__COUNT, 4, 0.9, 0.9, 0.999, 1e-8, 0), GG_EUSAGE);
  ck_assert_ptr_null(opt.state);
  gg_optim_free(&opt);
  /* SGD ignores the Adam settings it does not use. */
  ck_assert_int_eq(gg_optim_init(&opt, GG_OPT_SGD, 4, -1, 7, 7, -7, 0), 0);
  gg_optim_free(&opt);
}
END_TEST

/* ---- schedules ---- */

START_TEST(test_sched_constant) {
  gg_sched_t s;
  ck_assert_int_eq(gg_sched_parse("constant", &s), 0);
  ck_assert_int_eq(s.kind, GG_SCHED_CONSTANT);
  for (long t = 1; t <= 100; t += 33) ck_assert(gg_sched_lr(&s, 0.3, t, 100) == 0.3);
}
END_TEST

START_TEST(test_sched_cosine_warmup) {
  gg_sched_t s;
  ck_assert_int_eq(gg_sched_parse("cosine", &s), 0);
  ck_assert_int_eq(s.kind, GG_SCHED_COSINE);
  ck_assert_int_eq(s.warmup_steps, 0); /* the config sets it from --warmup-steps */
  s.warmup_steps = 10;
  const double lr = 0.2;
  const long T = 110; /* 100 decay steps: CosineAnnealingLR(T_max = 100) */
  ck_assert_rel(gg_sched_lr(&s, lr, 1, T), lr / 10, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 5, T), lr / 2, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 10, T), lr, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 11, T), lr, 1e-15); /* epoch 0 of the cosine */
  ck_assert_rel(gg_sched_lr(&s, lr, 61, T), lr / 2, 1e-12); /* epoch 50 of 100 */
  ck_assert_rel(gg_sched_lr(&s, lr, 36, T), lr * (1 + cos(0.78539816339744830962)) / 2, 1e-12);
  ck_assert_rel(gg_sched_lr(&s, lr, T, T), lr * (1 + cos(3.14159265358979323846 * 99 / 100)) / 2, 1e-12);
  /* Monotone after the warmup, never negative, 0 past the end. */
  for (long t = 11; t < T; t++) ck_assert(gg_sched_lr(&s, lr, t + 1, T) <= gg_sched_lr(&s, lr, t, T));
  ck_assert(gg_sched_lr(&s, lr, T + 1, T) >= 0 && gg_sched_lr(&s, lr, T + 1, T) < 1e-12);
  ck_assert(gg_sched_lr(&s, lr, T + 50, T) < 1e-12);
  /* No warmup: full rate at t = 1. */
  s.warmup_steps = 0;
  ck_assert_rel(gg_sched_lr(&s, lr, 1, 100), lr, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 51, 100), lr / 2, 1e-12);
  /* A run shorter than the warmup (T <= W) stays finite: warmup, then lr. */
  s.warmup_steps = 50;
  ck_assert_rel(gg_sched_lr(&s, lr, 20, 20), lr * 20 / 50, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 50, 50), lr, 1e-15);
  ck_assert(isfinite(gg_sched_lr(&s, lr, 51, 50)));
  ck_assert(isfinite(gg_sched_lr(&s, lr, 51, 0)));
}
END_TEST

START_TEST(test_sched_step) {
  /* torch StepLR(step_size=30, gamma=0.1): epochs 0-29 lr, 30-59 lr/10... with
   * epoch = t - 1. */
  gg_sched_t s;
  ck_assert_int_eq(gg_sched_parse("step:30:0.1", &s), 0);
  ck_assert_int_eq(s.kind, GG_SCHED_STEP);
  ck_assert_int_eq(s.every, 30);
  ck_assert(s.gamma == 0.1);
  const double lr = 0.05;
  ck_assert_rel(gg_sched_lr(&s, lr, 1, 1000), lr, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 30, 1000), lr, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 31, 1000), lr * 0.1, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 60, 1000), lr * 0.1, 1e-15);
  ck_assert_rel(gg_sched_lr(&s, lr, 61, 1000), lr * 0.01, 1e-14);
  ck_assert_rel(gg_sched_lr(&s, lr, 91, 1000), lr * 0.001, 1e-14);
  ck_assert_int_eq(gg_sched_parse("step:1:0.5", &s), 0);
  ck_assert_rel(gg_sched_lr(&s, 1.0, 4, 10), 0.125, 1e-15);
}
END_TEST

START_TEST(test_sched_parse_errors) {
  const char *bad[] = {"",          "linear",      "cosine:5",     "constant:1", "step",
                       "step:",     "step:10",     "step:10:",     "step:0:0.5", "step:-5:0.5",
                       "step:x:0.5", "step:10:0",  "step:10:-0.5", "step:10:abc", "step:10:0.5:2",
                       "step:1.5:0.5", "step:10:inf", "Step:10:0.5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gg_sched_t s = {GG_SCHED_COSINE, 7, 7, 7.0};
    gg_err_clear();
    ck_assert_msg(gg_sched_parse(bad[i], &s) == GG_EUSAGE, "\"%s\" accepted", bad[i]);
    ck_assert_msg(strncmp(gg_err_msg(GG_EUSAGE), "--lr-schedule: ", 15) == 0, "\"%s\": message \"%s\"",
                  bad[i], gg_err_msg(GG_EUSAGE));
    ck_assert(s.kind == GG_SCHED_COSINE && s.every == 7); /* untouched */
  }
  gg_sched_t s;
  gg_sched_parse("step:0:0.5", &s);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "EVERY >= 1"));
  gg_sched_parse("step:5:0", &s);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "GAMMA > 0"));
}
END_TEST

START_TEST(test_sched_format_round_trip) {
  const char *specs[] = {"constant", "cosine", "step:30:0.1", "step:1000:0.5", "step:1:2"};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    gg_sched_t s, again;
    char buf[64];
    ck_assert_int_eq(gg_sched_parse(specs[i], &s), 0);
    gg_sched_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, specs[i]);
    ck_assert_int_eq(gg_sched_parse(buf, &again), 0);
    ck_assert(again.kind == s.kind && again.every == s.every && again.gamma == s.gamma);
  }
  gg_sched_t s = {GG_SCHED_STEP, 0, 7, 1.0 / 3.0}, back;
  char buf[64];
  gg_sched_format(&s, buf, sizeof buf);
  ck_assert_int_eq(gg_sched_parse(buf, &back), 0);
  ck_assert(back.gamma == s.gamma);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("optimizers");
  tcase_add_test(tc, test_sgd);
  tcase_add_test(tc, test_momentum);
  tcase_add_test(tc, test_nesterov);
  tcase_add_test(tc, test_adam);
  tcase_add_test(tc, test_adamw);
  tcase_add_test(tc, test_first_steps_by_hand);
  tcase_add_test(tc, test_adamw_vs_adam);
  tcase_add_test(tc, test_fused_update_by_hand);
  tcase_add_test(tc, test_fused_update_off_switches);
  tcase_add_test(tc, test_step_equals_begin_update);
  tcase_add_test(tc, test_update_ranges_compose);
  tcase_add_test(tc, test_begin_bias_corrections);
  tcase_add_test(tc, test_state_layout_and_names);
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_init_rejects_bad_hyperparameters);
  suite_add_tcase(s, tc);
  TCase *sc = tcase_create("schedules");
  tcase_add_test(sc, test_sched_constant);
  tcase_add_test(sc, test_sched_cosine_warmup);
  tcase_add_test(sc, test_sched_step);
  tcase_add_test(sc, test_sched_parse_errors);
  tcase_add_test(sc, test_sched_format_round_trip);
  suite_add_tcase(s, sc);
  return s;
}

int main(void) {
  return gg_check_run(optim_suite());
}
