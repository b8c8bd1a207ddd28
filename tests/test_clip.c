/* test_clip.c — src/clip.c and src/stats.c: every gradient control of the
 * contract on a small network (widths 3,4,2) whose flat buffers are filled
 * by hand, checked against values worked out here in double:
 *   measure (row sums, layer norms, max|g|, the global norm with the 1/batch
 *   scale), --clip-norm, --clip-value, --clip-layer-norm, --agc, --autoclip
 *   (and gg_percentile_sorted), --weight-clip, --max-norm, their order in one
 *   step, the update sums, --agc's weight norms taken from the last update
 *   (bitwise those read from the weights, so a resumed run takes the same
 *   steps), the edge cases of the issue (zero gradient, one
 *   huge value, 1e20 gradients, NaN/Inf, a norm exactly at the threshold,
 *   PyTorch's own clip_grad_norm_ vector), the log2 histogram, and the
 *   statistics rows (gg_stats_record / _record_hist / _clear / _print).
 *
 * The step runs as gg_trainer_step runs it: measure -> plan -> sgd with lr 1
 * and no weight decay through the fused pass, so w' = w - g' and the
 * gradient the optimizer saw is read back from the weights. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/clip.h"
#include "gradguard/error.h"
#include "gradguard/nn.h"
#include "gradguard/optim.h"
#include "gradguard/stats.h"
#include "gg_check.h"

/* |got - want| <= rel |want| + abs. */
#define ck_assert_close(got, want, rel, abs_)                                                     \
  do {                                                                                             \
    double g_ = (got), w_ = (want);                                                                \
    ck_assert_msg(fabs(g_ - w_) <= (rel) * fabs(w_) + (abs_), "%s = %.12g, expected %.12g", #got, \
                  g_, w_);                                                                         \
  } while (0)
#define ck_assert_rel(got, want, rel) ck_assert_close(got, want, rel, 1e-300)

/* The layout of widths {3, 4, 2}, written out by hand (PyTorch nn.Linear):
 *   layer 0: W0 (4, 3) at 0..11, b0 (4) at 12..15
 *   layer 1: W1 (2, 4) at 16..23, b1 (2) at 24..25        n = 26 */
static const int WIDTHS[3] = {3, 4, 2};
enum { NP = 26, NROWS = 8 };
#define W0(j, i) (3 * (j) + (i))
#define B0(j) (12 + (j))
#define W1(j, i) (16 + 4 * (j) + (i))
#define B1(j) (24 + (j))
/* rows: 4 weight rows + bias of layer 0, 2 weight rows + bias of layer 1 */
static const size_t ROW_BEGIN[NROWS + 1] = {0, 3, 6, 9, 12, 16, 20, 24, 26};
static const int ROW_LAYER[NROWS] = {0, 0, 0, 0, 0, 1, 1, 1};
static const int ROW_IS_BIAS[NROWS] = {0, 0, 0, 0, 1, 0, 0, 1};

/* A deterministic pattern in [-1, 1], multiples of 1/8 (exact in float, and
 * its squares add exactly in double), with a few zeros. */
static double pat(int i) { return (double)((i * 37) % 17 - 8) / 8.0; }

typedef struct {
  gg_arch_t arch;
  gg_clip_t clip;
  gg_optim_t opt;
  float w[NP], g[NP], w0[NP];
  gg_clip_result_t res;
} fx_t;

static gg_clip_cfg_t cfg_none(void) {
  gg_clip_cfg_t c;
  memset(&c, 0, sizeof c);
  return c;
}

static void fx_init_w(fx_t *f, const int *widths, int nw, gg_clip_cfg_t cfg) {
  memset(f, 0, sizeof *f);
  ck_assert_int_eq(gg_arch_init(&f->arch, widths, nw, GG_ACT_RELU, GG_LOSS_MSE), 0);
  ck_assert_int_eq(gg_clip_init(&f->clip, &f->arch, &cfg), 0);
  ck_assert_int_eq(gg_optim_init(&f->opt, GG_OPT_SGD, f->arch.n_params, 0, 0.9, 0.999, 1e-8, 0), 0);
}
static void fx_init(fx_t *f, gg_clip_cfg_t cfg) {
  fx_init_w(f, WIDTHS, 3, cfg);
  ck_assert_uint_eq(f->arch.n_params, NP);
}
static void fx_free(fx_t *f) {
  gg_clip_free(&f->clip);
  gg_optim_free(&f->opt);
  gg_arch_free(&f->arch);
}

/* One finite step: measure, plan, sgd lr 1 through the fused pass. w0 keeps
 * the weights before the step. */
static void fx_step_buf(fx_t *f, float *w, const float *g, float *w0, float scale) {
  memcpy(w0, w, f->arch.n_params * sizeof *w);
  gg_clip_measure(&f->clip, g, w, scale, &f->res);
  ck_assert_int_eq(f->res.nonfinite, 0);
  ck_assert_int_eq(gg_clip_plan(&f->clip, scale, &f->res), 0);
  gg_optim_begin(&f->opt, 1.0);
  gg_clip_apply_update(&f->clip, &f->opt, w, g, 1, &f->res);
}
static void fx_step(fx_t *f, float scale) { fx_step_buf(f, f->w, f->g, f->w0, scale); }

/* ---- layout and measure ---- */

START_TEST(test_row_layout) {
  fx_t f;
  fx_init(&f, cfg_none());
  ck_assert_uint_eq(f.clip.n_rows, NROWS);
  for (int r = 0; r <= NROWS; r++) ck_assert_uint_eq(f.clip.row_begin[r], ROW_BEGIN[r]);
  ck_assert_uint_eq(f.clip.layer_row[0], 0);
  ck_assert_uint_eq(f.clip.layer_row[1], 5);
  ck_assert_uint_eq(f.clip.layer_row[2], 8);
  ck_assert_ptr_null(f.clip.row_acc); /* only with --max-norm */
  fx_free(&f);
}
END_TEST

START_TEST(test_measure_sums_with_scale) {
  /* g holds the SUM over a batch of 2; the measured gradient is 0.5 g */
  fx_t f;
  fx_init(&f, cfg_none());
  for (int i = 0; i < NP; i++) f.g[i] = (float)pat(i);
  gg_clip_measure(&f.clip, f.g, f.w, 0.5f, &f.res);
  double lay2[2] = {0, 0}, laymax[2] = {0, 0};
  for (int r = 0; r < NROWS; r++) {
    double s = 0;
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) {
      double v = 0.5 * pat((int)i);
      s += v * v;
      if (fabs(v) > laymax[ROW_LAYER[r]]) laymax[ROW_LAYER[r]] = fabs(v);
    }
    ck_assert_rel(f.clip.row_g2[r], s, 1e-15);
    lay2[ROW_LAYER[r]] += s;
  }
  for (int l = 0; l < 2; l++) {
    ck_assert_rel(f.clip.layer_g2[l], lay2[l], 1e-15);
    ck_assert_rel(f.clip.layer_maxabs[l], laymax[l], 1e-7);
  }
  ck_assert_int_eq(f.res.nonfinite, 0);
  ck_assert_rel(f.res.grad_norm, sqrt(lay2[0] + lay2[1]), 1e-15);
  /* a few entries by hand: pat(0) = -1, pat(1) = (37 % 17 - 8)/8 = -5/8 */
  ck_assert_rel(f.clip.row_g2[0], 0.25 * (1.0 + 25.0 / 64 + pat(2) * pat(2)), 1e-15);
  fx_free(&f);
}
END_TEST

