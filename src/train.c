/* train.c — the data-parallel training loop (see train.h). */
#include "gradguard/train.h"

#include <cblas.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradguard/ckpt.h"
#include "gradguard/error.h"
#include "gradguard/init.h"
#include "gradguard/log.h"
#include "gradguard/progress.h"

#define GG_STATS_ROWS 1024
#define GG_STATS_HISTS 16
#define GG_DET_MAX_SHARDS 16

/* mkdir -p for the run folder. */
static int gg__mkdirs(const char *path) {
  if (strlen(path) >= GG_PATH_MAX + 32) return errno = ENAMETOOLONG, -1;
  char buf[GG_PATH_MAX + 32];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST) return -1;
  return 0;
}

/* --shard-update: below this many parameters the extra collectives cost
 * more than the work they split (the seed net's step is ~20 us). */
#define GG_SHARD_MIN_PARAMS 65536

/* The row blocks of the ranks, cut where the parameter count is nearest
 * an equal split (rows never straddle ranks: each row's norm is one rank's
 * sum). Not collective: every rank computes the same cut. */
static int gg__shard_setup(gg_trainer_t *t) {
  const gg_config_t *cfg = t->cfg;
  const int P = t->comm->size;
  const size_t n = t->arch.n_params, R = t->clip.n_rows;
  if (cfg->shard_update == GG_SHARD_ON && cfg->deterministic)
    return gg_err_set(GG_EUSAGE, "--shard-update on cannot be combined with --deterministic");
  int want = cfg->shard_update == GG_SHARD_ON ||
             (cfg->shard_update == GG_SHARD_AUTO && !cfg->deterministic && n >= GG_SHARD_MIN_PARAMS);
  if (!want || P == 1 || n > (size_t)INT_MAX) return 0;
  t->sh_row = calloc((size_t)P + 1, sizeof *t->sh_row);
  t->sh_cnt = calloc((size_t)P, sizeof *t->sh_cnt);
  t->sh_off = calloc((size_t)P, sizeof *t->sh_off);
  t->sh_small = calloc(gg_clip_shared_len(&t->clip) + t->n_extra, sizeof *t->sh_small);
  if (!t->sh_row || !t->sh_cnt || !t->sh_off || !t->sh_small)
    return gg_err_set(GG_ENOMEM, "out of memory for the sharded update");
  const size_t *rb = t->clip.row_begin;
  size_t r = 0, most = 0;
  for (int k = 1; k < P; k++) {
    size_t target = n / (size_t)P * (size_t)k + n % (size_t)P * (size_t)k / (size_t)P;
    while (r < R && rb[r + 1] <= target) r++;
    /* row r straddles the target: cut before or after it, whichever is nearer */
    if (r < R && rb[r + 1] - target < target - rb[r]) r++;
    t->sh_row[k] = r;
  }
  t->sh_row[P] = R;
  for (int k = 0; k < P; k++) {
    t->sh_off[k] = (int)rb[t->sh_row[k]];
    t->sh_cnt[k] = (int)(rb[t->sh_row[k + 1]] - rb[t->sh_row[k]]);
    if ((size_t)t->sh_cnt[k] > most) most = (size_t)t->sh_cnt[k];
  }
  t->sh_recv = malloc((most ? most : 1) * sizeof *t->sh_recv);
  if (!t->sh_recv) return gg_err_set(GG_ENOMEM, "out of memory for the sharded update");
  gg_clip_set_rows(&t->clip, t->sh_row[t->comm->rank], t->sh_row[t->comm->rank + 1]);
  t->sharded = 1;
  return 0;
}

/* Collective, after the weights are agreed: a sharded update whose ranks
 * share one node moves the parameters and the gradients into node-shared
 * memory (gg_comm_shm_init). GG_SHM=0 keeps the MPI path; any rank's 0, or
 * no room in /dev/shm, keeps it for all. */
static int gg__shm_setup(gg_trainer_t *t) {
  if (!t->sharded) return 0;
  const char *e = getenv("GG_SHM");
  const size_t n = t->arch.n_params;
  int rc = gg_comm_shm_init(t->comm, &t->shm, n, n + t->n_extra, !(e && strcmp(e, "0") == 0));
  if (rc || !t->shm.active) return rc;
  if (t->comm->rank == 0) memcpy(t->shm.params, t->params, n * sizeof *t->params);
  if ((rc = gg_comm_shm_sync(t->comm, &t->shm))) return rc;
  free(t->params);
  free(t->grads);
  t->params = t->shm.params;
  t->grads = t->shm.grads[t->comm->rank];
  return 0;
}

/* The node-shared reduce-scatter: once every rank's gradient is complete,
 * add the other ranks' parts of this rank's block into it, in the order of
 * gg_comm_reduce_scatter_sum (own, then ranks r-1, r-2, ...; the same
 * bits), leaving the last addend (rank r+1's) to the measure pass. */
static int gg__shm_reduce(gg_trainer_t *t, float **pending) {
  const int P = t->comm->size, r = t->comm->rank;
  int rc = gg_comm_shm_sync(t->comm, &t->shm);
  if (rc) return rc;
  const size_t off = (size_t)t->sh_off[r], cnt = (size_t)t->sh_cnt[r];
  float *restrict own = t->grads + off;
  /* each part is read by this rank only: zero it for the next backward
   * pass while it is in cache (see grads_zero) */
  for (int k = 1; k < P - 1; k++) {
    float *restrict src = t->shm.grads[(r - k + P) % P] + off;
    for (size_t i = 0; i < cnt; i++) {
      own[i] += src[i];
      src[i] = 0.0f;
    }
  }
  *pending = t->shm.grads[(r + 1) % P] + off;
  return 0;
}

