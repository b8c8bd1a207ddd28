/* nn.c — the numeric core: shapes, workspaces, activations, losses and the
 * forward/backward pass of an MLP over one flat parameter buffer (nn.h).
 *
 * Compiled twice from this one source: in float for libgradguard and with
 * -DGG_REAL_DOUBLE in double for the finite-difference tests. Every math
 * function and the GEMM go through the GG__* macros below, so the double
 * build computes in double throughout and the float build in float (loss
 * sums are accumulated in double in both).
 *
 * Speed: the dense layers are one cblas GEMM each; everything else is a
 * pass over a (n, width) block. Those passes are written with GG__VLOOP
 * because GCC >= 12 at -O2 only vectorizes loops whose trip count is known
 * to be a multiple of the vector length ("very cheap" cost model): the macro
 * runs the body over blocks of GG__VBLK elements (a fixed-count inner loop
 * that vectorizes) and then over the scalar tail. Nothing here allocates
 * except gg_arch_init and gg_ws_init.
 */
#include "gradguard/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"

#ifdef GG_REAL_DOUBLE
#define GG__GEMM cblas_dgemm
#define GG__EXP exp
#define GG__LOG1P log1p
#define GG__TANH tanh
#define GG__ERFC erfc
#define GG__FABS fabs
#else
#define GG__GEMM cblas_sgemm
#define GG__EXP expf
#define GG__LOG1P log1pf
#define GG__TANH tanhf
#define GG__ERFC erfcf
#define GG__FABS fabsf
#endif

/* 1/sqrt(2) and 1/sqrt(2 pi); M_SQRT1_2 is not in ISO C. */
#define GG__RSQRT2 0.70710678118654752440
#define GG__RSQRT2PI 0.39894228040143267794

/* Elements per vectorized block (a multiple of every SIMD width in use). */
#define GG__VBLK 16

/* for (size_t I = 0; I < N; I++) { BODY } in a form GCC -O2 vectorizes:
 * fixed-size blocks, then the tail. BODY appears twice, so it must not
 * declare labels; GG__VLOOPs must not be nested. */
#define GG__VLOOP(I, N, ...)                                                  \
  do {                                                                        \
    size_t gg__vb_ = 0;                                                       \
    const size_t gg__vn_ = (N);                                               \
    for (; gg__vb_ + GG__VBLK <= gg__vn_; gg__vb_ += GG__VBLK) {              \
      for (size_t gg__vk_ = 0; gg__vk_ < GG__VBLK; gg__vk_++) {               \
        const size_t I = gg__vb_ + gg__vk_;                                   \
        __VA_ARGS__                                                           \
      }                                                                       \
    }                                                                         \
    for (size_t I = gg__vb_; I < gg__vn_; I++) {                              \
      __VA_ARGS__                                                             \
    }                                                                         \
  } while (0)

/* ---- activations -------------------------------------------------------
 * One list drives the names, the forward kernels and the backward kernels.
 * For each NAME: act_f_NAME(z) is f(z) and act_d_NAME(z, a) is f'(z) given
 * z and a = f(z), using whichever is cheaper. The comparisons are written
 * so that a NaN z gives a NaN activation (z < 0 is false for NaN), as in
 * PyTorch: this program exists to see NaNs, not to hide them. */
#define GG__ACTS(X)                                                           \
  X(GG_ACT_RELU, relu)                                                        \
  X(GG_ACT_LEAKY_RELU, leaky_relu)                                            \
  X(GG_ACT_TANH, tanh)                                                        \
  X(GG_ACT_SIGMOID, sigmoid)                                                  \
  X(GG_ACT_GELU, gelu)                                                        \
  X(GG_ACT_IDENTITY, identity)

/* relu: a = max(z, 0); a' = [z > 0], so relu'(0) = 0 as in PyTorch. */
static inline gg_real act_f_relu(gg_real z) { return z < 0 ? (gg_real)0 : z; }
static inline gg_real act_d_relu(gg_real z, gg_real a) { return z > 0 ? (gg_real)1 : (gg_real)0; }

/* leaky_relu: a = z > 0 ? z : 0.01 z; a' = z > 0 ? 1 : 0.01. */
static inline gg_real act_f_leaky_relu(gg_real z) { return z < 0 ? (gg_real)0.01 * z : z; }
static inline gg_real act_d_leaky_relu(gg_real z, gg_real a) {
  return z > 0 ? (gg_real)1 : (gg_real)0.01;
}