START_TEST(test_measure_weight_rows_for_agc) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.1;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.w[i] = (float)(2.0 * pat(i + 3));
  gg_clip_measure(&f.clip, f.g, f.w, 1.0f, &f.res);
  for (int r = 0; r < NROWS; r++) {
    double s = 0;
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) s += 4.0 * pat((int)i + 3) * pat((int)i + 3);
    ck_assert_rel(f.clip.row_w2[r], s, 1e-15);
  }
  ck_assert(f.res.grad_norm == 0.0);
  fx_free(&f);
}
END_TEST

START_TEST(test_measure_long_rows) {
  /* rows of 37 (four blocks of 8 and a tail of 5) and 3: the row sums and
   * the max |g| wherever the largest value sits in a row */
  static const int w37[3] = {37, 3, 2};
  fx_t f;
  fx_init_w(&f, w37, 3, cfg_none());
  enum { N37 = 37 * 3 + 3 + 3 * 2 + 2 };
  ck_assert_uint_eq(f.arch.n_params, N37);
  float g[N37], w[N37] = {0};
  for (int i = 0; i < N37; i++) g[i] = (float)pat(i);
  g[0 * 37 + 5] = -3.0f;  /* row 0: in the first block */
  g[1 * 37 + 34] = 2.5f;  /* row 1: in the tail */
  g[2 * 37 + 36] = -1.5f; /* row 2: the last element */
  gg_clip_measure(&f.clip, g, w, 0.25f, &f.res);
  double lay = 0;
  for (int r = 0; r < 3; r++) {
    double s = 0;
    for (int i = 0; i < 37; i++) s += 0.0625 * g[r * 37 + i] * g[r * 37 + i];
    ck_assert_rel(f.clip.row_g2[r], s, 1e-15);
    lay += s;
  }
  double sb = 0;
  for (int i = 111; i < 114; i++) sb += 0.0625 * g[i] * g[i];
  ck_assert_rel(f.clip.row_g2[3], sb, 1e-15);
  ck_assert_rel(f.clip.layer_g2[0], lay + sb, 1e-15);
  ck_assert(f.clip.layer_maxabs[0] == 0.75f);
  /* only the tail holds the max */
  g[0 * 37 + 5] = 0.5f;
  g[1 * 37 + 34] = -2.75f;
  gg_clip_measure(&f.clip, g, w, 1.0f, &f.res);
  ck_assert(f.clip.layer_maxabs[0] == 2.75f);
  fx_free(&f);
}
END_TEST

/* ---- --clip-norm ---- */

START_TEST(test_clip_norm_scales_all) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 0.5;
  fx_t f;
  fx_init(&f, cfg);
  double tot2 = 0;
  for (int i = 0; i < NP; i++) {
    f.g[i] = (float)pat(i);
    tot2 += 0.25 * pat(i) * pat(i);
  }
  double total = sqrt(tot2), coef = 0.5 / (total + 1e-6);
  ck_assert(total > 0.5); /* the test needs a gradient above the threshold */
  fx_step(&f, 0.5f);
  ck_assert_rel(f.res.grad_norm, total, 1e-15);
  ck_assert_rel(f.res.clip_coef, coef, 1e-15);
  double got2 = 0;
  for (int i = 0; i < NP; i++) {
    ck_assert_close(-f.w[i], 0.5 * pat(i) * coef, 1e-6, 1e-12); /* w' = 0 - g' */
    got2 += (double)f.w[i] * f.w[i];
  }
  ck_assert_rel(sqrt(got2), 0.5 * total / (total + 1e-6), 1e-6);
  ck_assert_rel(f.res.grad_norm_clipped, 0.5 * total / (total + 1e-6), 1e-6);
  ck_assert(f.res.clipped_fraction == 0.0);
  fx_free(&f);
}
END_TEST

START_TEST(test_clip_norm_below_threshold_untouched) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 10;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.g[i] = (float)pat(i);
  fx_step(&f, 0.5f);
  ck_assert(f.res.clip_coef == 1.0);
  for (int i = 0; i < NP; i++) ck_assert(f.w[i] == (float)(-0.5 * pat(i)));
  ck_assert_rel(f.res.grad_norm_clipped, f.res.grad_norm, 1e-12);
  fx_free(&f);
}
END_TEST

START_TEST(test_clip_norm_exactly_at_threshold) {
  /* ||g|| = 5 = C: coef = C / (C + 1e-6), just below 1 (PyTorch) */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 5;
  fx_t f;
  fx_init(&f, cfg);
  f.g[W0(1, 1)] = 3.0f;
  f.g[B1(1)] = 4.0f;
  fx_step(&f, 1.0f);
  ck_assert(f.res.grad_norm == 5.0);
  ck_assert(f.res.clip_coef == 5.0 / (5.0 + 1e-6));
  ck_assert(f.res.clip_coef < 1.0);
  ck_assert_rel(-f.w[W0(1, 1)], 3.0 * 5.0 / 5.000001, 1e-7);
  ck_assert_rel(-f.w[B1(1)], 4.0 * 5.0 / 5.000001, 1e-7);
  fx_free(&f);
}
END_TEST

START_TEST(test_clip_norm_pytorch_vector) {
  /* torch's test_clip_grad_norm: 100 gradients of 1, max_norm 1: the norm is
   * 10 and every gradient becomes 0.1 (within 1e-6 relative). Widths 9,9,1
   * have exactly 81 + 9 + 9 + 1 = 100 parameters. */
  static const int w991[3] = {9, 9, 1};
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 1;
  fx_t f;
  fx_init_w(&f, w991, 3, cfg);
  ck_assert_uint_eq(f.arch.n_params, 100);
  float w[100] = {0}, g[100], w0[100];
  for (int i = 0; i < 100; i++) g[i] = 1.0f;
  fx_step_buf(&f, w, g, w0, 1.0f);
  ck_assert(f.res.grad_norm == 10.0);
  ck_assert_rel(f.res.clip_coef, 0.1, 1e-6);
  for (int i = 0; i < 100; i++) ck_assert_rel(-w[i], 0.1, 1e-6);
  ck_assert_rel(f.res.grad_norm_clipped, 1.0, 1e-6);
  fx_free(&f);
}
END_TEST

/* ---- --clip-value ---- */

START_TEST(test_clip_value_clamps_and_counts) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_value = 0.25;
  fx_t f;
  fx_init(&f, cfg);
  int changed = 0;
  double g2 = 0;
  for (int i = 0; i < NP; i++) f.g[i] = (float)pat(i);
  fx_step(&f, 0.5f);
  for (int i = 0; i < NP; i++) {
    double v = 0.5 * pat(i); /* multiples of 1/16 in [-0.5, 0.5] */
    double want = v > 0.25 ? 0.25 : v < -0.25 ? -0.25 : v;
    changed += fabs(v) > 0.25;
    g2 += want * want;
    ck_assert(f.w[i] == (float)-want);
  }
  ck_assert_int_gt(changed, 0);
  ck_assert_int_lt(changed, NP);
  ck_assert_rel(f.res.clipped_fraction, (double)changed / NP, 1e-15);
  ck_assert(f.res.clip_coef == 1.0);
  ck_assert_rel(f.res.grad_norm_clipped, sqrt(g2), 1e-12);
  fx_free(&f);
}
END_TEST

/* ---- --clip-layer-norm ---- */

