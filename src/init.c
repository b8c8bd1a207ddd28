/* init.c — weight initializers with torch.nn.init's conventions (see init.h).
 *
 * Each layer l fills its weight from its own stream GG_STREAM_INIT(l) of the
 * seed, in row-major order, so the buffer depends only on the seed and the
 * architecture. Values are computed in double and stored as float. Biases
 * are zero for every initializer.
 */
#include "gradguard/init.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"
#include "gradguard/rng.h"

/* What the ARG of a kind means; NULL = the kind takes no argument. */
static const struct {
  const char *name;
  const char *arg;     /* "a standard deviation", ... */
  const char *example; /* a valid spec to show in the error message */
  int arg_signed;      /* 1 if negative arguments make sense */
} gg__init_kinds[GG_INIT__COUNT] = {
    [GG_INIT_DEFAULT] = {"default", NULL, NULL, 0},
    [GG_INIT_KAIMING_NORMAL] = {"kaiming_normal", NULL, NULL, 0},
    [GG_INIT_KAIMING_UNIFORM] = {"kaiming_uniform", NULL, NULL, 0},
    [GG_INIT_XAVIER_NORMAL] = {"xavier_normal", NULL, NULL, 0},
    [GG_INIT_XAVIER_UNIFORM] = {"xavier_uniform", NULL, NULL, 0},
    [GG_INIT_LECUN_NORMAL] = {"lecun_normal", NULL, NULL, 0},
    [GG_INIT_ORTHOGONAL] = {"orthogonal", NULL, NULL, 0},
    [GG_INIT_NORMAL] = {"normal", "a standard deviation", "normal:0.02", 0},
    [GG_INIT_UNIFORM] = {"uniform", "a bound A for U(-A, A)", "uniform:0.05", 0},
    [GG_INIT_TRUNC_NORMAL] = {"trunc_normal", "a standard deviation", "trunc_normal:0.02", 0},
    [GG_INIT_CONSTANT] = {"constant", "a value", "constant:0.1", 1},
    [GG_INIT_ZEROS] = {"zeros", NULL, NULL, 0},
};

/* The names a user may type ("default" is the config's unset value, not a
 * spelling of --init). */
#define GG__INIT_CHOICES                                                                  \
  "kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform, lecun_normal, "       \
  "orthogonal, normal:STD, uniform:A, trunc_normal:STD, constant:V, zeros"

int gg_init_parse(const char *spec, gg_init_t *out) {
  if (!spec || !*spec)
    return gg_err_set(GG_EUSAGE, "--init: empty value (expected one of " GG__INIT_CHOICES ")");
  const char *colon = strchr(spec, ':');
  size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
  int kind = -1;
  for (int k = GG_INIT_DEFAULT + 1; k < GG_INIT__COUNT; k++) {
    const char *n = gg__init_kinds[k].name;
    if (strlen(n) == name_len && strncmp(n, spec, name_len) == 0) kind = k;
  }
  if (kind < 0)
    return gg_err_set(GG_EUSAGE,
                      "--init: unknown initializer \"%.*s\" (expected one of " GG__INIT_CHOICES ")",
                      (int)name_len, spec);
  const char *name = gg__init_kinds[kind].name;
  const char *what = gg__init_kinds[kind].arg;
  if (!what) {
    if (colon) return gg_err_set(GG_EUSAGE, "--init: %s takes no argument (got \"%s\")", name, spec);
    out->kind = (gg_init_kind_t)kind;
    out->arg = 0.0;
    return 0;
  }
  const char *example = gg__init_kinds[kind].example;
  if (!colon || !colon[1])
    return gg_err_set(GG_EUSAGE, "--init: %s needs %s, e.g. %s", name, what, example);
  char *end = NULL;
  double v = strtod(colon + 1, &end);
  if (end == colon + 1 || *end != '\0' || !isfinite(v)) /* overflow gives inf */
    return gg_err_set(GG_EUSAGE, "--init: \"%s\" is not a finite number in \"%s\" (%s needs %s, e.g. %s)",
                      colon + 1, spec, name, what, example);
  if (!gg__init_kinds[kind].arg_signed && v < 0)
    return gg_err_set(GG_EUSAGE, "--init: %s needs %s >= 0 (got \"%s\")", name, what, spec);
  out->kind = (gg_init_kind_t)kind;
  out->arg = v;
  return 0;
}

/* Shortest "%.Ng" that reads back as exactly v. */
static void format_double(char *buf, size_t len, double v) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}

