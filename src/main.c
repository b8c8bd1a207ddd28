/* main.c — the `gradguard` program: `train`, `eval`, --help, --version.
 *
 * The one place that decides to exit: library calls return codes, ranks
 * agree on them, the rank that failed prints ONE line, and every rank exits
 * with the contract's exit code (gg_exit_code).
 */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gradguard/ckpt.h"
#include "gradguard/comm.h"
#include "gradguard/config.h"
#include "gradguard/data.h"
#include "gradguard/error.h"
#include "gradguard/log.h"
#include "gradguard/progress.h"
#include "gradguard/train.h"

#ifndef GG_VERSION
#define GG_VERSION "0"
#endif

static void usage(FILE *out) {
  fprintf(out,
          "gradguard %s — data-parallel MLP trainer that keeps gradients healthy\n\n"
          "usage: [mpirun -n P] gradguard train --data FILE --layers D,H,...,K [options]\n"
          "       [mpirun -n P] gradguard eval --ckpt FILE --data FILE [--json]\n"
          "       gradguard --help | --version\n\n"
          "`gradguard train --help` lists every training option.\n",
          GG_VERSION);
}

/* Print the error of an agreed failure once, from the rank that had it. */
static int report(const gg_comm_t *comm, int rc, int failed_rank) {
  if (rc == 0) return 0;
  if (rc == GG_EINTERRUPTED) return gg_exit_code(rc); /* reported on stdout already */
  if (failed_rank < 0) failed_rank = 0;
  if (comm->rank == failed_rank) {
    /* name the rank when it is not simply the first of the job */
    if (failed_rank > 0) GG_ERRLOG("rank %d@%s: %s", comm->rank, comm->host, gg_err_msg(rc));
    else GG_ERRLOG("%s", gg_err_msg(rc));
  }
  return gg_exit_code(rc);
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
  if (stop_flag) {
    /* second signal: stop at once */
    signal(sig, SIG_DFL);
    raise(sig);
  }
  stop_flag = 1;
}

static int cmd_train(const gg_comm_t *comm, int argc, char **argv) {
  static gg_config_t cfg; /* large (paths), keep it off the stack */
  gg_config_defaults(&cfg);
  int rc = gg_config_parse_args(&cfg, argc, argv, stdout);
  if (rc == 1) return 0; /* --help */
  if (!rc) rc = gg_config_finalize(&cfg);
  if (rc) {
    /* every rank parsed the same arguments: same outcome, rank 0 speaks */
    return report(comm, rc, 0);
  }
  gg_log_setup(comm->rank, comm->host, cfg.verbosity);
  static char ini[1 << 16];
  gg_config_to_ini(&cfg, ini, sizeof ini);
  char where[512];
  snprintf(where, sizeof where, "%s", comm->host);
  gg_comm_hosts(comm, where, sizeof where);
  GG_LOG0(1, "gradguard %s: %d rank%s on %s, resolved configuration:\n%s", GG_VERSION, comm->size,
          comm->size > 1 ? "s" : "", where, ini);

  gg_trainer_t t;
  int failed = -1;
  double t0 = gg_now();
  rc = gg_trainer_init(&t, &cfg, comm, &failed);
  if (!rc) {
    GG_LOG0(1, "model: %zu parameters in %d layers; %zu training samples, %ld steps of %ld (%ld per epoch)\n",
            t.arch.n_params, t.arch.n_layers, t.train.n, t.total_steps, cfg.batch,
            t.sampler.steps_per_epoch);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    t.stop_request = (volatile int *)&stop_flag;
    long step0 = t.step; /* > 0 after a resume */
    rc = gg_trainer_run(&t, &failed);
    long ran = t.step - step0;
    if ((!rc || rc == GG_EINTERRUPTED) && ran == 0) {
      GG_LOG0(1, "nothing to do: the run is already at step %ld of %ld; checkpoint "
                 "%s/checkpoints/step-%08ld.h5\n", t.step, t.total_steps, cfg.run_dir, t.step);
    } else if (!rc || rc == GG_EINTERRUPTED) {
      GG_LOG0(1, "%s after %ld steps (%ld in this run) in %.1f s (%.3f ms/step, %.0f samples/s); "
                 "final loss %.5f; checkpoint %s/checkpoints/step-%08ld.h5\n",
              rc ? "stopped by a signal (resume with --resume auto)" : "done", t.step, ran,
              gg_now() - t0, 1e3 * t.step_seconds / (double)ran,
              t.step_seconds > 0 ? (double)ran * (double)cfg.batch / t.step_seconds : 0.0, t.loss,
              cfg.run_dir, t.step);
      gg_trainer_print_profile(&t, ran);
      /* for sizing a job's memory (Slurm --mem-per-cpu): the largest rank.
       * Collective on every rank whatever getrusage says (it cannot fail
       * for RUSAGE_SELF; 0 then). */
      struct rusage ru;
      double max_kib = 0;
      int at = 0;
      if (getrusage(RUSAGE_SELF, &ru) != 0) ru.ru_maxrss = 0;
      if (gg_comm_max_loc(comm, (double)ru.ru_maxrss, &max_kib, &at) == 0 && max_kib > 0) {
        if (comm->size == 1) GG_LOG0(1, "peak memory (RSS): %.0f MiB\n", max_kib / 1024);
        else GG_LOG0(1, "peak memory (RSS): %.0f MiB on the largest rank (rank %d of %d)\n",
                     max_kib / 1024, at, comm->size);
      }
      if (t.n_skipped)
        GG_LOG0(1, "warning: %ld of %ld steps had a non-finite gradient (--nonfinite %s)\n",
                t.n_skipped, t.step, cfg.nonfinite == GG_NONFINITE_SKIP ? "skip" : "zero");
    }
  }
  gg_trainer_free(&t);
  return report(comm, rc, failed);
}