START_TEST(test_clip_layer_norm_per_tensor) {
  /* C = 1, per TENSOR (weight and bias apart):
   *   W0: four 1s, ||.|| = 2   -> x 1/2
   *   b0: (0.25, 0.25, 0, 0) ||.|| = 0.354 -> untouched (together with W0
   *       the layer norm would be 2.016 and b0 would shrink too)
   *   W1: four 0.5s, ||.|| = 1 = C -> C / max(1, C) = 1, untouched
   *   b1: (0, 4)            -> x 1/4 */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_layer_norm = 1;
  fx_t f;
  fx_init(&f, cfg);
  for (int j = 0; j < 4; j++) f.g[W0(j, 0)] = 1.0f;
  f.g[B0(0)] = f.g[B0(1)] = 0.25f;
  for (int i = 0; i < 4; i++) f.g[W1(0, i)] = 0.5f;
  f.g[B1(1)] = 4.0f;
  float gin[NP];
  memcpy(gin, f.g, sizeof gin);
  fx_step(&f, 1.0f);
  for (int i = 0; i < NP; i++) {
    double fac = i < 12 ? 0.5 : i < 16 ? 1.0 : i < 24 ? 1.0 : 0.25;
    ck_assert_msg(f.w[i] == (float)(-fac * gin[i]), "element %d: %g, expected %g", i, f.w[i],
                  -fac * gin[i]);
  }
  ck_assert(f.res.clip_coef == 1.0);
  ck_assert_rel(f.res.grad_norm_clipped, sqrt(1.0 + 0.125 + 1.0 + 1.0), 1e-12);
  /* the raw statistics stay raw */
  ck_assert_rel(f.res.grad_norm, sqrt(4.0 + 0.125 + 1.0 + 16.0), 1e-15);
  fx_free(&f);
}
END_TEST

/* ---- --agc ---- */

/* Weights and averaged gradients of the AGC example, lambda = 0.1:
 *  row       w              ||w||  max = .1 max(||w||,1e-3)  g                     ||g||     factor
 *  W0 r0   (1,2,2)          3      0.3                      (.75, 0, 1)           1.25      0.24
 *  W0 r1   (0,0,0)          0      1e-4 (the eps)           (0,.375,.5)/128       .625/128  0.02048
 *  W0 r2   (.5,0,0)         0.5    0.05                     (1,2,2)/64            0.046875  1
 *  W0 r3   (3,0,4)          5      0.5                      (.375,.5,0)           0.625     0.8
 *  b0      (0,0,0,0)        0      1e-4                     (1/1024,0,0,0)        1/1024    0.1024
 *  W1 r0   (1,1,1,1)        2      0.2                      (1/16 x4)             0.125     1
 *  W1 r1   (0,0,0,2)        2      0.2                      (1,0,0,0)             1         0.2
 *  b1      (3,4)            5      0.5                      (0,.25)               0.25      1   */
static const double AGC_FACTOR[NROWS] = {0.24, 0.02048, 1, 0.8, 0.1024, 1, 0.2, 1};
static void agc_example(float *w, float *gavg) {
  memset(w, 0, NP * sizeof *w);
  memset(gavg, 0, NP * sizeof *gavg);
  w[W0(0, 0)] = 1, w[W0(0, 1)] = 2, w[W0(0, 2)] = 2;
  w[W0(2, 0)] = 0.5f;
  w[W0(3, 0)] = 3, w[W0(3, 2)] = 4;
  for (int i = 0; i < 4; i++) w[W1(0, i)] = 1;
  w[W1(1, 3)] = 2;
  w[B1(0)] = 3, w[B1(1)] = 4;
  gavg[W0(0, 0)] = 0.75f, gavg[W0(0, 2)] = 1.0f;
  gavg[W0(1, 1)] = 0.375f / 128, gavg[W0(1, 2)] = 0.5f / 128;
  gavg[W0(2, 0)] = 1.0f / 64, gavg[W0(2, 1)] = 2.0f / 64, gavg[W0(2, 2)] = 2.0f / 64;
  gavg[W0(3, 0)] = 0.375f, gavg[W0(3, 1)] = 0.5f;
  gavg[B0(0)] = 1.0f / 1024;
  for (int i = 0; i < 4; i++) gavg[W1(0, i)] = 1.0f / 16;
  gavg[W1(1, 0)] = 1.0f;
  gavg[B1(1)] = 0.25f;
}

START_TEST(test_agc_unit_wise) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.1;
  fx_t f;
  fx_init(&f, cfg);
  float gavg[NP];
  agc_example(f.w, gavg);
  for (int i = 0; i < NP; i++) f.g[i] = 2 * gavg[i]; /* the sum over a batch of 2 */
  fx_step(&f, 0.5f);
  double g2 = 0;
  for (int r = 0; r < NROWS; r++) {
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) {
      double gp = AGC_FACTOR[r] * gavg[i];
      g2 += gp * gp;
      if (AGC_FACTOR[r] == 1.0) /* rows within their bound are not touched at all */
        ck_assert_msg(f.w[i] == f.w0[i] - gavg[i], "row %d element %zu changed", r, i);
      else
        ck_assert_close(f.w[i], f.w0[i] - gp, 1e-6, 1e-9);
    }
  }
  /* the clipped rows now sit exactly at their bound */
  double n0 = 0;
  for (int i = 0; i < 3; i++) n0 += pow((double)f.w0[W0(0, i)] - f.w[W0(0, i)], 2);
  ck_assert_rel(sqrt(n0), 0.3, 1e-6);
  ck_assert_rel(f.res.grad_norm_clipped, sqrt(g2), 1e-6);
  ck_assert(f.res.clip_coef == 1.0);
  fx_free(&f);
}
END_TEST

START_TEST(test_agc_zero_weights_use_eps) {
  /* all weights 0 (a zero init): every row is bounded by lambda * 1e-3 */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.5;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.g[i] = (float)pat(i);
  fx_step(&f, 1.0f);
  for (int r = 0; r < NROWS; r++) {
    double gn = 0, gp = 0;
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) {
      gn += pat((int)i) * pat((int)i);
      gp += (double)f.w[i] * f.w[i];
    }
    ck_assert(gn > 0);
    ck_assert_rel(sqrt(gp), 0.5e-3, 1e-6);
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++)
      ck_assert_close(-f.w[i], pat((int)i) * 0.5e-3 / sqrt(gn), 1e-6, 1e-15);
  }
  fx_free(&f);
}
END_TEST

/* Widths 37,5,3 (rows with blocks and tails), --agc, --max-norm and
 * --weight-clip together; fills w and g. */
static const int W37[3] = {37, 16, 3};
enum { N37B = 37 * 16 + 16 + 16 * 3 + 3 };
static void long_rows_example(fx_t *f, float *w, float *g, int with_max_norm) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.02;
  if (with_max_norm) cfg.max_norm = 1.0; /* row norms 0.86..1.12 */
  cfg.weight_clip = 0.3;
  fx_init_w(f, W37, 3, cfg);
  ck_assert_uint_eq(f->arch.n_params, N37B);
  /* values with full mantissas (an LCG), a third of them (at random
   * places) smaller by up to 2^-15: the squares of floats are exact in
   * double and sums of similar magnitudes often are too; these sums round,
   * and differently in another order */
  uint32_t x = 12345;
  for (int i = 0; i < N37B; i++) {
    x = x * 1664525u + 1013904223u;
    w[i] = (float)(0.35 * ((double)(x >> 8) / 16777216.0 - 0.5) * 2);
    if ((x >> 4) % 3 == 0) w[i] = ldexpf(w[i], -(int)(x % 16));
    x = x * 1664525u + 1013904223u;
    g[i] = (float)((double)(x >> 8) / 16777216.0 - 0.5);
  }
}

