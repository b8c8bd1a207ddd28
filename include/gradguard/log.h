/* log.h — the two ways gradguard talks: rank-0 messages and error lines.
 *
 * GG_LOG0(level, ...) prints on rank 0 only when level <= the configured
 * verbosity (0 quiet, 1 normal, 2 verbose); GG_ERRLOG(...) prints one line
 * on stderr prefixed "gradguard: rank R@HOST: " from whichever rank calls
 * it. gg_log_setup() is called once by the program after MPI_Init.
 */
#ifndef GRADGUARD_LOG_H
#define GRADGUARD_LOG_H

#include <stdio.h>

void gg_log_setup(int rank, const char *host, int verbosity);
int gg_log_rank(void);
int gg_log_verbosity(void);
void gg_log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gg_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define GG_LOG0(level, ...) gg_log_printf((level), __VA_ARGS__)
#define GG_ERRLOG(...) gg_log_error(__VA_ARGS__)

#endif
