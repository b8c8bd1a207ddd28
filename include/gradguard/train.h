/* train.h — the data-parallel training loop.
 *
 * Every rank holds a full replica. One step, on every rank alike:
 *   gather this rank's slice of the global batch -> forward -> loss ->
 *   backward (gradient SUM of the slice into the flat gradient buffer) ->
 *   ONE in-place allreduce of the gradient buffer, whose tail also carries
 *   the loss sum, correct count, stop flag and saturation counts ->
 *   measure (scale 1/B: the global-batch mean) -> non-finite policy ->
 *   clip plan -> fused clip/optimizer/weight-clip/statistics pass.
 * All ranks see the same reduced buffer and take the same decisions, so the
 * replicas stay identical without broadcasting weights.
 *
 * Sharded update (--shard-update, the default for nets of 65536+ parameters
 * on 2+ ranks without --deterministic): the rows of the weights (clip.h)
 * are split into one contiguous block per rank. The gradient is
 * reduce-scattered (each rank gets the sum of its block only); each rank
 * measures its rows, and one small allreduce of the row sums and the extras
 * gives every rank the same norms, so all take the same clipping and
 * non-finite decisions; each rank updates its block (its part of the
 * optimizer state is the only one kept current) and an all-gather of the
 * parameters makes the replicas whole again. The same data crosses the
 * network as in one allreduce, but the measure pass and the optimizer run
 * on 1/P of the parameters. A checkpoint gathers the optimizer state to
 * rank 0 first.
 *
 * Functions taking a trainer are COLLECTIVE over trainer->comm.
 */
#ifndef GRADGUARD_TRAIN_H
#define GRADGUARD_TRAIN_H

#include <stdint.h>

#include "gradguard/clip.h"
#include "gradguard/comm.h"
#include "gradguard/config.h"
#include "gradguard/data.h"
#include "gradguard/nn.h"
#include "gradguard/optim.h"
#include "gradguard/stats.h"
#include "gradguard/statsfile.h"

/* Phases of a step, timed when GG_PROFILE is set in the environment (rank
 * 0 prints ms/step of each at the end): where a step's time goes, without a
 * profiler. */
enum { GG_PROF_GRAD, GG_PROF_REDUCE, GG_PROF_MEASURE, GG_PROF_UPDATE, GG_PROF_GATHER,
       GG_PROF_STATS, GG_PROF_N };

/* Offsets of the extras after the gradient in the reduced buffer. */
enum { GG_EXTRA_LOSS, GG_EXTRA_CORRECT, GG_EXTRA_STOP, GG_EXTRA_IOERR, GG_EXTRA_SAT };

typedef struct {
  const gg_config_t *cfg;
  const gg_comm_t *comm;
  gg_arch_t arch;
  float *params;        /* (n_params) flat parameters, layer views in arch */
  float *grads;         /* (n_params + n_extra): gradient sum, then extras */
  size_t n_extra;       /* GG_EXTRA_SAT + L */
  int grads_zero;       /* grads[0, n_params) are all 0: the update zeroed what it
                         * read, so the next backward pass accumulates (GEMM beta
                         * 1) instead of OpenBLAS zeroing the buffer first */
  gg_optim_t opt;
  gg_clip_t clip;
  gg_stats_t stats;
  gg_statsfile_t sfile; /* RUN/stats.h5, open on rank 0 only */
  gg_ws_t ws;           /* activations for one local batch */
  gg_data_t train, val;
  int has_val;
  gg_sampler_t sampler;
  int local_batch;      /* batch / ranks */
  float *xb, *tb;       /* (local_batch, D), (local_batch, K) */
  int32_t *lb;          /* (local_batch) */
  double *sat, *sat_total; /* (L) saturation counts of the step */
  uint32_t *hist;       /* (L, 64) histogram scratch */
  /* --shard-update: rank r measures and updates rows [sh_row[r], sh_row[r+1])
   * of the clip rows = parameters [sh_off[r], sh_off[r] + sh_cnt[r]) */
  int sharded;
  size_t *sh_row;       /* (size + 1) */
  int *sh_cnt, *sh_off; /* (size) */
  float *sh_recv;       /* (max sh_cnt) the reduce-scatter's last addend */
  double *sh_small;     /* (gg_clip_shared_len + n_extra) the row sums and extras, summed */
  gg_shm_t shm;         /* sharded on one node: params and grads live here (comm.h) and
                         * the reduce-scatter and all-gather become barriers; GG_SHM=0
                         * keeps the MPI path */
  int det_shards;       /* --deterministic: micro-shards M of the global batch */
  float **det_stack;    /* partial tree sums, views into det_scratch */
  float *det_scratch;   /* exchange buffer, then the stack, (n_params + n_extra) each */
  /* position */
  long step;            /* steps done */
  long total_steps;
  long epoch, batch_in_epoch; /* of the next step */
  long n_epochs;        /* epochs the run spans (for display) */
  int64_t samples_seen;
  long n_skipped;       /* non-finite steps skipped or zeroed */
  long resumed_from;    /* step of the checkpoint resumed from, -1 for a fresh run */
  double step_seconds;  /* wall time inside gg_trainer_step, summed */
  int profile;          /* GG_PROFILE set: time the phases */
  double prof[GG_PROF_N]; /* seconds per phase, summed over the steps */
  /* results of the last step */
  double loss, accuracy, lr;
  gg_clip_result_t res;
  volatile int *stop_request; /* set by a signal handler (may be NULL) */
  int pending_rc;       /* rank 0: a stats.h5 write failed; the next step's
                         * reduction tells every rank (no extra collective) */
} gg_trainer_t;

/* Collective. Loads data, builds the model (init or --init-from), agrees
 * on the outcome; on error every rank returns the same code and the rank
 * that failed holds the message (*failed_rank). */
int gg_trainer_init(gg_trainer_t *t, const gg_config_t *cfg, const gg_comm_t *comm,
                    int *failed_rank);
void gg_trainer_free(gg_trainer_t *t);

/* Collective. One optimizer step. GG_ENONFINITE under --nonfinite abort. */
int gg_trainer_step(gg_trainer_t *t);

/* Collective. Mean loss and accuracy (NAN for mse) of a whole dataset. */
int gg_trainer_evaluate(gg_trainer_t *t, const gg_data_t *d, double *loss, double *accuracy);

/* Rank 0 (not collective): with GG_PROFILE, one line of ms/step per phase
 * of the steps run so far. */
void gg_trainer_print_profile(const gg_trainer_t *t, long steps);

/* Collective. The whole run: steps, progress, validation, checkpoints. */
int gg_trainer_run(gg_trainer_t *t, int *failed_rank);

/* Collective. Write RUN/checkpoints/step-%08d.h5 from rank 0 and agree. */
int gg_trainer_checkpoint(gg_trainer_t *t, int *failed_rank);

/* Collective eval over a dataset for `gradguard eval` (no trainer):
 * splits samples over ranks, returns mean loss and accuracy. */
int gg_eval_dataset(const gg_comm_t *comm, const gg_arch_t *arch, const float *params,
                    const gg_data_t *d, double *loss, double *accuracy);

#endif