START_TEST(test_agc_norms_from_last_update_bitwise) {
  /* After an update --agc takes the row norms of the weights from the
   * update's own sums (gg_optim_update's, or --max-norm's for the rows it
   * rescaled: all rows below the threshold too, by n/(n+1e-7)) instead of
   * reading the weights: they must be bitwise what reading gives (a resumed
   * run reads). */
  for (int with_max_norm = 0; with_max_norm < 2; with_max_norm++) {
    fx_t f;
    float w[N37B], g[N37B], w0[N37B];
    long_rows_example(&f, w, g, with_max_norm);
    ck_assert_int_eq(f.clip.row_acc_valid, 0);
    fx_step_buf(&f, w, g, w0, 0.5f);
    ck_assert_int_eq(f.clip.row_acc_valid, 1);
    int at_max = 0;
    for (int r = 0; r < 16; r++) { /* layer 0's weight rows */
      double n2 = 0;
      for (int i = 0; i < 37; i++) n2 += (double)w[r * 37 + i] * w[r * 37 + i];
      at_max += fabs(sqrt(n2) - 1.0) < 1e-6;
    }
    if (with_max_norm) ck_assert(at_max > 0 && at_max < 16);
    gg_clip_measure(&f.clip, g, w, 0.5f, &f.res);
    double from_update[32];
    ck_assert_uint_le(f.clip.n_rows, 32);
    memcpy(from_update, f.clip.row_w2, f.clip.n_rows * sizeof *from_update);
    gg_clip_forget_weights(&f.clip);
    gg_clip_measure(&f.clip, g, w, 0.5f, &f.res);
    for (size_t r = 0; r < f.clip.n_rows; r++)
      ck_assert_msg(memcmp(&from_update[r], &f.clip.row_w2[r], sizeof(double)) == 0,
                    "max-norm %d row %zu: %.17g from the update, %.17g read", with_max_norm, r,
                    from_update[r], f.clip.row_w2[r]);
    fx_free(&f);
  }
}
END_TEST

START_TEST(test_agc_resume_takes_same_steps) {
  /* three steps in one go, and the same with the weights "reloaded"
   * (gg_clip_forget_weights) before steps 2 and 3: bitwise equal weights */
  fx_t a, b;
  float wa[N37B], wb[N37B], g[N37B], w0[N37B];
  long_rows_example(&a, wa, g, 1);
  long_rows_example(&b, wb, g, 1);
  for (int s = 0; s < 3; s++) {
    fx_step_buf(&a, wa, g, w0, 0.5f);
    gg_clip_forget_weights(&b.clip);
    fx_step_buf(&b, wb, g, w0, 0.5f);
  }
  ck_assert(memcmp(wa, wb, sizeof wa) == 0);
  fx_free(&a);
  fx_free(&b);
}
END_TEST

START_TEST(test_forget_weights) {
  /* weights changed between steps: without gg_clip_forget_weights --agc
   * keeps the norms of the last update; with it, it reads them again */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.1;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.w[i] = (float)pat(i + 1), f.g[i] = (float)pat(i);
  fx_step(&f, 1.0f);
  double w2 = 0;
  for (int i = 0; i < 3; i++) w2 += (double)f.w[i] * f.w[i];
  for (int i = 0; i < 3; i++) f.w[i] = 2.0f; /* row 0 reloaded: ||.||^2 = 12 */
  gg_clip_measure(&f.clip, f.g, f.w, 1.0f, &f.res);
  ck_assert_rel(f.clip.row_w2[0], w2, 1e-15);
  gg_clip_forget_weights(&f.clip);
  gg_clip_measure(&f.clip, f.g, f.w, 1.0f, &f.res);
  ck_assert(f.clip.row_w2[0] == 12.0);
  fx_free(&f);
}
END_TEST

START_TEST(test_order_agc_layer_clip_norm_value) {
  /* The contract's order on the AGC example: --agc 0.1, then
   * --clip-layer-norm 0.25 per tensor, then --clip-norm 0.3, then
   * --clip-value 0.05, worked out stage by stage in double. */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.agc = 0.1;
  cfg.clip_layer_norm = 0.25;
  cfg.clip_norm = 0.3;
  cfg.clip_value = 0.05;
  fx_t f;
  fx_init(&f, cfg);
  float gavg[NP];
  agc_example(f.w, gavg);
  memcpy(f.g, gavg, sizeof gavg);
  double ref[NP];
  for (int r = 0; r < NROWS; r++)
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) ref[i] = AGC_FACTOR[r] * gavg[i];
  /* tensors: W0 [0,12), b0 [12,16), W1 [16,24), b1 [24,26) */
  static const int T[5] = {0, 12, 16, 24, 26};
  double tot2 = 0;
  for (int t = 0; t < 4; t++) {
    double n2 = 0;
    for (int i = T[t]; i < T[t + 1]; i++) n2 += ref[i] * ref[i];
    double fac = 0.25 / fmax(sqrt(n2), 0.25);
    for (int i = T[t]; i < T[t + 1]; i++) ref[i] *= fac;
    tot2 += n2 * fac * fac;
  }
  double coef = fmin(1.0, 0.3 / (sqrt(tot2) + 1e-6));
  ck_assert(coef < 1.0); /* every stage acts in this example */
  int clamped = 0;
  for (int i = 0; i < NP; i++) {
    ref[i] *= coef;
    if (fabs(ref[i]) > 0.05) clamped++, ref[i] = ref[i] > 0 ? 0.05 : -0.05;
  }
  ck_assert_int_gt(clamped, 0);
  fx_step(&f, 1.0f);
  for (int i = 0; i < NP; i++)
    ck_assert_msg(fabs(f.w[i] - (f.w0[i] - ref[i])) <= 1e-6, "element %d: %.9g, expected %.9g", i,
                  f.w[i], f.w0[i] - ref[i]);
  ck_assert_rel(f.res.clip_coef, coef, 1e-12);
  ck_assert_rel(f.res.clipped_fraction, (double)clamped / NP, 1e-15);
  fx_free(&f);
}
END_TEST

/* ---- --autoclip ---- */

START_TEST(test_percentile_sorted_numpy) {
  /* numpy.percentile([1, 2, 3, 4], p) */
  const double v[4] = {1, 2, 3, 4};
  ck_assert(gg_percentile_sorted(v, 4, 0) == 1.0);
  ck_assert(gg_percentile_sorted(v, 4, 100) == 4.0);
  ck_assert_rel(gg_percentile_sorted(v, 4, 50), 2.5, 1e-15);
  ck_assert_rel(gg_percentile_sorted(v, 4, 25), 1.75, 1e-15);
  ck_assert_rel(gg_percentile_sorted(v, 4, 90), 3.7, 1e-15);
  ck_assert_rel(gg_percentile_sorted(v, 4, 10), 1.3, 1e-15);
  const double one[1] = {7.5};
  ck_assert(gg_percentile_sorted(one, 1, 0) == 7.5);
  ck_assert(gg_percentile_sorted(one, 1, 90) == 7.5);
  const double two[2] = {1, 2};
  ck_assert_rel(gg_percentile_sorted(two, 2, 99.9), 1.999, 1e-15);
}
END_TEST

