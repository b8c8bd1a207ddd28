/* error.h — gradguard's one list of error codes.
 *
 * Every fallible library function returns 0 or a negative GG_E* code and,
 * before returning, records a one-line human message with gg_err_set().
 * Library code never exits; the programs map codes to the sysexits.h exit
 * codes of the contract (gg_exit_code) in one place.
 */
#ifndef GRADGUARD_ERROR_H
#define GRADGUARD_ERROR_H

/* X(name, default message, exit code) — exit codes from sysexits.h */
#define GG_ERRNO_MAP(X)                                               \
  X(USAGE, "bad usage", 64)                                           \
  X(DATA, "malformed input data or checkpoint", 65)                   \
  X(NOINPUT, "input file missing or unreadable", 66)                  \
  X(CANTCREAT, "cannot create output", 73)                            \
  X(IO, "input/output error", 74)                                     \
  X(NOMEM, "out of memory", 70)                                       \
  X(NONFINITE, "non-finite gradient", 70)                             \
  X(COMM, "communication failure", 70)                                \
  X(INTERRUPTED, "stopped by a signal after a checkpoint", 75)        \
  X(INTERNAL, "internal error", 70)

enum {
  GG_OK = 0,
#define GG__ERR_ENUM(name, msg, code) GG_E##name,
  GG__EFIRST = -100,
  GG_ERRNO_MAP(GG__ERR_ENUM)
#undef GG__ERR_ENUM
  GG__ELAST
};

/* Static description of a code ("unknown error" for anything else). */
const char *gg_strerror(int code);

/* The contract's exit code for a code (0 for GG_OK). */
int gg_exit_code(int code);

/* Record the message of the error being returned; returns `code` so that
 * callers can write `return gg_err_set(GG_EDATA, "...", ...)`. The message
 * replaces any earlier one (printf format, one line, no trailing newline). */
int gg_err_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the most recent gg_err_set() in this process, or the
 * code's gg_strerror if none was recorded for it. */
const char *gg_err_msg(int code);

/* Forget the recorded message (tests). */
void gg_err_clear(void);

#endif