/* Everything that can fail on one rank alone; the caller agrees. */
static int gg__trainer_setup(gg_trainer_t *t) {
  const gg_config_t *cfg = t->cfg;
  const gg_comm_t *comm = t->comm;
  int rc = gg_arch_init(&t->arch, cfg->widths, cfg->n_widths, cfg->activation, cfg->loss);
  if (rc) return rc;
  if (cfg->batch % comm->size)
    return gg_err_set(GG_EUSAGE, "--batch %ld does not divide over %d ranks (use a multiple of %d)",
                      cfg->batch, comm->size, comm->size);
  /* Test hook: GG_INJECT_FAULT=data:R makes rank R alone fail to read the
   * data, to prove that one rank's error ends the whole job cleanly. */
  const char *inject = getenv("GG_INJECT_FAULT");
  if (inject && strncmp(inject, "data:", 5) == 0 && atoi(inject + 5) == comm->rank)
    return gg_err_set(GG_ENOINPUT, "%s: cannot open: fault injected by GG_INJECT_FAULT", cfg->data);
  if ((rc = gg_data_load(&t->train, cfg->data))) return rc;
  if ((rc = gg_data_check_fit(&t->train, &t->arch, cfg->data))) return rc;
  if (cfg->val_data[0]) {
    if ((rc = gg_data_load(&t->val, cfg->val_data))) return rc;
    if ((rc = gg_data_check_fit(&t->val, &t->arch, cfg->val_data))) return rc;
    t->has_val = 1;
  }
  if ((size_t)cfg->batch > t->train.n)
    return gg_err_set(GG_EUSAGE, "--batch %ld is larger than the %zu samples of %s", cfg->batch,
                      t->train.n, cfg->data);
  if ((rc = gg_sampler_init(&t->sampler, t->train.n, cfg->batch, cfg->seed))) return rc;
  if (cfg->deterministic) {
    /* M micro-shards, independent of the rank count: the largest power of
     * two dividing the batch, at most GG_DET_MAX_SHARDS */
    int M = 1;
    while (M < GG_DET_MAX_SHARDS && cfg->batch % (2 * M) == 0) M *= 2;
    if (comm->size & (comm->size - 1) || M % comm->size)
      return gg_err_set(GG_EUSAGE,
                        "--deterministic needs a power-of-two rank count that divides %d "
                        "(the micro-shards of --batch %ld), not %d ranks",
                        M, cfg->batch, comm->size);
    t->det_shards = M;
  }

  const gg_arch_t *a = &t->arch;
  int L = a->n_layers, D = a->widths[0], K = a->widths[L];
  t->local_batch = (int)(cfg->batch / comm->size);
  t->n_extra = GG_EXTRA_SAT + (size_t)L;
  t->params = calloc(a->n_params, sizeof *t->params);
  t->grads = calloc(a->n_params + t->n_extra, sizeof *t->grads);
  t->grads_zero = 1; /* calloc: the first backward pass may accumulate */
  t->xb = malloc((size_t)t->local_batch * (size_t)D * sizeof *t->xb);
  t->tb = malloc((size_t)t->local_batch * (size_t)K * sizeof *t->tb);
  t->lb = malloc((size_t)t->local_batch * sizeof *t->lb);
  t->sat = calloc((size_t)L, sizeof *t->sat);
  t->sat_total = calloc((size_t)L, sizeof *t->sat_total);
  t->hist = calloc((size_t)L * GG_HIST_BINS, sizeof *t->hist);
  if (!t->params || !t->grads || !t->xb || !t->tb || !t->lb || !t->sat || !t->sat_total || !t->hist)
    return gg_err_set(GG_ENOMEM, "out of memory for %zu parameters", a->n_params);
  if (cfg->deterministic) {
    /* stack of partial sums (log2 of the local shards) + the exchange buffer */
    int depth = 0;
    for (int q = t->det_shards / comm->size; q > 1; q /= 2) depth++;
    size_t len = a->n_params + t->n_extra;
    t->det_stack = calloc((size_t)depth + 1, sizeof *t->det_stack);
    t->det_scratch = malloc(((size_t)depth + 1) * len * sizeof(float));
    if (!t->det_stack || !t->det_scratch)
      return gg_err_set(GG_ENOMEM, "out of memory for the deterministic reduction buffers");
    for (int q = 0; q < depth; q++) t->det_stack[q] = t->det_scratch + (size_t)(q + 1) * len;
  }
  int cap = t->local_batch > 256 ? t->local_batch : 256;
  if ((rc = gg_ws_init(&t->ws, a, cap))) return rc;
  for (int l = 0; l < L; l++) t->sat_total[l] = (double)cfg->batch * a->widths[l + 1];

  if (cfg->init_from[0]) rc = gg_ckpt_read_params(cfg->init_from, a, t->params);
  else rc = gg_init_params(a, &cfg->init, cfg->seed, t->params);
  if (rc) return rc;
  if ((rc = gg_optim_init(&t->opt, cfg->optimizer, a->n_params, cfg->momentum, cfg->beta1,
                          cfg->beta2, cfg->eps, cfg->weight_decay)))
    return rc;
  gg_clip_cfg_t cc = {cfg->clip_norm, cfg->clip_value, cfg->clip_layer_norm, cfg->agc,
                      cfg->autoclip, cfg->weight_clip, cfg->max_norm};
  if ((rc = gg_clip_init(&t->clip, a, &cc))) return rc;
  if ((rc = gg_stats_init(&t->stats, L, GG_STATS_ROWS, GG_STATS_HISTS))) return rc;
  if ((rc = gg__shard_setup(t))) return rc;

  if (comm->rank == 0) {
    char ck[GG_PATH_MAX + 16];
    snprintf(ck, sizeof ck, "%s/checkpoints", cfg->run_dir);
    if (gg__mkdirs(ck))
      return gg_err_set(GG_ECANTCREAT, "%s: cannot create run folder: %s", ck, strerror(errno));
  }
  long spe = t->sampler.steps_per_epoch;
  t->total_steps = cfg->steps > 0 ? cfg->steps : cfg->epochs * spe;
  t->n_epochs = (t->total_steps + spe - 1) / spe;
  /* one norm a step: no allocation inside the steps (up to 4 Mi steps,
   * 32 MB; a longer run grows it, rarely) */
  size_t hist_steps = t->total_steps < (1L << 22) ? (size_t)t->total_steps : (size_t)1 << 22;
  if (cfg->autoclip > 0 && (rc = gg_clip_reserve_history(&t->clip, hist_steps))) return rc;
  return 0;
}

