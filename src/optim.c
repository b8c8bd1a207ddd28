/* optim.c — torch.optim's SGD (plain, momentum, Nesterov), Adam and AdamW
 * over the flat buffers, and the learning-rate schedules (see optim.h).
 *
 * The update arithmetic is float, as torch.optim does it on float32
 * parameters; the statistics of the update are accumulated in double.
 * gg_optim_update is the trainer's one pass over the parameters per step:
 * one specialized loop per optimizer kind, no allocation, no branch on the
 * kind inside the loop.
 */
#include "gradguard/optim.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"

static const char *const gg__opt_names[GG_OPT__COUNT] = {
    [GG_OPT_SGD] = "sgd",   [GG_OPT_MOMENTUM] = "momentum", [GG_OPT_NESTEROV] = "nesterov",
    [GG_OPT_ADAM] = "adam", [GG_OPT_ADAMW] = "adamw",
};

const char *gg_opt_name(gg_opt_kind_t kind) {
  return (int)kind >= 0 && kind < GG_OPT__COUNT ? gg__opt_names[kind] : "unknown";
}

int gg_opt_parse(const char *name) {
  if (!name) return -1;
  for (int k = 0; k < GG_OPT__COUNT; k++)
    if (strcmp(name, gg__opt_names[k]) == 0) return k;
  return -1;
}

static int slots_of(gg_opt_kind_t kind) {
  switch (kind) {
  case GG_OPT_MOMENTUM:
  case GG_OPT_NESTEROV: return 1;
  case GG_OPT_ADAM:
  case GG_OPT_ADAMW: return 2;
  default: return 0;
  }
}

const char *gg_optim_slot_name(const gg_optim_t *opt, int slot) {
  if (slot < 0 || slot >= opt->n_slots) return NULL;
  if (opt->kind == GG_OPT_MOMENTUM || opt->kind == GG_OPT_NESTEROV) return "momentum_buffer";
  return slot == 0 ? "exp_avg" : "exp_avg_sq";
}

int gg_optim_init(gg_optim_t *opt, gg_opt_kind_t kind, size_t n, double momentum, double beta1,
                  double beta2, double eps, double weight_decay) {
  memset(opt, 0, sizeof *opt);
  /* torch.optim's own argument checks, with the flag names of the CLI. */
  if ((int)kind < 0 || kind >= GG_OPT__COUNT)
    return gg_err_set(GG_EUSAGE, "--optimizer: unknown optimizer kind %d", (int)kind);
  if (!(weight_decay >= 0) || !isfinite(weight_decay))
    return gg_err_set(GG_EUSAGE, "--weight-decay must be a finite number >= 0 (got %g)", weight_decay);
  if (kind == GG_OPT_MOMENTUM || kind == GG_OPT_NESTEROV) {
    if (!(momentum >= 0) || !isfinite(momentum))
      return gg_err_set(GG_EUSAGE, "--momentum must be a finite number >= 0 (got %g)", momentum);
    if (kind == GG_OPT_NESTEROV && momentum == 0)
      return gg_err_set(GG_EUSAGE, "--optimizer nesterov needs --momentum > 0");
  }
  if (kind == GG_OPT_ADAM || kind == GG_OPT_ADAMW) {
    if (!(beta1 >= 0 && beta1 < 1))
      return gg_err_set(GG_EUSAGE, "--beta1 must be in [0, 1) (got %g)", beta1);
    if (!(beta2 >= 0 && beta2 < 1))
      return gg_err_set(GG_EUSAGE, "--beta2 must be in [0, 1) (got %g)", beta2);
    if (!(eps >= 0) || !isfinite(eps))
      return gg_err_set(GG_EUSAGE, "--eps must be a finite number >= 0 (got %g)", eps);
  }
  const int n_slots = slots_of(kind);
  if (n_slots > 0 && n > 0) {
    if (n > SIZE_MAX / sizeof(float) / (size_t)n_slots)
      return gg_err_set(GG_ENOMEM, "optimizer: %zu parameters are too many for the state", n);
    opt->state = calloc((size_t)n_slots * n, sizeof(float));
    if (!opt->state)
      return gg_err_set(GG_ENOMEM, "optimizer: cannot allocate %d x %zu floats of %s state", n_slots, n,
                        gg__opt_names[kind]);
  }
  opt->kind = kind;
  opt->momentum = momentum;
  opt->beta1 = beta1;
  opt->beta2 = beta2;
  opt->eps = eps;
  opt->weight_decay = weight_decay;
  opt->t = 0;
  opt->n = n;
  opt->n_slots = n_slots;
  opt->bc1 = 1.0;
  opt->bc2_sqrt = 1.0;
  return 0;
}