START_TEST(test_autoclip_percentile_of_history) {
  /* --autoclip 90 over four steps whose norms are 3, 1, 4, 2 (one nonzero
   * gradient each). numpy.percentile(norms so far, 90):
   *   [3] -> 3;  [1,3] -> 2.8;  [1,3,4] -> 3.8;  [1,2,3,4] -> 3.7
   * coef = min(1, C / (norm + 1e-6)). */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.autoclip = 90;
  fx_t f;
  fx_init(&f, cfg);
  const double norm[4] = {3, 1, 4, 2}, thr[4] = {3, 2.8, 3.8, 3.7};
  for (int s = 0; s < 4; s++) {
    memset(f.w, 0, sizeof f.w);
    memset(f.g, 0, sizeof f.g);
    f.g[W1(1, 2)] = (float)norm[s];
    fx_step(&f, 1.0f);
    double coef = fmin(1.0, thr[s] / (norm[s] + 1e-6));
    ck_assert_rel(f.res.autoclip_thresh, thr[s], 1e-12);
    ck_assert_rel(f.res.clip_coef, coef, 1e-12);
    ck_assert_rel(-f.w[W1(1, 2)], norm[s] * coef, 1e-7);
  }
  ck_assert(f.res.clip_coef == 1.0);
  ck_assert_uint_eq(f.clip.n_hist, 4);
  for (int i = 0; i < 4; i++) ck_assert(f.clip.hist[i] == (double)(i + 1));
  fx_free(&f);
}
END_TEST

START_TEST(test_autoclip_set_history) {
  /* a restored history is kept sorted and the next norm joins it */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.autoclip = 90;
  fx_t f;
  fx_init(&f, cfg);
  const double h[3] = {3, 1, 2};
  ck_assert_int_eq(gg_clip_set_history(&f.clip, h, 3), 0);
  ck_assert_uint_eq(f.clip.n_hist, 3);
  ck_assert(f.clip.hist[0] == 1 && f.clip.hist[1] == 2 && f.clip.hist[2] == 3);
  f.g[B0(2)] = 4.0f;
  fx_step(&f, 1.0f);
  ck_assert_rel(f.res.autoclip_thresh, 3.7, 1e-12);
  ck_assert_rel(-f.w[B0(2)], 4.0 * 3.7 / (4.0 + 1e-6), 1e-7);
  /* setting again replaces, it does not append */
  ck_assert_int_eq(gg_clip_set_history(&f.clip, h, 2), 0);
  ck_assert_uint_eq(f.clip.n_hist, 2);
  fx_free(&f);
}
END_TEST

START_TEST(test_autoclip_zero_threshold) {
  /* norms 0, 0, then 5 with --autoclip 50: C = percentile_50([0,0,5]) = 0,
   * so coef = min(1, 0 / (5 + 1e-6)) = 0 and nothing moves. A threshold of
   * 0 computed by autoclip is a threshold, not "off". */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.autoclip = 50;
  fx_t f;
  fx_init(&f, cfg);
  fx_step(&f, 1.0f);
  fx_step(&f, 1.0f);
  f.g[W0(2, 2)] = 5.0f;
  fx_step(&f, 1.0f);
  ck_assert(f.res.autoclip_thresh == 0.0);
  ck_assert(f.res.clip_coef == 0.0);
  ck_assert(f.w[W0(2, 2)] == 0.0f);
  fx_free(&f);
}
END_TEST

/* ---- after the update: --weight-clip, --max-norm ---- */

START_TEST(test_weight_clip_all_parameters) {
  gg_clip_cfg_t cfg = cfg_none();
  cfg.weight_clip = 1;
  fx_t f;
  fx_init(&f, cfg);
  int clipped_bias = 0;
  for (int i = 0; i < NP; i++) {
    f.w[i] = (float)(2 * pat(i + 5));
    f.g[i] = (float)pat(i);
  }
  fx_step(&f, 0.5f);
  for (int i = 0; i < NP; i++) {
    double v = 2 * pat(i + 5) - 0.5 * pat(i);
    double want = v > 1 ? 1 : v < -1 ? -1 : v;
    if ((i >= 12 && i < 16) || i >= 24) clipped_bias += fabs(v) > 1;
    ck_assert_msg(f.w[i] == (float)want, "element %d: %g, expected %g", i, f.w[i], want);
  }
  ck_assert_int_gt(clipped_bias, 0); /* biases are clamped too */
  fx_free(&f);
}
END_TEST

START_TEST(test_max_norm_rows) {
  /* --max-norm 1 after sgd (lr 1):  w' = w - g, then each WEIGHT row
   * w' *= min(||w'||, 1) / (||w'|| + 1e-7):
   *   W0 r0 (1,2,2)          g 0          -> ||.|| 3 -> (1,2,2)/3
   *   W0 r1 (0,0,0)          g 0          -> stays exactly 0, finite
   *   W0 r2 (.5,0,0)         g 0          -> x .5/(.5+1e-7), just below 1
   *   W0 r3 (3,0,4)          g (.5,0,0)   -> (2.5,0,4), ||.|| = sqrt(22.25)
   *   b0 (3,-4,5,.5)         g 0          -> untouched (norm 7.1 > 1)
   *   W1 r0 (1,1,1,1)        g (0,0,0,-1) -> (1,1,1,2), ||.|| = sqrt 7
   *   W1 r1 (0,0,0,.25)      g 0          -> x .25/(.25+1e-7)
   *   b1 (10,-10)            g (1,0)      -> (9,-10), untouched by max-norm */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.max_norm = 1;
  fx_t f;
  fx_init(&f, cfg);
  ck_assert_ptr_nonnull(f.clip.row_acc);
  const float w[NP] = {1, 2, 2, 0, 0, 0, .5f, 0, 0, 3, 0, 4, 3, -4, 5, .5f,
                       1, 1, 1, 1, 0, 0, 0, .25f, 10, -10};
  memcpy(f.w, w, sizeof w);
  f.g[W0(3, 0)] = 0.5f;
  f.g[W1(0, 3)] = -1.0f;
  f.g[B1(0)] = 1.0f;
  fx_step(&f, 1.0f);
  for (int r = 0; r < NROWS; r++) {
    double n2 = 0;
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) n2 += pow((double)w[i] - f.g[i], 2);
    double n = sqrt(n2), s = ROW_IS_BIAS[r] ? 1.0 : fmin(n, 1.0) / (n + 1e-7);
    double got2 = 0;
    for (size_t i = ROW_BEGIN[r]; i < ROW_BEGIN[r + 1]; i++) {
      double want = ((double)w[i] - f.g[i]) * s;
      ck_assert(isfinite(f.w[i]));
      ck_assert_close(f.w[i], want, 1e-6, 1e-12);
      got2 += (double)f.w[i] * f.w[i];
    }
    if (!ROW_IS_BIAS[r] && n > 1) ck_assert_rel(sqrt(got2), 1.0, 1e-6);
  }
  ck_assert(f.w[W0(1, 0)] == 0.0f && f.w[W0(1, 1)] == 0.0f && f.w[W0(1, 2)] == 0.0f);
  for (int j = 0; j < 4; j++) ck_assert(f.w[B0(j)] == w[B0(j)]);
  ck_assert(f.w[B1(0)] == 9.0f && f.w[B1(1)] == -10.0f);
  fx_free(&f);
}
END_TEST

/* The update sums of each layer recomputed from the buffers: sum w'^2,
 * sum (w'-w)^2, sum w' w, sum w^2, sum g'^2 (g' = w - w' with lr 1). */
