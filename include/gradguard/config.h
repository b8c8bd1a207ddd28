/* config.h — every setting of a run in one struct, with the defaults of the
 * contract, filled from the command line and an INI file.
 *
 * One table in config.c lists every option (long name = INI key, type,
 * default, help); the getopt_long table, the INI parser, --help and the
 * printed/stored resolved configuration are all generated from it, so a new
 * option is one table row. The command line wins over the INI file.
 */
#ifndef GRADGUARD_CONFIG_H
#define GRADGUARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gradguard/init.h"
#include "gradguard/nn.h"
#include "gradguard/optim.h"

#define GG_PATH_MAX 4096
#define GG_MAX_WIDTHS 1025

typedef enum { GG_NONFINITE_SKIP, GG_NONFINITE_ZERO, GG_NONFINITE_ABORT } gg_nonfinite_t;
/* --shard-update (train.h): auto is the zero default */
typedef enum { GG_SHARD_AUTO = 0, GG_SHARD_ON, GG_SHARD_OFF } gg_shard_t;

typedef struct {
  /* data and model */
  char data[GG_PATH_MAX];
  char val_data[GG_PATH_MAX];
  int widths[GG_MAX_WIDTHS]; /* --layers D,H1,...,K */
  int n_widths;
  gg_act_t activation;
  gg_loss_t loss;
  gg_init_t init;
  char init_from[GG_PATH_MAX];
  /* optimizer */
  gg_opt_kind_t optimizer;
  double lr, momentum, beta1, beta2, eps, weight_decay;
  gg_sched_t schedule; /* schedule.warmup_steps is --warmup-steps */
  /* length */
  long batch;  /* GLOBAL batch */
  long epochs;
  long steps;  /* 0: derived from epochs */
  uint64_t seed;
  /* gradient control (0 = off) */
  double clip_norm, clip_value, clip_layer_norm, agc, autoclip, weight_clip, max_norm;
  gg_nonfinite_t nonfinite;
  /* output */
  char run_dir[GG_PATH_MAX];
  long ckpt_every;
  long keep;
  char resume[GG_PATH_MAX]; /* "none", "auto" or a path */
  long stats_every, hist_every, print_stats;
  /* parallelism */
  int deterministic;
  long threads;      /* 0: cores of the node / ranks on the node */
  long verify_sync;  /* 0: off */
  gg_shard_t shard_update; /* split the update over the ranks (train.h) */
  int verbosity;     /* 0 quiet, 1 normal, 2 verbose */
  double progress_every; /* seconds between plain progress lines (not a tty) */
  int flush_denormals;   /* set FTZ/DAZ: subnormal floats compute as 0 */
} gg_config_t;

void gg_config_defaults(gg_config_t *cfg);

/* Set one option from text, as `--key value` or `key = value`. Flags take
 * "true"/"false"/"1"/"0"/"yes"/"no" (and "" for true). GG_EUSAGE with a
 * message "--key: ..." for unknown keys and bad values. */
int gg_config_set(gg_config_t *cfg, const char *key, const char *value);

/* Read `key = value` lines (sections and comments allowed). GG_ENOINPUT if
 * the file cannot be read, GG_EUSAGE "FILE:LINE: ..." for bad lines. */
int gg_config_load_ini(gg_config_t *cfg, const char *path);

/* Parse `gradguard train` arguments (argv[0] is "train"): --config FILE
 * first, then every other flag over it. Returns 0, 1 if --help was printed
 * (to out), or GG_EUSAGE. Does not validate cross-field rules. */
int gg_config_parse_args(gg_config_t *cfg, int argc, char **argv, FILE *out);

/* Cross-field checks and defaults that depend on other fields (required
 * --data/--layers, positive numbers, run_dir from the clock if unset). */
int gg_config_finalize(gg_config_t *cfg);

/* The resolved configuration as INI text (every option, `key = value`). */
int gg_config_to_ini(const gg_config_t *cfg, char *buf, size_t len);

/* --help text of `gradguard train`. */
void gg_config_usage(FILE *out);

#endif
