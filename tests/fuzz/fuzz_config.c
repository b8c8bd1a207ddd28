/* fuzz_config.c — fuzz target for the option parsers of src/config.c:
 * INI files (gg_config_load_ini, via libinih), single values
 * (gg_config_set: numbers, flags, enums, --layers, --init, --lr-schedule)
 * and whole command lines (gg_config_parse_args, getopt_long).
 *
 * Input: byte 0 selects the mode (mod 3), the rest is its text.
 *   0: the text is an INI file
 *   1: "KEY\0VALUE": one gg_config_set (no NUL: the whole text is a value of
 *      a key chosen by byte 0 / 3)
 *   2: NUL-separated arguments after "train" for gg_config_parse_args
 *      (inputs with --config FILE are dropped: loading a file named by the
 *      fuzzer is mode 0's job, and could block on a FIFO or /dev/stdin)
 * Invariants: no crash, leak or sanitizer report; the result is 0 (1 for
 * --help) or GG_EUSAGE with a one-line message; an accepted configuration
 * that passes gg_config_finalize prints as INI text (gg_config_to_ini) that
 * loads back to the same text: the resolved configuration printed at start
 * and stored in every checkpoint must read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "gradguard/config.h"
#include "gradguard/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *keys[] = {"layers", "lr", "batch", "seed", "init", "lr-schedule", "warmup-steps",
                             "deterministic", "verbosity", "nonfinite", "activation", "loss",
                             "optimizer", "shard-update", "data", "steps", "autoclip", "threads"};
#define N_KEYS (sizeof keys / sizeof keys[0])

static char text1[1 << 16], text2[1 << 16];

static void check_rc(int rc) {
  FUZZ_CHECK(rc == 0 || rc == GG_EUSAGE, "rc %d (%s): %s", rc, gg_strerror(rc), gg_err_msg(rc));
  if (rc) FUZZ_CHECK(fuzz_one_line(gg_err_msg(rc)), "message not one line: '%s'", gg_err_msg(rc));
}

/* An accepted configuration that also passes gg_config_finalize (as the
 * trainer's does before it prints and stores it) prints, and the printout
 * reads back to itself. */
static void check_roundtrip(gg_config_t *cfg) {
  int rc = gg_config_finalize(cfg);
  check_rc(rc);
  if (rc) return;
  rc = gg_config_to_ini(cfg, text1, sizeof text1);
  FUZZ_CHECK(rc == 0, "to_ini: %s", gg_err_msg(rc));
  char path[600];
  fuzz_path("out2.ini", path, sizeof path);
  fuzz_write(path, (const uint8_t *)text1, strlen(text1), 0);
  static gg_config_t back;
  gg_config_defaults(&back);
  rc = gg_config_load_ini(&back, path);
  FUZZ_CHECK(rc == 0, "the resolved configuration does not load back: %s\n%s", gg_err_msg(rc), text1);
  rc = gg_config_to_ini(&back, text2, sizeof text2);
  FUZZ_CHECK(rc == 0 && strcmp(text1, text2) == 0, "round trip differs:\n%s\n---\n%s", text1, text2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *devnull;
  if (!devnull && !(devnull = fopen("/dev/null", "w"))) abort();
  if (size < 1) return 0;
  unsigned mode = data[0] % 3, sel = data[0] / 3;
  data++;
  size--;
  static gg_config_t cfg; /* large (several paths of 4 KiB): not on the stack */
  gg_config_defaults(&cfg);
  gg_err_clear();
  int rc;

  if (mode == 0) {
    char path[600];
    fuzz_path("in.ini", path, sizeof path);
    fuzz_write(path, data, size, 0);
    rc = gg_config_load_ini(&cfg, path);
    check_rc(rc);
    if (rc == 0) check_roundtrip(&cfg);
    return 0;
  }

  /* a NUL-terminated copy of the text */
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = 0;
  if (mode == 1) {
    const char *key, *value;
    size_t klen = strlen(s);
    if (klen < size) {
      key = s;
      value = s + klen + 1;
    } else {
      key = keys[sel % N_KEYS];
      value = s;
    }
    rc = gg_config_set(&cfg, key, value);
    check_rc(rc);
  } else {
    char *argv[66];
    int argc = 0, skip = 0;
    argv[argc++] = "train";
    for (size_t i = 0; i < size + 1 && argc < 65;) {
      char *arg = s + i;
      if (strcmp(arg, "--config") == 0 || strncmp(arg, "--config=", 9) == 0) skip = 1;
      argv[argc++] = arg;
      i += strlen(arg) + 1;
    }
    argv[argc] = NULL;
    if (skip) {
      free(s);
      return 0;
    }
    rc = gg_config_parse_args(&cfg, argc, argv, devnull);
    if (rc != 1) check_rc(rc);
  }
  free(s);
  if (rc == 0) check_roundtrip(&cfg);
  return 0;
}