/* tanh: a = tanh z; a' = 1 - a^2.
 * The float build uses a branch-free rational minimax approximation
 * (odd degree-13 numerator over even degree-6 denominator on z clamped to
 * +-7.9053, where tanh rounds to +-1 in float) that the compiler
 * vectorizes; libm's tanhf is a scalar call and was a fifth of the step of
 * a deep tanh network. Its relative error against double tanh is below
 * 4e-7 (tested in test_nn_float). The double build keeps libm for the FD
 * checks. */
#ifdef GG_REAL_DOUBLE
static inline gg_real act_f_tanh(gg_real z) { return GG__TANH(z); }
#else
static inline float act_f_tanh(float z) {
  const float lim = 7.90531110763549805f;
  float x = z > lim ? lim : z < -lim ? -lim : z;
  float x2 = x * x;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  /* tiny |z|: tanh z = z to float precision (and keeps -0 and subnormals) */
  return fabsf(z) < 4e-4f ? z : p / q;
}
#endif
static inline gg_real act_d_tanh(gg_real z, gg_real a) { return 1 - a * a; }

/* sigmoid: a = 1 / (1 + e^-z) (e^-z overflows to inf for z << 0, giving
 * exactly 0, never NaN); a' = a (1 - a). */
static inline gg_real act_f_sigmoid(gg_real z) { return 1 / (1 + GG__EXP(-z)); }
static inline gg_real act_d_sigmoid(gg_real z, gg_real a) { return a * (1 - a); }

/* gelu, exact form: a = z Phi(z), a' = Phi(z) + z phi(z), with
 * Phi(z) = erfc(-z/sqrt2)/2 (erfc keeps full relative precision for
 * z << 0, where 1 + erf(z/sqrt2) cancels) and phi(z) = e^(-z^2/2)/sqrt(2pi). */
static inline gg_real act_f_gelu(gg_real z) {
  return (gg_real)0.5 * z * GG__ERFC(-z * (gg_real)GG__RSQRT2);
}
static inline gg_real act_d_gelu(gg_real z, gg_real a) {
  const gg_real cdf = (gg_real)0.5 * GG__ERFC(-z * (gg_real)GG__RSQRT2);
  const gg_real pdf = (gg_real)GG__RSQRT2PI * GG__EXP((gg_real)-0.5 * z * z);
  return cdf + z * pdf;
}

/* identity: a = z; a' = 1. */
static inline gg_real act_f_identity(gg_real z) { return z; }
static inline gg_real act_d_identity(gg_real z, gg_real a) { return 1; }

static const char *const act_names[GG_ACT__COUNT] = {
#define GG__ACT_NAME(E, name) [E] = #name,
    GG__ACTS(GG__ACT_NAME)
#undef GG__ACT_NAME
};

static const char *const loss_names[GG_LOSS__COUNT] = {
    [GG_LOSS_MSE] = "mse", [GG_LOSS_BCE] = "bce", [GG_LOSS_SOFTMAX_CE] = "softmax_ce"};

const char *gg_act_name(gg_act_t act) {
  return (unsigned)act < GG_ACT__COUNT ? act_names[act] : "unknown";
}

int gg_act_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < GG_ACT__COUNT; i++)
    if (strcmp(name, act_names[i]) == 0) return i;
  return -1;
}

const char *gg_loss_name(gg_loss_t loss) {
  return (unsigned)loss < GG_LOSS__COUNT ? loss_names[loss] : "unknown";
}

int gg_loss_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < GG_LOSS__COUNT; i++)
    if (strcmp(name, loss_names[i]) == 0) return i;
  return -1;
}

/* ---- shapes and workspaces ---------------------------------------------- */

/* size[l] = out_l in_l + out_l (W_l then b_l), off[l] = sum_{j<l} size[j],
 * n_params = sum_l size[l]. */