void gg_optim_free(gg_optim_t *opt) {
  if (!opt) return;
  free(opt->state);
  memset(opt, 0, sizeof *opt);
}

/* bc1 = 1 - beta1^t and bc2_sqrt = sqrt(1 - beta2^t), in double as torch
 * computes them from the Python float step. */
void gg_optim_begin(gg_optim_t *opt, double lr) {
  opt->t += 1;
  opt->lr = lr;
  opt->bc1 = 1.0 - pow(opt->beta1, (double)opt->t);
  opt->bc2_sqrt = sqrt(1.0 - pow(opt->beta2, (double)opt->t));
}

/* Scalars of one step, as the float constants the loop uses. */
typedef struct {
  float lr, wd, mu;               /* sgd family: learning rate, weight decay, momentum */
  float b1, omb1, b2, omb2;       /* adam: beta1, 1 - beta1, beta2, 1 - beta2 */
  float step_size, bc2_sqrt, eps; /* adam: lr / bc1, sqrt(1 - beta2^t), eps */
  float decay;                    /* adamw: 1 - lr wd */
} step_consts_t;

#if defined(__GNUC__)
#define GG__ALWAYS_INLINE inline __attribute__((always_inline))
#define GG__NOINLINE __attribute__((noinline))
#else
#define GG__ALWAYS_INLINE inline
#define GG__NOINLINE
#endif

/* Elements go in blocks of GG__LANES, and each of the six sums has one
 * double accumulator per lane: the order of the additions is fixed by this
 * source (bitwise reproducible), and the compiler can vectorize the loops
 * over a block without -ffast-math's reassociation. */
#define GG__LANES 8

/* The two statistics-only sums (dw2, w02: norms of the update and of the
 * old weights) run in float lanes over GG__FLUSH blocks, then go into their
 * double lanes: float vectors are twice as wide, and 128 terms per float
 * lane keep the relative error near 1e-6, plenty for a norm that is stored
 * as float32. The sums that steer a control stay double: w2 (--agc reads it
 * as the row norm, bit for bit what gg_clip reads from the weights), g2,
 * ww, the clamp count. */
#define GG__FLUSH 128

typedef struct {
  double g2[GG__LANES], nc[GG__LANES], w2[GG__LANES], dw2[GG__LANES], ww[GG__LANES], w02[GG__LANES];
  float fdw2[GG__LANES], fw02[GG__LANES];
} lane_acc_t;

static GG__ALWAYS_INLINE void lane_flush(lane_acc_t *a) {
  for (int k = 0; k < GG__LANES; k++) {
    a->dw2[k] += a->fdw2[k];
    a->w02[k] += a->fw02[k];
    a->fdw2[k] = a->fw02[k] = 0.0f;
  }
}

/* Element i in lane k: g' = clamp(scale g), the update of KIND, the weight
 * clip, the sums. kind is a compile-time constant at every call, so the
 * switch folds away and each kind's loop carries only its own arithmetic. */