void gg_init_format(const gg_init_t *init, char *buf, size_t len) {
  if (!buf || len == 0) return;
  int k = (int)init->kind;
  if (k < 0 || k >= GG_INIT__COUNT) {
    snprintf(buf, len, "unknown");
    return;
  }
  if (!gg__init_kinds[k].arg) {
    snprintf(buf, len, "%s", gg__init_kinds[k].name);
    return;
  }
  char num[40];
  format_double(num, sizeof num, init->arg);
  snprintf(buf, len, "%s:%s", gg__init_kinds[k].name, num);
}

gg_init_t gg_init_resolve(const gg_init_t *init, gg_act_t act) {
  gg_init_t r = *init;
  if (r.kind == GG_INIT_DEFAULT) {
    int relu_like = act == GG_ACT_RELU || act == GG_ACT_LEAKY_RELU || act == GG_ACT_GELU;
    r.kind = relu_like ? GG_INIT_KAIMING_UNIFORM : GG_INIT_XAVIER_UNIFORM;
    r.arg = 0.0;
  }
  return r;
}

/* torch.nn.init.calculate_gain; gelu is not in torch's table and takes
 * relu's sqrt(2), as is usual. */
double gg_init_gain(gg_act_t act) {
  switch (act) {
  case GG_ACT_RELU:
  case GG_ACT_GELU: return sqrt(2.0);
  case GG_ACT_LEAKY_RELU: return sqrt(2.0 / (1.0 + 0.01 * 0.01));
  case GG_ACT_TANH: return 5.0 / 3.0;
  case GG_ACT_SIGMOID:
  case GG_ACT_IDENTITY:
  default: return 1.0;
  }
}

/* Inverse of the standard normal CDF: Acklam's rational approximation
 * (relative error 1.15e-9) and one Halley step on erfc, which brings it to
 * about double precision. p in (0, 1). */
static double normal_ppf(double p) {
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                              1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                              -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00};
  const double p_low = 0.02425;
  double x;
  if (p < p_low) {
    double q = sqrt(-2.0 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (p <= 1.0 - p_low) {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  } else {
    double q = sqrt(-2.0 * log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  /* Halley: e = Phi(x) - p, u = e / phi(x), x -= u / (1 + x u / 2). */
  double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
  double u = e * 2.5066282746310002 /* sqrt(2 pi) */ * exp(0.5 * x * x);
  return x - u / (1.0 + 0.5 * x * u);
}

/* W (rows, cols) row-major = gain * Q as torch.nn.init.orthogonal_: Q from
 * the QR of an (m, k) = (max, min) standard-normal matrix A = QR, with each
 * column j of Q multiplied by sign(R_jj) (which makes the result Haar
 * distributed), transposed when rows < cols. Then W W^T = gain^2 I (rows <=
 * cols) or W^T W = gain^2 I (rows >= cols). */
static int init_orthogonal(gg_rng_t *rng, int rows, int cols, double gain, float *w) {
  const int m = rows > cols ? rows : cols;
  const int k = rows > cols ? cols : rows;
  int rc = 0;
  double *a = malloc((size_t)m * (size_t)k * sizeof *a); /* (m, k) column-major: A, then R and Q */
  double *tau = malloc((size_t)k * sizeof *tau);         /* (k) Householder factors */
  double *sign = malloc((size_t)k * sizeof *sign);       /* (k) sign(R_jj) */
  if (!a || !tau || !sign) {
    rc = gg_err_set(GG_ENOMEM, "init: out of memory for the orthogonal initialization of a %d x %d weight",
                    rows, cols);
    goto out;
  }
  for (size_t i = 0; i < (size_t)m * (size_t)k; i++) a[i] = gg_rng_normal(rng);
  lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, k, a, m, tau);
  if (info != 0) {
    rc = gg_err_set(GG_EINTERNAL, "init: LAPACKE_dgeqrf failed (info %d) on a %d x %d matrix",
                    (int)info, m, k);
    goto out;
  }
  /* R sits on and above the diagonal until dorgqr overwrites it. torch
   * takes sign(0) = 0; a zero diagonal has probability 0, and +1 keeps Q
   * orthogonal in that case. */
  for (int j = 0; j < k; j++) sign[j] = a[(size_t)j * m + j] < 0 ? -1.0 : 1.0;
  info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, k, k, a, m, tau);
  if (info != 0) {
    rc = gg_err_set(GG_EINTERNAL, "init: LAPACKE_dorgqr failed (info %d) on a %d x %d matrix",
                    (int)info, m, k);
    goto out;
  }
  /* Q(p, q) = a[q m + p] sign[q];  W(i, j) = Q(i, j) if rows >= cols, else Q(j, i). */
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) {
      double q = rows >= cols ? a[(size_t)j * m + i] * sign[j] : a[(size_t)i * m + j] * sign[i];
      w[(size_t)i * cols + j] = (float)(gain * q);
    }
out:
  free(sign);
  free(tau);
  free(a);
  return rc;
}