int gg_arch_init(gg_arch_t *arch, const int *widths, int n_widths, gg_act_t act,
                 gg_loss_t loss) {
  memset(arch, 0, sizeof *arch);
  if (!widths || n_widths < 2)
    return gg_err_set(GG_EUSAGE, "a network needs at least 2 widths (input and output), got %d",
                      n_widths);
  for (int i = 0; i < n_widths; i++)
    if (widths[i] <= 0)
      return gg_err_set(GG_EUSAGE, "layer width %d is %d; widths must be positive", i,
                        widths[i]);
  if ((unsigned)act >= GG_ACT__COUNT)
    return gg_err_set(GG_EUSAGE, "unknown activation %d", (int)act);
  if ((unsigned)loss >= GG_LOSS__COUNT)
    return gg_err_set(GG_EUSAGE, "unknown loss %d", (int)loss);

  const int L = n_widths - 1;
  arch->widths = malloc((size_t)n_widths * sizeof *arch->widths);
  arch->off = malloc((size_t)L * sizeof *arch->off);
  arch->size = malloc((size_t)L * sizeof *arch->size);
  if (!arch->widths || !arch->off || !arch->size) {
    gg_arch_free(arch);
    return gg_err_set(GG_ENOMEM, "out of memory for a %d-layer architecture", L);
  }
  memcpy(arch->widths, widths, (size_t)n_widths * sizeof *widths);
  arch->n_layers = L;
  arch->act = act;
  arch->loss = loss;
  size_t off = 0;
  int max_width = 0;
  for (int l = 0; l < L; l++) {
    arch->off[l] = off;
    arch->size[l] = (size_t)widths[l + 1] * (size_t)widths[l] + (size_t)widths[l + 1];
    off += arch->size[l];
  }
  for (int i = 0; i < n_widths; i++)
    if (widths[i] > max_width) max_width = widths[i];
  arch->n_params = off;
  arch->max_width = max_width;
  return 0;
}

void gg_arch_free(gg_arch_t *arch) {
  if (!arch) return;
  free(arch->widths);
  free(arch->off);
  free(arch->size);
  memset(arch, 0, sizeof *arch);
}

/* Views start on 64-byte boundaries (cache line, AVX-512 vector). */
#define GG__ALIGN_BYTES 64
#define GG__ALIGN_REALS (GG__ALIGN_BYTES / sizeof(gg_real))

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* One aligned allocation holds every view and the view pointers, so a
 * workspace costs one malloc and one free. */
int gg_ws_init(gg_ws_t *ws, const gg_arch_t *arch, int cap) {
  memset(ws, 0, sizeof *ws);
  if (!arch || arch->n_layers < 1 || !arch->widths)
    return gg_err_set(GG_EUSAGE, "workspace for an uninitialized architecture");
  if (cap <= 0) return gg_err_set(GG_EUSAGE, "workspace capacity %d must be positive", cap);

  const int L = arch->n_layers;
  const size_t c = (size_t)cap;
  /* Layout of the one allocation, in reals: z[0..L-1], a[0..L-2], d0, d1,
   * each rounded up to the alignment; then the 2L view pointers. */
  size_t n_reals = 0;
  for (int l = 0; l < L; l++) {
    const size_t len = round_up(c * (size_t)arch->widths[l + 1], GG__ALIGN_REALS);
    n_reals += l < L - 1 ? 2 * len : len;
  }
  const size_t d_len = round_up(c * (size_t)arch->max_width, GG__ALIGN_REALS);
  n_reals += 2 * d_len;
  const size_t bytes =
      round_up(n_reals * sizeof(gg_real) + 2 * (size_t)L * sizeof(gg_real *), GG__ALIGN_BYTES);

  gg_real *buf = aligned_alloc(GG__ALIGN_BYTES, bytes);
  if (!buf)
    return gg_err_set(GG_ENOMEM, "out of memory for a %zu-byte workspace (batch %d)", bytes,
                      cap);
  ws->buf = buf;
  ws->cap = cap;
  ws->n_layers = L;
  ws->z = (gg_real **)(void *)((char *)buf + n_reals * sizeof(gg_real));
  ws->a = ws->z + L;
  gg_real *p = buf;
  for (int l = 0; l < L; l++) {
    const size_t len = round_up(c * (size_t)arch->widths[l + 1], GG__ALIGN_REALS);
    ws->z[l] = p;
    p += len;
    /* The output layer's activation lives in the loss, so a[L-1] has no
     * storage; NULL makes a misuse fail loudly. */
    ws->a[l] = NULL;
    if (l < L - 1) {
      ws->a[l] = p;
      p += len;
    }
  }
  ws->d0 = p;
  ws->d1 = p + d_len;
  return 0;
}

