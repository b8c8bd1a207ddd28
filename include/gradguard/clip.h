/* clip.h — gradient control over the flat buffers: measure the averaged
 * gradient once, turn every norm-based control into one scale factor per
 * unit row, and let the fused optimizer pass apply them (optim.h).
 *
 * A "row" is one output unit of a weight W (out, in) — its `in` incoming
 * gradients — or the whole bias vector of a layer. Per step, in the
 * contract's order:
 *   measure   per-row sums of squares of g (and of w for --agc), per-layer
 *             max|g|; non-finite iff any sum is NaN/Inf (accumulated in
 *             double, so 1e20 gradients are finite and exact)
 *   --agc L   per row: max = L max(||w_row||, 1e-3); if ||g_row|| > max:
 *             g_row *= max / max(||g_row||, 1e-6)
 *   --clip-layer-norm C   per layer (W and b separately, as tensors):
 *             g *= C / max(||g||, C)
 *   --clip-norm C / --autoclip P   total = ||g|| over all;  coef =
 *             min(1, C / (total + 1e-6)); with autoclip C is the P-th
 *             percentile (linear, numpy.percentile) of the totals of every
 *             step so far including this one
 *   --clip-value C   g = clamp(g, -C, C)   (in the fused pass)
 * after the update:
 *   --weight-clip C  w = clamp(w, -C, C)    (in the fused pass)
 *   --max-norm C     per weight row: w *= min(||w||, C) / (||w|| + 1e-7)
 * Row sums let every norm after a scaling be derived without another pass:
 * ||s g||^2 = s^2 ||g||^2.
 */
#ifndef GRADGUARD_CLIP_H
#define GRADGUARD_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "gradguard/nn.h"
#include "gradguard/optim.h"

typedef struct {
  double clip_norm, clip_value, clip_layer_norm, agc, autoclip, weight_clip, max_norm;
} gg_clip_cfg_t;

/* Results of one step, for the statistics and the progress line. */
typedef struct {
  int nonfinite;           /* the averaged gradient had a NaN/Inf */
  double grad_norm;        /* raw global L2 norm */
  double clip_coef;        /* factor of --clip-norm/--autoclip (1 = untouched) */
  double autoclip_thresh;  /* C used by --autoclip this step (0 if off) */
  double grad_norm_clipped;/* global norm after all clipping */
  double clipped_fraction; /* fraction of values changed by --clip-value */
} gg_clip_result_t;

typedef struct {
  gg_clip_cfg_t cfg;
  const gg_arch_t *arch;
  size_t n_rows;       /* sum over layers of (out + 1) */
  size_t *row_begin;   /* (n_rows + 1) flat offsets; row r is [row_begin[r], row_begin[r+1]) */
  size_t *layer_row;   /* (L + 1) first row of each layer; its bias row is layer_row[l+1]-1 */
  double *row_g2;      /* (n_rows) ||g_row||^2 of the averaged gradient */
  double *row_w2;      /* (n_rows) ||w_row||^2 (only with --agc) */
  double *row_max;     /* (n_rows) raw max |g_row| (unscaled) */
  float *row_scale;    /* (n_rows) combined factor, times 1/batch */
  double *layer_g2;    /* (L) raw ||g_l||^2 (weight and bias) */
  float *layer_maxabs; /* (L) raw max |g| */
  gg_update_acc_t *layer_acc; /* (L) update sums of the last step */
  gg_update_acc_t *row_acc;   /* (n_rows) with --agc or --max-norm: the row sums of the
                                 last update (after --max-norm) */
  int row_acc_valid;   /* row_acc[r].w2 = ||w_row||^2 of the current weights */
  size_t row_lo, row_hi; /* the rows this rank measures and updates (all, unless the
                            update is sharded over ranks: gg_clip_set_rows) */
  double *hist;        /* autoclip: sorted global norms so far */
  size_t n_hist, cap_hist;
} gg_clip_t;

int gg_clip_init(gg_clip_t *c, const gg_arch_t *arch, const gg_clip_cfg_t *cfg);
void gg_clip_free(gg_clip_t *c);

/* Pass 1 over the gradient sum g (averaged = scale * g, scale = 1/batch):
 * row and layer sums, max |g|, non-finite flag. Fills res->nonfinite and
 * res->grad_norm. With --agc it needs the row norms of params: from the
 * sums of the weights the last gg_clip_apply_update wrote, or (first step,
 * after gg_clip_forget_weights) by reading params. The same as
 * gg_clip_measure_rows (no add) then gg_clip_measure_finish. */
