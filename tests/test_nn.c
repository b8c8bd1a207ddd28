/* test_nn.c — Check suite for src/nn.c, compiled in double (GG_REAL_DOUBLE).
 *
 * Derivatives are checked against central finite differences (h = 1e-5,
 * relative tolerance 1e-6, measured worst error 3e-8: a derivative off by
 * a relative 1e-6 fails): every activation elementwise,
 * every loss, and every parameter of a small network for every
 * activation x loss. Values are checked against hand-computed numbers and
 * a naive reference forward pass (FD cannot see a consistently wrong
 * forward, e.g. W used instead of W^T).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"
#include "gradguard/nn.h"
#include "gg_check.h"

/* h = 1e-5 rather than 1e-6: the network losses are sums over samples of
 * magnitude up to ~50, and the rounding in the FD quotient, about
 * 1e-16 |loss| / h, would leave only a 2x margin at 1e-6; the truncation
 * error h^2 f''' / 6 is still below 1e-9 at 1e-5. */
#define FD_H 1e-5
#define FD_RTOL 1e-6
/* Below this magnitude the tolerance becomes absolute (FD_RTOL * FD_FLOOR). */
#define FD_FLOOR 1e-2

/* ---- helpers ------------------------------------------------------------ */

/* splitmix64: a deterministic stream for test data. */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s; }
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* Uniform in [lo, hi). */
static double urand(double lo, double hi) {
  return lo + (hi - lo) * (double)(rng_next() >> 11) * 0x1.0p-53;
}

static double fd_err(double fd, double an) {
  return fabs(fd - an) / fmax(FD_FLOOR, fmax(fabs(fd), fabs(an)));
}

static double sigmoid_ref(double z) { return 1 / (1 + exp(-z)); }

static double act_ref(gg_act_t act, double z) {
  switch (act) {
  case GG_ACT_RELU: return z > 0 ? z : 0;
  case GG_ACT_LEAKY_RELU: return z > 0 ? z : 0.01 * z;
  case GG_ACT_TANH: return tanh(z);
  case GG_ACT_SIGMOID: return sigmoid_ref(z);
  case GG_ACT_GELU: return 0.5 * z * (1 + erf(z / sqrt(2.0)));
  case GG_ACT_IDENTITY: return z;
  default: return NAN;
  }
}

/* Points for elementwise checks: both signs, near 0, large |z|; none
 * within 1e-3 of 0 so that FD never straddles the relu kink. */
static const double act_points[] = {-8.0, -4.5, -3.0, -2.2, -1.5, -0.75, -0.31, -0.05, -0.002,
                                    0.002, 0.05, 0.3, 0.77, 1.0, 1.5, 2.5, 4.0, 7.5};
#define N_ACT_POINTS (sizeof act_points / sizeof act_points[0])

/* A network with parameters, inputs and targets, for one act x loss. */
typedef struct {
  gg_arch_t arch;
  gg_ws_t ws;
  int n;
  double *params;  /* (n_params) */
  double *grads;   /* (n_params) */
  double *X;       /* (n, widths[0]) */
  double *targets; /* (n, K) */
  int32_t *labels; /* (n) */
  double *dlogits; /* (n, K) external buffer */
} net_t;

static void net_fill(net_t *t, uint64_t seed) {
  const int K = t->arch.widths[t->arch.n_layers];
  rng_seed(seed);
  for (size_t i = 0; i < t->arch.n_params; i++) t->params[i] = urand(-0.9, 0.9);
  for (size_t i = 0; i < (size_t)t->n * (size_t)t->arch.widths[0]; i++) t->X[i] = urand(-1.5, 1.5);
  for (size_t i = 0; i < (size_t)t->n * (size_t)K; i++)
    t->targets[i] = t->arch.loss == GG_LOSS_BCE ? urand(0, 1) : urand(-1, 1);
  for (int i = 0; i < t->n; i++) t->labels[i] = (int32_t)(rng_next() % (uint64_t)K);
}

static void net_init(net_t *t, const int *widths, int n_widths, gg_act_t act, gg_loss_t loss,
                     int n, uint64_t seed) {
  memset(t, 0, sizeof *t);
  ck_assert_int_eq(gg_arch_init(&t->arch, widths, n_widths, act, loss), 0);
  ck_assert_int_eq(gg_ws_init(&t->ws, &t->arch, n), 0);
  const int K = widths[n_widths - 1];
  t->n = n;
  t->params = malloc(t->arch.n_params * sizeof(double));
  t->grads = malloc(t->arch.n_params * sizeof(double));
  t->X = malloc((size_t)n * (size_t)widths[0] * sizeof(double));
  t->targets = malloc((size_t)n * (size_t)K * sizeof(double));
  t->labels = malloc((size_t)n * sizeof(int32_t));
  t->dlogits = malloc((size_t)n * (size_t)K * sizeof(double));
  ck_assert(t->params && t->grads && t->X && t->targets && t->labels && t->dlogits);
  net_fill(t, seed);
}

static void net_free(net_t *t) {
  free(t->params);
  free(t->grads);
  free(t->X);
  free(t->targets);
  free(t->labels);
  free(t->dlogits);
  gg_ws_free(&t->ws);
  gg_arch_free(&t->arch);
}

static int net_K(const net_t *t) { return t->arch.widths[t->arch.n_layers]; }

/* Summed loss of the batch at the current parameters; dz as in gg_loss_eval. */
static double net_loss(net_t *t, double *dz) {
  gg_nn_forward(&t->arch, t->params, t->X, t->n, &t->ws);
  return gg_loss_eval(t->arch.loss, t->ws.z[t->arch.n_layers - 1], t->n, net_K(t), t->targets,
                      t->labels, dz, NULL);
}

