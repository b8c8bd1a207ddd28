/* test_init.c — src/init.c: parsing and formatting of --init, the gains,
 * and the distribution of every initializer (sample moments against the
 * formulas of init.h within 5 standard errors, bounds, orthogonality),
 * biases, determinism and the per-activation default. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"
#include "gradguard/init.h"
#include "gradguard/rng.h"
#include "gg_check.h"

/* ---- a gg_arch_t built from nn.h's documented layout (W_l then b_l), so
 * that this suite does not depend on src/nn.c ---- */

typedef struct {
  gg_arch_t a;
  int widths[8];
  size_t off[8], size[8];
} test_arch_t;

static void make_arch(test_arch_t *t, const int *widths, int n_widths, gg_act_t act) {
  memset(t, 0, sizeof *t);
  t->a.n_layers = n_widths - 1;
  t->a.widths = t->widths;
  t->a.off = t->off;
  t->a.size = t->size;
  t->a.act = act;
  t->a.loss = GG_LOSS_MSE;
  size_t off = 0;
  for (int i = 0; i < n_widths; i++) {
    t->widths[i] = widths[i];
    if (widths[i] > t->a.max_width) t->a.max_width = widths[i];
  }
  for (int l = 0; l < t->a.n_layers; l++) {
    t->off[l] = off;
    t->size[l] = (size_t)widths[l + 1] * (size_t)widths[l] + (size_t)widths[l + 1];
    off += t->size[l];
  }
  t->a.n_params = off;
}

/* Parse spec (must succeed), init a one-layer in -> out network with act
 * and seed into a fresh buffer whose bias is prefilled with garbage. */
static float *init_one_layer(const char *spec, int in, int out, gg_act_t act, uint64_t seed) {
  test_arch_t t;
  const int widths[2] = {in, out};
  make_arch(&t, widths, 2, act);
  gg_init_t init;
  ck_assert_msg(gg_init_parse(spec, &init) == 0, "parse %s: %s", spec, gg_err_msg(GG_EUSAGE));
  float *p = malloc(t.a.n_params * sizeof *p);
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < t.a.n_params; i++) p[i] = 123.0f;
  ck_assert_int_eq(gg_init_params(&t.a, &init, seed, p), 0);
  for (int i = 0; i < out; i++) ck_assert_msg(p[(size_t)in * out + i] == 0.0f, "bias %d not zero", i);
  return p;
}

typedef struct {
  double mean, var, max_abs;
} moments_t;

static moments_t moments(const float *w, size_t n) {
  moments_t m = {0, 0, 0};
  for (size_t i = 0; i < n; i++) m.mean += w[i];
  m.mean /= (double)n;
  for (size_t i = 0; i < n; i++) {
    double d = w[i] - m.mean;
    m.var += d * d;
    if (fabs(w[i]) > m.max_abs) m.max_abs = fabs(w[i]);
  }
  m.var /= (double)n;
  return m;
}

/* Check mean ~ 0 and std ~ sd, where mu4 = E x^4 / sd^4 of the law (3 for a
 * normal, 9/5 for a uniform): SE(mean) = sd / sqrt(n), SE(var) = sd^2
 * sqrt((mu4 - 1) / n). */
static void check_moments(const char *what, const float *w, size_t n, double sd, double mu4) {
  moments_t m = moments(w, n);
  double se_mean = sd / sqrt((double)n), se_var = sd * sd * sqrt((mu4 - 1.0) / (double)n);
  ck_assert_msg(fabs(m.mean) < 5 * se_mean, "%s: mean %g, 5 SE = %g", what, m.mean, 5 * se_mean);
  ck_assert_msg(fabs(m.var - sd * sd) < 5 * se_var, "%s: std %g, expected %g (var tolerance %g)", what,
                sqrt(m.var), sd, 5 * se_var);
}

