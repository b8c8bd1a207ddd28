/* stats.c — column buffers of the gradient statistics (see stats.h). */
#include "gradguard/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradguard/error.h"

const char *const gg_stat_names[GG_STAT__COUNT] = {"grad_norm", "grad_max_abs", "weight_norm",
                                                   "update_ratio", "saturation"};

int gg_stats_init(gg_stats_t *s, int n_layers, size_t cap, size_t hist_cap) {
  memset(s, 0, sizeof *s);
  size_t L = (size_t)n_layers;
  /* one allocation, carved into 8-byte-aligned columns */
  size_t bytes = cap * (sizeof(int64_t) + 6 * sizeof(float) + 1 + 8) +
                 GG_STAT__COUNT * cap * L * sizeof(float) + hist_cap * sizeof(int64_t) +
                 hist_cap * L * GG_HIST_BINS * sizeof(uint32_t) + 16 * 8;
  char *p = calloc(1, bytes);
  if (!p) return gg_err_set(GG_ENOMEM, "out of memory for the statistics buffer");
  s->mem = p;
#define GG__CARVE(ptr, count)                                   \
  do {                                                          \
    (ptr) = (void *)p;                                          \
    p += (((count) * sizeof *(ptr)) + 7) & ~(size_t)7;          \
  } while (0)
  GG__CARVE(s->step, cap);
  GG__CARVE(s->loss, cap);
  GG__CARVE(s->lr, cap);
  GG__CARVE(s->grad_norm, cap);
  GG__CARVE(s->grad_norm_clipped, cap);
  GG__CARVE(s->clip_coef, cap);
  GG__CARVE(s->clipped_fraction, cap);
  GG__CARVE(s->nonfinite, cap);
  for (int k = 0; k < GG_STAT__COUNT; k++) GG__CARVE(s->layer[k], cap * L);
  GG__CARVE(s->hist_step, hist_cap);
  GG__CARVE(s->hist, hist_cap * L * GG_HIST_BINS);
#undef GG__CARVE
  s->n_layers = n_layers;
  s->cap = cap;
  s->hist_cap = hist_cap;
  s->last_step = -1;
  return 0;
}

void gg_stats_free(gg_stats_t *s) {
  free(s->mem);
  memset(s, 0, sizeof *s);
}

void gg_stats_clear(gg_stats_t *s) {
  if (s->n > 0) {
    /* keep the newest row at index 0 for printing and checkpoints */
    size_t L = (size_t)s->n_layers, i = s->n - 1;
    s->step[0] = s->step[i];
    s->loss[0] = s->loss[i];
    s->lr[0] = s->lr[i];
    s->grad_norm[0] = s->grad_norm[i];
    s->grad_norm_clipped[0] = s->grad_norm_clipped[i];
    s->clip_coef[0] = s->clip_coef[i];
    s->clipped_fraction[0] = s->clipped_fraction[i];
    s->nonfinite[0] = s->nonfinite[i];
    for (int k = 0; k < GG_STAT__COUNT; k++) memmove(s->layer[k], s->layer[k] + i * L, L * sizeof(float));
  }
  s->n = 0;
  s->hist_n = 0;
}

int gg_stats_record(gg_stats_t *s, int64_t step, double loss, double lr,
                    const gg_clip_result_t *res, const gg_clip_t *clip, const double *sat,
                    const double *sat_total) {
  if (s->n >= s->cap) return gg_err_set(GG_EINTERNAL, "statistics buffer full at step %lld", (long long)step);
  size_t i = s->n++, L = (size_t)s->n_layers;
  s->step[i] = step;
  s->loss[i] = (float)loss;
  s->lr[i] = (float)lr;
  s->grad_norm[i] = (float)res->grad_norm;
  s->nonfinite[i] = (uint8_t)(res->nonfinite != 0);
  s->grad_norm_clipped[i] = res->nonfinite ? NAN : (float)res->grad_norm_clipped;
  s->clip_coef[i] = res->nonfinite ? NAN : (float)res->clip_coef;
  s->clipped_fraction[i] = res->nonfinite ? NAN : (float)res->clipped_fraction;
  for (size_t l = 0; l < L; l++) {
    const gg_update_acc_t *acc = &clip->layer_acc[l];
    s->layer[GG_STAT_GRAD_NORM][i * L + l] = (float)sqrt(clip->layer_g2[l]);
    s->layer[GG_STAT_GRAD_MAX_ABS][i * L + l] = clip->layer_maxabs[l];
    /* on a skipped step the weights did not move: the sums are of the last update */
    s->layer[GG_STAT_WEIGHT_NORM][i * L + l] = (float)sqrt(acc->w2);
    s->layer[GG_STAT_UPDATE_RATIO][i * L + l] =
        res->nonfinite ? 0.0f : (float)(acc->wold2 > 0 ? sqrt(acc->dw2 / acc->wold2) : 0.0);
    s->layer[GG_STAT_SATURATION][i * L + l] =
        (float)(sat && sat_total && sat_total[l] > 0 ? sat[l] / sat_total[l] : 0.0);
  }
  s->last_step = step;
  return 0;
}

int gg_stats_record_hist(gg_stats_t *s, int64_t step, const uint32_t *hist) {
  if (s->hist_n >= s->hist_cap) return gg_err_set(GG_EINTERNAL, "histogram buffer full at step %lld", (long long)step);
  size_t L = (size_t)s->n_layers;
  s->hist_step[s->hist_n] = step;
  memcpy(s->hist + s->hist_n * L * GG_HIST_BINS, hist, L * GG_HIST_BINS * sizeof *hist);
  s->hist_n++;
  return 0;
}

void gg_stats_print(const gg_stats_t *s, FILE *out) {
  if (s->last_step < 0) return;
  size_t i = s->n ? s->n - 1 : 0, L = (size_t)s->n_layers;
  fprintf(out, "step %lld  loss %.5g  |g| %.4g -> %.4g  coef %.4g  clipped %.3g%%%s\n",
          (long long)s->step[i], s->loss[i], s->grad_norm[i], s->grad_norm_clipped[i],
          s->clip_coef[i], 100.0 * s->clipped_fraction[i], s->nonfinite[i] ? "  NON-FINITE" : "");
  fprintf(out, "  layer   grad_norm  grad_max_abs  weight_norm  update_ratio  saturation\n");
  for (size_t l = 0; l < L; l++)
    fprintf(out, "  %5zu  %10.3e  %12.3e  %11.4g  %12.3e  %10.3f\n", l,
            s->layer[GG_STAT_GRAD_NORM][i * L + l], s->layer[GG_STAT_GRAD_MAX_ABS][i * L + l],
            s->layer[GG_STAT_WEIGHT_NORM][i * L + l], s->layer[GG_STAT_UPDATE_RATIO][i * L + l],
            s->layer[GG_STAT_SATURATION][i * L + l]);
  fflush(out);
}