/* Smallest |z| over the hidden pre-activations (distance to the relu kink). */
static double net_min_hidden_abs_z(net_t *t) {
  gg_nn_forward(&t->arch, t->params, t->X, t->n, &t->ws);
  double m = INFINITY;
  for (int l = 0; l + 1 < t->arch.n_layers; l++)
    for (size_t i = 0; i < (size_t)t->n * (size_t)t->arch.widths[l + 1]; i++)
      m = fmin(m, fabs(t->ws.z[l][i]));
  return m;
}

/* Forward with the naive triple loop, written from the formulas in nn.h:
 * z_j = b_j + sum_k W[j][k] a_k. Leaves the logits in out (n, K). */
static void ref_forward(const gg_arch_t *arch, const double *params, const double *X, int n,
                        double *out) {
  const int L = arch->n_layers;
  double *cur = malloc((size_t)n * (size_t)arch->max_width * sizeof(double));
  double *nxt = malloc((size_t)n * (size_t)arch->max_width * sizeof(double));
  ck_assert(cur && nxt);
  memcpy(cur, X, (size_t)n * (size_t)arch->widths[0] * sizeof(double));
  for (int l = 0; l < L; l++) {
    const int in = arch->widths[l], outw = arch->widths[l + 1];
    const double *W = params + arch->off[l];
    const double *b = W + (size_t)outw * (size_t)in;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < outw; j++) {
        double s = b[j];
        for (int k = 0; k < in; k++) s += W[(size_t)j * in + k] * cur[(size_t)i * in + k];
        nxt[(size_t)i * outw + j] = l < L - 1 ? act_ref(arch->act, s) : s;
      }
    double *tmp = cur;
    cur = nxt;
    nxt = tmp;
  }
  memcpy(out, cur, (size_t)n * (size_t)arch->widths[L] * sizeof(double));
  free(cur);
  free(nxt);
}

/* ---- architecture and workspace ----------------------------------------- */

START_TEST(test_arch_offsets) {
  const int widths[] = {3, 4, 2};
  gg_arch_t a;
  ck_assert_int_eq(gg_arch_init(&a, widths, 3, GG_ACT_TANH, GG_LOSS_MSE), 0);
  ck_assert_int_eq(a.n_layers, 2);
  ck_assert_uint_eq(a.n_params, 26); /* 4*3+4 + 2*4+2 */
  ck_assert_uint_eq(a.off[0], 0);
  ck_assert_uint_eq(a.size[0], 16);
  ck_assert_uint_eq(a.off[1], 16);
  ck_assert_uint_eq(a.size[1], 10);
  ck_assert_int_eq(a.max_width, 4);
  ck_assert_int_eq(a.act, GG_ACT_TANH);
  ck_assert_int_eq(a.loss, GG_LOSS_MSE);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(a.widths[i], widths[i]);
  double buf[26];
  ck_assert_ptr_eq(gg_arch_w(&a, buf, 1), buf + 16);
  ck_assert_ptr_eq(gg_arch_b(&a, buf, 0), buf + 12);
  ck_assert_ptr_eq(gg_arch_b(&a, buf, 1), buf + 24);
  gg_arch_free(&a);
  ck_assert_ptr_null(a.widths);
}
END_TEST

START_TEST(test_arch_copies_widths) {
  int widths[] = {2, 5, 1};
  gg_arch_t a;
  ck_assert_int_eq(gg_arch_init(&a, widths, 3, GG_ACT_RELU, GG_LOSS_BCE), 0);
  widths[1] = 99;
  ck_assert_int_eq(a.widths[1], 5);
  ck_assert_int_eq(a.max_width, 5);
  gg_arch_free(&a);
}
END_TEST

START_TEST(test_arch_rejects_bad_shapes) {
  gg_arch_t a;
  const int zero[] = {3, 0, 2};
  gg_err_clear();
  ck_assert_int_eq(gg_arch_init(&a, zero, 3, GG_ACT_RELU, GG_LOSS_MSE), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "positive"));
  gg_arch_free(&a);
  const int neg[] = {3, 4, -2};
  ck_assert_int_eq(gg_arch_init(&a, neg, 3, GG_ACT_RELU, GG_LOSS_MSE), GG_EUSAGE);
  gg_arch_free(&a);
  const int one[] = {3};
  ck_assert_int_eq(gg_arch_init(&a, one, 1, GG_ACT_RELU, GG_LOSS_MSE), GG_EUSAGE);
  gg_arch_free(&a);
  const int ok[] = {3, 2};
  ck_assert_int_eq(gg_arch_init(&a, ok, 2, GG_ACT__COUNT, GG_LOSS_MSE), GG_EUSAGE);
  ck_assert_int_eq(gg_arch_init(&a, ok, 2, GG_ACT_RELU, GG_LOSS__COUNT), GG_EUSAGE);
  gg_arch_free(&a);
}
END_TEST

START_TEST(test_free_zeroed_is_safe) {
  gg_arch_t a;
  gg_ws_t w;
  memset(&a, 0, sizeof a);
  memset(&w, 0, sizeof w);
  gg_arch_free(&a);
  gg_arch_free(&a);
  gg_ws_free(&w);
  gg_ws_free(&w);
  gg_arch_free(NULL);
  gg_ws_free(NULL);
  ck_assert_ptr_null(a.widths);
  ck_assert_ptr_null(w.buf);
}
END_TEST

