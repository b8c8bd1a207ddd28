/* replay_main.c — runs a fuzz target's LLVMFuzzerTestOneInput on saved
 * inputs without libFuzzer (any compiler): the regression test replays the
 * corpus of every target (seeds plus every crash and timeout input found,
 * minimized) through the same entry points.
 *
 * usage: fuzz_replay_TARGET FILE|DIR...   (each file of each DIR, sorted)
 * A failing input aborts (or a sanitizer stops the program): non-zero exit.
 * Without ASan the address space is capped at 2 GiB (absurd allocations).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* Without ASan (which reserves terabytes of address space for its shadow)
 * the address space is capped, so that an input that makes a parser
 * allocate gigabytes fails here as libFuzzer's -malloc_limit_mb does. */
#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif
#define REPLAY_AS_LIMIT ((rlim_t)2 << 30) /* 2 GiB */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: cannot open\n", path);
    return -1;
  }
  size_t cap = 1 << 16, len = 0;
  uint8_t *buf = malloc(cap);
  for (size_t r; buf && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
    len += r;
    if (len == cap) buf = realloc(buf, cap *= 2);
  }
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "replay: %s: cannot read\n", path);
    free(buf);
    return -1;
  }
  /* libFuzzer hands over a buffer of exactly len bytes: so do we, so that
   * ASan sees a read past the end */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) abort();
  memcpy(exact, buf, len);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  int n = 0, errors = 0;
#ifndef REPLAY_ASAN
  struct rlimit rl = {REPLAY_AS_LIMIT, REPLAY_AS_LIMIT};
  if (setrlimit(RLIMIT_AS, &rl) != 0) perror("replay: setrlimit");
#endif
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: not found\n", argv[i]);
      errors++;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      errors += replay_file(argv[i]) != 0;
      n++;
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (!d) {
      errors++;
      continue;
    }
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      names = realloc(names, (count + 1) * sizeof *names);
      size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
      names[count] = malloc(len);
      snprintf(names[count++], len, "%s/%s", argv[i], e->d_name);
    }
    closedir(d);
    if (names) qsort(names, count, sizeof *names, cmp);
    for (size_t j = 0; j < count; j++) {
      errors += replay_file(names[j]) != 0;
      n++;
      free(names[j]);
    }
    free(names);
  }
  fprintf(stderr, "replay: %d inputs, %d unreadable\n", n, errors);
  return errors || n == 0 ? 1 : 0;
}