static GG__ALWAYS_INLINE void update_elem(const int kind, const int sums, const step_consts_t *c, float *restrict w,
                                          const float *restrict g, float *restrict s0,
                                          float *restrict s1, size_t i, size_t k, float scale,
                                          float clamp, float wclip, lane_acc_t *a) {
  const float w0 = w[i];
  const float gs = scale * g[i];
  /* clamp and wclip are +inf when off: nothing compares above them. */
  const float gc = gs > clamp ? clamp : (gs < -clamp ? -clamp : gs);
  float w1;
  switch (kind) {
  case GG_OPT_SGD: w1 = w0 - c->lr * (gc + c->wd * w0); break;
  case GG_OPT_MOMENTUM: {
    const float buf = c->mu * s0[i] + (gc + c->wd * w0);
    s0[i] = buf;
    w1 = w0 - c->lr * buf;
    break;
  }
  case GG_OPT_NESTEROV: {
    const float d = gc + c->wd * w0;
    const float buf = c->mu * s0[i] + d;
    s0[i] = buf;
    w1 = w0 - c->lr * (d + c->mu * buf);
    break;
  }
  case GG_OPT_ADAM:
  case GG_OPT_ADAMW: {
    const float d = kind == GG_OPT_ADAM ? gc + c->wd * w0 : gc;
    const float m = c->b1 * s0[i] + c->omb1 * d;
    const float v = c->b2 * s1[i] + c->omb2 * d * d;
    s0[i] = m;
    s1[i] = v;
    const float wd0 = kind == GG_OPT_ADAMW ? w0 * c->decay : w0;
    /* sqrtf vectorizes only under -fno-math-errno (otherwise GCC keeps a
     * guarded libm call for negative v, to set errno): 4-5x on this loop. */
    w1 = wd0 - c->step_size * (m / (sqrtf(v) / c->bc2_sqrt + c->eps));
    break;
  }
  default: w1 = w0; break;
  }
  w1 = w1 > wclip ? wclip : (w1 < -wclip ? -wclip : w1);
  w[i] = w1;
  /* Only the sums of this pass's level: six double accumulators cost more
   * than Adam itself, and most steps need two or three of them. */
  const double gd = gc, w0d = w0, w1d = w1;
  if (sums >= GG_SUMS_ALL) {
    a->g2[k] += gd * gd;
    a->nc[k] += (double)((gs > clamp) | (gs < -clamp));
    a->ww[k] += w1d * w0d;
  }
  if (sums >= GG_SUMS_UPDATE) {
    const float df = w1 - w0;
    a->w2[k] += w1d * w1d;
    a->fdw2[k] += df * df;
    a->fw02[k] += w0 * w0;
  }
}

/* Full blocks of GG__LANES (the loop the compiler vectorizes), then the
 * tail in lanes 0.. of one partial block. */
static GG__ALWAYS_INLINE void update_range(const int kind, const int sums, const step_consts_t *c, float *restrict w,
                                           const float *restrict g, float *restrict s0,
                                           float *restrict s1, size_t begin, size_t end, float scale,
                                           float clamp, float wclip, gg_update_acc_t *acc) {
  lane_acc_t a;
  memset(&a, 0, sizeof a);
  const size_t n_blocks = (end - begin) / GG__LANES;
  for (size_t b0 = 0; b0 < n_blocks; b0 += GG__FLUSH) {
    const size_t b1 = n_blocks - b0 > GG__FLUSH ? b0 + GG__FLUSH : n_blocks;
    for (size_t b = b0; b < b1; b++)
      for (size_t k = 0; k < GG__LANES; k++)
        update_elem(kind, sums, c, w, g, s0, s1, begin + b * GG__LANES + k, k, scale, clamp, wclip,
                    &a);
    if (sums >= GG_SUMS_UPDATE) lane_flush(&a);
  }
  for (size_t i = begin + n_blocks * GG__LANES, k = 0; i < end; i++, k++)
    update_elem(kind, sums, c, w, g, s0, s1, i, k, scale, clamp, wclip, &a);
  if (sums >= GG_SUMS_UPDATE) lane_flush(&a);
  for (int k = 0; k < GG__LANES; k++) {
    acc->g2 += a.g2[k];
    acc->n_clamped += a.nc[k];
    acc->w2 += a.w2[k];
    acc->dw2 += a.dw2[k];
    acc->wwold += a.ww[k];
    acc->wold2 += a.w02[k];
  }
}

/* One function per kind: a real call boundary, so that the restrict
 * qualifiers hold for the whole loop (the buffers never overlap) and the
 * constants are a local copy no store can touch. */
#define GG__UPDATE_ARGS                                                                    \
  step_consts_t c, float *restrict w, const float *restrict g, float *restrict s0,         \
      float *restrict s1, size_t begin, size_t end, float scale, float clamp, float wclip, \
      gg_update_acc_t *restrict acc
#define GG__UPDATE_FN(name, KIND, SUMS)                                                   \
  static GG__NOINLINE void name(GG__UPDATE_ARGS) {                                        \
    update_range(KIND, SUMS, &c, w, g, s0, s1, begin, end, scale, clamp, wclip, acc);     \
  }