START_TEST(test_ws_layout) {
  const int widths[] = {3, 7, 5, 2};
  const int cap = 9;
  gg_arch_t a;
  gg_ws_t w;
  ck_assert_int_eq(gg_arch_init(&a, widths, 4, GG_ACT_RELU, GG_LOSS_MSE), 0);
  ck_assert_int_eq(gg_ws_init(&w, &a, cap), 0);
  ck_assert_int_eq(w.cap, cap);
  ck_assert_int_eq(w.n_layers, 3);
  ck_assert_ptr_null(w.a[2]);
  /* Every view is 64-byte aligned and no two overlap: fill each with its
   * own value, then read them all back (valgrind sees any overrun). */
  double *views[7];
  size_t lens[7];
  int nv = 0;
  for (int l = 0; l < 3; l++) {
    views[nv] = w.z[l];
    lens[nv++] = (size_t)cap * (size_t)widths[l + 1];
    if (l < 2) {
      views[nv] = w.a[l];
      lens[nv++] = (size_t)cap * (size_t)widths[l + 1];
    }
  }
  views[nv] = w.d0;
  lens[nv++] = (size_t)cap * (size_t)a.max_width;
  views[nv] = w.d1;
  lens[nv++] = (size_t)cap * (size_t)a.max_width;
  for (int v = 0; v < nv; v++) {
    ck_assert_uint_eq((uintptr_t)views[v] % 64, 0);
    for (size_t i = 0; i < lens[v]; i++) views[v][i] = v;
  }
  for (int v = 0; v < nv; v++)
    for (size_t i = 0; i < lens[v]; i++) ck_assert_double_eq(views[v][i], v);
  gg_ws_free(&w);
  ck_assert_ptr_null(w.buf);
  ck_assert_int_eq(gg_ws_init(&w, &a, 0), GG_EUSAGE);
  gg_ws_free(&w);
  gg_arch_free(&a);
}
END_TEST

/* ---- names -------------------------------------------------------------- */

