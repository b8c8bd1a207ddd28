/* log.c — rank-0 messages and rank-tagged error lines (see log.h). */
#include "gradguard/log.h"

#include <stdarg.h>
#include <string.h>

static int gg__rank = 0;
static int gg__verbosity = 1;
static char gg__host[256] = "localhost";

void gg_log_setup(int rank, const char *host, int verbosity) {
  gg__rank = rank;
  gg__verbosity = verbosity;
  if (host) snprintf(gg__host, sizeof gg__host, "%s", host);
}

int gg_log_rank(void) { return gg__rank; }
int gg_log_verbosity(void) { return gg__verbosity; }

void gg_log_printf(int level, const char *fmt, ...) {
  if (gg__rank != 0 || level > gg__verbosity) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
}

void gg_log_error(const char *fmt, ...) {
  char line[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* One write, so lines of different ranks do not interleave. */
  fprintf(stderr, "gradguard: %s\n", line);
  fflush(stderr);
}
