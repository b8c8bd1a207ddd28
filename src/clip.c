/* clip.c — gradient control in two passes over memory (see clip.h). */
#include "gradguard/clip.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"

int gg_clip_init(gg_clip_t *c, const gg_arch_t *arch, const gg_clip_cfg_t *cfg) {
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  c->arch = arch;
  int L = arch->n_layers;
  for (int l = 0; l < L; l++) c->n_rows += (size_t)arch->widths[l + 1] + 1;
  c->row_begin = malloc((c->n_rows + 1) * sizeof *c->row_begin);
  c->layer_row = malloc(((size_t)L + 1) * sizeof *c->layer_row);
  c->row_g2 = calloc(c->n_rows, sizeof *c->row_g2);
  c->row_w2 = calloc(c->n_rows, sizeof *c->row_w2);
  c->row_scale = calloc(c->n_rows, sizeof *c->row_scale);
  c->row_max = calloc(c->n_rows, sizeof *c->row_max);
  c->layer_g2 = calloc((size_t)L, sizeof *c->layer_g2);
  c->layer_maxabs = calloc((size_t)L, sizeof *c->layer_maxabs);
  c->layer_acc = calloc((size_t)L, sizeof *c->layer_acc);
  int need_rows = cfg->agc > 0 || cfg->max_norm > 0;
  c->row_acc = need_rows ? calloc(c->n_rows, sizeof *c->row_acc) : NULL;
  if (!c->row_begin || !c->layer_row || !c->row_g2 || !c->row_w2 || !c->row_scale || !c->row_max ||
      !c->layer_g2 || !c->layer_maxabs || !c->layer_acc || (need_rows && !c->row_acc)) {
    gg_clip_free(c);
    return gg_err_set(GG_ENOMEM, "out of memory for the clipping buffers");
  }
  size_t r = 0;
  for (int l = 0; l < L; l++) {
    size_t out = (size_t)arch->widths[l + 1], in = (size_t)arch->widths[l];
    c->layer_row[l] = r;
    for (size_t j = 0; j < out; j++) c->row_begin[r++] = arch->off[l] + j * in;
    c->row_begin[r++] = arch->off[l] + out * in; /* the bias */
  }
  c->layer_row[L] = r;
  c->row_begin[r] = arch->n_params;
  c->row_lo = 0;
  c->row_hi = c->n_rows;
  return 0;
}

void gg_clip_set_rows(gg_clip_t *c, size_t lo, size_t hi) {
  c->row_lo = lo < c->n_rows ? lo : c->n_rows;
  c->row_hi = hi < c->row_lo ? c->row_lo : hi > c->n_rows ? c->n_rows : hi;
  c->row_acc_valid = 0;
}

void gg_clip_free(gg_clip_t *c) {
  free(c->row_begin);
  free(c->layer_row);
  free(c->row_g2);
  free(c->row_w2);
  free(c->row_scale);
  free(c->row_max);
  free(c->layer_g2);
  free(c->layer_maxabs);
  free(c->layer_acc);
  free(c->row_acc);
  free(c->hist);
  memset(c, 0, sizeof *c);
}

/* Sum of squares in double and max |x| of one row. Elements go in blocks
 * of GG__CLIP_LANES with one sum and one max per lane: the order of the
 * additions is fixed by this source (the norm is bitwise reproducible, and
 * every rank computes the same one), and the compiler vectorizes the block
 * loop without -ffast-math's reassociation (a single running sum is one
 * serial chain of double additions, ~4 cycles per element). The order is
 * the one of gg_optim_update's sum of w'^2 (optim.c, 8 lanes, tail from
 * lane 0, lanes added 0..7), so the norms of the weights an update wrote
 * (row_acc) are bitwise those measured here: --agc uses them instead of
 * reading the weights again. test_clip checks the two agree. With `add`,
 * x += y first, element by element (the sharded reduction's last addend).
 * add is a constant at each call, so each form compiles to its own loop.
 * The tail repeats the block body on purpose: with the body in a shared
 * inline helper GCC 12 stopped vectorizing the add forms (the 2-rank
 * measure pass went from 0.45 to 1.46 ms). */