/* Rank 0: RUN/stats.h5, new for a fresh run, cut back to the resumed step
 * otherwise. */
static int gg__open_statsfile(gg_trainer_t *t) {
  int L = t->arch.n_layers;
  char path[GG_PATH_MAX + 16], (*names)[24] = malloc((size_t)L * sizeof *names);
  const char **ptrs = malloc((size_t)L * sizeof *ptrs);
  if (!names || !ptrs) {
    free(names);
    free(ptrs);
    return gg_err_set(GG_ENOMEM, "out of memory");
  }
  for (int l = 0; l < L; l++) {
    snprintf(names[l], sizeof names[l], "layer_%02d", l);
    ptrs[l] = names[l];
  }
  snprintf(path, sizeof path, "%s/stats.h5", t->cfg->run_dir);
  int rc = gg_statsfile_open(&t->sfile, path, L, ptrs, t->resumed_from);
  free(names);
  free(ptrs);
  return rc;
}

/* Rank 0: append the buffered statistics rows to stats.h5, and flush it
 * when `flush` or when the last flush is older than 2 s. Other ranks just
 * drop their (identical) buffer. */
static int gg__drain_stats(gg_trainer_t *t, int flush) {
  int rc = 0;
  if (t->comm->rank == 0 && t->sfile.file >= 0) {
    if (t->stats.n || t->stats.hist_n) rc = gg_statsfile_append(&t->sfile, &t->stats);
    if (!rc && (flush || gg_now() - t->sfile.last_flush >= 2.0)) rc = gg_statsfile_flush(&t->sfile);
  }
  gg_stats_clear(&t->stats);
  return rc;
}

/* Load weights, optimizer state and position from one checkpoint. *damaged
 * tells a file that cannot be read back (worth trying an older one) from
 * one that reads fine but does not fit this run (a hard error). */
static int gg__resume_from(gg_trainer_t *t, const char *path, int *damaged) {
  *damaged = 1;
  const gg_arch_t *a = &t->arch;
  int widths[GG_MAX_WIDTHS], nw = 0;
  gg_act_t act;
  gg_loss_t loss;
  int rc = gg_ckpt_read_arch(path, widths, &nw, GG_MAX_WIDTHS, &act, &loss);
  if (rc) return rc;
  *damaged = 0;
  int same = nw == a->n_layers + 1 && act == a->act && loss == a->loss;
  for (int i = 0; same && i < nw; i++) same = widths[i] == a->widths[i];
  if (!same) {
    char have[512] = "", want[512] = "";
    for (int i = 0, p = 0; i < nw && p < 480; i++) p += snprintf(have + p, sizeof have - (size_t)p, "%s%d", i ? "," : "", widths[i]);
    for (int i = 0, p = 0; i <= a->n_layers && p < 480; i++) p += snprintf(want + p, sizeof want - (size_t)p, "%s%d", i ? "," : "", a->widths[i]);
    return gg_err_set(GG_EDATA, "%s: checkpoint is a %s %s/%s network but this run is %s %s/%s",
                      path, have, gg_act_name(act), gg_loss_name(loss), want, gg_act_name(a->act),
                      gg_loss_name(a->loss));
  }
  *damaged = 1;
  if ((rc = gg_ckpt_read_params(path, a, t->params))) return rc;
  gg_ckpt_meta_t meta;
  if ((rc = gg_ckpt_read_state(path, a, &t->opt, &meta))) return rc;
  *damaged = 0;
  if (meta.batch && meta.batch != t->cfg->batch)
    rc = gg_err_set(GG_EUSAGE, "%s: was trained with --batch %ld; resume with the same global batch (not %ld)",
                    path, meta.batch, t->cfg->batch);
  else if (meta.n_samples && (size_t)meta.n_samples != t->train.n)
    rc = gg_err_set(GG_EDATA, "%s: was trained on %lld samples but %s has %zu", path,
                    (long long)meta.n_samples, t->cfg->data, t->train.n);
  else if (meta.n_autoclip)
    rc = gg_clip_set_history(&t->clip, meta.autoclip, meta.n_autoclip);
  free(meta.autoclip);
  if (rc) return rc;
  t->step = meta.step;
  t->epoch = meta.epoch;
  t->batch_in_epoch = meta.batch_in_epoch;
  t->samples_seen = meta.samples_seen;
  t->n_skipped = meta.n_skipped;
  t->resumed_from = meta.step;
  return 0;
}

