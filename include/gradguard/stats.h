/* stats.h — the per-step gradient statistics of the contract's stats.h5,
 * buffered in memory in columns, ready for the HDF5 writer to append.
 *
 * One row per recorded step (every --stats-every steps); the per-layer
 * columns are (rows, L) row-major; histograms (every --hist-every steps,
 * and step 1) are (h, L, 64) with their steps in hist_step. The buffer has
 * a fixed capacity allocated once: the writer drains it (gg_stats_clear)
 * before it fills, so recording never allocates in the training loop.
 */
#ifndef GRADGUARD_STATS_H
#define GRADGUARD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gradguard/clip.h"

/* Per-layer columns, in the order of the contract's /layers group. */
enum {
  GG_STAT_GRAD_NORM,    /* ||g_l|| of the averaged gradient, before clipping */
  GG_STAT_GRAD_MAX_ABS, /* max |g_l| */
  GG_STAT_WEIGHT_NORM,  /* ||w_l|| after the update */
  GG_STAT_UPDATE_RATIO, /* ||w_l' - w_l|| / ||w_l|| */
  GG_STAT_SATURATION,   /* fraction of (sample, unit) with activation derivative < 1e-3 */
  GG_STAT__COUNT
};
extern const char *const gg_stat_names[GG_STAT__COUNT];

typedef struct gg_stats_s {
  int n_layers;
  size_t cap, n;       /* rows capacity / used */
  int64_t *step;       /* (cap) */
  float *loss, *lr, *grad_norm, *grad_norm_clipped, *clip_coef, *clipped_fraction; /* (cap) */
  uint8_t *nonfinite;  /* (cap) */
  float *layer[GG_STAT__COUNT]; /* each (cap, L) */
  size_t hist_cap, hist_n;
  int64_t *hist_step;  /* (hist_cap) */
  uint32_t *hist;      /* (hist_cap, L, GG_HIST_BINS) */
  /* the newest row, kept after a clear for checkpoints and printing */
  int64_t last_step;
  void *mem;           /* the one allocation behind every column */
} gg_stats_t;

int gg_stats_init(gg_stats_t *s, int n_layers, size_t cap, size_t hist_cap);
void gg_stats_free(gg_stats_t *s);
void gg_stats_clear(gg_stats_t *s); /* drop buffered rows (after writing them) */

/* Append a row from the step's results: loss, lr, the clip results and the
 * clip's per-layer sums; sat is (L) saturated counts and sat_total (L) the
 * (sample, unit) pairs they were counted over. Returns 0, or GG_EINTERNAL
 * when the buffer is full (the trainer drains it in time). */
int gg_stats_record(gg_stats_t *s, int64_t step, double loss, double lr,
                    const gg_clip_result_t *res, const gg_clip_t *clip, const double *sat,
                    const double *sat_total);
/* Append a histogram (L, GG_HIST_BINS) for step. */
int gg_stats_record_hist(gg_stats_t *s, int64_t step, const uint32_t *hist);

/* Print the newest row as a per-layer table (for --print-stats). */
void gg_stats_print(const gg_stats_t *s, FILE *out);

#endif
