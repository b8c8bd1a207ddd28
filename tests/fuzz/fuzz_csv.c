/* fuzz_csv.c — fuzz target for `gg-data import-csv` (tools/gg-data.c).
 *
 * As fuzz_idx.c, it includes tools/gg-data.c through fuzz_gg_data.h (main
 * renamed gg_data_main, stderr in memory) and runs the whole command.
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
#include "fuzz_gg_data.h"
#include "gradguard/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned flags;
  if (!fuzz_begin(&data, &size, &flags)) return 0;
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

  int code = fuzz_run_gg_data(argc, argv);
  int usage_expected = int_labels && T > 1;
  FUZZ_CHECK(usage_expected ? code == 64 : (code == 0 || code == 65), "exit %d: %s", code, errbuf);
  fuzz_check_stderr(code);
  if (code) {
    FUZZ_CHECK(access(out, F_OK) != 0, "output written although the import failed");
  } else {
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