START_TEST(test_act_names_round_trip) {
  const char *expect[] = {"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "identity"};
  for (int i = 0; i < GG_ACT__COUNT; i++) {
    ck_assert_str_eq(gg_act_name((gg_act_t)i), expect[i]);
    ck_assert_int_eq(gg_act_parse(expect[i]), i);
  }
  ck_assert_int_eq(gg_act_parse("Relu"), -1);
  ck_assert_int_eq(gg_act_parse("swish"), -1);
  ck_assert_int_eq(gg_act_parse(""), -1);
  ck_assert_int_eq(gg_act_parse(NULL), -1);
  ck_assert_int_eq(gg_act_parse(gg_act_name(GG_ACT__COUNT)), -1);
}
END_TEST

START_TEST(test_loss_names_round_trip) {
  const char *expect[] = {"mse", "bce", "softmax_ce"};
  for (int i = 0; i < GG_LOSS__COUNT; i++) {
    ck_assert_str_eq(gg_loss_name((gg_loss_t)i), expect[i]);
    ck_assert_int_eq(gg_loss_parse(expect[i]), i);
  }
  ck_assert_int_eq(gg_loss_parse("ce"), -1);
  ck_assert_int_eq(gg_loss_parse("mse "), -1);
  ck_assert_int_eq(gg_loss_parse(NULL), -1);
  ck_assert_int_eq(gg_loss_parse(gg_loss_name(GG_LOSS__COUNT)), -1);
}
END_TEST

/* ---- activations -------------------------------------------------------- */

START_TEST(test_act_forward_values) {
  /* gelu(1) = Phi(1) = 0.8413447460685429; gelu(-1) = -(1 - Phi(1)). */
  const double z[] = {-2.0, 0.0, 1.0};
  const double expect[GG_ACT__COUNT][3] = {
      [GG_ACT_RELU] = {0.0, 0.0, 1.0},
      [GG_ACT_LEAKY_RELU] = {-0.02, 0.0, 1.0},
      [GG_ACT_TANH] = {-0.9640275800758169, 0.0, 0.7615941559557649},
      [GG_ACT_SIGMOID] = {0.11920292202211755, 0.5, 0.7310585786300049},
      [GG_ACT_GELU] = {-0.04550026389635842, 0.0, 0.8413447460685429},
      [GG_ACT_IDENTITY] = {-2.0, 0.0, 1.0},
  };
  double a[3];
  for (int act = 0; act < GG_ACT__COUNT; act++) {
    gg_act_forward((gg_act_t)act, z, a, 3);
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(a[i], expect[act][i], 1e-15);
  }
}
END_TEST

/* Elementwise derivative against FD of gg_act_forward, looped over acts. */
START_TEST(test_act_backward_fd) {
  const gg_act_t act = (gg_act_t)_i;
  const size_t n = N_ACT_POINTS;
  double z[N_ACT_POINTS], a[N_ACT_POINTS], da[N_ACT_POINTS], dz[N_ACT_POINTS];
  rng_seed(11);
  for (size_t i = 0; i < n; i++) {
    z[i] = act_points[i];
    da[i] = urand(0.5, 2.0) * (i % 2 ? 1 : -1);
  }
  gg_act_forward(act, z, a, n);
  gg_act_backward(act, z, a, da, dz, n, 0);
  for (size_t i = 0; i < n; i++) {
    double zp = z[i] + FD_H, zm = z[i] - FD_H, ap, am;
    gg_act_forward(act, &zp, &ap, 1);
    gg_act_forward(act, &zm, &am, 1);
    const double fd = da[i] * (ap - am) / (2 * FD_H);
    ck_assert_msg(fd_err(fd, dz[i]) < FD_RTOL, "%s'(%g): analytic %.12g, FD %.12g",
                  gg_act_name(act), z[i], dz[i], fd);
    ck_assert_double_eq_tol(a[i], act_ref(act, z[i]), 1e-14);
  }
}
END_TEST

START_TEST(test_act_backward_in_place) {
  const gg_act_t act = (gg_act_t)_i;
  const size_t n = N_ACT_POINTS;
  double z[N_ACT_POINTS], a[N_ACT_POINTS], da[N_ACT_POINTS], dz[N_ACT_POINTS];
  for (size_t i = 0; i < n; i++) {
    z[i] = act_points[i];
    da[i] = 1.0 + 0.1 * (double)i;
  }
  gg_act_forward(act, z, a, n);
  const size_t c1 = gg_act_backward(act, z, a, da, dz, n, 1);
  const size_t c2 = gg_act_backward(act, z, a, da, da, n, 1);
  ck_assert_uint_eq(c1, c2);
  for (size_t i = 0; i < n; i++) ck_assert_double_eq(da[i], dz[i]);
}
END_TEST

START_TEST(test_act_long_vectors) {
  /* Lengths around the vector block: every element, tail included, is
   * computed (compare against the one-at-a-time result). */
  const gg_act_t act = (gg_act_t)_i;
  double z[53], a[53], d[53], a1, d1;
  for (size_t n = 1; n <= 53; n += 13) {
    for (size_t i = 0; i < n; i++) z[i] = -3.0 + 6.0 * (double)i / 53.0 + 0.01;
    gg_act_forward(act, z, a, n);
    for (size_t i = 0; i < n; i++) d[i] = 1;
    gg_act_backward(act, z, a, d, d, n, 0);
    for (size_t i = 0; i < n; i++) {
      double one = 1;
      gg_act_forward(act, &z[i], &a1, 1);
      gg_act_backward(act, &z[i], &a1, &one, &d1, 1, 0);
      ck_assert_double_eq(a[i], a1);
      ck_assert_double_eq(d[i], d1);
    }
  }
}
END_TEST

START_TEST(test_relu_derivative_at_zero) {
  const double z[] = {0.0, -0.0};
  double a[2], da[] = {1.0, 1.0}, dz[2];
  gg_act_forward(GG_ACT_RELU, z, a, 2);
  ck_assert_double_eq(a[0], 0.0);
  ck_assert_uint_eq(gg_act_backward(GG_ACT_RELU, z, a, da, dz, 2, 1), 2);
  ck_assert_double_eq(dz[0], 0.0);
  ck_assert_double_eq(dz[1], 0.0);
  gg_act_backward(GG_ACT_LEAKY_RELU, z, z, da, dz, 2, 0);
  ck_assert_double_eq(dz[0], 0.01);
}
END_TEST

START_TEST(test_act_nan_propagates) {
  for (int act = 0; act < GG_ACT__COUNT; act++) {
    const double z = NAN;
    double a = 0;
    gg_act_forward((gg_act_t)act, &z, &a, 1);
    ck_assert_msg(isnan(a), "%s(NaN) = %g", gg_act_name((gg_act_t)act), a);
  }
}
END_TEST

START_TEST(test_act_saturation_counts) {
  /* z and the expected saturated flags |f'(z)| < 1e-3 per activation:
   * tanh'(5) = 1.8e-4, tanh'(3) = 9.9e-3; sigmoid'(8) = 3.4e-4,
   * sigmoid'(6) = 2.5e-3; gelu'(-5) ~ -7e-6, gelu'(-1.5) = -0.13. */
  const double z[] = {-5.0, -1.5, 0.0, 3.0, 5.0, 6.0, 8.0, -8.0};
  const size_t n = sizeof z / sizeof z[0];
  const size_t expect[GG_ACT__COUNT] = {
      [GG_ACT_RELU] = 4,       /* -5, -1.5, 0, -8 */
      [GG_ACT_LEAKY_RELU] = 0, /* 0.01 >= 1e-3 */
      [GG_ACT_TANH] = 5,       /* -5, 5, 6, 8, -8 */
      [GG_ACT_SIGMOID] = 2,    /* 8, -8 */
      [GG_ACT_GELU] = 2,       /* -5, -8 */
      [GG_ACT_IDENTITY] = 0,
  };
  double a[8], da[8], dz[8];
  for (int act = 0; act < GG_ACT__COUNT; act++) {
    for (size_t i = 0; i < n; i++) da[i] = 1;
    gg_act_forward((gg_act_t)act, z, a, n);
    ck_assert_msg(gg_act_backward((gg_act_t)act, z, a, da, dz, n, 1) == expect[act],
                  "%s saturation count", gg_act_name((gg_act_t)act));
    ck_assert_uint_eq(gg_act_backward((gg_act_t)act, z, a, da, dz, n, 0), 0);
  }
}
END_TEST

/* ---- losses ------------------------------------------------------------- */

/* dl/dz from gg_loss_eval against FD of its value, looped over losses, for
 * several batch sizes n and widths K. */
START_TEST(test_loss_fd) {
  const gg_loss_t loss = (gg_loss_t)_i;
  const int Ks[] = {1, 2, 5, 10}, ns[] = {1, 3, 7};
  for (size_t ki = 0; ki < 4; ki++)
    for (size_t ni = 0; ni < 3; ni++) {
      const int K = Ks[ki], n = ns[ni];
      if (loss == GG_LOSS_SOFTMAX_CE && K == 1) continue;
      const size_t nk = (size_t)n * (size_t)K;
      double z[70], t[70], dz[70];
      int32_t y[7];
      rng_seed(100 + 10 * ki + ni);
      for (size_t i = 0; i < nk; i++) {
        z[i] = urand(-4, 4);
        t[i] = loss == GG_LOSS_BCE ? urand(0, 1) : urand(-2, 2);
      }
      for (int i = 0; i < n; i++) y[i] = (int32_t)(rng_next() % (uint64_t)K);
      gg_loss_eval(loss, z, n, K, t, y, dz, NULL);
      for (size_t i = 0; i < nk; i++) {
        /* Only sample r depends on z[i]; differencing its loss alone keeps
         * the other samples' rounding out of the quotient. */
        const size_t r = i / (size_t)K, o = r * (size_t)K;
        const double z0 = z[i];
        z[i] = z0 + FD_H;
        const double lp = gg_loss_eval(loss, z + o, 1, K, t + o, y + r, NULL, NULL);
        z[i] = z0 - FD_H;
        const double lm = gg_loss_eval(loss, z + o, 1, K, t + o, y + r, NULL, NULL);
        z[i] = z0;
        const double fd = (lp - lm) / (2 * FD_H);
        ck_assert_msg(fd_err(fd, dz[i]) < FD_RTOL, "%s K=%d n=%d dz[%zu]: analytic %.12g FD %.12g",
                      gg_loss_name(loss), K, n, i, dz[i], fd);
      }
    }
}
END_TEST

START_TEST(test_loss_mse_values) {
  /* Two samples, K = 2: l0 = (1 + 4)/2, l1 = (0.25 + 0)/2. */
  const double z[] = {1, 2, 0.5, -1}, t[] = {0, 0, 0, -1};
  double dz[4];
  long correct = 5;
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_MSE, z, 2, 2, t, NULL, dz, &correct), 2.625,
                          1e-15);
  const double expect[] = {1, 2, 0.5, 0}; /* 2 (z - t) / K */
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(dz[i], expect[i], 1e-15);
  ck_assert_int_eq(correct, 5);
}
END_TEST