/* A uniform U(-b, b): moments, every |w| <= b, and the largest close to b. */
static void check_uniform(const char *what, const float *w, size_t n, double b) {
  check_moments(what, w, n, b / sqrt(3.0), 9.0 / 5.0);
  moments_t m = moments(w, n);
  ck_assert_msg(m.max_abs <= (double)(float)b, "%s: |w| = %.9g above the bound %.9g", what, m.max_abs, b);
  ck_assert_msg(m.max_abs > b * (1 - 1e-3), "%s: max |w| = %g far below the bound %g", what, m.max_abs, b);
}

/* The test layer: W is (OUT, IN) = (256, 512), 131072 weights. */
enum { IN = 512, OUT = 256 };
static const size_t NW = (size_t)IN * OUT;

START_TEST(test_kaiming_normal) {
  float *w = init_one_layer("kaiming_normal", IN, OUT, GG_ACT_RELU, 1);
  check_moments("kaiming_normal", w, NW, sqrt(2.0) / sqrt(IN), 3.0);
  free(w);
}
END_TEST

START_TEST(test_kaiming_uniform) {
  float *w = init_one_layer("kaiming_uniform", IN, OUT, GG_ACT_RELU, 2);
  check_uniform("kaiming_uniform", w, NW, sqrt(2.0) * sqrt(3.0 / IN));
  free(w);
  /* The gain follows the activation: tanh's 5/3. */
  w = init_one_layer("kaiming_uniform", IN, OUT, GG_ACT_TANH, 2);
  check_uniform("kaiming_uniform/tanh", w, NW, 5.0 / 3.0 * sqrt(3.0 / IN));
  free(w);
}
END_TEST

START_TEST(test_xavier_normal) {
  float *w = init_one_layer("xavier_normal", IN, OUT, GG_ACT_TANH, 3);
  check_moments("xavier_normal", w, NW, 5.0 / 3.0 * sqrt(2.0 / (IN + OUT)), 3.0);
  free(w);
}
END_TEST

START_TEST(test_xavier_uniform) {
  float *w = init_one_layer("xavier_uniform", IN, OUT, GG_ACT_SIGMOID, 4);
  check_uniform("xavier_uniform", w, NW, sqrt(6.0 / (IN + OUT)));
  free(w);
}
END_TEST

START_TEST(test_lecun_normal) {
  /* No gain: relu's sqrt(2) must not appear. */
  float *w = init_one_layer("lecun_normal", IN, OUT, GG_ACT_RELU, 5);
  check_moments("lecun_normal", w, NW, 1.0 / sqrt(IN), 3.0);
  free(w);
}
END_TEST

START_TEST(test_normal) {
  float *w = init_one_layer("normal:0.02", IN, OUT, GG_ACT_RELU, 6);
  check_moments("normal:0.02", w, NW, 0.02, 3.0);
  free(w);
}
END_TEST

START_TEST(test_uniform) {
  float *w = init_one_layer("uniform:0.05", IN, OUT, GG_ACT_TANH, 7);
  check_uniform("uniform:0.05", w, NW, 0.05);
  free(w);
}
END_TEST

START_TEST(test_trunc_normal) {
  const double sd = 0.02, a = 2.0;
  float *w = init_one_layer("trunc_normal:0.02", IN, OUT, GG_ACT_RELU, 8);
  /* N(0,1) truncated to [-a, a], Z = P(|x| <= a): E x^2 = 1 - 2 a phi(a) / Z,
   * E x^4 = 3 E x^2 - 2 a^3 phi(a) / Z; sd * sqrt(E x^2) = 0.8796 sd. */
  const double phi = exp(-a * a / 2) / sqrt(2 * 3.14159265358979323846), z = erf(a / sqrt(2.0));
  const double m2 = 1 - 2 * a * phi / z, m4 = 3 * m2 - 2 * a * a * a * phi / z;
  ck_assert(fabs(sqrt(m2) - 0.8796) < 1e-4);
  check_moments("trunc_normal", w, NW, sd * sqrt(m2), m4 / (m2 * m2));
  moments_t m = moments(w, NW);
  ck_assert_msg(m.max_abs <= (double)(float)(a * sd), "trunc_normal: |w| = %.9g beyond 2 STD", m.max_abs);
  /* The density at the cut is phi(2)/Z: a few hundred of 131072 lie in the
   * last 1% of the range. */
  ck_assert_msg(m.max_abs > 0.99 * a * sd, "trunc_normal: max |w| = %g", m.max_abs);
  free(w);
}
END_TEST

