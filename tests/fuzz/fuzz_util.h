/* fuzz_util.h — helpers shared by the fuzz targets (tests/fuzz/fuzz_*.c):
 * a private scratch folder, writing the fuzzer's bytes to a file (raw or
 * gzip'd), and a failure that a fuzzer and the replay program both catch.
 *
 * Each fuzz target defines LLVMFuzzerTestOneInput; under libFuzzer it is
 * driven by -fsanitize=fuzzer, in the regression test by replay_main.c.
 * Everything here is static: each target includes it once.
 */
#ifndef GG_FUZZ_UTIL_H
#define GG_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

/* A broken invariant: print and abort, which libFuzzer and the replay
 * program (and ASan) report as a crash with this input. */
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,        \
              __LINE__, #cond);                                                \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* The start of the gg-data targets: stdout to /dev/null once (gg-data
 * prints "wrote ..." on success), then byte 0 of the input split off as
 * *flags. 0 when the input is empty (nothing to run). */
static inline int fuzz_begin(const uint8_t **data, size_t *size, unsigned *flags) {
  static int quiet;
  if (!quiet) {
    if (!freopen("/dev/null", "w", stdout)) abort();
    quiet = 1;
  }
  if (*size < 1) return 0;
  *flags = (*data)[0];
  (*data)++;
  (*size)--;
  return 1;
}

static char fuzz__dir[512];

static inline void fuzz__cleanup(void) {
  if (!fuzz__dir[0]) return;
  /* the targets only create files directly in the folder, never subfolders */
  static const char *names[] = {"a", "b", "out.h5", "in.ini", "out2.ini", NULL};
  char p[600];
  for (int i = 0; names[i]; i++) {
    snprintf(p, sizeof p, "%s/%s", fuzz__dir, names[i]);
    unlink(p);
  }
  rmdir(fuzz__dir);
}

/* Path of `name` inside this process's scratch folder (made on first use
 * under $TMPDIR or /tmp, removed at exit). */
static inline const char *fuzz_path(const char *name, char *buf, size_t len) {
  if (!fuzz__dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(fuzz__dir, sizeof fuzz__dir, "%s/gg-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fuzz__dir)) {
      perror("gg-fuzz: mkdtemp");
      abort();
    }
    atexit(fuzz__cleanup);
  }
  snprintf(buf, len, "%s/%s", fuzz__dir, name);
  return buf;
}

/* Write data to path, gzip'd when gz; aborts if the scratch file cannot be
 * written (a harness problem, not an input problem). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size, int gz) {
  if (gz) {
    gzFile g = gzopen(path, "wb");
    if (!g) abort();
    if (size && gzwrite(g, data, (unsigned)size) != (int)size) abort();
    if (gzclose(g) != Z_OK) abort();
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
}

/* First occurrence of needle in data[0..size), or NULL (memmem is GNU). */
static inline const uint8_t *fuzz_find(const uint8_t *data, size_t size, const char *needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; n <= size && i <= size - n; i++)
    if (memcmp(data + i, needle, n) == 0) return data + i;
  return NULL;
}

/* An error message of the contract: one line, not empty. */
static inline int fuzz_one_line(const char *msg) {
  return msg[0] != 0 && strchr(msg, '\n') == NULL;
}

#endif