/* --resume: a path, or auto = the newest checkpoint of the run folder that
 * reads back intact (a damaged newest one is reported and skipped). */
static int gg__resume(gg_trainer_t *t) {
  const gg_config_t *cfg = t->cfg;
  if (strcmp(cfg->resume, "none") == 0) return 0;
  int damaged;
  if (strcmp(cfg->resume, "auto") != 0) return gg__resume_from(t, cfg->resume, &damaged);
  char dir[GG_PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/checkpoints", cfg->run_dir);
  DIR *dh = opendir(dir);
  long steps[4096];
  int n = 0;
  if (dh) {
    struct dirent *e;
    while ((e = readdir(dh)) && n < 4096) {
      long st;
      char tail[8];
      if (sscanf(e->d_name, "step-%8ld.h%1[5]", &st, tail) == 2 && strlen(e->d_name) == 16) steps[n++] = st;
    }
    closedir(dh);
  }
  while (n > 0) {
    int best = 0;
    for (int i = 1; i < n; i++)
      if (steps[i] > steps[best]) best = i;
    char path[GG_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/step-%08ld.h5", dir, steps[best]);
    int rc = gg__resume_from(t, path, &damaged);
    if (rc == 0) {
      GG_LOG0(1, "resuming from %s (step %ld)\n", path, t->step);
      return 0;
    }
    if (rc != GG_EDATA || !damaged) return rc;
    if (gg_log_rank() == 0) GG_ERRLOG("warning: %s; trying the previous checkpoint", gg_err_msg(rc));
    /* fresh state before the next try */
    memset(t->opt.state, 0, (size_t)t->opt.n_slots * t->opt.n * sizeof(float));
    t->opt.t = 0;
    steps[best] = steps[--n];
  }
  GG_LOG0(1, "--resume auto: no checkpoint in %s, starting fresh\n", dir);
  if (cfg->init_from[0]) return gg_ckpt_read_params(cfg->init_from, &t->arch, t->params);
  return gg_init_params(&t->arch, &cfg->init, cfg->seed, t->params);
}

/* OpenBLAS picks its kernels from the CPU model it knows; on a newer CPU
 * (0.3.21 on Sapphire Rapids, say) it falls back to the generic SSE3
 * "Prescott" ones, 4-5x slower than what the CPU can do. The GEMMs are
 * most of a step: say so once, with the fix (rank 0; the environment
 * variable must be set before the program starts, so it is the user's). */
static void gg__check_blas_kernel(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char *core = openblas_get_corename();
  if (!core || strcasecmp(core, "prescott") != 0 || getenv("OPENBLAS_CORETYPE")) return;
  const char *better = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
                           ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                                                                                          : NULL;
  if (better)
    GG_LOG0(1, "note: OpenBLAS does not know this CPU and uses its generic Prescott kernels; "
               "OPENBLAS_CORETYPE=%s in the environment (e.g. mpirun -x OPENBLAS_CORETYPE=%s) "
               "selects the kernels this CPU supports, several times faster GEMMs\n",
            better, better);
#endif
}

int gg_trainer_init(gg_trainer_t *t, const gg_config_t *cfg, const gg_comm_t *comm,
                    int *failed_rank) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->resumed_from = -1;
  t->sfile.file = -1;
  t->comm = comm;
  const char *prof = getenv("GG_PROFILE");
  t->profile = prof && *prof && strcmp(prof, "0") != 0;
  /* --deterministic runs BLAS on one thread unless told otherwise, so no
   * library-internal split can depend on the rank count */
  int threads = cfg->threads > 0     ? (int)cfg->threads
                : cfg->deterministic ? 1
                                     : gg_comm_default_threads(comm);
  openblas_set_num_threads(threads);
#if defined(__SSE__)
  /* FTZ | DAZ in this thread (which runs the 1-thread BLAS and every pass
   * of ours): once a model fits, gradients underflow to subnormals, and
   * each subnormal operation costs ~100 cycles. */
  if (cfg->flush_denormals) _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
  int rc = gg__trainer_setup(t);
  if (!rc) rc = gg__resume(t);
  if (!rc && t->step > t->total_steps)
    rc = gg_err_set(GG_EUSAGE, "the checkpoint is at step %ld, past the %ld steps of this run",
                    t->step, t->total_steps);
  if (!rc && comm->rank == 0) rc = gg__open_statsfile(t);
  rc = gg_comm_agree(comm, rc, failed_rank);
  if (rc) return rc;
  /* Every rank computed the same initial weights; prove it once (cheap). */
  if (!gg_comm_identical(comm, t->params, t->arch.n_params * sizeof *t->params)) {
    if (failed_rank) *failed_rank = 0;
    return gg_err_set(GG_EINTERNAL, "initial weights differ between ranks");
  }
  if ((rc = gg__shm_setup(t))) {
    if (failed_rank) *failed_rank = 0;
    return rc;
  }
  GG_LOG0(2, "threads per rank: %d; optimizer update %s\n", threads,
          !t->sharded       ? "on every rank"
          : t->shm.active ? "sharded over the ranks (--shard-update), in node-shared memory"
                          : "sharded over the ranks (--shard-update)");
  gg__check_blas_kernel();
  return 0;
}

void gg_trainer_free(gg_trainer_t *t) {
  gg_arch_free(&t->arch);
  if (t->shm.active) {
    gg_comm_shm_free(&t->shm); /* collective, as the whole trainer's end is */
  } else {
    free(t->params);
    free(t->grads);
  }
  gg_optim_free(&t->opt);
  gg_clip_free(&t->clip);
  if (t->comm && t->comm->rank == 0) gg_statsfile_close(&t->sfile);
  gg_stats_free(&t->stats);
  gg_ws_free(&t->ws);
  gg_data_free(&t->train);
  gg_data_free(&t->val);
  gg_sampler_free(&t->sampler);
  free(t->xb);
  free(t->tb);
  free(t->lb);
  free(t->sat);
  free(t->sat_total);
  free(t->hist);
  free(t->det_stack);
  free(t->det_scratch);
  free(t->sh_row);
  free(t->sh_cnt);
  free(t->sh_off);
  free(t->sh_recv);
  free(t->sh_small);
  memset(t, 0, sizeof *t);
}

/* Is step s (1-based) a statistics / histogram step? */
static int gg__every(long s, long every) { return every > 0 && (s == 1 || s % every == 0); }

/* Forward, loss and backward of m samples idx into grads (the gradient SUM;
 * extras not touched); adds the correct count and, if want_stats, the
 * saturation counts. Returns the loss sum. */
static double gg__shard_grad(gg_trainer_t *t, const uint32_t *idx, int m, float *grads,
                             int accumulate, int want_stats, long *correct) {
  const gg_arch_t *a = &t->arch;
  const int L = a->n_layers, K = a->widths[L];
  gg_data_gather(&t->train, idx, m, t->xb, t->tb, t->lb);
  gg_nn_forward(a, t->params, t->xb, m, &t->ws);
  double lsum = gg_loss_eval(a->loss, t->ws.z[L - 1], m, K, t->tb, t->lb, t->ws.d0, correct);
  gg_nn_backward(a, t->params, t->xb, m, &t->ws, t->ws.d0, grads, accumulate,
                 want_stats ? t->sat : NULL);
  return lsum;
}

/* GG_PROFILE: add the time since the last mark to phase ph */
#define GG__MARK(ph)                      \
  do {                                    \
    if (t->profile) {                     \
      double now_ = gg_now();             \
      t->prof[ph] += now_ - t_mark;       \
      t_mark = now_;                      \
    }                                     \
  } while (0)

void gg_trainer_print_profile(const gg_trainer_t *t, long steps) {
  static const char *names[GG_PROF_N] = {"forward/backward", "reduce", "measure", "update",
                                         "gather", "statistics"};
  if (!t->profile || steps <= 0 || t->comm->rank != 0) return;
  char line[512];
  int p = snprintf(line, sizeof line, "profile (rank 0, ms/step):");
  for (int i = 0; i < GG_PROF_N && p < (int)sizeof line; i++)
    p += snprintf(line + p, sizeof line - (size_t)p, "  %s %.3f", names[i], 1e3 * t->prof[i] / (double)steps);
  fprintf(stderr, "%s\n", line);
}

int gg_trainer_step(gg_trainer_t *t) {
  double t_mark = t->profile ? gg_now() : 0;
  const gg_config_t *cfg = t->cfg;
  const gg_arch_t *a = &t->arch;
  const int L = a->n_layers, K = a->widths[L], m = t->local_batch;
  const size_t n = a->n_params;
  const long s = t->step + 1, B = cfg->batch;
  int want_stats = gg__every(s, cfg->stats_every) || (cfg->print_stats && s % cfg->print_stats == 0);

  /* local gradient sums of this rank's slice of global batch s, then ONE
   * reduction of the gradient and the extras riding behind it */
  const uint32_t *idx = gg_sampler_slice(&t->sampler, t->epoch, t->batch_in_epoch, t->comm->rank,
                                         t->comm->size);
  if (want_stats) memset(t->sat, 0, (size_t)L * sizeof *t->sat);
  float *g = t->grads, *x = g + n;
  long correct = 0;
  int rc;
  if (!cfg->deterministic) {
    /* into the zeroed buffer: the same bits as writing it (0 + x = x) */
    x[GG_EXTRA_LOSS] = (float)gg__shard_grad(t, idx, m, g, t->grads_zero, want_stats, &correct);
  } else {
    /* micro-shards of B/M samples each, summed in the fixed binary tree:
     * a stack of partial sums merged like a binary counter (local), then
     * recursive doubling across ranks (gg_comm_tree_sum) */
    int ms = t->det_shards / t->comm->size, sb = (int)(B / t->det_shards), h = 0;
    const size_t nl = n + 1; /* gradient and its loss extra */
    for (int i = 0; i < ms; i++) {
      float *dst = h == 0 ? g : t->det_stack[h - 1];
      dst[n + GG_EXTRA_LOSS] = (float)gg__shard_grad(t, idx + (size_t)i * (size_t)sb, sb, dst, 0,
                                                     want_stats, &correct);
      h++;
      for (int j = i + 1; j % 2 == 0; j /= 2, h--) {
        float *left = h == 2 ? g : t->det_stack[h - 3], *right = t->det_stack[h - 2];
        for (size_t k = 0; k < nl; k++) left[k] += right[k];
      }
    }
  }
  t->grads_zero = 0;
  GG__MARK(GG_PROF_GRAD);
  x[GG_EXTRA_CORRECT] = (float)correct;
  x[GG_EXTRA_STOP] = t->stop_request && *t->stop_request ? 1.0f : 0.0f;
  x[GG_EXTRA_IOERR] = t->pending_rc ? 1.0f : 0.0f;
  for (int l = 0; l < L; l++) x[GG_EXTRA_SAT + l] = (float)t->sat[l];
  const float scale = 1.0f / (float)B; /* the global-batch mean */
  if (cfg->deterministic) {
    rc = gg_comm_tree_sum(t->comm, g, t->det_scratch, n + t->n_extra);
  } else if (!t->sharded) {
    rc = gg_comm_allreduce_sum(t->comm, g, n + t->n_extra);
  } else {
    /* this rank's block summed (its last addend added by the measure pass),
     * then the row sums and the extras of all ranks in one small allreduce */
    float *add = NULL;
    rc = t->shm.active ? gg__shm_reduce(t, &add)
                       : gg_comm_reduce_scatter_sum(t->comm, g, t->sh_cnt, t->sh_off, t->sh_recv, &add);
    if (rc) return rc;
    GG__MARK(GG_PROF_REDUCE);
    if (t->shm.active) {
      /* the last addend is in rank r+1's buffer: zeroed as it is read */
      gg_clip_measure_rows_take(&t->clip, g, add, t->params, scale);
    } else {
      gg_clip_measure_rows(&t->clip, g, add, t->params, scale);
      /* the other ranks' blocks were sent: zero them for the next step */
      for (int k = 0; k < t->comm->size; k++)
        if (k != t->comm->rank) memset(g + t->sh_off[k], 0, (size_t)t->sh_cnt[k] * sizeof *g);
    }
    const size_t ns = gg_clip_shared_len(&t->clip);
    gg_clip_pack(&t->clip, t->sh_small);
    for (size_t e = 0; e < t->n_extra; e++) t->sh_small[ns + e] = x[e];
    /* node-shared: this allreduce is also where the zeros written into
     * the other ranks' buffers must be visible before they accumulate into
     * them again (a skipped step has no barrier after it): sync on both sides */
    gg_comm_shm_fence(&t->shm);
    rc = gg_comm_allreduce_sum_d(t->comm, t->sh_small, ns + t->n_extra);
    gg_comm_shm_fence(&t->shm);
    gg_clip_unpack(&t->clip, t->sh_small);
    for (size_t e = 0; e < t->n_extra; e++) x[e] = (float)t->sh_small[ns + e];
  }
  if (rc) return rc;
  GG__MARK(t->sharded ? GG_PROF_MEASURE : GG_PROF_REDUCE);
  if (x[GG_EXTRA_IOERR] > 0) return t->pending_rc ? t->pending_rc : GG_EIO;
  for (int l = 0; l < L; l++) t->sat[l] = x[GG_EXTRA_SAT + l];
  t->loss = x[GG_EXTRA_LOSS] / (double)B;
  t->accuracy = a->loss == GG_LOSS_MSE ? NAN
                : x[GG_EXTRA_CORRECT] / (double)(B * (a->loss == GG_LOSS_BCE ? K : 1));
  t->lr = gg_sched_lr(&cfg->schedule, cfg->lr, s, t->total_steps);

  /* measure the averaged gradient (scale 1/B), decide on non-finite values */
  if (t->sharded) gg_clip_measure_finish(&t->clip, scale, &t->res);
  else gg_clip_measure(&t->clip, g, t->params, scale, &t->res);
  int update = 1;
  GG__MARK(GG_PROF_MEASURE);
  if (t->res.nonfinite) {
    if (cfg->nonfinite == GG_NONFINITE_ABORT) {
      int bad = 0;
      for (int l = 0; l < L; l++)
        if (!isfinite(t->clip.layer_g2[l])) { bad = l; break; }
      return gg_err_set(GG_ENONFINITE,
                        "step %ld: the averaged gradient has NaN/Inf values (first in layer %d); "
                        "stopping as --nonfinite abort asks", s, bad);
    }
    t->n_skipped++;
    if (cfg->nonfinite == GG_NONFINITE_ZERO) memset(g, 0, n * sizeof *g);
    else update = 0;
  }
  /* the histogram of the gradient, before the update zeroes it */
  const int hist_step = gg__every(s, cfg->hist_every);
  if (hist_step) gg_clip_histogram(&t->clip, g, scale, t->hist);
  if (update) {
    if (!t->res.nonfinite) {
      if ((rc = gg_clip_plan(&t->clip, scale, &t->res))) return rc;
    } else {
      /* --nonfinite zero: the zeroed gradient needs no clipping, and no
       * norm of it may enter the autoclip history */
      for (size_t r = 0; r < t->clip.n_rows; r++) t->clip.row_scale[r] = 0.0f;
      t->res.clip_coef = 1;
      t->res.autoclip_thresh = 0;
      t->res.grad_norm_clipped = 0;
    }
    gg_optim_begin(&t->opt, t->lr);
    if (cfg->deterministic) {
      gg_clip_apply_update(&t->clip, &t->opt, t->params, g, want_stats, &t->res);
    } else {
      /* own rows zeroed as they are read; the other ranks' blocks were
       * zeroed by the reduction: the whole buffer is 0 again */
      gg_clip_apply_update_take(&t->clip, &t->opt, t->params, g, want_stats, &t->res);
      t->grads_zero = 1;
    }
    GG__MARK(GG_PROF_UPDATE);
    if (t->sharded) {
      /* every rank's part of the update sums, then the whole weights */
      if (want_stats || cfg->clip_value > 0) {
        _Static_assert(sizeof(gg_update_acc_t) == 6 * sizeof(double), "layer_acc is 6 doubles a layer");
        if ((rc = gg_comm_allreduce_sum_d(t->comm, (double *)t->clip.layer_acc, (size_t)L * 6)))
          return rc;
        gg_clip_update_done(&t->clip, &t->res);
      }
      /* the weights whole again: shared memory needs only the barrier */
      rc = t->shm.active ? gg_comm_shm_sync(t->comm, &t->shm)
                         : gg_comm_allgather(t->comm, t->params, t->sh_cnt, t->sh_off);
      if (rc) return rc;
      GG__MARK(GG_PROF_GATHER);
    }
  } else {
    t->res.clip_coef = NAN;
    t->res.grad_norm_clipped = NAN;
    t->res.clipped_fraction = 0;
  }

  if (want_stats) {
    if (t->stats.n == t->stats.cap) gg_stats_clear(&t->stats); /* drained by the writer in time */
    if ((rc = gg_stats_record(&t->stats, s, t->loss, t->lr, &t->res, &t->clip, t->sat,
                              t->sat_total)))
      return rc;
  }
  if (hist_step) {
    if (t->sharded &&
        (rc = gg_comm_allreduce_sum_u32(t->comm, t->hist, (size_t)L * GG_HIST_BINS)))
      return rc;
    if (t->stats.hist_n == t->stats.hist_cap) gg_stats_clear(&t->stats);
    if ((rc = gg_stats_record_hist(&t->stats, s, t->hist))) return rc;
  }

  GG__MARK(GG_PROF_STATS);
  if (cfg->verify_sync > 0 && s % cfg->verify_sync == 0 &&
      !gg_comm_identical(t->comm, t->params, n * sizeof *t->params))
    return gg_err_set(GG_EINTERNAL, "step %ld: --verify-sync found ranks holding different weights",
                      s);

  /* advance the position */
  t->step = s;
  t->samples_seen += B;
  if (++t->batch_in_epoch == t->sampler.steps_per_epoch) {
    t->batch_in_epoch = 0;
    t->epoch++;
  }
  if (x[GG_EXTRA_STOP] > 0) return GG_EINTERRUPTED;
  return 0;
}

/* Loss sum and correct count of rows [begin, end) of d, in chunks of the
 * workspace. Not collective. */
static void gg__eval_range(const gg_arch_t *a, const float *params, gg_ws_t *ws,
                           const gg_data_t *d, size_t begin, size_t end, double *lsum,
                           double *correct) {
  int L = a->n_layers, K = a->widths[L];
  for (size_t i = begin; i < end; i += (size_t)ws->cap) {
    int m = (int)(end - i < (size_t)ws->cap ? end - i : (size_t)ws->cap);
    long c = 0;
    gg_nn_forward(a, params, d->X + i * (size_t)d->d, m, ws);
    *lsum += gg_loss_eval(a->loss, ws->z[L - 1], m, K, d->y ? d->y + i * (size_t)d->k : NULL,
                          d->labels ? d->labels + i : NULL, NULL, &c);
    *correct += (double)c;
  }
}

static int gg__eval_reduce(const gg_comm_t *comm, const gg_arch_t *a, const float *params,
                           gg_ws_t *ws, const gg_data_t *d, double *loss, double *accuracy) {
  size_t N = d->n, P = (size_t)comm->size, r = (size_t)comm->rank;
  double v[2] = {0, 0};
  gg__eval_range(a, params, ws, d, N * r / P, N * (r + 1) / P, &v[0], &v[1]);
  int rc = gg_comm_allreduce_sum_d(comm, v, 2);
  if (rc) return rc;
  int K = a->widths[a->n_layers];
  *loss = v[0] / (double)N;
  *accuracy = a->loss == GG_LOSS_MSE ? NAN
              : v[1] / ((double)N * (a->loss == GG_LOSS_BCE ? K : 1));
  return 0;
}

int gg_trainer_evaluate(gg_trainer_t *t, const gg_data_t *d, double *loss, double *accuracy) {
  return gg__eval_reduce(t->comm, &t->arch, t->params, &t->ws, d, loss, accuracy);
}

int gg_eval_dataset(const gg_comm_t *comm, const gg_arch_t *arch, const float *params,
                    const gg_data_t *d, double *loss, double *accuracy) {
  gg_ws_t ws;
  int rc = gg_ws_init(&ws, arch, 512);
  rc = gg_comm_agree(comm, rc, NULL);
  if (rc) {
    gg_ws_free(&ws);
    return rc;
  }
  rc = gg__eval_reduce(comm, arch, params, &ws, d, loss, accuracy);
  gg_ws_free(&ws);
  return rc;
}

/* Delete all but the newest `keep` step-*.h5 of the folder (rank 0). */
static void gg__prune(const char *dir, long keep) {
  DIR *dh = opendir(dir);
  if (!dh) return;
  long steps[4096];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dh)) && n < 4096) {
    long s;
    char tail[8];
    if (sscanf(e->d_name, "step-%8ld.h%1[5]", &s, tail) == 2 && strlen(e->d_name) == 16) steps[n++] = s;
  }
  closedir(dh);
  for (int i = 0; i < n; i++) {
    int newer = 0;
    for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
    if (newer >= keep) {
      char p[GG_PATH_MAX + 64];
      snprintf(p, sizeof p, "%s/step-%08ld.h5", dir, steps[i]);
      unlink(p);
    }
  }
}