void gg_ws_free(gg_ws_t *ws) {
  if (!ws) return;
  free(ws->buf);
  memset(ws, 0, sizeof *ws);
}

/* ---- elementwise activation kernels ------------------------------------- */

/* a[i] = f(z[i]) for distinct z and a (restrict parameters, so that GCC
 * vectorizes without a runtime overlap check). */
static void act_forward_out(gg_act_t act, const gg_real *restrict z, gg_real *restrict a,
                            size_t n) {
  switch (act) {
#define GG__ACT_FWD(E, name)                                                  \
  case E: GG__VLOOP(i, n, a[i] = act_f_##name(z[i]);); break;
    GG__ACTS(GG__ACT_FWD)
#undef GG__ACT_FWD
  default: break;
  }
}

void gg_act_forward(gg_act_t act, const gg_real *z, gg_real *a, size_t n) {
  if (act == GG_ACT_IDENTITY) {
    if (a != z) memcpy(a, z, n * sizeof *a);
    return;
  }
  act_forward_out(act, z, a, n);
}

/* d[i] *= f'(z[i]) in place; with count, also the number of i with
 * |f'(z[i])| < GG_SAT_THRESHOLD. The absolute value only matters for gelu,
 * whose derivative dips to -0.13 near z = -1.5: a gradient of that size is
 * alive, not saturated. */
static size_t act_backward_inplace(gg_act_t act, const gg_real *restrict z,
                                   const gg_real *restrict a, gg_real *restrict d, size_t n,
                                   int count) {
  const gg_real thr = (gg_real)GG_SAT_THRESHOLD;
  size_t n_sat = 0;
  switch (act) {
#define GG__ACT_BWD(E, name)                                                  \
  case E:                                                                     \
    if (count) {                                                              \
      GG__VLOOP(i, n, const gg_real g = act_d_##name(z[i], a[i]); d[i] *= g;  \
                n_sat += (size_t)(GG__FABS(g) < thr););                       \
    } else {                                                                  \
      GG__VLOOP(i, n, d[i] *= act_d_##name(z[i], a[i]););                     \
    }                                                                         \
    break;
    GG__ACTS(GG__ACT_BWD)
#undef GG__ACT_BWD
  default: break;
  }
  return n_sat;
}

size_t gg_act_backward(gg_act_t act, const gg_real *z, const gg_real *a, const gg_real *da,
                       gg_real *dz, size_t n, int count_sat) {
  if (dz != da) memcpy(dz, da, n * sizeof *dz);
  return act_backward_inplace(act, z, a, dz, n, count_sat);
}

/* ---- losses ------------------------------------------------------------- */

/* Sum over the n samples of the per-sample loss (formulas in nn.h and per
 * case below), accumulated in double; dz and n_correct as documented. */
double gg_loss_eval(gg_loss_t loss, const gg_real *z, int n, int K, const gg_real *targets,
                    const int32_t *labels, gg_real *dz, long *n_correct) {
  if (n <= 0 || K <= 0) return 0;
  const size_t nk = (size_t)n * (size_t)K;
  double sum = 0;
  long correct = 0;
  switch (loss) {
  case GG_LOSS_MSE: {
    /* sum_i l_i = sum_{i,k} (z - t)^2 / K;  dl/dz = 2 (z - t) / K */
    const gg_real g = (gg_real)2 / (gg_real)K;
    for (size_t i = 0; i < nk; i++) {
      const gg_real diff = z[i] - targets[i];
      sum += (double)diff * (double)diff;
      if (dz) dz[i] = g * diff;
    }
    sum /= K;
    break;
  }
  case GG_LOSS_BCE: {
    /* l = [max(z,0) - z t + log1p(e^-|z|)] / K, finite for any finite z;
     * dl/dz = (sigmoid(z) - t) / K with sigmoid from the same e = e^-|z|:
     * 1/(1+e) for z >= 0, e/(1+e) for z < 0, so neither side overflows. */
    const gg_real inv_k = (gg_real)1 / (gg_real)K;
    for (size_t i = 0; i < nk; i++) {
      const gg_real zi = z[i], ti = targets[i];
      const gg_real e = GG__EXP(-GG__FABS(zi));
      sum += (zi > 0 ? (double)zi : 0.0) - (double)zi * (double)ti + (double)GG__LOG1P(e);
      if (dz) {
        const gg_real s = zi >= 0 ? 1 / (1 + e) : e / (1 + e);
        dz[i] = (s - ti) * inv_k;
      }
      correct += (zi > 0) == (ti > (gg_real)0.5);
    }
    sum /= K;
    break;
  }
  case GG_LOSS_SOFTMAX_CE: {
    /* With m = max_k z_k and s = sum_k e^(z_k - m):
     * l = logsumexp(z) - z_y = log s - (z_y - m)  (z_y - m is exact, so no
     * cancellation between two large numbers); dl/dz_k = e^(z_k-m)/s - [k=y]. */
    for (int i = 0; i < n; i++) {
      const gg_real *zr = z + (size_t)i * K;
      gg_real *dr = dz ? dz + (size_t)i * K : NULL;
      const int32_t y = labels[i];
      if (y < 0 || y >= K) {
        /* The data module validates labels; should one slip through, poison
         * the step visibly (the non-finite check catches it) instead of
         * reading out of bounds. */
        sum += NAN;
        if (dr)
          for (int k = 0; k < K; k++) dr[k] = (gg_real)NAN;
        continue;
      }
      int arg = 0;
      gg_real m = zr[0];
      for (int k = 1; k < K; k++)
        if (zr[k] > m) {
          m = zr[k];
          arg = k;
        }
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)GG__EXP(zr[k] - m);
      sum += log(s) - (double)(zr[y] - m);
      if (dr) {
        const double inv_s = 1 / s;
        for (int k = 0; k < K; k++) dr[k] = (gg_real)((double)GG__EXP(zr[k] - m) * inv_s);
        dr[y] -= 1;
      }
      correct += arg == y;
    }
    break;
  }
  default: return NAN;
  }
  if (n_correct) *n_correct += correct;
  return sum;
}

/* Saturated (sample, unit) pairs of the output nonlinearity that the loss
 * implies: bce: sigmoid'(z) = e/(1+e)^2 with e = e^-|z| (stable form of
 * s(1-s)); softmax_ce: p_k (1 - p_k) per unit; mse: none. */
static size_t output_saturation(gg_loss_t loss, const gg_real *z, int n, int K) {
  const gg_real thr = (gg_real)GG_SAT_THRESHOLD;
  size_t n_sat = 0;
  if (loss == GG_LOSS_BCE) {
    const size_t nk = (size_t)n * (size_t)K;
    for (size_t i = 0; i < nk; i++) {
      const gg_real e = GG__EXP(-GG__FABS(z[i]));
      n_sat += (size_t)(e / ((1 + e) * (1 + e)) < thr);
    }
  } else if (loss == GG_LOSS_SOFTMAX_CE) {
    for (int i = 0; i < n; i++) {
      const gg_real *zr = z + (size_t)i * K;
      gg_real m = zr[0];
      for (int k = 1; k < K; k++)
        if (zr[k] > m) m = zr[k];
      double s = 0;
      for (int k = 0; k < K; k++) s += (double)GG__EXP(zr[k] - m);
      for (int k = 0; k < K; k++) {
        const double p = (double)GG__EXP(zr[k] - m) / s;
        n_sat += (size_t)(p * (1 - p) < (double)thr);
      }
    }
  }
  return n_sat;
}

/* ---- dense layers ------------------------------------------------------- */

/* One pass over a layer's GEMM output Z (n, w): z += b per row and, if a is
 * not NULL, a = f(z). Fusing the two saves a sweep over the block. */
static void bias_act(gg_act_t act, gg_real *restrict z, const gg_real *restrict b,
                     gg_real *restrict a, int n, int w) {
  const size_t ws = (size_t)w;
  if (!a) {
    for (int r = 0; r < n; r++) {
      gg_real *restrict zr = z + (size_t)r * ws;
      GG__VLOOP(j, ws, zr[j] += b[j];);
    }
    return;
  }
  switch (act) {
#define GG__ACT_BIAS(E, name)                                                 \
  case E:                                                                     \
    for (int r = 0; r < n; r++) {                                             \
      gg_real *restrict zr = z + (size_t)r * ws;                              \
      gg_real *restrict ar = a + (size_t)r * ws;                              \
      GG__VLOOP(j, ws, const gg_real v = zr[j] + b[j]; zr[j] = v;             \
                ar[j] = act_f_##name(v););                                    \
    }                                                                         \
    break;
    GG__ACTS(GG__ACT_BIAS)
#undef GG__ACT_BIAS
  default: break;
  }
}

/* db (w) = (accumulate ? db : 0) + column sums of d (n, w). */
static void col_sums(const gg_real *restrict d, gg_real *restrict db, int n, int w,
                     int accumulate) {
  const size_t ws = (size_t)w;
  if (!accumulate) memset(db, 0, ws * sizeof *db);
  for (int r = 0; r < n; r++) {
    const gg_real *restrict dr = d + (size_t)r * ws;
    GG__VLOOP(j, ws, db[j] += dr[j];);
  }
}

/* For each layer l: Z_l = A_{l-1} W_l^T + b_l (one GEMM, then the fused
 * bias + activation pass), A_l = f(Z_l) for hidden layers, A_{-1} = X. */
void gg_nn_forward(const gg_arch_t *arch, const gg_real *params, const gg_real *X, int n,
                   gg_ws_t *ws) {
  if (n <= 0) return;
  const int L = arch->n_layers;
  const gg_real *in_act = X;
  for (int l = 0; l < L; l++) {
    const int in = arch->widths[l], out = arch->widths[l + 1];
    const gg_real *W = params + arch->off[l];
    const gg_real *b = W + (size_t)out * (size_t)in;
    GG__GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1, in_act, in, W, in, 0,
             ws->z[l], out);
    gg_real *a = l < L - 1 ? ws->a[l] : NULL;
    bias_act(arch->act, ws->z[l], b, a, n, out);
    in_act = a;
  }
}

/* From the top layer down, with dZ_{L-1} = dlogits:
 *   dZ_l      = dA_l * f'(Z_l)                (hidden layers, in place)
 *   dW_l     (+)= dZ_l^T A_{l-1}              (GEMM, beta = accumulate)
 *   db_l     (+)= column sums of dZ_l
 *   dA_{l-1}  = dZ_l W_l                      (GEMM; skipped for l = 0)
 * dA_{l-1} goes to whichever of ws->d0 / ws->d1 does not hold dZ_l, so the
 * two buffers alternate; the first write avoids dlogits if it is one of them. */
void gg_nn_backward(const gg_arch_t *arch, const gg_real *params, const gg_real *X, int n,
                    gg_ws_t *ws, const gg_real *dlogits, gg_real *grads, int accumulate,
                    double *sat) {
  const int L = arch->n_layers;
  if (n <= 0) {
    /* The gradient of an empty sum is zero. */
    if (!accumulate) memset(grads, 0, arch->n_params * sizeof *grads);
    return;
  }
  if (sat) sat[L - 1] += (double)output_saturation(arch->loss, ws->z[L - 1], n, arch->widths[L]);

  gg_real *const bufs[2] = {ws->d0, ws->d1};
  int next = dlogits == ws->d0 ? 1 : 0;
  const gg_real *dZ = dlogits;
  gg_real *dA = NULL; /* this layer's dA (n, out) in bufs, for hidden layers */
  const gg_real beta = accumulate ? 1 : 0;
  for (int l = L - 1; l >= 0; l--) {
    const int in = arch->widths[l], out = arch->widths[l + 1];
    const gg_real *W = params + arch->off[l];
    gg_real *dW = grads + arch->off[l];
    gg_real *db = dW + (size_t)out * (size_t)in;
    const gg_real *A_prev = l > 0 ? ws->a[l - 1] : X;
    if (l < L - 1) {
      const size_t n_sat = act_backward_inplace(arch->act, ws->z[l], ws->a[l], dA,
                                                (size_t)n * (size_t)out, sat != NULL);
      if (sat) sat[l] += (double)n_sat;
      dZ = dA;
    }
    col_sums(dZ, db, n, out, accumulate);
    GG__GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1, dZ, out, A_prev, in, beta,
             dW, in);
    if (l > 0) {
      dA = bufs[next];
      next ^= 1;
      GG__GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1, dZ, out, W, in, 0, dA,
               in);
    }
  }
}