#define GG__CLIP_LANES 8
static inline __attribute__((always_inline)) double gg__sumsq_lanes(float *restrict x,
                                                                   const float *restrict y,
                                                                   size_t n,
                                                                   float *restrict maxabs,
                                                                   const int add) {
  double s[GG__CLIP_LANES] = {0};
  float m[GG__CLIP_LANES] = {0};
  const size_t n_blocks = n / GG__CLIP_LANES;
  for (size_t b = 0; b < n_blocks; b++) {
    for (size_t k = 0; k < GG__CLIP_LANES; k++) {
      const size_t i = b * GG__CLIP_LANES + k;
      float f = x[i];
      if (add) {
        f += y[i];
        x[i] = f;
        if (add == 2) ((float *)y)[i] = 0.0f;
      }
      double v = f;
      s[k] += v * v;
      float a = fabsf(f);
      m[k] = a > m[k] ? a : m[k];
    }
  }
  for (size_t i = n_blocks * GG__CLIP_LANES, k = 0; i < n; i++, k++) {
    float f = x[i];
    if (add) {
      f += y[i];
      x[i] = f;
      if (add == 2) ((float *)y)[i] = 0.0f;
    }
    double v = f;
    s[k] += v * v;
    float a = fabsf(f);
    m[k] = a > m[k] ? a : m[k];
  }
  double t = 0;
  float mm = *maxabs;
  for (size_t k = 0; k < GG__CLIP_LANES; k++) {
    t += s[k];
    mm = m[k] > mm ? m[k] : mm;
  }
  *maxabs = mm;
  return t;
}

static inline double gg__row_sumsq(const float *x, size_t n, float *maxabs) {
  /* add = 0: x is only read */
  return gg__sumsq_lanes((float *)x, NULL, n, maxabs, 0);
}

/* x += y, then gg__row_sumsq of the new x (same lanes and order, so the
 * same bits as adding first and measuring after): the last addition of the
 * sharded reduction rides on the measure pass instead of a pass of its own. */
static inline double gg__row_add_sumsq(float *x, const float *y, size_t n, float *maxabs) {
  return gg__sumsq_lanes(x, y, n, maxabs, 1);
}

/* ... and y = 0 after reading it */
static inline double gg__row_take_sumsq(float *x, float *y, size_t n, float *maxabs) {
  return gg__sumsq_lanes(x, y, n, maxabs, 2);
}

static void gg__measure_rows(gg_clip_t *c, float *g, const float *add, const float *params,
                             float scale, int take) {
  double s2 = (double)scale * (double)scale;
  const size_t base = c->row_begin[c->row_lo];
  for (size_t r = c->row_lo; r < c->row_hi; r++) {
    size_t b = c->row_begin[r], n = c->row_begin[r + 1] - b;
    float m = 0;
    double v = !add  ? gg__row_sumsq(g + b, n, &m)
               : take ? gg__row_take_sumsq(g + b, (float *)add + (b - base), n, &m)
                      : gg__row_add_sumsq(g + b, add + (b - base), n, &m);
    c->row_g2[r] = v * s2;
    c->row_max[r] = m;
    if (c->cfg.agc > 0) {
      /* The last update summed the squares of the weights it wrote:
       * reading 4 bytes a parameter again costs 2% of a step. */
      if (c->row_acc_valid) {
        c->row_w2[r] = c->row_acc[r].w2;
      } else {
        float unused = 0;
        c->row_w2[r] = gg__row_sumsq(params + b, n, &unused);
      }
    }
  }
}

void gg_clip_measure_rows(gg_clip_t *c, float *g, const float *add, const float *params,
                          float scale) {
  gg__measure_rows(c, g, add, params, scale, 0);
}

