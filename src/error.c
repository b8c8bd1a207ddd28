/* error.c — error codes, their messages and exit codes (see error.h). */
#include "gradguard/error.h"

#include <stdarg.h>
#include <stdio.h>

/* The most recent message; one process has one error being reported at a
 * time, and the trainer is single-threaded outside BLAS. */
static char gg__msg[1024];
static int gg__msg_code;

const char *gg_strerror(int code) {
  switch (code) {
  case GG_OK: return "success";
#define GG__ERR_STR(name, msg, ex) case GG_E##name: return msg;
  GG_ERRNO_MAP(GG__ERR_STR)
#undef GG__ERR_STR
  default: return "unknown error";
  }
}

int gg_exit_code(int code) {
  switch (code) {
  case GG_OK: return 0;
#define GG__ERR_EXIT(name, msg, ex) case GG_E##name: return ex;
  GG_ERRNO_MAP(GG__ERR_EXIT)
#undef GG__ERR_EXIT
  default: return 70;
  }
}

int gg_err_set(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(gg__msg, sizeof gg__msg, fmt, ap);
  va_end(ap);
  gg__msg_code = code;
  return code;
}

const char *gg_err_msg(int code) {
  if (gg__msg_code == code && gg__msg[0]) return gg__msg;
  return gg_strerror(code);
}

void gg_err_clear(void) {
  gg__msg[0] = 0;
  gg__msg_code = 0;
}
