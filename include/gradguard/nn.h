/* nn.h — the numeric core: dense layers, activations and losses of an MLP
 * over one flat parameter buffer.
 *
 * The same source (src/nn.c) is compiled twice: in float for the trainer
 * (libgradguard) and with -DGG_REAL_DOUBLE in double for the
 * finite-difference tests, so the code that is checked is the code that runs.
 *
 * Layout of the flat parameter (and gradient) buffer, layer by layer:
 *   W_l  (out_l, in_l) row-major, PyTorch nn.Linear layout
 *   b_l  (out_l)
 * so the weight and bias of one layer are one contiguous range
 * [arch->off[l], arch->off[l] + arch->size[l]).
 *
 * Formulas (z = pre-activation, a = activation, K = output width):
 *   dense:       Z = A_prev W^T + b
 *   relu         a = max(z,0)             a' = [z > 0]
 *   leaky_relu   a = z>0 ? z : 0.01 z     a' = z>0 ? 1 : 0.01
 *   tanh         a = tanh z               a' = 1 - a^2
 *   sigmoid      a = 1/(1+e^-z)           a' = a (1 - a)
 *   gelu         a = z Phi(z)             a' = Phi(z) + z phi(z)   (erf form)
 *   identity     a = z                    a' = 1
 * Per-sample losses on the logits z (output layer has no activation; the
 * output nonlinearity is folded into the loss, as in PyTorch):
 *   mse          l = sum_k (z_k - t_k)^2 / K                dl/dz = 2 (z - t) / K
 *   bce          l = sum_k [max(z,0) - z t + log1p(e^-|z|)] / K
 *                                                           dl/dz = (sigmoid(z) - t) / K
 *   softmax_ce   l = logsumexp(z) - z_y                     dl/dz = softmax(z) - onehot(y)
 * The batch loss is the mean of l over the samples (PyTorch reduction
 * 'mean'); this module works with SUMS over the samples it is given, and the
 * trainer divides by the global batch after the allreduce.
 */
#ifndef GRADGUARD_NN_H
#define GRADGUARD_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef GG_REAL_DOUBLE
typedef double gg_real;
#else
typedef float gg_real;
#endif

typedef enum {
  GG_ACT_RELU,
  GG_ACT_LEAKY_RELU,
  GG_ACT_TANH,
  GG_ACT_SIGMOID,
  GG_ACT_GELU,
  GG_ACT_IDENTITY,
  GG_ACT__COUNT
} gg_act_t;

typedef enum { GG_LOSS_MSE, GG_LOSS_BCE, GG_LOSS_SOFTMAX_CE, GG_LOSS__COUNT } gg_loss_t;

/* Names as on the command line ("relu", "softmax_ce"); -1 if unknown. */
const char *gg_act_name(gg_act_t act);
int gg_act_parse(const char *name);
const char *gg_loss_name(gg_loss_t loss);
int gg_loss_parse(const char *name);

/* Threshold below which an activation derivative counts as saturated:
 * |f'| < GG_SAT_THRESHOLD (the absolute value matters only for gelu, whose
 * derivative is negative, down to -0.13, for z < -0.75: not saturated). */
#define GG_SAT_THRESHOLD 1e-3

/* The shape of a network: type-independent, shared by float and double. */
typedef struct {
  int n_layers;    /* L dense layers */
  int *widths;     /* (L+1): input width, hidden widths..., output width K */
  gg_act_t act;    /* hidden-layer activation */
  gg_loss_t loss;  /* output loss (implies the output nonlinearity) */
  size_t *off;     /* (L) start of layer l's W in the flat buffer */
  size_t *size;    /* (L) out*in + out: layer l's W and b together */
  size_t n_params; /* total reals in the flat buffer */
  int max_width;   /* max over widths */
} gg_arch_t;