void gg_clip_measure_rows_take(gg_clip_t *c, float *g, float *add, const float *params,
                               float scale) {
  gg__measure_rows(c, g, add, params, scale, 1);
}

void gg_clip_measure_finish(gg_clip_t *c, float scale, gg_clip_result_t *res) {
  const gg_arch_t *a = c->arch;
  double total = 0;
  int bad = 0;
  for (int l = 0; l < a->n_layers; l++) {
    float m = 0;
    double lsum = 0;
    for (size_t r = c->layer_row[l]; r < c->layer_row[l + 1]; r++) {
      lsum += c->row_g2[r];
      m = (float)c->row_max[r] > m ? (float)c->row_max[r] : m;
    }
    /* NaN fails every comparison; fabsf of NaN also defeats the max, so
     * the sum is the reliable witness. */
    if (!isfinite(lsum) || !isfinite(m)) bad = 1;
    c->layer_g2[l] = lsum;
    /* NaN loses every comparison of the max: report it from the sum */
    c->layer_maxabs[l] = isnan(lsum) ? NAN : m * fabsf(scale);
    total += lsum;
  }
  res->nonfinite = bad;
  res->grad_norm = bad ? NAN : sqrt(total);
}

void gg_clip_measure(gg_clip_t *c, const float *g, const float *params, float scale,
                     gg_clip_result_t *res) {
  /* without an add, measure_rows only reads g */
  gg_clip_measure_rows(c, (float *)g, NULL, params, scale);
  gg_clip_measure_finish(c, scale, res);
}

size_t gg_clip_shared_len(const gg_clip_t *c) { return (c->cfg.agc > 0 ? 3 : 2) * c->n_rows; }

void gg_clip_pack(const gg_clip_t *c, double *buf) {
  const size_t R = c->n_rows;
  memset(buf, 0, gg_clip_shared_len(c) * sizeof *buf);
  for (size_t r = c->row_lo; r < c->row_hi; r++) {
    buf[r] = c->row_g2[r];
    buf[R + r] = c->row_max[r];
    if (c->cfg.agc > 0) buf[2 * R + r] = c->row_w2[r];
  }
}

void gg_clip_unpack(gg_clip_t *c, const double *buf) {
  const size_t R = c->n_rows;
  memcpy(c->row_g2, buf, R * sizeof *buf);
  memcpy(c->row_max, buf + R, R * sizeof *buf);
  if (c->cfg.agc > 0) memcpy(c->row_w2, buf + 2 * R, R * sizeof *buf);
}

double gg_percentile_sorted(const double *v, size_t n, double p) {
  double pos = p / 100.0 * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo >= n - 1) return v[n - 1];
  double frac = pos - (double)lo;
  return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

/* Insert x into the sorted history. */
static int gg__hist_push(gg_clip_t *c, double x) {
  if (c->n_hist == c->cap_hist) {
    size_t cap = c->cap_hist ? 2 * c->cap_hist : 1024;
    double *h = realloc(c->hist, cap * sizeof *h);
    if (!h) return gg_err_set(GG_ENOMEM, "out of memory for the autoclip history");
    c->hist = h;
    c->cap_hist = cap;
  }
  size_t lo = 0, hi = c->n_hist;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->hist[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  memmove(c->hist + lo + 1, c->hist + lo, (c->n_hist - lo) * sizeof *c->hist);
  c->hist[lo] = x;
  c->n_hist++;
  return 0;
}

int gg_clip_reserve_history(gg_clip_t *c, size_t n) {
  if (n <= c->cap_hist) return 0;
  double *h = realloc(c->hist, n * sizeof *h);
  if (!h) return gg_err_set(GG_ENOMEM, "out of memory for the autoclip history of %zu steps", n);
  c->hist = h;
  c->cap_hist = n;
  return 0;
}

int gg_clip_set_history(gg_clip_t *c, const double *v, size_t n) {
  c->n_hist = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = gg__hist_push(c, v[i]);
    if (rc) return rc;
  }
  return 0;
}