#define GG__UPDATE_FNS(kname, KIND)                                                       \
  GG__UPDATE_FN(kname##_none, KIND, GG_SUMS_NONE)                                         \
  GG__UPDATE_FN(kname##_update, KIND, GG_SUMS_UPDATE)                                     \
  GG__UPDATE_FN(kname##_all, KIND, GG_SUMS_ALL)
GG__UPDATE_FNS(update_sgd, GG_OPT_SGD)
GG__UPDATE_FNS(update_momentum, GG_OPT_MOMENTUM)
GG__UPDATE_FNS(update_nesterov, GG_OPT_NESTEROV)
GG__UPDATE_FNS(update_adam, GG_OPT_ADAM)
GG__UPDATE_FNS(update_adamw, GG_OPT_ADAMW)
#undef GG__UPDATE_FNS
#undef GG__UPDATE_FN

/* Per element (optim.h):
 *   g' = clamp(scale g, -clamp, clamp)
 *   sgd       w' = w - lr (g' + wd w)
 *   momentum  buf = mu buf + (g' + wd w);  w' = w - lr buf
 *   nesterov  buf = mu buf + (g' + wd w);  w' = w - lr ((g' + wd w) + mu buf)
 *   adam      d = g' + wd w;  m = b1 m + (1-b1) d;  v = b2 v + (1-b2) d^2
 *             w' = w - (lr / bc1) m / (sqrt(v) / bc2_sqrt + eps)
 *   adamw     as adam with d = g' and w (1 - lr wd) in place of w
 *   w' = clamp(w', -wclip, wclip)  */
void gg_optim_update(gg_optim_t *opt, float *params, const float *grads, size_t begin, size_t end,
                     float scale, float clamp, float wclip, gg_update_acc_t *acc) {
  gg_optim_update_sums(opt, params, grads, begin, end, scale, clamp, wclip, GG_SUMS_ALL, acc);
}

void gg_optim_update_sums(gg_optim_t *opt, float *params, const float *grads, size_t begin,
                          size_t end, float scale, float clamp, float wclip, gg_sums_t sums,
                          gg_update_acc_t *acc) {
  if (end > opt->n) end = opt->n;
  if (begin >= end) return;
  const step_consts_t c = {
      .lr = (float)opt->lr,
      .wd = (float)opt->weight_decay,
      .mu = (float)opt->momentum,
      .b1 = (float)opt->beta1,
      .omb1 = (float)(1.0 - opt->beta1),
      .b2 = (float)opt->beta2,
      .omb2 = (float)(1.0 - opt->beta2),
      .step_size = (float)(opt->lr / opt->bc1),
      .bc2_sqrt = (float)opt->bc2_sqrt,
      .eps = (float)opt->eps,
      .decay = (float)(1.0 - opt->lr * opt->weight_decay),
  };
  /* A bound of +inf disables a clamp without a branch in the loop. */
  if (!(clamp > 0)) clamp = INFINITY;
  if (!(wclip > 0)) wclip = INFINITY;
  float *s0 = opt->n_slots > 0 ? gg_optim_slot(opt, 0) : NULL;
  float *s1 = opt->n_slots > 1 ? gg_optim_slot(opt, 1) : NULL;
  gg_update_acc_t unused = {0};
  if (!acc) acc = &unused;
  float *w = params;
  const float *g = grads;
  typedef void (*update_fn)(GG__UPDATE_ARGS);
  static const update_fn fns[][3] = {
      [GG_OPT_SGD] = {update_sgd_none, update_sgd_update, update_sgd_all},
      [GG_OPT_MOMENTUM] = {update_momentum_none, update_momentum_update, update_momentum_all},
      [GG_OPT_NESTEROV] = {update_nesterov_none, update_nesterov_update, update_nesterov_all},
      [GG_OPT_ADAM] = {update_adam_none, update_adam_update, update_adam_all},
      [GG_OPT_ADAMW] = {update_adamw_none, update_adamw_update, update_adamw_all},
  };
  if ((unsigned)opt->kind >= sizeof fns / sizeof fns[0] || (unsigned)sums > GG_SUMS_ALL) return;
  fns[opt->kind][sums](c, w, g, s0, s1, begin, end, scale, clamp, wclip, acc);
}

#undef GG__UPDATE_ARGS

void gg_optim_step(gg_optim_t *opt, float *params, const float *grads, double lr) {
  gg_update_acc_t unused = {0};
  gg_optim_begin(opt, lr);
  gg_optim_update(opt, params, grads, 0, opt->n, 1.0f, 0.0f, 0.0f, &unused);
}

/* ---- schedules ---- */

int gg_sched_parse(const char *spec, gg_sched_t *out) {
  gg_sched_t s = {.kind = GG_SCHED_CONSTANT, .warmup_steps = 0, .every = 0, .gamma = 1.0};
  if (!spec || !*spec)
    return gg_err_set(GG_EUSAGE, "--lr-schedule: empty value (expected constant, cosine or step:EVERY:GAMMA)");
  if (strcmp(spec, "constant") == 0 || strcmp(spec, "cosine") == 0) {
    /* cosine's warmup comes from --warmup-steps, set by the config. */
    s.kind = strcmp(spec, "cosine") == 0 ? GG_SCHED_COSINE : GG_SCHED_CONSTANT;
    *out = s;
    return 0;
  }
  if (strncmp(spec, "cosine:", 7) == 0 || strncmp(spec, "constant:", 9) == 0)
    return gg_err_set(GG_EUSAGE,
                      "--lr-schedule: \"%s\" takes no argument (the cosine warmup is --warmup-steps)", spec);
  if (strncmp(spec, "step", 4) != 0 || (spec[4] != '\0' && spec[4] != ':'))
    return gg_err_set(GG_EUSAGE,
                      "--lr-schedule: unknown schedule \"%s\" (expected constant, cosine or step:EVERY:GAMMA)",
                      spec);
  /* "step:EVERY:GAMMA": an integer EVERY >= 1 and a finite GAMMA > 0. */
  const char *p = spec[4] == ':' ? spec + 5 : spec + 4;
  char *end = NULL;
  errno = 0;
  long every = strtol(p, &end, 10);
  if (end == p || *end != ':' || errno == ERANGE)
    return gg_err_set(GG_EUSAGE,
                      "--lr-schedule: step needs an integer EVERY and a GAMMA, e.g. step:1000:0.5 (got \"%s\")",
                      spec);
  if (every < 1) return gg_err_set(GG_EUSAGE, "--lr-schedule: step needs EVERY >= 1 (got \"%s\")", spec);
  const char *gp = end + 1;
  double gamma = strtod(gp, &end);
  if (end == gp || *end != '\0' || !isfinite(gamma))
    return gg_err_set(GG_EUSAGE, "--lr-schedule: step needs a number GAMMA, e.g. step:1000:0.5 (got \"%s\")",
                      spec);
  if (!(gamma > 0)) return gg_err_set(GG_EUSAGE, "--lr-schedule: step needs GAMMA > 0 (got \"%s\")", spec);
  s.kind = GG_SCHED_STEP;
  s.every = every;
  s.gamma = gamma;
  *out = s;
  return 0;
}

void gg_sched_format(const gg_sched_t *s, char *buf, size_t len) {
  if (!buf || len == 0) return;
  switch (s->kind) {
  case GG_SCHED_CONSTANT: snprintf(buf, len, "constant"); return;
  case GG_SCHED_COSINE: snprintf(buf, len, "cosine"); return;
  case GG_SCHED_STEP: {
    /* The shortest %g that reads back as gamma, so parse(format(s)) == s. */
    char num[40];
    for (int prec = 6; prec <= 17; prec++) {
      snprintf(num, sizeof num, "%.*g", prec, s->gamma);
      if (strtod(num, NULL) == s->gamma) break;
    }
    snprintf(buf, len, "step:%ld:%s", s->every, num);
    return;
  }
  default: snprintf(buf, len, "unknown"); return;
  }
}

/* optim.h's formulas. Cosine: a run with T <= W never leaves the warmup, and
 * steps past T keep the final rate (0) instead of climbing back up the
 * periodic cosine. */
double gg_sched_lr(const gg_sched_t *s, double lr, long t, long total_steps) {
  if (t < 1) t = 1;
  switch (s->kind) {
  case GG_SCHED_COSINE: {
    const long W = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (t <= W) return lr * (double)t / (double)W;
    const long tmax = total_steps - W;
    if (tmax < 1) return lr;
    long e = t - W - 1;
    if (e > tmax) e = tmax;
    const double pi = 3.141592653589793238462643383279503;
    return lr * (1.0 + cos(pi * (double)e / (double)tmax)) / 2.0;
  }
  case GG_SCHED_STEP:
    if (s->every < 1) return lr;
    return lr * pow(s->gamma, (double)((t - 1) / s->every));
  case GG_SCHED_CONSTANT:
  default: return lr;
  }
}
