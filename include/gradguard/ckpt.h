/* ckpt.h — checkpoint files in the contract's layout:
 *
 *   /                      attributes format="gradguard.checkpoint",
 *                          format_version=1, step, epoch, samples_seen,
 *                          world_size, seed, layers, activation, loss, config
 *   /model/layer_NN/weight float32 (out, in)    /model/layer_NN/bias (out)
 *   /optimizer/layer_NN/{weight,bias}/SLOT      same shapes (SLOT = exp_avg, ...)
 *                          group attribute t (steps taken), kind
 *   /state                 attributes of the run's position (batch_in_epoch,
 *                          batch, n_samples, n_skipped) and the dataset
 *                          autoclip_history (float64, sorted)
 *   /stats                 the newest statistics row, named as in stats.h5
 *                          (/stats/step [1], /stats/layers/grad_norm [1, L], ...)
 *
 * Every dataset is chunked with the Fletcher32 checksum filter, so a
 * corrupted byte fails the read. Writing is atomic: the file is written as
 * PATH.tmp-<pid>, flushed, fsync'ed, renamed over PATH, and the folder is
 * fsync'ed; a reader never sees a half-written checkpoint under its name.
 * These functions are NOT collective: the trainer has rank 0 write and
 * agrees on the outcome.
 */
#ifndef GRADGUARD_CKPT_H
#define GRADGUARD_CKPT_H

#include <stdint.h>

#include "gradguard/nn.h"
#include "gradguard/optim.h"

struct gg_stats_s;

typedef struct {
  long step;           /* optimizer steps done */
  long epoch;          /* epoch of the next step (0-based) */
  long batch_in_epoch; /* global batch index of the next step inside its epoch */
  int64_t samples_seen;
  int world_size;
  uint64_t seed;
  const char *config;  /* resolved configuration as INI text (write) */
  long batch;          /* global batch the position counts in */
  int64_t n_samples;   /* samples of the training set */
  long n_skipped;      /* non-finite steps so far */
  double *autoclip;    /* sorted autoclip history (write: borrowed; read: malloc'ed, caller frees) */
  size_t n_autoclip;
  const struct gg_stats_s *stats; /* write only: its newest row goes to /stats (may be NULL) */
} gg_ckpt_meta_t;

/* Write params (arch->n_params) and, if opt != NULL, the optimizer state. */
int gg_ckpt_write(const char *path, const gg_arch_t *arch, const float *params,
                  const gg_optim_t *opt, const gg_ckpt_meta_t *meta);

/* The architecture stored in a checkpoint: widths (up to max_widths),
 * activation and loss. GG_ENOINPUT / GG_EDATA. */
int gg_ckpt_read_arch(const char *path, int *widths, int *n_widths, int max_widths,
                      gg_act_t *act, gg_loss_t *loss);

/* Read the weights into params, checking every shape against arch
 * (GG_EDATA naming both shapes on mismatch; GG_EDATA on checksum failure). */
int gg_ckpt_read_params(const char *path, const gg_arch_t *arch, float *params);

/* Read the optimizer state and meta (config not returned; autoclip
 * history malloc'ed into meta->autoclip) for a resume; the optimizer kind
 * must match. */
int gg_ckpt_read_state(const char *path, const gg_arch_t *arch, gg_optim_t *opt,
                       gg_ckpt_meta_t *meta);

/* Silence HDF5's automatic error printing (our messages say it better);
 * call once per process. */
void gg_h5_quiet(void);

#endif