/* ||W W^T - g^2 I||_max (rows <= cols) or ||W^T W - g^2 I||_max. */
static double orthogonality_error(const float *w, int rows, int cols, double gain) {
  const int small = rows <= cols ? rows : cols;
  double worst = 0;
  for (int i = 0; i < small; i++)
    for (int j = 0; j < small; j++) {
      double s = 0;
      if (rows <= cols)
        for (int k = 0; k < cols; k++) s += (double)w[(size_t)i * cols + k] * w[(size_t)j * cols + k];
      else
        for (int k = 0; k < rows; k++) s += (double)w[(size_t)k * cols + i] * w[(size_t)k * cols + j];
      double e = fabs(s - (i == j ? gain * gain : 0.0));
      if (e > worst) worst = e;
    }
  return worst;
}

START_TEST(test_orthogonal) {
  /* Tall (out 96 > in 40), wide (out 40 < in 96) and square, with relu's
   * gain^2 = 2 and tanh's 25/9; float storage leaves ~1e-7 per entry. */
  const int shapes[3][2] = {{40, 96}, {96, 40}, {64, 64}}; /* {in, out} */
  const gg_act_t acts[2] = {GG_ACT_RELU, GG_ACT_TANH};
  for (int s = 0; s < 3; s++)
    for (int a = 0; a < 2; a++) {
      const int in = shapes[s][0], out = shapes[s][1];
      float *w = init_one_layer("orthogonal", in, out, acts[a], 10 + s);
      double gain = gg_init_gain(acts[a]);
      double err = orthogonality_error(w, out, in, gain);
      ck_assert_msg(err < 1e-5, "orthogonal %dx%d act %d: error %g", out, in, (int)acts[a], err);
      /* Not a trivial answer (identity-like): entries are spread out. */
      moments_t m = moments(w, (size_t)in * out);
      ck_assert_msg(m.max_abs < 0.8 * gain, "orthogonal %dx%d: max |w| %g", out, in, m.max_abs);
      free(w);
    }
}
END_TEST

START_TEST(test_orthogonal_sign_convention) {
  /* With sign(diag R) folded in, Q is Haar distributed and every entry has
   * mean 0. Without it, Householder QR makes R_00 = -sign(A_00) |A(:,0)|, so
   * Q(0,0) = -|A_00| / |A(:,0)| < 0 always. Mean of W(0,0) over 400 seeds
   * of a 4x4 orthogonal matrix, whose entries have variance 1/4. */
  double s = 0;
  const int n = 400;
  for (int seed = 0; seed < n; seed++) {
    float *w = init_one_layer("orthogonal", 4, 4, GG_ACT_IDENTITY, (uint64_t)seed);
    s += w[0];
    free(w);
  }
  ck_assert_msg(fabs(s / n) < 5 * 0.5 / sqrt(n), "mean of W(0,0) = %g", s / n);
}
END_TEST

START_TEST(test_constant_and_zeros) {
  float *w = init_one_layer("constant:0.25", 7, 5, GG_ACT_RELU, 1);
  for (int i = 0; i < 35; i++) ck_assert(w[i] == 0.25f);
  free(w);
  w = init_one_layer("constant:-1.5", 7, 5, GG_ACT_RELU, 1);
  for (int i = 0; i < 35; i++) ck_assert(w[i] == -1.5f);
  free(w);
  w = init_one_layer("zeros", 7, 5, GG_ACT_RELU, 1);
  for (int i = 0; i < 35 + 5; i++) ck_assert(w[i] == 0.0f);
  free(w);
}
END_TEST