static void check_layer_acc(const fx_t *f, double rel) {
  static const int LB[3] = {0, 16, 26};
  for (int l = 0; l < 2; l++) {
    double w2 = 0, dw2 = 0, ww = 0, wold2 = 0;
    for (int i = LB[l]; i < LB[l + 1]; i++) {
      double a = f->w[i], b = f->w0[i];
      w2 += a * a, dw2 += (a - b) * (a - b), ww += a * b, wold2 += b * b;
    }
    const gg_update_acc_t *acc = &f->clip.layer_acc[l];
    ck_assert_rel(acc->w2, w2, rel);
    ck_assert_rel(acc->wold2, wold2, rel);
    /* w'.w is summed only where --max-norm (or --clip-value's full pass) needs it */
    if (f->clip.cfg.max_norm > 0 || f->clip.cfg.clip_value > 0) ck_assert_rel(acc->wwold, ww, rel);
    else ck_assert(acc->wwold == 0);
    /* ||dw|| to 1e-6 of ||w||: the update ratio of the statistics */
    ck_assert_close(sqrt(acc->dw2), sqrt(dw2), 0, rel * sqrt(wold2));
  }
}

START_TEST(test_max_norm_layer_sums) {
  /* after --max-norm the layer sums (derived from the row sums) equal a
   * direct recomputation from the weights before and after */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.max_norm = 1.5;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) {
    f.w[i] = (float)(1.5 * pat(i + 7));
    f.g[i] = (float)(0.25 * pat(i));
  }
  for (int i = 0; i < 3; i++) f.w[W0(1, i)] = f.g[W0(1, i)] = 0; /* a zero row */
  fx_step(&f, 1.0f);
  int moved = 0;
  for (int j = 0; j < 4; j++) {
    double n2 = 0;
    for (int i = 0; i < 3; i++) n2 += (double)f.w[W0(j, i)] * f.w[W0(j, i)];
    ck_assert(sqrt(n2) <= 1.5 * (1 + 1e-6));
    moved += sqrt(n2) > 1.5 * (1 - 1e-6);
  }
  ck_assert_int_gt(moved, 0); /* some rows were rescaled */
  check_layer_acc(&f, 1e-6);
  fx_free(&f);
}
END_TEST

START_TEST(test_layer_sums_plain_and_per_row) {
  /* the update sums through the per-layer path (--clip-norm) and the per-row
   * path (--agc) */
  for (int variant = 0; variant < 2; variant++) {
    gg_clip_cfg_t cfg = cfg_none();
    if (variant == 0) cfg.clip_norm = 0.5;
    else cfg.agc = 0.05;
    fx_t f;
    fx_init(&f, cfg);
    for (int i = 0; i < NP; i++) {
      f.w[i] = (float)pat(i + 4);
      f.g[i] = (float)pat(i);
    }
    fx_step(&f, 0.5f);
    check_layer_acc(&f, 1e-9);
    double g2 = 0;
    for (int i = 0; i < NP; i++) g2 += pow((double)f.w0[i] - f.w[i], 2);
    ck_assert_rel(f.res.grad_norm_clipped, sqrt(g2), 1e-5); /* g' read back through w */
    fx_free(&f);
  }
}
END_TEST

START_TEST(test_sums_without_stats) {
  /* a step that records no statistics skips the update sums, and the
   * weights are bitwise those of a step that sums them; --agc still gets
   * the row norms of the new weights it needs */
  for (int variant = 0; variant < 2; variant++) {
    gg_clip_cfg_t cfg = cfg_none();
    if (variant == 0) cfg.clip_norm = 0.5;
    else cfg.agc = 0.05;
    fx_t a, b;
    fx_init(&a, cfg);
    fx_init(&b, cfg);
    for (int i = 0; i < NP; i++) {
      a.w[i] = b.w[i] = (float)pat(i + 4);
      a.g[i] = b.g[i] = (float)pat(i);
    }
    for (fx_t *f = &a; f; f = f == &a ? &b : NULL) {
      gg_clip_measure(&f->clip, f->g, f->w, 0.5f, &f->res);
      ck_assert_int_eq(gg_clip_plan(&f->clip, 0.5f, &f->res), 0);
      gg_optim_begin(&f->opt, 1.0);
      gg_clip_apply_update(&f->clip, &f->opt, f->w, f->g, f == &a, &f->res);
    }
    ck_assert(memcmp(a.w, b.w, sizeof(float) * NP) == 0);
    ck_assert_rel(b.res.grad_norm_clipped, a.res.grad_norm_clipped, 1e-12);
    for (int l = 0; l < 2; l++) {
      ck_assert(a.clip.layer_acc[l].w2 > 0);
      if (variant == 0) ck_assert(b.clip.layer_acc[l].w2 == 0 && b.clip.layer_acc[l].dw2 == 0);
      else ck_assert(b.clip.layer_acc[l].w2 == a.clip.layer_acc[l].w2);
    }
    fx_free(&a);
    fx_free(&b);
  }
}
END_TEST

/* ---- edge cases of the issue ---- */

START_TEST(test_zero_gradient_all_controls) {
  gg_clip_cfg_t cfg = {.clip_norm = 1, .clip_value = 0.1, .clip_layer_norm = 1, .agc = 0.01,
                       .weight_clip = 10, .max_norm = 100};
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.w[i] = (float)pat(i + 1);
  fx_step(&f, 1.0f / 32);
  ck_assert(f.res.grad_norm == 0.0);
  ck_assert(f.res.clip_coef == 1.0);
  ck_assert(f.res.grad_norm_clipped == 0.0);
  ck_assert(f.res.clipped_fraction == 0.0);
  for (int l = 0; l < 2; l++) ck_assert(f.clip.layer_g2[l] == 0.0 && f.clip.layer_maxabs[l] == 0.0f);
  for (int r = 0; r < NROWS; r++) ck_assert(isfinite(f.clip.row_scale[r]));
  for (int i = 0; i < NP; i++) {
    ck_assert(isfinite(f.w[i]));
    ck_assert_close(f.w[i], f.w0[i], 1e-6, 1e-6); /* max-norm 100 scales by n/(n+1e-7) */
  }
  fx_free(&f);
}
END_TEST

START_TEST(test_single_huge_value) {
  /* one gradient of 1e6 among values of 0.01, --clip-norm 1 */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 1;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.g[i] = 0.01f;
  f.g[W0(2, 1)] = 1e6f;
  double tot2 = 25 * (double)0.01f * 0.01f + 1e12;
  fx_step(&f, 1.0f);
  ck_assert_rel(f.res.grad_norm, sqrt(tot2), 1e-12);
  ck_assert(f.clip.layer_maxabs[0] == 1e6f);
  ck_assert(f.clip.layer_maxabs[1] == 0.01f);
  double coef = 1.0 / (sqrt(tot2) + 1e-6);
  ck_assert_rel(f.res.clip_coef, coef, 1e-12);
  ck_assert_rel(-f.w[W0(2, 1)], 1e6 * coef, 1e-6);
  ck_assert_rel(-f.w[W0(2, 1)], 1.0, 1e-6);
  ck_assert_rel(-f.w[B1(1)], 0.01 * coef, 1e-6);
  ck_assert_rel(f.res.grad_norm_clipped, 1.0, 1e-6);
  fx_free(&f);
}
END_TEST