int gg_trainer_checkpoint(gg_trainer_t *t, int *failed_rank) {
  /* stats.h5 holds every row up to the checkpoint before it exists */
  int rc = gg__drain_stats(t, 1);
  /* a sharded update keeps each rank's block of the optimizer state only */
  for (int sl = 0; t->sharded && sl < t->opt.n_slots; sl++) {
    int grc = gg_comm_gather0(t->comm, gg_optim_slot(&t->opt, sl), t->sh_cnt, t->sh_off);
    if (grc && !rc) rc = grc;
  }
  if (t->comm->rank == 0) {
    char dir[GG_PATH_MAX + 16], path[GG_PATH_MAX + 48];
    static char ini[1 << 16];
    snprintf(dir, sizeof dir, "%s/checkpoints", t->cfg->run_dir);
    snprintf(path, sizeof path, "%s/step-%08ld.h5", dir, t->step);
    if (!rc) rc = gg_config_to_ini(t->cfg, ini, sizeof ini);
    gg_ckpt_meta_t meta = {.step = t->step, .epoch = t->epoch,
                           .batch_in_epoch = t->batch_in_epoch, .samples_seen = t->samples_seen,
                           .world_size = t->comm->size, .seed = t->cfg->seed, .config = ini,
                           .batch = t->cfg->batch, .n_samples = (int64_t)t->train.n,
                           .n_skipped = t->n_skipped, .autoclip = t->clip.hist,
                           .n_autoclip = t->clip.n_hist, .stats = &t->stats};
    double t0 = gg_now();
    if (!rc) rc = gg_ckpt_write(path, &t->arch, t->params, &t->opt, &meta);
    if (!rc) {
      struct stat st;
      double dt = gg_now() - t0, mb = stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
      GG_LOG0(2, "checkpoint %s: %.1f MB in %.3f s (%.0f MB/s, fsync'ed)\n", path, mb, dt,
              dt > 0 ? mb / dt : 0.0);
    }
    if (!rc) gg__prune(dir, t->cfg->keep);
  }
  return gg_comm_agree(t->comm, rc, failed_rank);
}