void gg_clip_measure(gg_clip_t *c, const float *g, const float *params, float scale,
                     gg_clip_result_t *res);

/* Sharded form (the update split over ranks by rows):
 *   gg_clip_set_rows(c, lo, hi)     once: this rank owns rows [lo, hi)
 *   gg_clip_measure_rows(...)       row sums of the own rows; with add !=
 *                                   NULL first g += add over the own rows'
 *                                   elements (add[0] is the first of them)
 *   gg_clip_pack(c, buf)            own rows' sums into buf (zeros elsewhere,
 *                                   gg_clip_shared_len doubles), to be summed
 *                                   over ranks, then gg_clip_unpack
 *   gg_clip_measure_finish(...)     layer sums, non-finite flag, grad_norm
 *   gg_clip_plan, gg_clip_apply_update (own rows only), then the layer_acc
 *   summed over ranks and gg_clip_update_done. */
void gg_clip_set_rows(gg_clip_t *c, size_t lo, size_t hi);
void gg_clip_measure_rows(gg_clip_t *c, float *g, const float *add, const float *params,
                          float scale);
/* gg_clip_measure_rows with an add that is zeroed as it is read (the
 * last addend of a node-shared reduction, in the other rank's buffer). */
void gg_clip_measure_rows_take(gg_clip_t *c, float *g, float *add, const float *params,
                               float scale);
void gg_clip_measure_finish(gg_clip_t *c, float scale, gg_clip_result_t *res);
size_t gg_clip_shared_len(const gg_clip_t *c);
void gg_clip_pack(const gg_clip_t *c, double *buf);
void gg_clip_unpack(gg_clip_t *c, const double *buf);

/* The weights were changed outside gg_clip_apply_update (loaded, reset):
 * the next measure reads them again. */
void gg_clip_forget_weights(gg_clip_t *c);

/* Combine --agc, --clip-layer-norm and --clip-norm/--autoclip into
 * row_scale (which includes `scale`); updates the autoclip history
 * (GG_ENOMEM if it cannot grow). Not for non-finite steps. */
int gg_clip_plan(gg_clip_t *c, float scale, gg_clip_result_t *res);

/* Pass 2: clip-value, the optimizer step, the weight clip, --max-norm (each
 * row right after its update) and the update sums (layer_acc) in one pass,
 * over the own rows. Fills res->grad_norm_clipped and
 * res->clipped_fraction. Sums the statistics need only if want_stats (the
 * layer_acc norms are then zero). gg_optim_begin must have been called for
 * this step. */
void gg_clip_apply_update(gg_clip_t *c, gg_optim_t *opt, float *params, const float *g,
                          int want_stats, gg_clip_result_t *res);
/* gg_clip_apply_update that also zeroes the own rows of g, each piece
 * right after the update read it (in cache), so that the next backward pass
 * can accumulate into g (GEMM beta = 1) instead of OpenBLAS first zeroing
 * it in a pass of its own. The weights and optimizer state are the same
 * bits; the update sums are added in pieces of GG_CLIP_TAKE_CHUNK. */
#define GG_CLIP_TAKE_CHUNK 4096
void gg_clip_apply_update_take(gg_clip_t *c, gg_optim_t *opt, float *params, float *g,
                               int want_stats, gg_clip_result_t *res);

/* res->grad_norm_clipped (with --clip-value) and res->clipped_fraction from
 * layer_acc, after it was summed over the ranks of a sharded update. */
void gg_clip_update_done(const gg_clip_t *c, gg_clip_result_t *res);

/* Room for n norms in the autoclip history, so that no step allocates (a
 * failed allocation would be one rank's alone, in the middle of a step):
 * the trainer reserves its total steps up front. */
int gg_clip_reserve_history(gg_clip_t *c, size_t n);

/* The autoclip history for checkpoints: n values, sorted. */
int gg_clip_set_history(gg_clip_t *c, const double *v, size_t n);

/* Percentile p in [0, 100] of sorted v[0..n) with linear interpolation
 * (numpy.percentile's default). n > 0. */
double gg_percentile_sorted(const double *v, size_t n, double p);

/* Histogram of log2 |g_averaged| per layer (of the own rows' values):
 * bin k counts values with
 * floor(log2 |g|) = GG_HIST_LO + k, clamped to the end bins (zeros in bin
 * 0). hist is (L, GG_HIST_BINS). */
#define GG_HIST_BINS 64
#define GG_HIST_LO (-48)
void gg_clip_histogram(const gg_clip_t *c, const float *g, float scale, uint32_t *hist);

#endif
