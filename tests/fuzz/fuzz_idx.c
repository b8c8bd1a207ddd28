/* fuzz_idx.c — fuzz target for `gg-data import-idx` (tools/gg-data.c).
 *
 * gg-data's IDX reader is static inside the program, so this file includes
 * tools/gg-data.c through fuzz_gg_data.h (its main renamed gg_data_main, its
 * stderr sent to a memory buffer so the one-line error can be checked) and
 * calls both the readers and the whole command.
 *
 * Input: byte 0 = flags, the rest = payload.
 *   flags bit 0: gzip the (first) file before it is read (mutations then
 *                act on the IDX bytes while the gzip layer is exercised;
 *                without it a payload that is itself gzip data is read as such)
 *   flags bit 1: gzip the labels file (whole-command mode)
 *   flags bit 2: --compress 1 (whole-command mode)
 * Payload without "@@LABELS@@": written to one file that is read both as an
 *   image file and as a label file (idx_read_images / idx_read_labels).
 * Payload "IMAGES@@LABELS@@LABELS": gg-data import-idx --images A --labels B
 *   -o OUT, the exit code must be 0 or 65 and an error one "gg-data: " line.
 *
 * Invariants: no crash, leak or sanitizer report; a reader returns 0 or
 * GG_EDATA with a one-line message naming the file; on success every pixel
 * is in [0, 1]; memory stays within what the file holds (libFuzzer's
 * -malloc_limit_mb / -rss_limit_mb catch a header that asks for gigabytes).
 */
#include "fuzz_gg_data.h"
#include "gradguard/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reader_rc(int rc, const char *path) {
  FUZZ_CHECK(rc == 0 || rc == GG_EDATA, "rc %d (%s) for a readable file: %s", rc,
             gg_strerror(rc), gg_err_msg(rc));
  if (rc) {
    const char *msg = gg_err_msg(rc);
    FUZZ_CHECK(fuzz_one_line(msg), "message not one line: '%s'", msg);
    FUZZ_CHECK(strncmp(msg, path, strlen(path)) == 0, "message does not name the file: '%s'", msg);
  }
}

static void read_one_file(const char *path) {
  float *X = NULL;
  int32_t *labels = NULL;
  uint32_t n = 0;
  int d = 0;
  gg_err_clear();
  int rc = idx_read_images(path, &X, &n, &d);
  check_reader_rc(rc, path);
  if (rc == 0) {
    FUZZ_CHECK(n >= 1 && d >= 1 && X, "n %u d %d", (unsigned)n, d);
    size_t total = (size_t)n * (size_t)d;
    for (size_t i = 0; i < total; i++) FUZZ_CHECK(X[i] >= 0.0f && X[i] <= 1.0f, "pixel %g", X[i]);
  }
  free(X);
  gg_err_clear();
  n = 0;
  rc = idx_read_labels(path, &labels, &n);
  check_reader_rc(rc, path);
  if (rc == 0) {
    FUZZ_CHECK(n >= 1 && labels, "n %u", (unsigned)n);
    for (uint32_t i = 0; i < n; i++) FUZZ_CHECK(labels[i] >= 0 && labels[i] <= 255, "label %d", labels[i]);
  }
  free(labels);
}

static void run_command(const char *img, const char *lab, const char *out, int compress) {
  char *argv[] = {"gg-data", "import-idx", "--images", (char *)img, "--labels", (char *)lab,
                  "-o", (char *)out, compress ? "--compress" : NULL, "1", NULL};
  int argc = compress ? 10 : 8;
  int code = fuzz_run_gg_data(argc, argv);
  FUZZ_CHECK(code == 0 || code == 65, "exit %d: %s", code, errbuf);
  fuzz_check_stderr(code);
  if (code == 0) {
    gg_data_t ds;
    int rc = gg_data_load(&ds, out);
    FUZZ_CHECK(rc == 0, "written file does not load: %s", gg_err_msg(rc));
    FUZZ_CHECK(ds.int_labels && ds.n >= 1 && ds.d >= 1, "n %zu d %d", ds.n, ds.d);
    gg_data_free(&ds);
    unlink(out);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned flags;
  if (!fuzz_begin(&data, &size, &flags)) return 0;
  char a[600], b[600], o[600];
  fuzz_path("a", a, sizeof a);
  fuzz_path("b", b, sizeof b);
  fuzz_path("out.h5", o, sizeof o);
  const uint8_t *sep = fuzz_find(data, size, "@@LABELS@@");
  if (!sep) {
    fuzz_write(a, data, size, flags & 1);
    read_one_file(a);
  } else {
    size_t na = (size_t)(sep - data), skip = na + 10;
    fuzz_write(a, data, na, flags & 1);
    fuzz_write(b, data + skip, size - skip, flags & 2);
    run_command(a, b, o, flags & 4);
  }
  return 0;
}