START_TEST(test_loss_bce_values) {
  /* z = 0: log 2 per output whatever t; dl/dz = (0.5 - t)/K.
   * z = 2, t = 1: log(1 + e^-2) = 0.12692801104297263. */
  const double z[] = {0, 0, 2}, t[] = {0, 1, 1};
  double dz[3];
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_BCE, z, 1, 2, t, NULL, dz, NULL), log(2.0),
                          1e-15);
  ck_assert_double_eq_tol(dz[0], 0.25, 1e-15);
  ck_assert_double_eq_tol(dz[1], -0.25, 1e-15);
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_BCE, z + 2, 1, 1, t + 2, NULL, dz, NULL),
                          0.12692801104297263, 1e-15);
  ck_assert_double_eq_tol(dz[0], sigmoid_ref(2) - 1, 1e-15);
}
END_TEST

START_TEST(test_loss_softmax_values) {
  /* Equal logits: log K, dl/dz = 1/K - onehot. Then z = (0, log 3) with
   * y = 0: p = (1/4, 3/4), l = log 4. */
  const double z[] = {0.3, 0.3, 0.3, 0.3, 0.3, 0, log(3.0)};
  const int32_t y[] = {2, 0};
  double dz[7];
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_SOFTMAX_CE, z, 1, 5, NULL, y, dz, NULL),
                          log(5.0), 1e-15);
  for (int k = 0; k < 5; k++) ck_assert_double_eq_tol(dz[k], k == 2 ? 0.2 - 1 : 0.2, 1e-15);
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_SOFTMAX_CE, z + 5, 1, 2, NULL, y + 1, dz, NULL),
                          log(4.0), 1e-15);
  ck_assert_double_eq_tol(dz[0], -0.75, 1e-15);
  ck_assert_double_eq_tol(dz[1], 0.75, 1e-15);
}
END_TEST

START_TEST(test_loss_sums_over_samples) {
  /* The batch loss is the SUM of the per-sample losses, dz is unscaled. */
  const gg_loss_t loss = (gg_loss_t)_i;
  double z[12], t[12], dz[12], dz1[3];
  int32_t y[4];
  rng_seed(5);
  for (int i = 0; i < 12; i++) {
    z[i] = urand(-2, 2);
    t[i] = urand(0, 1);
  }
  for (int i = 0; i < 4; i++) y[i] = i % 3;
  const double total = gg_loss_eval(loss, z, 4, 3, t, y, dz, NULL);
  double sum = 0;
  for (int i = 0; i < 4; i++) {
    sum += gg_loss_eval(loss, z + 3 * i, 1, 3, t + 3 * i, y + i, dz1, NULL);
    for (int k = 0; k < 3; k++) ck_assert_double_eq(dz1[k], dz[3 * i + k]);
  }
  ck_assert_double_eq_tol(total, sum, 1e-14);
}
END_TEST

START_TEST(test_loss_large_logits) {
  /* z = +-1000 overflows e^z; the loss must stay finite and exact. */
  const double zb[] = {1000, -1000, 1000, -1000}, tb[] = {1, 0, 0, 1};
  double dz[6];
  const double lb = gg_loss_eval(GG_LOSS_BCE, zb, 1, 4, tb, NULL, dz, NULL);
  ck_assert_double_eq_tol(lb, 2000.0 / 4, 1e-9); /* two right (0), two wrong (1000) */
  const double expect_b[] = {0, 0, 0.25, -0.25};
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(dz[i], expect_b[i], 1e-15);

  const double zs[] = {1000, -1000, 0, 1000, -1000, 999};
  const int32_t y[] = {0, 1};
  const double ls = gg_loss_eval(GG_LOSS_SOFTMAX_CE, zs, 2, 3, NULL, y, dz, NULL);
  /* sample 0 right with p ~ 1 (loss ~0); sample 1: 2000 + log(1 + e^-1) */
  ck_assert_double_eq_tol(ls, 2000 + log1p(exp(-1.0)), 1e-9);
  for (int i = 0; i < 6; i++) ck_assert(isfinite(dz[i]));
  ck_assert_double_eq_tol(dz[0], 0, 1e-15);
  ck_assert_double_eq_tol(dz[4], -1, 1e-15);
  ck_assert_double_eq_tol(dz[3], 1 / (1 + exp(-1.0)), 1e-15);

  const double zm[] = {1000}, tm[] = {-1000};
  ck_assert_double_eq_tol(gg_loss_eval(GG_LOSS_MSE, zm, 1, 1, tm, NULL, dz, NULL), 4e6, 1e-6);
  ck_assert_double_eq_tol(dz[0], 4000, 1e-9);
}
END_TEST

START_TEST(test_loss_accuracy_counts) {
  /* softmax_ce: argmax == label; rows 0 and 2 right, row 1 wrong. */
  const double zs[] = {3, 1, 2, 0, 5, 1, -1, -2, 7};
  const int32_t y[] = {0, 2, 2};
  long correct = 10;
  gg_loss_eval(GG_LOSS_SOFTMAX_CE, zs, 3, 3, NULL, y, NULL, &correct);
  ck_assert_int_eq(correct, 12);
  /* bce: pairs with (z > 0) == (t > 0.5): (1,.9) yes, (-1,.2) yes,
   * (2,.3) no, (0,.1) yes (0 is not > 0), (-3,.7) no, (.5,.5) no. */
  const double zb[] = {1, -1, 2, 0, -3, 0.5}, tb[] = {0.9, 0.2, 0.3, 0.1, 0.7, 0.5};
  correct = 0;
  gg_loss_eval(GG_LOSS_BCE, zb, 2, 3, tb, NULL, NULL, &correct);
  ck_assert_int_eq(correct, 3);
  /* mse counts nothing; NULL n_correct is allowed. */
  correct = 7;
  gg_loss_eval(GG_LOSS_MSE, zb, 2, 3, tb, NULL, NULL, &correct);
  ck_assert_int_eq(correct, 7);
  ck_assert(isfinite(gg_loss_eval(GG_LOSS_BCE, zb, 2, 3, tb, NULL, NULL, NULL)));
}
END_TEST