START_TEST(test_biases_zero_every_kind) {
  const char *specs[] = {"kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                         "lecun_normal",   "orthogonal",      "normal:1",      "uniform:1",
                         "trunc_normal:1", "constant:3",      "zeros"};
  const int widths[4] = {6, 9, 4, 3};
  test_arch_t t;
  make_arch(&t, widths, 4, GG_ACT_GELU);
  float *p = malloc(t.a.n_params * sizeof *p);
  ck_assert_ptr_nonnull(p);
  for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
    gg_init_t init;
    ck_assert_int_eq(gg_init_parse(specs[k], &init), 0);
    for (size_t i = 0; i < t.a.n_params; i++) p[i] = NAN;
    ck_assert_int_eq(gg_init_params(&t.a, &init, 99, p), 0);
    for (int l = 0; l < 3; l++) {
      const size_t nw = (size_t)widths[l] * widths[l + 1];
      for (size_t i = 0; i < nw; i++) ck_assert_msg(isfinite(p[t.off[l] + i]), "%s: weight unset", specs[k]);
      for (int i = 0; i < widths[l + 1]; i++)
        ck_assert_msg(p[t.off[l] + nw + i] == 0.0f, "%s: layer %d bias %d = %g", specs[k], l, i,
                      p[t.off[l] + nw + i]);
    }
  }
  free(p);
}
END_TEST

START_TEST(test_determinism) {
  const int widths[3] = {20, 30, 5};
  test_arch_t t;
  make_arch(&t, widths, 3, GG_ACT_RELU);
  const size_t n = t.a.n_params;
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  ck_assert(a && b && c);
  const char *specs[] = {"kaiming_normal", "uniform:0.1", "trunc_normal:0.5", "orthogonal"};
  for (int k = 0; k < 4; k++) {
    gg_init_t init;
    ck_assert_int_eq(gg_init_parse(specs[k], &init), 0);
    ck_assert_int_eq(gg_init_params(&t.a, &init, 42, a), 0);
    ck_assert_int_eq(gg_init_params(&t.a, &init, 42, b), 0);
    ck_assert_int_eq(gg_init_params(&t.a, &init, 43, c), 0);
    ck_assert_msg(memcmp(a, b, n * sizeof *a) == 0, "%s: same seed, different weights", specs[k]);
    int same = 0;
    for (size_t i = 0; i < (size_t)20 * 30; i++) same += a[i] == c[i];
    ck_assert_msg(same < 5, "%s: seeds 42 and 43 share %d weights", specs[k], same);
  }
  free(a);
  free(b);
  free(c);
}
END_TEST

START_TEST(test_layer_streams) {
  /* Layer l depends only on the seed, l and its own shape: the first layer
   * is the same in 10-16-3 and 10-16-8-2, and it is exactly
   * std * gg_rng_normal of stream GG_STREAM_INIT(0), in row-major order. */
  const int w1[3] = {10, 16, 3}, w2[4] = {10, 16, 8, 2};
  test_arch_t t1, t2;
  make_arch(&t1, w1, 3, GG_ACT_RELU);
  make_arch(&t2, w2, 4, GG_ACT_RELU);
  float *a = malloc(t1.a.n_params * sizeof *a), *b = malloc(t2.a.n_params * sizeof *b);
  ck_assert(a && b);
  gg_init_t init;
  ck_assert_int_eq(gg_init_parse("normal:0.5", &init), 0);
  ck_assert_int_eq(gg_init_params(&t1.a, &init, 7, a), 0);
  ck_assert_int_eq(gg_init_params(&t2.a, &init, 7, b), 0);
  ck_assert(memcmp(a, b, (size_t)(160 + 16) * sizeof *a) == 0);
  gg_rng_t r;
  gg_rng_seed(&r, 7, GG_STREAM_INIT(0));
  for (int i = 0; i < 160; i++) ck_assert(a[i] == (float)(0.5 * gg_rng_normal(&r)));
  gg_rng_seed(&r, 7, GG_STREAM_INIT(1));
  for (int i = 0; i < 3 * 16; i++) ck_assert(a[t1.off[1] + i] == (float)(0.5 * gg_rng_normal(&r)));
  free(a);
  free(b);
}
END_TEST