START_TEST(test_gradients_1e20) {
  /* every averaged gradient 1e20: the norm 1e20 sqrt(26) is finite (the
   * sums are in double; in float g^2 would overflow) and is clipped to
   * exactly the threshold */
  gg_clip_cfg_t cfg = cfg_none();
  cfg.clip_norm = 2;
  fx_t f;
  fx_init(&f, cfg);
  for (int i = 0; i < NP; i++) f.g[i] = 4e20f; /* the sum over a batch of 4 */
  fx_step(&f, 0.25f);
  const double g1 = (double)4e20f * 0.25;
  ck_assert_int_eq(f.res.nonfinite, 0);
  ck_assert(isfinite(f.res.grad_norm));
  ck_assert_rel(f.res.grad_norm, g1 * sqrt(26.0), 1e-13);
  ck_assert_rel(f.res.grad_norm, 1e20 * sqrt(26.0), 1e-7);
  ck_assert_rel(f.clip.layer_maxabs[0], 1e20, 1e-7);
  double n2 = 0;
  for (int i = 0; i < NP; i++) {
    ck_assert_rel(-f.w[i], 2.0 / sqrt(26.0), 1e-6);
    n2 += (double)f.w[i] * f.w[i];
  }
  ck_assert_rel(sqrt(n2), 2.0, 1e-6);
  ck_assert_rel(f.res.grad_norm_clipped, 2.0, 1e-6);
  fx_free(&f);
}
END_TEST

START_TEST(test_nonfinite_nan) {
  fx_t f;
  fx_init(&f, cfg_none());
  for (int i = 0; i < NP; i++) f.g[i] = (float)pat(i);
  f.g[W1(1, 1)] = NAN;
  gg_clip_measure(&f.clip, f.g, f.w, 0.5f, &f.res);
  ck_assert_int_eq(f.res.nonfinite, 1);
  ck_assert(isnan(f.res.grad_norm));
  ck_assert(isfinite(f.clip.layer_g2[0]));  /* layer 0 is clean */
  ck_assert(!isfinite(f.clip.layer_g2[1])); /* the trainer names this layer */
  ck_assert(isnan(f.clip.layer_maxabs[1]));  /* NaN loses every max: reported from the sum */
  ck_assert(isfinite(f.clip.layer_maxabs[0]));
  /* a later clean gradient clears the flag */
  f.g[W1(1, 1)] = 0;
  gg_clip_measure(&f.clip, f.g, f.w, 0.5f, &f.res);
  ck_assert_int_eq(f.res.nonfinite, 0);
  fx_free(&f);
}
END_TEST

START_TEST(test_nonfinite_inf) {
  fx_t f;
  fx_init(&f, cfg_none());
  const float bad[2] = {INFINITY, -INFINITY};
  for (int k = 0; k < 2; k++) {
    memset(f.g, 0, sizeof f.g);
    f.g[B0(3)] = bad[k];
    gg_clip_measure(&f.clip, f.g, f.w, 1.0f, &f.res);
    ck_assert_int_eq(f.res.nonfinite, 1);
    ck_assert(!isfinite(f.res.grad_norm));
    ck_assert(!isfinite(f.clip.layer_g2[0]));
    ck_assert(isfinite(f.clip.layer_g2[1]));
  }
  /* the largest finite floats are finite: their squares fit in double */
  for (int i = 0; i < NP; i++) f.g[i] = FLT_MAX;
  gg_clip_measure(&f.clip, f.g, f.w, 1.0f, &f.res);
  ck_assert_int_eq(f.res.nonfinite, 0);
  ck_assert_rel(f.res.grad_norm, FLT_MAX * sqrt(26.0), 1e-13);
  fx_free(&f);
}
END_TEST

/* ---- histogram ---- */

START_TEST(test_histogram_bins) {
  /* scale 0.5; bin = floor(log2 |0.5 g|) + 48, clamped to [0, 63]:
   *   0             -> bin 0 (zeros)
   *   g 2    -> 1   -> 48;  g -1.5 -> 0.75 -> 47;  g 6 -> 3 -> 49
   *   g 2^-47 -> 2^-48 -> 0 exactly;   g 2^-50 -> 2^-51 -> clamped to 0
   *   g 2^16 -> 2^15 -> 63 exactly;    g 2^17, 2^30, Inf -> clamped to 63
   *   g 1.99999988 -> 0.99999994 -> 47
   *   NaN -> 63 (with Inf);  a subnormal and -0 -> 0
   * layer 1: ten gradients 3.8 -> 1.9 -> bin 48 */
  fx_t f;
  fx_init(&f, cfg_none());
  const float v0[11] = {2.0f,           -1.5f,           6.0f,           ldexpf(1, -47),
                        ldexpf(1, -50), ldexpf(1, 16),   ldexpf(-1, 17), ldexpf(1, 30),
                        INFINITY,       1.99999988f,     0.0f};
  for (int i = 0; i < 11; i++) f.g[i] = v0[i];
  f.g[11] = NAN;
  f.g[12] = FLT_MIN / 4; /* subnormal */
  f.g[13] = -0.0f;
  for (int i = 16; i < 26; i++) f.g[i] = 3.8f;
  uint32_t h[2 * GG_HIST_BINS];
  memset(h, 0xff, sizeof h); /* the routine clears */
  gg_clip_histogram(&f.clip, f.g, 0.5f, h);
  uint32_t want0[GG_HIST_BINS] = {0};
  want0[0] = 4 + 3; /* zeros (elements 10, 13..15) + 2^-48, 2^-51, the subnormal */
  want0[47] = 2, want0[48] = 1, want0[49] = 1, want0[63] = 5;
  for (int b = 0; b < GG_HIST_BINS; b++) {
    ck_assert_msg(h[b] == want0[b], "layer 0 bin %d: %u, expected %u", b, h[b], want0[b]);
    ck_assert_msg(h[GG_HIST_BINS + b] == (b == 48 ? 10u : 0u), "layer 1 bin %d: %u", b,
                  h[GG_HIST_BINS + b]);
  }
  ck_assert_int_eq(GG_HIST_LO, -48);
  fx_free(&f);
}
END_TEST

/* ---- statistics rows ---- */

START_TEST(test_stats_record_row) {
  fx_t f;
  fx_init(&f, cfg_none());
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, 2, 4, 2), 0);
  f.clip.layer_g2[0] = 9, f.clip.layer_g2[1] = 0.25;
  f.clip.layer_maxabs[0] = 1.5f, f.clip.layer_maxabs[1] = 0.125f;
  f.clip.layer_acc[0] = (gg_update_acc_t){.w2 = 16, .dw2 = 0.04, .wold2 = 25};
  f.clip.layer_acc[1] = (gg_update_acc_t){.w2 = 4, .dw2 = 0.09, .wold2 = 0}; /* no ratio of 0 */
  gg_clip_result_t res = {.nonfinite = 0, .grad_norm = 3.04, .clip_coef = 0.5,
                          .grad_norm_clipped = 1.52, .clipped_fraction = 0.25};
  const double sat[2] = {12, 0}, sat_total[2] = {48, 16};
  ck_assert_int_eq(gg_stats_record(&s, 7, 0.75, 1e-3, &res, &f.clip, sat, sat_total), 0);
  ck_assert_uint_eq(s.n, 1);
  ck_assert(s.step[0] == 7 && s.last_step == 7);
  ck_assert(s.loss[0] == 0.75f && s.lr[0] == (float)1e-3);
  ck_assert(s.grad_norm[0] == (float)3.04 && s.grad_norm_clipped[0] == (float)1.52);
  ck_assert(s.clip_coef[0] == 0.5f && s.clipped_fraction[0] == 0.25f && s.nonfinite[0] == 0);
  float *const *L = s.layer;
  ck_assert(L[GG_STAT_GRAD_NORM][0] == 3.0f && L[GG_STAT_GRAD_NORM][1] == 0.5f);
  ck_assert(L[GG_STAT_GRAD_MAX_ABS][0] == 1.5f && L[GG_STAT_GRAD_MAX_ABS][1] == 0.125f);
  ck_assert(L[GG_STAT_WEIGHT_NORM][0] == 4.0f && L[GG_STAT_WEIGHT_NORM][1] == 2.0f);
  ck_assert_rel(L[GG_STAT_UPDATE_RATIO][0], 0.04, 1e-7); /* sqrt(0.04 / 25) */
  ck_assert(L[GG_STAT_UPDATE_RATIO][1] == 0.0f);
  ck_assert(L[GG_STAT_SATURATION][0] == 0.25f && L[GG_STAT_SATURATION][1] == 0.0f);
  /* a second row goes to index 1, (row, layer) row-major */
  res.grad_norm = 1;
  ck_assert_int_eq(gg_stats_record(&s, 8, 0.5, 1e-3, &res, &f.clip, NULL, NULL), 0);
  ck_assert(s.step[1] == 8 && s.grad_norm[1] == 1.0f);
  ck_assert(L[GG_STAT_WEIGHT_NORM][2] == 4.0f && L[GG_STAT_SATURATION][2] == 0.0f);
  gg_stats_free(&s);
  fx_free(&f);
}
END_TEST