START_TEST(test_loss_bad_label_is_nan) {
  const double z[] = {1, 2, 3, 4};
  const int32_t y[] = {1, 2};
  double dz[4];
  const double l = gg_loss_eval(GG_LOSS_SOFTMAX_CE, z, 2, 2, NULL, y, dz, NULL);
  ck_assert(isnan(l));
  ck_assert(isfinite(dz[0]) && isfinite(dz[1]));
  ck_assert(isnan(dz[2]) && isnan(dz[3]));
}
END_TEST

/* ---- network ------------------------------------------------------------ */

/* Forward pass against the naive reference, every activation. */
START_TEST(test_nn_forward_matches_reference) {
  const gg_act_t act = (gg_act_t)_i;
  const int widths[] = {5, 19, 17, 3};
  net_t t;
  net_init(&t, widths, 4, act, GG_LOSS_MSE, 6, 21);
  double ref[18];
  ref_forward(&t.arch, t.params, t.X, t.n, ref);
  gg_nn_forward(&t.arch, t.params, t.X, t.n, &t.ws);
  for (int i = 0; i < 18; i++) ck_assert_double_eq_tol(t.ws.z[2][i], ref[i], 1e-12);
  /* hidden activations are f(z) */
  for (int i = 0; i < 6 * 19; i++)
    ck_assert_double_eq_tol(t.ws.a[0][i], act_ref(act, t.ws.z[0][i]), 1e-14);
  /* fewer samples than the capacity: the same rows */
  gg_nn_forward(&t.arch, t.params, t.X, 2, &t.ws);
  for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(t.ws.z[2][i], ref[i], 1e-12);
  net_free(&t);
}
END_TEST

START_TEST(test_nn_forward_hand_values) {
  /* widths {2, 2, 1}, relu: W0 = [[1, 2], [-1, 1]], b0 = [0.5, -1],
   * W1 = [[3, -2]], b1 = [0.25]. x = (1, 1): z0 = (3.5, -1), a0 = (3.5, 0),
   * logit = 10.5 + 0.25. x = (-1, 2): z0 = (3.5, 2), logit = 10.5 - 4 + .25. */
  const int widths[] = {2, 2, 1};
  gg_arch_t a;
  gg_ws_t w;
  ck_assert_int_eq(gg_arch_init(&a, widths, 3, GG_ACT_RELU, GG_LOSS_MSE), 0);
  ck_assert_int_eq(gg_ws_init(&w, &a, 2), 0);
  const double p[] = {1, 2, -1, 1, 0.5, -1, 3, -2, 0.25};
  const double X[] = {1, 1, -1, 2};
  gg_nn_forward(&a, p, X, 2, &w);
  ck_assert_double_eq(w.z[0][0], 3.5);
  ck_assert_double_eq(w.z[0][1], -1);
  ck_assert_double_eq(w.a[0][1], 0);
  ck_assert_double_eq(w.z[1][0], 10.75);
  ck_assert_double_eq(w.z[1][1], 6.75);
  gg_ws_free(&w);
  gg_arch_free(&a);
}
END_TEST

/* The gradient of every parameter against FD of the summed loss, looped over
 * every activation x loss (_i = act * GG_LOSS__COUNT + loss); then the same
 * backward with accumulate = 1 must add exactly that gradient. */
START_TEST(test_nn_grad_fd) {
  const gg_act_t act = (gg_act_t)(_i / GG_LOSS__COUNT);
  const gg_loss_t loss = (gg_loss_t)(_i % GG_LOSS__COUNT);
  const int widths[] = {5, 4, 3, 3};
  net_t t;
  net_init(&t, widths, 4, act, loss, 7, 1000 + (uint64_t)_i);
  /* Keep every hidden pre-activation away from the relu kink, so that FD
   * is differentiable across its +-h step (a deterministic re-draw). */
  uint64_t seed = 2000;
  while (net_min_hidden_abs_z(&t) < 1e-3) net_fill(&t, seed++);

  net_loss(&t, t.dlogits);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, t.grads, 0, NULL);
  double worst = 0;
  for (size_t i = 0; i < t.arch.n_params; i++) {
    const double p0 = t.params[i];
    t.params[i] = p0 + FD_H;
    const double lp = net_loss(&t, NULL);
    t.params[i] = p0 - FD_H;
    const double lm = net_loss(&t, NULL);
    t.params[i] = p0;
    const double fd = (lp - lm) / (2 * FD_H);
    const double e = fd_err(fd, t.grads[i]);
    if (e > worst) worst = e;
    ck_assert_msg(e < FD_RTOL, "%s/%s param %zu: analytic %.12g FD %.12g", gg_act_name(act),
                  gg_loss_name(loss), i, t.grads[i], fd);
  }
  ck_assert(worst < FD_RTOL);

  /* accumulate = 1 adds onto what is there */
  double *acc = malloc(t.arch.n_params * sizeof(double));
  ck_assert_ptr_nonnull(acc);
  for (size_t i = 0; i < t.arch.n_params; i++) acc[i] = 0.5 * (double)i - 3;
  net_loss(&t, t.dlogits);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, acc, 1, NULL);
  for (size_t i = 0; i < t.arch.n_params; i++)
    ck_assert_double_eq_tol(acc[i], 0.5 * (double)i - 3 + t.grads[i], 1e-12);
  free(acc);
  net_free(&t);
}
END_TEST