/* w[i] = std z, z ~ N(0, 1) (Box-Muller). */
static void fill_normal(gg_rng_t *rng, double std, float *w, size_t n) {
  for (size_t i = 0; i < n; i++) w[i] = (float)(std * gg_rng_normal(rng));
}

/* w[i] ~ U(-b, b) as b (2u - 1), u in [0, 1). */
static void fill_uniform(gg_rng_t *rng, double b, float *w, size_t n) {
  for (size_t i = 0; i < n; i++) w[i] = (float)(b * (2.0 * gg_rng_uniform(rng) - 1.0));
}

/* w[i] = std x, x ~ N(0, 1) restricted to [-2, 2], by the inverse CDF:
 * x = Phi^-1(Phi(-2) + u (Phi(2) - Phi(-2))), clamped to [-2, 2] against the
 * last rounding (as torch's trunc_normal_ does). */
static void fill_trunc_normal(gg_rng_t *rng, double std, float *w, size_t n) {
  const double lo = 0.5 * erfc(sqrt(2.0)), width = 1.0 - 2.0 * lo; /* Phi(-2), Phi(2) - Phi(-2) */
  for (size_t i = 0; i < n; i++) {
    double x = normal_ppf(lo + width * gg_rng_uniform(rng));
    x = x < -2.0 ? -2.0 : (x > 2.0 ? 2.0 : x);
    w[i] = (float)(std * x);
  }
}

/* Fill the (rows, cols) weight w of one layer with a resolved kind. */
static int init_weight(const gg_init_t *init, double gain, gg_rng_t *rng, int rows, int cols, float *w) {
  const size_t n = (size_t)rows * (size_t)cols;
  const double fan_in = cols, fan_out = rows;
  switch (init->kind) {
  case GG_INIT_KAIMING_NORMAL: fill_normal(rng, gain / sqrt(fan_in), w, n); return 0;
  case GG_INIT_KAIMING_UNIFORM: fill_uniform(rng, gain * sqrt(3.0 / fan_in), w, n); return 0;
  case GG_INIT_XAVIER_NORMAL: fill_normal(rng, gain * sqrt(2.0 / (fan_in + fan_out)), w, n); return 0;
  case GG_INIT_XAVIER_UNIFORM: fill_uniform(rng, gain * sqrt(6.0 / (fan_in + fan_out)), w, n); return 0;
  case GG_INIT_LECUN_NORMAL: fill_normal(rng, 1.0 / sqrt(fan_in), w, n); return 0;
  case GG_INIT_ORTHOGONAL: return init_orthogonal(rng, rows, cols, gain, w);
  case GG_INIT_NORMAL: fill_normal(rng, init->arg, w, n); return 0;
  case GG_INIT_UNIFORM: fill_uniform(rng, init->arg, w, n); return 0;
  case GG_INIT_TRUNC_NORMAL: fill_trunc_normal(rng, init->arg, w, n); return 0;
  case GG_INIT_CONSTANT:
    for (size_t i = 0; i < n; i++) w[i] = (float)init->arg;
    return 0;
  case GG_INIT_ZEROS: memset(w, 0, n * sizeof *w); return 0;
  default: return gg_err_set(GG_EINTERNAL, "init: unknown initializer kind %d", (int)init->kind);
  }
}

int gg_init_params(const gg_arch_t *arch, const gg_init_t *init, uint64_t seed, float *params) {
  const gg_init_t resolved = gg_init_resolve(init, arch->act);
  const double gain = gg_init_gain(arch->act);
  for (int l = 0; l < arch->n_layers; l++) {
    const int cols = arch->widths[l], rows = arch->widths[l + 1];
    float *w = params + arch->off[l];
    gg_rng_t rng;
    gg_rng_seed(&rng, seed, GG_STREAM_INIT(l));
    int rc = init_weight(&resolved, gain, &rng, rows, cols, w);
    if (rc < 0) return rc;
    memset(w + (size_t)rows * (size_t)cols, 0, (size_t)rows * sizeof *w);
  }
  return 0;
}