/* widths: n_widths >= 2 positive ints. Returns 0 or GG_EUSAGE / GG_ENOMEM. */
int gg_arch_init(gg_arch_t *arch, const int *widths, int n_widths, gg_act_t act,
                 gg_loss_t loss);
/* Safe on a zeroed or half-built struct. */
void gg_arch_free(gg_arch_t *arch);

/* Views of layer l inside a flat buffer. */
static inline gg_real *gg_arch_w(const gg_arch_t *a, gg_real *buf, int l) { return buf + a->off[l]; }
static inline gg_real *gg_arch_b(const gg_arch_t *a, gg_real *buf, int l) {
  return buf + a->off[l] + (size_t)a->widths[l + 1] * (size_t)a->widths[l];
}

/* Activations of one forward/backward pass for up to `cap` samples, one
 * allocation, with per-layer views. */
typedef struct {
  int cap;        /* max samples per pass */
  gg_real *buf;   /* the one allocation */
  gg_real **z;    /* (L) views, z[l] is (cap, widths[l+1]): pre-activations */
  gg_real **a;    /* (L) views, a[l] is (cap, widths[l+1]): activations (a[L-1] is NULL) */
  gg_real *d0;    /* (cap, max_width) backward scratch */
  gg_real *d1;    /* (cap, max_width) backward scratch */
  int n_layers;
} gg_ws_t;

int gg_ws_init(gg_ws_t *ws, const gg_arch_t *arch, int cap);
void gg_ws_free(gg_ws_t *ws);

/* Elementwise activation: a[i] = f(z[i]). a may equal z only for identity. */
void gg_act_forward(gg_act_t act, const gg_real *z, gg_real *a, size_t n);

/* dz[i] = da[i] * f'(z[i]) given z and a = f(z) (either may be used).
 * dz may alias da. If count_sat, returns how many i have |f'(z[i])| <
 * GG_SAT_THRESHOLD, else 0. */
size_t gg_act_backward(gg_act_t act, const gg_real *z, const gg_real *a,
                       const gg_real *da, gg_real *dz, size_t n, int count_sat);

/* Loss of n samples with logits z (n, K): returns the SUM over the samples
 * of the per-sample loss (formulas above), writes dl/dz (n, K) into dz
 * (unscaled by n) if dz != NULL, and adds to *n_correct (if not NULL) the
 * number of correct predictions: softmax_ce argmax == label; bce counts
 * (sample, output) pairs with (z > 0) == (t > 0.5); mse counts nothing.
 * targets (n, K) are used for mse/bce, labels (n) for softmax_ce; a label
 * outside [0, K) makes the sample's loss and dz NaN. */
double gg_loss_eval(gg_loss_t loss, const gg_real *z, int n, int K,
                    const gg_real *targets, const int32_t *labels, gg_real *dz,
                    long *n_correct);

/* Forward pass of n <= ws->cap samples X (n, widths[0]); the logits are
 * left in ws->z[L-1]. */
void gg_nn_forward(const gg_arch_t *arch, const gg_real *params, const gg_real *X,
                   int n, gg_ws_t *ws);

/* Backward pass after gg_nn_forward on the same X: dlogits (n, K) is
 * dl/dz of the output layer (may be ws->d0 or ws->d1 - it is consumed;
 * any other dlogits must not overlap them and is left unchanged).
 * Writes (accumulate = 0) or adds (accumulate = 1) the gradient of the
 * summed loss into grads (flat, n_params). If sat != NULL, sat[l] receives
 * (is added) the count of saturated (sample, unit) pairs of layer l: the
 * hidden activation's derivative for l < L-1; for the output layer that of
 * the loss's output nonlinearity (sigmoid for bce, p(1-p) of softmax for
 * softmax_ce, never for mse). */
void gg_nn_backward(const gg_arch_t *arch, const gg_real *params, const gg_real *X,
                    int n, gg_ws_t *ws, const gg_real *dlogits, gg_real *grads,
                    int accumulate, double *sat);

#endif