/* One-layer network (no hidden layer, no dA) and a deeper one, tanh/softmax. */
START_TEST(test_nn_grad_fd_depths) {
  const int w1[] = {6, 4};
  const int w6[] = {3, 8, 2, 9, 5, 7, 4};
  const int *ws[] = {w1, w6};
  const int nw[] = {2, 7};
  for (int c = 0; c < 2; c++) {
    net_t t;
    net_init(&t, ws[c], nw[c], GG_ACT_TANH, GG_LOSS_SOFTMAX_CE, 5, 77 + (uint64_t)c);
    net_loss(&t, t.dlogits);
    gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, t.grads, 0, NULL);
    for (size_t i = 0; i < t.arch.n_params; i++) {
      const double p0 = t.params[i];
      t.params[i] = p0 + FD_H;
      const double lp = net_loss(&t, NULL);
      t.params[i] = p0 - FD_H;
      const double lm = net_loss(&t, NULL);
      t.params[i] = p0;
      const double fd = (lp - lm) / (2 * FD_H);
      ck_assert_msg(fd_err(fd, t.grads[i]) < FD_RTOL, "depth %d param %zu: %.12g vs FD %.12g",
                    nw[c] - 1, i, t.grads[i], fd);
    }
    net_free(&t);
  }
}
END_TEST

/* dlogits in ws->d0, in ws->d1 or in an outside buffer give the same
 * gradient; the outside buffer, the inputs and the parameters are left
 * untouched. */
START_TEST(test_nn_backward_dlogits_aliasing) {
  const int widths[] = {4, 6, 5, 6, 3};
  net_t t;
  net_init(&t, widths, 5, GG_ACT_GELU, GG_LOSS_SOFTMAX_CE, 8, 9);
  const size_t nk = (size_t)t.n * 3, np = t.arch.n_params;
  double *g_ext = malloc(np * sizeof(double)), *g0 = malloc(np * sizeof(double)),
         *g1 = malloc(np * sizeof(double)), *dl_copy = malloc(nk * sizeof(double)),
         *p_copy = malloc(np * sizeof(double)), *x_copy = malloc((size_t)t.n * 4 * sizeof(double));
  ck_assert(g_ext && g0 && g1 && dl_copy && p_copy && x_copy);
  memcpy(p_copy, t.params, np * sizeof(double));
  memcpy(x_copy, t.X, (size_t)t.n * 4 * sizeof(double));

  net_loss(&t, t.dlogits);
  memcpy(dl_copy, t.dlogits, nk * sizeof(double));
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, g_ext, 0, NULL);
  ck_assert_mem_eq(t.dlogits, dl_copy, nk * sizeof(double));

  net_loss(&t, t.ws.d0);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.ws.d0, g0, 0, NULL);
  net_loss(&t, t.ws.d1);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.ws.d1, g1, 0, NULL);
  for (size_t i = 0; i < np; i++) {
    ck_assert_double_eq_tol(g0[i], g_ext[i], 1e-14);
    ck_assert_double_eq_tol(g1[i], g_ext[i], 1e-14);
  }
  ck_assert_mem_eq(t.params, p_copy, np * sizeof(double));
  ck_assert_mem_eq(t.X, x_copy, (size_t)t.n * 4 * sizeof(double));
  free(g_ext);
  free(g0);
  free(g1);
  free(dl_copy);
  free(p_copy);
  free(x_copy);
  net_free(&t);
}
END_TEST

/* The workspace and the gradient are write-before-read: NaN garbage left in
 * them (a stale batch, an uninitialized buffer) must not leak into the
 * result of forward + backward with accumulate = 0. */
START_TEST(test_nn_ignores_stale_buffers) {
  const gg_act_t act = (gg_act_t)_i;
  const int widths[] = {4, 6, 5, 3};
  net_t t;
  net_init(&t, widths, 4, act, GG_LOSS_SOFTMAX_CE, 5, 31);
  const size_t np = t.arch.n_params;
  double *clean = malloc(np * sizeof(double));
  ck_assert_ptr_nonnull(clean);
  net_loss(&t, t.ws.d0);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.ws.d0, clean, 0, NULL);
  const size_t cap = (size_t)t.ws.cap;
  for (int l = 0; l < t.arch.n_layers; l++)
    for (size_t i = 0; i < cap * (size_t)widths[l + 1]; i++) {
      t.ws.z[l][i] = NAN;
      if (t.ws.a[l]) t.ws.a[l][i] = NAN;
    }
  for (size_t i = 0; i < cap * (size_t)t.arch.max_width; i++) t.ws.d0[i] = t.ws.d1[i] = NAN;
  for (size_t i = 0; i < np; i++) t.grads[i] = NAN;
  net_loss(&t, t.ws.d0);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.ws.d0, t.grads, 0, NULL);
  ck_assert_mem_eq(t.grads, clean, np * sizeof(double));
  free(clean);
  net_free(&t);
}
END_TEST

START_TEST(test_nn_backward_empty_batch) {
  const int widths[] = {3, 4, 2};
  net_t t;
  net_init(&t, widths, 3, GG_ACT_RELU, GG_LOSS_MSE, 2, 4);
  for (size_t i = 0; i < t.arch.n_params; i++) t.grads[i] = 7;
  gg_nn_backward(&t.arch, t.params, t.X, 0, &t.ws, t.dlogits, t.grads, 1, NULL);
  for (size_t i = 0; i < t.arch.n_params; i++) ck_assert_double_eq(t.grads[i], 7);
  gg_nn_backward(&t.arch, t.params, t.X, 0, &t.ws, t.dlogits, t.grads, 0, NULL);
  for (size_t i = 0; i < t.arch.n_params; i++) ck_assert_double_eq(t.grads[i], 0);
  net_free(&t);
}
END_TEST

