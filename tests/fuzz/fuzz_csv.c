/* fuzz_csv.c — fuzz target for `gg-data import-csv` (tools/gg-data.c).
 *
 * As fuzz_idx.c, this file includes tools/gg-data.c (main renamed
 * gg_data_main, stderr in memory) and runs the whole command on the input.
 *
 * Input: byte 0 = flags, the rest = the CSV file.
 *   bit 0: --int-labels        bit 1: --skip-header
 *   bits 2-4: T; T > 0 gives --targets T
 *   bit 5: --compress 1
 * Invariants: no crash, leak, hang or sanitizer report; the exit code is 0
 * or 65 (64 only for --int-labels with --targets other than 1); an error is
 * one "gg-data: " line; on success the input held no NUL byte (which would
 * cut a line short) and the written file loads with gg_data_load and has
 * the kind of /y that was asked for.
 */
#include <stdio.h>
#include <stdint.h>

static FILE *fuzz_err; /* gg-data's stderr, in memory */
#undef stderr
#define stderr fuzz_err
#define main gg_data_main
#include "../../tools/gg-data.c"
#undef main
#undef stderr
#define stderr stderr

#include "fuzz_util.h"
#include "gradguard/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char errbuf[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    if (!freopen("/dev/null", "w", stdout)) abort();
    init = 1;
  }
  if (size < 1) return 0;
  unsigned flags = data[0];
  data++;
  size--;
  char in[600], out[600], targets[8];
  fuzz_path("a", in, sizeof in);
  fuzz_path("out.h5", out, sizeof out);
  fuzz_write(in, data, size, 0);

  char *argv[16];
  int argc = 0;
  argv[argc++] = "gg-data";
  argv[argc++] = "import-csv";
  argv[argc++] = "--input";
  argv[argc++] = in;
  argv[argc++] = "-o";
  argv[argc++] = out;
  int int_labels = flags & 1, T = (int)((flags >> 2) & 7);
  if (int_labels) argv[argc++] = "--int-labels";
  if (flags & 2) argv[argc++] = "--skip-header";
  if (T) {
    snprintf(targets, sizeof targets, "%d", T);
    argv[argc++] = "--targets";
    argv[argc++] = targets;
  }
  if (flags & 32) {
    argv[argc++] = "--compress";
    argv[argc++] = "1";
  }
  argv[argc] = NULL;

  optind = 0; /* glibc: full re-initialization of getopt */
  memset(errbuf, 0, sizeof errbuf);
  fuzz_err = fmemopen(errbuf, sizeof errbuf - 1, "w");
  if (!fuzz_err) abort();
  int code = gg_data_main(argc, argv);
  fclose(fuzz_err);
  fuzz_err = NULL;

  int usage_expected = int_labels && T > 1;
  FUZZ_CHECK(usage_expected ? code == 64 : (code == 0 || code == 65), "exit %d: %s", code, errbuf);
  if (code) {
    size_t len = strlen(errbuf);
    FUZZ_CHECK(strncmp(errbuf, "gg-data: ", 9) == 0 && len > 0 && errbuf[len - 1] == '\n' &&
                   memchr(errbuf, '\n', len - 1) == NULL,
               "stderr is not one 'gg-data: ' line: '%s'", errbuf);
    FUZZ_CHECK(access(out, F_OK) != 0, "output written although the import failed");
  } else {
    FUZZ_CHECK(errbuf[0] == 0, "stderr on success: '%s'", errbuf);
    /* a NUL byte (outside a --skip-header first line) is never dropped silently */
    const uint8_t *body = data;
    if (flags & 2) {
      const uint8_t *nl = memchr(data, '\n', size);
      body = nl ? nl + 1 : data + size;
    }
    FUZZ_CHECK(!memchr(body, 0, size - (size_t)(body - data)), "a CSV with a NUL byte was accepted");
    gg_data_t ds;
    int rc = gg_data_load(&ds, out);
    FUZZ_CHECK(rc == 0, "written file does not load: %s", gg_err_msg(rc));
    FUZZ_CHECK(ds.int_labels == int_labels && ds.n >= 1 && ds.d >= 1 &&
                   ds.k == (int_labels ? 1 : (T ? T : 1)),
               "int_labels %d n %zu d %d k %d", ds.int_labels, ds.n, ds.d, ds.k);
    gg_data_free(&ds);
    unlink(out);
  }
  return 0;
}
