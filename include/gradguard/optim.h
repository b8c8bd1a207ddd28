/* optim.h — optimizers over the flat buffers, with torch.optim's semantics,
 * and the learning-rate schedules.
 *
 * All state lives in one allocation with the parameter layout (one or two
 * slots of n_params floats). One step t = 1, 2, ... with gradient g and
 * learning rate lr (wd = weight decay, mu = momentum):
 *   sgd       g += wd w;  w -= lr g
 *   momentum  g += wd w;  buf = mu buf + g;  w -= lr buf
 *   nesterov  g += wd w;  buf = mu buf + g;  w -= lr (g + mu buf)
 *   adam      g += wd w;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *             w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   adamw     w *= 1 - lr wd; then adam without the g += wd w
 * (buf starts at 0, which equals torch's buf = g on the first step.)
 */
#ifndef GRADGUARD_OPTIM_H
#define GRADGUARD_OPTIM_H

#include <stddef.h>

typedef enum {
  GG_OPT_SGD,
  GG_OPT_MOMENTUM,
  GG_OPT_NESTEROV,
  GG_OPT_ADAM,
  GG_OPT_ADAMW,
  GG_OPT__COUNT
} gg_opt_kind_t;

const char *gg_opt_name(gg_opt_kind_t kind);
int gg_opt_parse(const char *name); /* -1 if unknown */

typedef struct {
  gg_opt_kind_t kind;
  double momentum, beta1, beta2, eps, weight_decay;
  long t;          /* steps taken so far */
  size_t n;        /* parameters */
  int n_slots;     /* 0 (sgd), 1 (momentum, nesterov), 2 (adam, adamw) */
  float *state;    /* (n_slots, n) one allocation, zero at start */
  /* set by gg_optim_begin for the current step: */
  double lr;       /* learning rate of this step */
  double bc1, bc2_sqrt; /* 1 - beta1^t, sqrt(1 - beta2^t) */
} gg_optim_t;

/* Slot names as stored in checkpoints ("momentum_buffer"; "exp_avg",
 * "exp_avg_sq"), NULL past n_slots. */
const char *gg_optim_slot_name(const gg_optim_t *opt, int slot);
static inline float *gg_optim_slot(const gg_optim_t *opt, int slot) {
  return opt->state + (size_t)slot * opt->n;
}

int gg_optim_init(gg_optim_t *opt, gg_opt_kind_t kind, size_t n, double momentum,
                  double beta1, double beta2, double eps, double weight_decay);
void gg_optim_free(gg_optim_t *opt);

/* One update of params (n) with grads (n) at learning rate lr; increments t.
 * grads is not modified. Same as gg_optim_begin + one gg_optim_update over
 * [0, n) with scale 1, no clamp, no weight clip. */
void gg_optim_step(gg_optim_t *opt, float *params, const float *grads, double lr);

/* The fused form the trainer uses, so that gradient clipping, the update,
 * the weight clip and the update statistics take ONE pass over memory:
 *   gg_optim_begin(opt, lr)            once per step (t += 1, bias corrections)
 *   gg_optim_update(opt, ..., range)   over disjoint ranges covering [0, n)
 * In a range each element does, in this order:
 *   g' = scale * g;  if clamp > 0: g' = min(max(g', -clamp), clamp)
 *   w' = optimizer update of w with g'
 *   if wclip > 0: w' = min(max(w', -wclip), wclip)
 * and adds to acc (doubles): sum g'^2, count of elements the clamp changed
 * (|scale*g| > clamp), sum w'^2, sum (w'-w)^2, sum w' w, sum w^2.
 * grads is not modified. */
typedef struct {
  double g2;        /* sum g'^2 */
  double n_clamped; /* elements changed by the clamp */
  double w2;        /* sum w'^2 (after the update) */
  double dw2;       /* sum (w' - w)^2 */
  double wwold;     /* sum w' w */
  double wold2;     /* sum w^2 (before) */
} gg_update_acc_t;

void gg_optim_begin(gg_optim_t *opt, double lr);
void gg_optim_update(gg_optim_t *opt, float *params, const float *grads, size_t begin,
                     size_t end, float scale, float clamp, float wclip,
                     gg_update_acc_t *acc);

/* Which sums of gg_update_acc_t a pass adds (the others stay untouched):
 * the six double accumulators cost more than Adam's arithmetic, and a step
 * without statistics, --clip-value or --max-norm needs few or none. */
typedef enum {
  GG_SUMS_NONE = 0,   /* none */
  GG_SUMS_UPDATE = 1, /* w2, dw2, wold2 (weight norm and update ratio) */
  GG_SUMS_ALL = 2     /* all six (gg_optim_update) */
} gg_sums_t;
void gg_optim_update_sums(gg_optim_t *opt, float *params, const float *grads, size_t begin,
                          size_t end, float scale, float clamp, float wclip, gg_sums_t sums,
                          gg_update_acc_t *acc);

typedef enum { GG_SCHED_CONSTANT, GG_SCHED_COSINE, GG_SCHED_STEP } gg_sched_kind_t;

typedef struct {
  gg_sched_kind_t kind;
  long warmup_steps; /* cosine: linear warmup length */
  long every;        /* step: decay period in steps */
  double gamma;      /* step: factor */
} gg_sched_t;

/* Parse --lr-schedule: "constant", "cosine", "step:EVERY:GAMMA". */
int gg_sched_parse(const char *spec, gg_sched_t *out);
void gg_sched_format(const gg_sched_t *s, char *buf, size_t len);

/* Learning rate of step t (1-based) of total_steps, base lr:
 *   constant  lr
 *   cosine    t <= W: lr t / W;  else lr (1 + cos(pi (t-W-1) / (T-W))) / 2
 *             (torch CosineAnnealingLR with T_max = T-W after the warmup)
 *   step      lr gamma^floor((t-1) / EVERY)      (torch StepLR)  */
double gg_sched_lr(const gg_sched_t *s, double lr, long t, long total_steps);

#endif