int gg_clip_plan(gg_clip_t *c, float scale, gg_clip_result_t *res) {
  const gg_arch_t *a = c->arch;
  const gg_clip_cfg_t *k = &c->cfg;
  /* row_w2[r] (no longer needed once --agc has read it) holds the factor
   * of row r in double; row_g2 becomes the squared norm after it. */
  double total = 0;
  for (int l = 0; l < a->n_layers; l++) {
    size_t r0 = c->layer_row[l], rb = c->layer_row[l + 1] - 1; /* rb: bias row */
    double wsum = 0, bsum = 0;
    for (size_t r = r0; r <= rb; r++) {
      double f = 1, g2 = c->row_g2[r];
      if (k->agc > 0) {
        double wn = sqrt(c->row_w2[r]), gn = sqrt(g2);
        double maxn = k->agc * (wn > 1e-3 ? wn : 1e-3);
        if (gn > maxn) f = maxn / (gn > 1e-6 ? gn : 1e-6);
      }
      c->row_w2[r] = f;
      c->row_g2[r] = g2 * f * f;
      if (r < rb) wsum += c->row_g2[r];
      else bsum += c->row_g2[r];
    }
    if (k->clip_layer_norm > 0) {
      /* weight and bias are separate tensors, each clipped on its own */
      double C = k->clip_layer_norm, wn = sqrt(wsum), bn = sqrt(bsum);
      double fw = C / (wn > C ? wn : C), fb = C / (bn > C ? bn : C);
      for (size_t r = r0; r <= rb; r++) {
        double f = r < rb ? fw : fb;
        c->row_w2[r] *= f;
        c->row_g2[r] *= f * f;
      }
      wsum *= fw * fw;
      bsum *= fb * fb;
    }
    total += wsum + bsum;
  }
  double coef = 1;
  res->autoclip_thresh = 0;
  double C = k->clip_norm;
  if (k->autoclip > 0) {
    int rc = gg__hist_push(c, sqrt(total));
    if (rc) return rc;
    C = gg_percentile_sorted(c->hist, c->n_hist, k->autoclip);
    res->autoclip_thresh = C;
  }
  /* clip_norm 0 means off; a threshold of 0 computed by --autoclip (more
   * than P% of the norms so far were 0) is a threshold: coef = 0. */
  if (C > 0 || k->autoclip > 0) {
    double tn = sqrt(total);
    coef = C / (tn + 1e-6);
    if (coef > 1) coef = 1;
  }
  res->clip_coef = coef;
  /* The norm after all clipping, from the row sums; with --clip-value the
   * update pass measures it instead (the clamp changes values one by one). */
  res->grad_norm_clipped = sqrt(total) * coef;
  for (size_t r = 0; r < c->n_rows; r++)
    c->row_scale[r] = (float)(c->row_w2[r] * coef * (double)scale);
  return 0;
}

static void gg__acc_add(gg_update_acc_t *d, const gg_update_acc_t *s) {
  d->g2 += s->g2;
  d->n_clamped += s->n_clamped;
  d->w2 += s->w2;
  d->dw2 += s->dw2;
  d->wwold += s->wwold;
  d->wold2 += s->wold2;
}

/* x *= f, and the sum of squares of the new x in double, in the lanes and
 * order of gg__row_sumsq (so bitwise its result on the new x). */
static inline double gg__row_scale_sumsq(float *restrict x, size_t n, float f) {
  double s[GG__CLIP_LANES] = {0};
  const size_t n_blocks = n / GG__CLIP_LANES;
  for (size_t b = 0; b < n_blocks; b++) {
    float *xb = x + b * GG__CLIP_LANES;
    for (size_t k = 0; k < GG__CLIP_LANES; k++) {
      float v = xb[k] * f;
      xb[k] = v;
      s[k] += (double)v * (double)v;
    }
  }
  for (size_t i = n_blocks * GG__CLIP_LANES, k = 0; i < n; i++, k++) {
    float v = x[i] * f;
    x[i] = v;
    s[k] += (double)v * (double)v;
  }
  double t = 0;
  for (size_t k = 0; k < GG__CLIP_LANES; k++) t += s[k];
  return t;
}