START_TEST(test_default_resolution) {
  const gg_act_t acts[GG_ACT__COUNT] = {GG_ACT_RELU, GG_ACT_LEAKY_RELU, GG_ACT_TANH,
                                        GG_ACT_SIGMOID, GG_ACT_GELU, GG_ACT_IDENTITY};
  const int relu_like[GG_ACT__COUNT] = {1, 1, 0, 0, 1, 0};
  const int widths[3] = {12, 9, 4};
  for (int a = 0; a < GG_ACT__COUNT; a++) {
    gg_init_t def = {GG_INIT_DEFAULT, 0.0};
    gg_init_t r = gg_init_resolve(&def, acts[a]);
    gg_init_kind_t want = relu_like[a] ? GG_INIT_KAIMING_UNIFORM : GG_INIT_XAVIER_UNIFORM;
    ck_assert_int_eq(r.kind, want);
    /* gg_init_params resolves the same way: identical buffers. */
    test_arch_t t;
    make_arch(&t, widths, 3, acts[a]);
    float x[200], y[200];
    ck_assert_uint_le(t.a.n_params, 200);
    gg_init_t explicit_init = {want, 0.0};
    ck_assert_int_eq(gg_init_params(&t.a, &def, 5, x), 0);
    ck_assert_int_eq(gg_init_params(&t.a, &explicit_init, 5, y), 0);
    ck_assert(memcmp(x, y, t.a.n_params * sizeof *x) == 0);
  }
  /* Other kinds pass through unchanged. */
  gg_init_t n = {GG_INIT_NORMAL, 0.3};
  gg_init_t r = gg_init_resolve(&n, GG_ACT_TANH);
  ck_assert(r.kind == GG_INIT_NORMAL && r.arg == 0.3);
}
END_TEST

START_TEST(test_gains) {
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_RELU), sqrt(2.0), 1e-15);
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_GELU), sqrt(2.0), 1e-15);
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_LEAKY_RELU), sqrt(2.0 / (1.0 + 1e-4)), 1e-15);
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_TANH), 5.0 / 3.0, 1e-15);
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_SIGMOID), 1.0, 1e-15);
  ck_assert_double_eq_tol(gg_init_gain(GG_ACT_IDENTITY), 1.0, 1e-15);
}
END_TEST

START_TEST(test_parse_valid) {
  const struct {
    const char *spec;
    gg_init_kind_t kind;
    double arg;
  } ok[] = {
      {"kaiming_normal", GG_INIT_KAIMING_NORMAL, 0}, {"kaiming_uniform", GG_INIT_KAIMING_UNIFORM, 0},
      {"xavier_normal", GG_INIT_XAVIER_NORMAL, 0},   {"xavier_uniform", GG_INIT_XAVIER_UNIFORM, 0},
      {"lecun_normal", GG_INIT_LECUN_NORMAL, 0},     {"orthogonal", GG_INIT_ORTHOGONAL, 0},
      {"normal:0.02", GG_INIT_NORMAL, 0.02},         {"uniform:1e-3", GG_INIT_UNIFORM, 1e-3},
      {"trunc_normal:0.5", GG_INIT_TRUNC_NORMAL, 0.5}, {"constant:-0.75", GG_INIT_CONSTANT, -0.75},
      {"constant:0", GG_INIT_CONSTANT, 0},           {"normal:0", GG_INIT_NORMAL, 0},
      {"zeros", GG_INIT_ZEROS, 0},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    gg_init_t init = {GG_INIT_DEFAULT, -99};
    ck_assert_msg(gg_init_parse(ok[i].spec, &init) == 0, "%s rejected: %s", ok[i].spec,
                  gg_err_msg(GG_EUSAGE));
    ck_assert_int_eq(init.kind, ok[i].kind);
    ck_assert(init.arg == ok[i].arg);
  }
}
END_TEST