static int cmd_eval(const gg_comm_t *comm, int argc, char **argv) {
  const char *ckpt = NULL, *data = NULL;
  int json = 0;
  static const struct option lopts[] = {{"ckpt", required_argument, NULL, 'c'},
                                        {"data", required_argument, NULL, 'd'},
                                        {"json", no_argument, NULL, 'j'},
                                        {"help", no_argument, NULL, 'h'},
                                        {0, 0, 0, 0}};
  optind = 0;
  opterr = 0;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
    if (c == 'c') ckpt = optarg;
    else if (c == 'd') data = optarg;
    else if (c == 'j') json = 1;
    else if (c == 'h') {
      if (comm->rank == 0) printf("usage: gradguard eval --ckpt FILE --data FILE [--json]\n");
      return 0;
    } else {
      rc = gg_err_set(GG_EUSAGE, "eval: unknown option or missing value: %s", argv[optind - 1]);
      return report(comm, rc, 0);
    }
  }
  if (!ckpt || !data) return report(comm, gg_err_set(GG_EUSAGE, "eval needs --ckpt FILE and --data FILE"), 0);
  int widths[GG_MAX_WIDTHS], nw = 0;
  gg_act_t act;
  gg_loss_t loss;
  gg_arch_t arch;
  memset(&arch, 0, sizeof arch);
  gg_data_t d;
  memset(&d, 0, sizeof d);
  float *params = NULL;
  rc = gg_ckpt_read_arch(ckpt, widths, &nw, GG_MAX_WIDTHS, &act, &loss);
  if (!rc) rc = gg_arch_init(&arch, widths, nw, act, loss);
  if (!rc && !(params = malloc(arch.n_params * sizeof *params)))
    rc = gg_err_set(GG_ENOMEM, "out of memory");
  if (!rc) rc = gg_ckpt_read_params(ckpt, &arch, params);
  if (!rc) rc = gg_data_load(&d, data);
  if (!rc) rc = gg_data_check_fit(&d, &arch, data);
  int failed = -1;
  rc = gg_comm_agree(comm, rc, &failed);
  double l = 0, acc = 0;
  if (!rc) rc = gg_eval_dataset(comm, &arch, params, &d, &l, &acc);
  if (!rc && comm->rank == 0) {
    if (json) {
      if (isnan(acc)) printf("{\"loss\": %.9g, \"accuracy\": null, \"samples\": %zu}\n", l, d.n);
      else printf("{\"loss\": %.9g, \"accuracy\": %.9g, \"samples\": %zu}\n", l, acc, d.n);
    } else {
      printf("%s on %s: %zu samples, loss %.6f", ckpt, data, d.n, l);
      if (!isnan(acc)) printf(", accuracy %.4f", acc);
      printf("\n");
    }
  }
  free(params);
  gg_arch_free(&arch);
  gg_data_free(&d);
  return report(comm, rc, failed);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  gg_comm_t comm;
  int code = 0;
  if (gg_comm_init(&comm, MPI_COMM_WORLD)) {
    fprintf(stderr, "gradguard: %s\n", gg_err_msg(GG_ECOMM));
    MPI_Abort(MPI_COMM_WORLD, 70);
  }
  gg_log_setup(comm.rank, comm.host, 1);
  gg_h5_quiet();
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "train") == 0) {
    code = cmd_train(&comm, argc - 1, argv + 1);
  } else if (strcmp(cmd, "eval") == 0) {
    code = cmd_eval(&comm, argc - 1, argv + 1);
  } else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    if (comm.rank == 0) printf("gradguard %s\n", GG_VERSION);
  } else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    if (comm.rank == 0) usage(stdout);
  } else {
    if (comm.rank == 0) {
      if (cmd[0]) GG_ERRLOG("unknown command '%s' (train, eval, --help, --version)", cmd);
      else usage(stderr);
    }
    code = 64;
  }
  gg_comm_free(&comm);
  MPI_Finalize();
  return code;
}