/* Keras MaxNorm on one updated weight row w (n) whose update sums are ra:
 * w *= min(||w||, C) / (||w|| + 1e-7), right after the row's update while
 * it is in L1. The new ||w||^2 is summed as it is written, in
 * gg_optim_update's lane order, so that it is bitwise what gg_clip_measure
 * would read from the weights (a resumed run reads them); the other sums
 * follow with the factor s actually applied:
 * ||s w - w_old||^2 = s^2 w2 - 2 s ww + w2old, (s w).w_old = s ww. */
static void gg__max_norm_row(float *w, size_t n, double C, gg_update_acc_t *ra) {
  double norm = sqrt(ra->w2);
  float sf = (float)((norm < C ? norm : C) / (norm + 1e-7));
  if (sf == 1.0f) return; /* multiplying by 1.0f changes nothing */
  double s = sf, w2_before = ra->w2;
  ra->w2 = gg__row_scale_sumsq(w, n, sf);
  ra->dw2 += ra->w2 - w2_before - 2 * (s - 1) * ra->wwold;
  ra->wwold *= s;
}

/* The optimizer over [b, e) with one factor; with take, in pieces of
 * GG_CLIP_TAKE_CHUNK, each piece of g zeroed right after its update. */
static void gg__update_range(gg_optim_t *opt, float *params, const float *g, size_t b, size_t e,
                             float f, float clamp, float wclip, gg_sums_t sums,
                             gg_update_acc_t *acc, int take) {
  if (!take) {
    gg_optim_update_sums(opt, params, g, b, e, f, clamp, wclip, sums, acc);
    return;
  }
  for (size_t p = b; p < e; p += GG_CLIP_TAKE_CHUNK) {
    size_t q = e - p > GG_CLIP_TAKE_CHUNK ? p + GG_CLIP_TAKE_CHUNK : e;
    gg_optim_update_sums(opt, params, g, p, q, f, clamp, wclip, sums, acc);
    memset((float *)g + p, 0, (q - p) * sizeof *g);
  }
}

static void gg__apply_update(gg_clip_t *c, gg_optim_t *opt, float *params, const float *g,
                             int want_stats, gg_clip_result_t *res, int take) {
  const gg_arch_t *a = c->arch;
  const gg_clip_cfg_t *k = &c->cfg;
  float clamp = (float)k->clip_value, wclip = (float)k->weight_clip;
  /* Rows of a weight share one factor unless --agc made them differ;
   * --max-norm needs the sums of each row. */
  int per_row = k->agc > 0 || k->max_norm > 0;
  /* Only the sums someone reads: --clip-value's count and norm, --max-norm's
   * w.w_old, the statistics' norms, --agc's row norms of the new weights. */
  gg_sums_t sums = k->clip_value > 0 || k->max_norm > 0 ? GG_SUMS_ALL
                   : want_stats || k->agc > 0          ? GG_SUMS_UPDATE
                                                       : GG_SUMS_NONE;
  for (int l = 0; l < a->n_layers; l++) {
    gg_update_acc_t *acc = &c->layer_acc[l];
    memset(acc, 0, sizeof *acc);
    /* this rank's rows of the layer: [r0, r1), the bias row rb among them or not */
    size_t rb = c->layer_row[l + 1] - 1;
    size_t r0 = c->layer_row[l] > c->row_lo ? c->layer_row[l] : c->row_lo;
    size_t r1 = c->layer_row[l + 1] < c->row_hi ? c->layer_row[l + 1] : c->row_hi;
    if (r0 >= r1) continue;
    if (per_row) {
      for (size_t r = r0; r < r1; r++) {
        gg_update_acc_t ra = {0};
        size_t b = c->row_begin[r], e = c->row_begin[r + 1];
        gg_optim_update_sums(opt, params, g, b, e, c->row_scale[r], clamp, wclip, sums, &ra);
        if (take) memset((float *)g + b, 0, (e - b) * sizeof *g);
        /* --max-norm right after the row's update, while the row is still
         * in L1: a separate pass over the layer afterwards reads every
         * weight again from memory (3% of a 784-1024-1024-10 step). */
        if (k->max_norm > 0 && r < rb) gg__max_norm_row(params + b, e - b, k->max_norm, &ra);
        if (c->row_acc) c->row_acc[r] = ra;
        gg__acc_add(acc, &ra);
      }
    } else {
      /* the weight rows share one factor: one call for all of them */
      size_t w1 = r1 < rb ? r1 : rb;
      if (r0 < w1)
        gg__update_range(opt, params, g, c->row_begin[r0], c->row_begin[w1], c->row_scale[r0],
                         clamp, wclip, sums, acc, take);
      if (r1 > rb)
        gg__update_range(opt, params, g, c->row_begin[rb], c->row_begin[rb + 1],
                         c->row_scale[rb], clamp, wclip, sums, acc, take);
    }
  }
  c->row_acc_valid = per_row && c->row_acc != NULL;
  gg_clip_update_done(c, res);
}

