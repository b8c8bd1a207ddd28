/* fuzz_gg_data.h — gg-data inside a fuzz target (fuzz_idx.c, fuzz_csv.c).
 *
 * gg-data's parsers are static inside the program, so this header includes
 * tools/gg-data.c itself, with its main renamed gg_data_main and its stderr
 * sent to a memory buffer, and gives the targets one way to run the whole
 * command and check what it printed. Include it first, once per target.
 */
#ifndef GG_FUZZ_GG_DATA_H
#define GG_FUZZ_GG_DATA_H

#include <stdint.h>
#include <stdio.h>

static FILE *fuzz_err; /* gg-data's stderr, in memory */
#undef stderr
#define stderr fuzz_err
#define main gg_data_main
#include "../../tools/gg-data.c"
#undef main
#undef stderr
#define stderr stderr

#include "fuzz_util.h"

static char errbuf[8192]; /* what the last fuzz_run_gg_data printed on stderr */

/* gg-data's main on argv, its stderr captured in errbuf; its exit code. */
static int fuzz_run_gg_data(int argc, char **argv) {
  optind = 0; /* glibc: full re-initialization of getopt */
  memset(errbuf, 0, sizeof errbuf);
  fuzz_err = fmemopen(errbuf, sizeof errbuf - 1, "w");
  if (!fuzz_err) abort();
  int code = gg_data_main(argc, argv);
  fclose(fuzz_err);
  fuzz_err = NULL;
  return code;
}

/* The contract's error form: a failure prints ONE "gg-data: " line, a
 * success nothing. */
static void fuzz_check_stderr(int code) {
  if (code) {
    size_t len = strlen(errbuf);
    FUZZ_CHECK(strncmp(errbuf, "gg-data: ", 9) == 0 && len > 0 && errbuf[len - 1] == '\n' &&
                   memchr(errbuf, '\n', len - 1) == NULL,
               "stderr is not one 'gg-data: ' line: '%s'", errbuf);
  } else {
    FUZZ_CHECK(errbuf[0] == 0, "stderr on success: '%s'", errbuf);
  }
}

#endif