START_TEST(test_parse_errors) {
  /* Each bad spec, and a phrase its message must contain. */
  const struct {
    const char *spec, *phrase;
  } bad[] = {
      {"normal", "normal needs a standard deviation, e.g. normal:0.02"},
      {"normal:", "normal needs a standard deviation"},
      {"uniform", "uniform needs a bound"},
      {"trunc_normal", "e.g. trunc_normal:0.02"},
      {"constant", "constant needs a value"},
      {"kaiming_normal:2", "kaiming_normal takes no argument"},
      {"zeros:0", "zeros takes no argument"},
      {"normal:-0.1", ">= 0"},
      {"uniform:-1", ">= 0"},
      {"trunc_normal:-2", ">= 0"},
      {"normal:abc", "not a finite number"},
      {"normal:0.1x", "not a finite number"},
      {"normal:nan", "not a finite number"},
      {"uniform:inf", "not a finite number"},
      {"normal:1e999", "not a finite number"},
      {"he_normal", "unknown initializer \"he_normal\""},
      {"default", "unknown initializer"},
      {"Kaiming_Normal", "unknown initializer"},
      {"", "empty"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gg_init_t init = {GG_INIT_ZEROS, 0};
    gg_err_clear();
    ck_assert_msg(gg_init_parse(bad[i].spec, &init) == GG_EUSAGE, "\"%s\" accepted", bad[i].spec);
    const char *msg = gg_err_msg(GG_EUSAGE);
    ck_assert_msg(strstr(msg, bad[i].phrase) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", bad[i].spec, msg,
                  bad[i].phrase);
    ck_assert_msg(strncmp(msg, "--init: ", 8) == 0, "message \"%s\" does not name --init", msg);
    /* A failed parse leaves the output alone. */
    ck_assert(init.kind == GG_INIT_ZEROS);
  }
}
END_TEST

START_TEST(test_format_round_trip) {
  const char *specs[] = {"kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                         "lecun_normal",   "orthogonal",      "normal:0.02",   "uniform:0.05",
                         "trunc_normal:1e-05", "constant:-0.75", "zeros", "normal:0.1"};
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    gg_init_t init, again;
    char buf[64];
    ck_assert_int_eq(gg_init_parse(specs[i], &init), 0);
    gg_init_format(&init, buf, sizeof buf);
    ck_assert_str_eq(buf, specs[i]); /* short, as the user wrote it */
    ck_assert_int_eq(gg_init_parse(buf, &again), 0);
    ck_assert(again.kind == init.kind && again.arg == init.arg);
  }
  /* An argument with no short decimal form still reads back exactly. */
  gg_init_t third = {GG_INIT_UNIFORM, 1.0 / 3.0}, back;
  char buf[64];
  gg_init_format(&third, buf, sizeof buf);
  ck_assert_int_eq(gg_init_parse(buf, &back), 0);
  ck_assert(back.arg == third.arg);
  /* The unset default says so (it is not a --init value). */
  gg_init_t def = {GG_INIT_DEFAULT, 0};
  gg_init_format(&def, buf, sizeof buf);
  ck_assert_str_eq(buf, "default");
}
END_TEST

static Suite *init_suite(void) {
  Suite *s = suite_create("init");
  TCase *dist = tcase_create("distributions");
  tcase_set_timeout(dist, 120);
  tcase_add_test(dist, test_kaiming_normal);
  tcase_add_test(dist, test_kaiming_uniform);
  tcase_add_test(dist, test_xavier_normal);
  tcase_add_test(dist, test_xavier_uniform);
  tcase_add_test(dist, test_lecun_normal);
  tcase_add_test(dist, test_normal);
  tcase_add_test(dist, test_uniform);
  tcase_add_test(dist, test_trunc_normal);
  tcase_add_test(dist, test_orthogonal);
  tcase_add_test(dist, test_orthogonal_sign_convention);
  tcase_add_test(dist, test_constant_and_zeros);
  suite_add_tcase(s, dist);
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_biases_zero_every_kind);
  tcase_add_test(core, test_determinism);
  tcase_add_test(core, test_layer_streams);
  tcase_add_test(core, test_default_resolution);
  tcase_add_test(core, test_gains);
  tcase_add_test(core, test_parse_valid);
  tcase_add_test(core, test_parse_errors);
  tcase_add_test(core, test_format_round_trip);
  suite_add_tcase(s, core);
  return s;
}

int main(void) {
  return gg_check_run(init_suite());
}