START_TEST(test_stats_nonfinite_row) {
  fx_t f;
  fx_init(&f, cfg_none());
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, 2, 4, 2), 0);
  f.clip.layer_acc[0] = (gg_update_acc_t){.w2 = 16, .dw2 = 1, .wold2 = 16};
  gg_clip_result_t res = {.nonfinite = 1, .grad_norm = NAN, .clip_coef = 1};
  ck_assert_int_eq(gg_stats_record(&s, 3, 0.1, 0.1, &res, &f.clip, NULL, NULL), 0);
  ck_assert(s.nonfinite[0] == 1);
  ck_assert(isnan(s.grad_norm[0]) && isnan(s.grad_norm_clipped[0]) && isnan(s.clip_coef[0]));
  ck_assert(isnan(s.clipped_fraction[0]));
  /* no update this step: ratio 0, weight norm still that of the weights */
  ck_assert(s.layer[GG_STAT_UPDATE_RATIO][0] == 0.0f);
  ck_assert(s.layer[GG_STAT_WEIGHT_NORM][0] == 4.0f);
  gg_stats_free(&s);
  fx_free(&f);
}
END_TEST

START_TEST(test_stats_full_clear_hist) {
  fx_t f;
  fx_init(&f, cfg_none());
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, 2, 2, 1), 0);
  gg_clip_result_t res = {.clip_coef = 1};
  for (int k = 0; k < 2; k++) {
    res.grad_norm = k + 1;
    ck_assert_int_eq(gg_stats_record(&s, k + 1, 0, 0, &res, &f.clip, NULL, NULL), 0);
  }
  ck_assert_int_eq(gg_stats_record(&s, 3, 0, 0, &res, &f.clip, NULL, NULL), GG_EINTERNAL);
  ck_assert_uint_eq(s.n, 2);
  gg_stats_clear(&s);
  ck_assert_uint_eq(s.n, 0);
  ck_assert(s.step[0] == 2 && s.grad_norm[0] == 2.0f); /* the newest row is kept */
  ck_assert(s.last_step == 2);
  uint32_t h[2 * GG_HIST_BINS];
  for (int i = 0; i < 2 * GG_HIST_BINS; i++) h[i] = (uint32_t)i;
  ck_assert_int_eq(gg_stats_record_hist(&s, 5, h), 0);
  ck_assert_int_eq(gg_stats_record_hist(&s, 6, h), GG_EINTERNAL);
  ck_assert(s.hist_n == 1 && s.hist_step[0] == 5);
  ck_assert(memcmp(s.hist, h, sizeof h) == 0);
  gg_stats_free(&s);
  fx_free(&f);
}
END_TEST

START_TEST(test_stats_print_table) {
  fx_t f;
  fx_init(&f, cfg_none());
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, 2, 4, 1), 0);
  FILE *out = tmpfile();
  ck_assert_ptr_nonnull(out);
  gg_stats_print(&s, out); /* nothing recorded yet: prints nothing */
  ck_assert_int_eq((int)ftell(out), 0);
  gg_clip_result_t res = {.grad_norm = 2, .clip_coef = 0.5, .grad_norm_clipped = 1};
  ck_assert_int_eq(gg_stats_record(&s, 42, 0.25, 0.01, &res, &f.clip, NULL, NULL), 0);
  gg_stats_print(&s, out);
  rewind(out);
  char line[256];
  int lines = 0, step_line = 0;
  while (fgets(line, sizeof line, out)) {
    lines++;
    if (strncmp(line, "step 42 ", 8) == 0 && strstr(line, "coef 0.5")) step_line = 1;
  }
  fclose(out);
  ck_assert_int_eq(step_line, 1);
  ck_assert_int_eq(lines, 2 + 2); /* step line, header, one line per layer */
  gg_stats_free(&s);
  fx_free(&f);
}
END_TEST

static Suite *clip_suite(void) {
  Suite *s = suite_create("clip");
  TCase *tm = tcase_create("measure");
  tcase_add_test(tm, test_row_layout);
  tcase_add_test(tm, test_measure_sums_with_scale);
  tcase_add_test(tm, test_measure_weight_rows_for_agc);
  tcase_add_test(tm, test_measure_long_rows);
  suite_add_tcase(s, tm);
  TCase *tc = tcase_create("controls");
  tcase_add_test(tc, test_clip_norm_scales_all);
  tcase_add_test(tc, test_clip_norm_below_threshold_untouched);
  tcase_add_test(tc, test_clip_norm_exactly_at_threshold);
  tcase_add_test(tc, test_clip_norm_pytorch_vector);
  tcase_add_test(tc, test_clip_value_clamps_and_counts);
  tcase_add_test(tc, test_clip_layer_norm_per_tensor);
  tcase_add_test(tc, test_agc_unit_wise);
  tcase_add_test(tc, test_agc_zero_weights_use_eps);
  tcase_add_test(tc, test_agc_norms_from_last_update_bitwise);
  tcase_add_test(tc, test_agc_resume_takes_same_steps);
  tcase_add_test(tc, test_forget_weights);
  tcase_add_test(tc, test_order_agc_layer_clip_norm_value);
  tcase_add_test(tc, test_percentile_sorted_numpy);
  tcase_add_test(tc, test_autoclip_percentile_of_history);
  tcase_add_test(tc, test_autoclip_set_history);
  tcase_add_test(tc, test_autoclip_zero_threshold);
  tcase_add_test(tc, test_weight_clip_all_parameters);
  tcase_add_test(tc, test_max_norm_rows);
  tcase_add_test(tc, test_max_norm_layer_sums);
  tcase_add_test(tc, test_layer_sums_plain_and_per_row);
  tcase_add_test(tc, test_sums_without_stats);
  suite_add_tcase(s, tc);
  TCase *te = tcase_create("edge cases");
  tcase_add_test(te, test_zero_gradient_all_controls);
  tcase_add_test(te, test_single_huge_value);
  tcase_add_test(te, test_gradients_1e20);
  tcase_add_test(te, test_nonfinite_nan);
  tcase_add_test(te, test_nonfinite_inf);
  suite_add_tcase(s, te);
  TCase *th = tcase_create("histogram and stats");
  tcase_add_test(th, test_histogram_bins);
  tcase_add_test(th, test_stats_record_row);
  tcase_add_test(th, test_stats_nonfinite_row);
  tcase_add_test(th, test_stats_full_clear_hist);
  tcase_add_test(th, test_stats_print_table);
  suite_add_tcase(s, th);
  return s;
}

int main(void) {
  return gg_check_run(clip_suite());
}
