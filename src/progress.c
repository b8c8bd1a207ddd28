/* progress.c — the progress line (see progress.h). */
#include "gradguard/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gradguard/log.h"

double gg_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void gg_progress_init(gg_progress_t *p, long step0, long total, double every) {
  /* In-place redraw only for a terminal we own: under mpirun or srun the
   * rank's stdout is a launcher pty even when the job's output goes to a
   * file, so launched ranks print plain lines. */
  const char *mode = getenv("GG_PROGRESS");
  int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("SLURM_STEP_ID");
  p->tty = mode ? strcmp(mode, "tty") == 0 : isatty(STDOUT_FILENO) && !launched;
  p->active = 0;
  p->t_start = p->t_last = gg_now();
  p->step_last = step0;
  p->step0 = step0;
  p->every = p->tty ? 0.2 : every;
  p->total = total;
}

static void gg__hms(double s, char *buf, size_t len) {
  if (!(s >= 0) || s > 1e8) s = 0;
  long t = (long)(s + 0.5);
  snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void gg_progress_update(gg_progress_t *p, long step, long epoch, long n_epochs, double loss,
                        double grad_norm, double clip_coef, long batch, int force) {
  if (gg_log_rank() != 0 || gg_log_verbosity() < 1) return;
  double now = gg_now();
  if (!force && now - p->t_last < p->every) return;
  double dt = now - p->t_start;
  double sps = dt > 0 ? (double)(step - p->step0) * (double)batch / dt : 0;
  double eta = step > p->step0 ? dt / (double)(step - p->step0) * (double)(p->total - step) : 0;
  char e[32], el[32];
  gg__hms(eta, e, sizeof e);
  gg__hms(dt, el, sizeof el);
  char line[256];
  snprintf(line, sizeof line,
           "step %ld/%ld  epoch %ld/%ld  loss %.4f  |g| %.3e  coef %.3f  %.0f samples/s  %s  ETA %s",
           step, p->total, epoch, n_epochs, loss, grad_norm, clip_coef, sps, el, e);
  if (p->tty) {
    printf("\r%s\033[K", line);
    p->active = 1;
  } else {
    printf("%s\n", line);
  }
  fflush(stdout);
  p->t_last = now;
  p->step_last = step;
}

void gg_progress_line(gg_progress_t *p, const char *fmt, ...) {
  if (gg_log_rank() != 0 || gg_log_verbosity() < 1) return;
  if (p->active) {
    printf("\r\033[K");
    p->active = 0;
  }
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}