/* Saturation: a relu net whose layer-0 pre-activations are known. widths
 * {2, 3, 2}, W0 = [[1, 0], [-1, 0], [0, -1]], b0 = 0, X rows (1, 1) and
 * (2, -1): z0 = (1, -1, -1) and (2, -2, 1): 3 units with z <= 0. */
START_TEST(test_nn_saturation_counts) {
  const gg_loss_t loss = (gg_loss_t)_i;
  const int widths[] = {2, 3, 2};
  net_t t;
  net_init(&t, widths, 3, GG_ACT_RELU, loss, 2, 3);
  const double W0b0[] = {1, 0, -1, 0, 0, -1, 0, 0, 0};
  memcpy(t.params, W0b0, sizeof W0b0);
  /* W1 = 0, b1 = (20, -0.5): logits (20, -0.5) for both samples. */
  for (int i = 9; i < 15; i++) t.params[i] = 0;
  t.params[15] = 20;
  t.params[16] = -0.5;
  const double X[] = {1, 1, 2, -1};
  memcpy(t.X, X, sizeof X);
  t.labels[0] = 0;
  t.labels[1] = 1;
  double sat[2] = {1, 100}; /* counts are added */
  net_loss(&t, t.dlogits);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, t.grads, 0, sat);
  ck_assert_double_eq(sat[0], 1 + 3);
  /* output: bce sigmoid'(20) = 2e-9 (2 saturated), sigmoid'(-0.5) = 0.235;
   * softmax_ce p = (1 - 1.3e-9, 1.3e-9) both saturated, per sample: 4;
   * mse never. */
  const double expect_out[GG_LOSS__COUNT] = {[GG_LOSS_MSE] = 0, [GG_LOSS_BCE] = 2,
                                             [GG_LOSS_SOFTMAX_CE] = 4};
  ck_assert_double_eq(sat[1], 100 + expect_out[loss]);
  /* sat == NULL: the gradient is the same */
  double *g2 = malloc(t.arch.n_params * sizeof(double));
  ck_assert_ptr_nonnull(g2);
  net_loss(&t, t.dlogits);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, g2, 0, NULL);
  ck_assert_mem_eq(g2, t.grads, t.arch.n_params * sizeof(double));
  free(g2);
  net_free(&t);
}
END_TEST

START_TEST(test_nn_tanh_deep_saturation) {
  /* tanh with huge weights saturates every hidden unit: counts equal
   * n * width per hidden layer. */
  const int widths[] = {4, 8, 8, 2};
  net_t t;
  net_init(&t, widths, 4, GG_ACT_TANH, GG_LOSS_MSE, 5, 8);
  for (size_t i = 0; i < t.arch.n_params; i++) t.params[i] *= 1e4;
  double sat[3] = {0, 0, 0};
  net_loss(&t, t.dlogits);
  gg_nn_backward(&t.arch, t.params, t.X, t.n, &t.ws, t.dlogits, t.grads, 0, sat);
  ck_assert_double_eq(sat[0], 40);
  ck_assert_double_eq(sat[1], 40);
  ck_assert_double_eq(sat[2], 0);
  net_free(&t);
}
END_TEST

/* ---- runner ------------------------------------------------------------- */

static Suite *nn_suite(void) {
  Suite *s = suite_create("nn");
  TCase *tc = tcase_create("arch");
  tcase_add_test(tc, test_arch_offsets);
  tcase_add_test(tc, test_arch_copies_widths);
  tcase_add_test(tc, test_arch_rejects_bad_shapes);
  tcase_add_test(tc, test_free_zeroed_is_safe);
  tcase_add_test(tc, test_ws_layout);
  tcase_add_test(tc, test_act_names_round_trip);
  tcase_add_test(tc, test_loss_names_round_trip);
  suite_add_tcase(s, tc);

  tc = tcase_create("activations");
  tcase_add_test(tc, test_act_forward_values);
  tcase_add_loop_test(tc, test_act_backward_fd, 0, GG_ACT__COUNT);
  tcase_add_loop_test(tc, test_act_backward_in_place, 0, GG_ACT__COUNT);
  tcase_add_loop_test(tc, test_act_long_vectors, 0, GG_ACT__COUNT);
  tcase_add_test(tc, test_relu_derivative_at_zero);
  tcase_add_test(tc, test_act_nan_propagates);
  tcase_add_test(tc, test_act_saturation_counts);
  suite_add_tcase(s, tc);

  tc = tcase_create("losses");
  tcase_add_loop_test(tc, test_loss_fd, 0, GG_LOSS__COUNT);
  tcase_add_test(tc, test_loss_mse_values);
  tcase_add_test(tc, test_loss_bce_values);
  tcase_add_test(tc, test_loss_softmax_values);
  tcase_add_loop_test(tc, test_loss_sums_over_samples, 0, GG_LOSS__COUNT);
  tcase_add_test(tc, test_loss_large_logits);
  tcase_add_test(tc, test_loss_accuracy_counts);
  tcase_add_test(tc, test_loss_bad_label_is_nan);
  suite_add_tcase(s, tc);

  tc = tcase_create("network");
  tcase_add_loop_test(tc, test_nn_forward_matches_reference, 0, GG_ACT__COUNT);
  tcase_add_test(tc, test_nn_forward_hand_values);
  tcase_add_loop_test(tc, test_nn_grad_fd, 0, GG_ACT__COUNT * GG_LOSS__COUNT);
  tcase_add_test(tc, test_nn_grad_fd_depths);
  tcase_add_test(tc, test_nn_backward_dlogits_aliasing);
  tcase_add_loop_test(tc, test_nn_ignores_stale_buffers, 0, GG_ACT__COUNT);
  tcase_add_test(tc, test_nn_backward_empty_batch);
  tcase_add_loop_test(tc, test_nn_saturation_counts, 0, GG_LOSS__COUNT);
  tcase_add_test(tc, test_nn_tanh_deep_saturation);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return gg_check_run(nn_suite());
}