void gg_clip_apply_update(gg_clip_t *c, gg_optim_t *opt, float *params, const float *g,
                          int want_stats, gg_clip_result_t *res) {
  gg__apply_update(c, opt, params, g, want_stats, res, 0);
}

void gg_clip_apply_update_take(gg_clip_t *c, gg_optim_t *opt, float *params, float *g,
                               int want_stats, gg_clip_result_t *res) {
  gg__apply_update(c, opt, params, g, want_stats, res, 1);
}

void gg_clip_update_done(const gg_clip_t *c, gg_clip_result_t *res) {
  if (!(c->cfg.clip_value > 0)) {
    res->clipped_fraction = 0;
    return;
  }
  double g2 = 0, nclamp = 0;
  for (int l = 0; l < c->arch->n_layers; l++) {
    g2 += c->layer_acc[l].g2;
    nclamp += c->layer_acc[l].n_clamped;
  }
  res->grad_norm_clipped = sqrt(g2);
  res->clipped_fraction = nclamp / (double)c->arch->n_params;
}

void gg_clip_forget_weights(gg_clip_t *c) { c->row_acc_valid = 0; }

_Static_assert(sizeof(float) == sizeof(uint32_t), "the histogram reads binary32 exponents");
void gg_clip_histogram(const gg_clip_t *c, const float *g, float scale, uint32_t *hist) {
  const gg_arch_t *a = c->arch;
  const size_t lo = c->row_begin[c->row_lo], hi = c->row_begin[c->row_hi];
  for (int l = 0; l < a->n_layers; l++) {
    uint32_t *h = hist + (size_t)l * GG_HIST_BINS;
    memset(h, 0, GG_HIST_BINS * sizeof *h);
    /* this rank's part of the layer */
    size_t b = a->off[l] > lo ? a->off[l] : lo, e = a->off[l] + a->size[l] < hi ? a->off[l] + a->size[l] : hi;
    /* The exponent field of a binary32 v is floor(log2 |v|) + 127 for a
     * normal v; zeros and subnormals (below 2^-126, far under bin 0) have
     * 0 and land in bin 0, Inf and NaN have 255 and land at the top: a
     * shift and a clamp give the bins frexpf would, several times faster. */
    for (size_t i = b; i < e; i++) {
      float v = g[i] * scale;
      uint32_t bits;
      memcpy(&bits, &v, sizeof bits);
      int bin = (int)((bits >> 23) & 0xffu) - 127 - GG_HIST_LO;
      bin = bin < 0 ? 0 : bin >= GG_HIST_BINS ? GG_HIST_BINS - 1 : bin;
      h[bin]++;
    }
  }
}
