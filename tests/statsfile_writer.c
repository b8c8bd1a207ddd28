/* statsfile_writer.c — a test-only program for statsfile_read_test.py: it
 * writes a statistics file in SWMR mode the way the trainer does, appending
 * and flushing a few rows every INTERVAL seconds for SECONDS seconds, so a
 * reader can watch it grow.
 *
 *   statsfile_writer PATH [SECONDS [INTERVAL [ROWS_PER_TICK]]]
 *
 * Prints "ready" once the first rows are flushed, and "done ROWS HISTS" at
 * the end. The values are functions of the step that the reader recomputes
 * (in double, rounded to float32 as here), with L = 4 layers:
 *   loss = 1000 / s   lr = 0.001 s   grad_norm = 0.5 s
 *   grad_norm_clipped = min(0.5 s, 10)   clip_coef = min(1, 10 / (0.5 s))
 *   clipped_fraction = (s mod 10) / 10   nonfinite = (s mod 7 == 0)
 *   layers/<stat k>[s, l] = s + 0.25 l + k
 *   histograms at s = 1 and every 10 steps: grad_hist[., l, b] = (s + l + b) mod 5
 * Exit status 0, or gg_exit_code of the failure. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gradguard/ckpt.h"
#include "gradguard/error.h"
#include "gradguard/stats.h"
#include "gradguard/statsfile.h"

enum { L = 4 };

static void fill_row(gg_stats_t *s, int64_t step) {
  size_t i = s->n++;
  double gn = 0.5 * (double)step;
  s->step[i] = step;
  s->loss[i] = (float)(1000.0 / (double)step);
  s->lr[i] = (float)(0.001 * (double)step);
  s->grad_norm[i] = (float)gn;
  s->grad_norm_clipped[i] = (float)(gn < 10.0 ? gn : 10.0);
  s->clip_coef[i] = (float)(10.0 / gn < 1.0 ? 10.0 / gn : 1.0);
  s->clipped_fraction[i] = (float)((double)(step % 10) / 10.0);
  s->nonfinite[i] = (uint8_t)(step % 7 == 0);
  for (int k = 0; k < GG_STAT__COUNT; k++)
    for (int l = 0; l < L; l++) s->layer[k][i * L + (size_t)l] = (float)((double)step + 0.25 * l + k);
  s->last_step = step;
  if (step == 1 || step % 10 == 0) {
    uint32_t h[L * GG_HIST_BINS];
    for (int l = 0; l < L; l++)
      for (int b = 0; b < GG_HIST_BINS; b++) h[l * GG_HIST_BINS + b] = (uint32_t)((step + l + b) % 5);
    gg_stats_record_hist(s, step, h);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(int rc) {
  fprintf(stderr, "statsfile_writer: %s\n", gg_err_msg(rc));
  return gg_exit_code(rc);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 5) {
    fprintf(stderr, "usage: statsfile_writer PATH [SECONDS [INTERVAL [ROWS_PER_TICK]]]\n");
    return 64;
  }
  double seconds = argc > 2 ? atof(argv[2]) : 3.0, interval = argc > 3 ? atof(argv[3]) : 0.2;
  int per_tick = argc > 4 ? atoi(argv[4]) : 5;
  if (per_tick < 1 || per_tick > 1000) per_tick = 5;
  gg_h5_quiet();
  static const char *const names[L] = {"layer_00", "layer_01", "layer_02", "layer_03"};
  gg_stats_t s;
  gg_statsfile_t f;
  int rc = gg_stats_init(&s, L, 1024, 128);
  if (rc) return fail(rc);
  if ((rc = gg_statsfile_open(&f, argv[1], L, names, -1))) {
    gg_stats_free(&s);
    return fail(rc);
  }
  int64_t step = 0;
  double t0 = now();
  int first = 1;
  for (;;) {
    for (int i = 0; i < per_tick; i++) fill_row(&s, ++step);
    if ((rc = gg_statsfile_append(&f, &s)) || (rc = gg_statsfile_flush(&f))) break;
    gg_stats_clear(&s);
    if (first) {
      printf("ready\n");
      fflush(stdout);
      first = 0;
    }
    if (now() - t0 >= seconds) break;
    struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
    nanosleep(&ts, NULL);
  }
  int64_t rows = f.rows, hists = f.hists;
  int rc2 = gg_statsfile_close(&f);
  gg_stats_free(&s);
  if (rc || rc2) return fail(rc ? rc : rc2);
  printf("done %lld %lld\n", (long long)rows, (long long)hists);
  return 0;
}