int gg_trainer_run(gg_trainer_t *t, int *failed_rank) {
  const gg_config_t *cfg = t->cfg;
  gg_progress_t prog;
  gg_progress_init(&prog, t->step, t->total_steps, cfg->progress_every);
  double epoch_loss = 0, t_epoch = gg_now();
  long epoch_steps = 0, last_ckpt = -1;
  int rc = 0;
  *failed_rank = -1;
  while (t->step < t->total_steps) {
    long epoch_before = t->epoch;
    double t_step = gg_now();
    rc = gg_trainer_step(t);
    t->step_seconds += gg_now() - t_step;
    if (rc && rc != GG_EINTERRUPTED) {
      /* every rank took the same decision on the same reduced data; rank 0 reports */
      *failed_rank = 0;
      gg_progress_line(&prog, "\n");
      return rc;
    }
    if (t->res.nonfinite)
      gg_progress_line(&prog, "warning: step %ld: non-finite gradient, %s (%ld so far)\n", t->step,
                       cfg->nonfinite == GG_NONFINITE_SKIP ? "update skipped" : "gradient zeroed",
                       t->n_skipped);
    epoch_loss += t->loss;
    epoch_steps++;
    int last = t->step == t->total_steps;
    gg_progress_update(&prog, t->step, epoch_before + 1, t->n_epochs, t->loss, t->res.grad_norm,
                       t->res.clip_coef, cfg->batch, last);
    if (cfg->print_stats && t->step % cfg->print_stats == 0 && t->comm->rank == 0) {
      gg_progress_line(&prog, "%s", "");
      gg_stats_print(&t->stats, stdout);
    }
    if (t->epoch != epoch_before || last) {
      char val[128] = "";
      if (t->has_val) {
        double vl, va;
        int erc = gg_trainer_evaluate(t, &t->val, &vl, &va);
        if (erc) return *failed_rank = 0, erc;
        if (isnan(va)) snprintf(val, sizeof val, "  val loss %.4f", vl);
        else snprintf(val, sizeof val, "  val loss %.4f  val acc %.4f", vl, va);
      }
      /* after a resume in the middle of an epoch, its earlier steps' losses
       * are not here: say which steps the mean covers */
      char part[96] = "";
      long first = t->step - epoch_steps + 1, epoch_first = epoch_before * t->sampler.steps_per_epoch + 1;
      if (first != epoch_first)
        snprintf(part, sizeof part, " (steps %ld-%ld: resumed mid-epoch)", first, t->step);
      gg_progress_line(&prog, "epoch %ld/%ld  step %ld  train loss %.4f%s%s  (%.1f s)\n",
                       epoch_before + 1, t->n_epochs, t->step, epoch_loss / (double)epoch_steps, part,
                       val, gg_now() - t_epoch);
      epoch_loss = 0;
      epoch_steps = 0;
      t_epoch = gg_now();
    }
    if (t->stats.n * 2 >= t->stats.cap || t->stats.hist_n * 2 >= t->stats.hist_cap ||
        (t->comm->rank == 0 && gg_now() - t->sfile.last_flush >= 2.0)) {
      int drc = gg__drain_stats(t, 0);
      if (drc && !t->pending_rc) t->pending_rc = drc; /* rank 0: reported with the next step */
    }
    if (t->step % cfg->ckpt_every == 0 || last || rc == GG_EINTERRUPTED) {
      int crc = gg_trainer_checkpoint(t, failed_rank);
      if (crc) return crc;
      last_ckpt = t->step;
    }
    if (rc == GG_EINTERRUPTED) return rc;
  }
  if (last_ckpt != t->step) {
    int crc = gg_trainer_checkpoint(t, failed_rank);
    if (crc) return crc;
  }
  return 0;
}
