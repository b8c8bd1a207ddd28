/* gg-data.c — the `gg-data` program: make and inspect gradguard dataset files.
 *
 *   gg-data import-idx --images F --labels F -o OUT.h5   (MNIST-style IDX, gzip'd or raw)
 *   gg-data import-csv --input F.csv -o OUT.h5 [--targets K] [--int-labels] [--skip-header]
 *   gg-data synth --kind seed|blobs|regression|binary -o OUT.h5 [--n N] [--d D] [--k K] [--seed S]
 *   gg-data info FILE [--json]
 *
 * Output files follow INTERFACE.md (/X float32 (N, D); /y int32 (N) or
 * float32 (N) / (N, K)) and are written by the library's gg_data_write_ex,
 * so what gg-data writes is exactly what the trainer reads. Not an MPI
 * program. Errors are one line "gg-data: ..." on stderr; the exit code is
 * 64 for bad usage and otherwise gg_exit_code() of the library error code
 * (65 malformed input, 66 missing input, 73/74 output trouble).
 */
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zlib.h>

#include "gradguard/data.h"
#include "gradguard/error.h"
#include "gradguard/rng.h"

#ifndef GG_VERSION /* set by CMake for the program; the fuzz harnesses include this file */
#define GG_VERSION "unknown"
#endif

#define EXIT_USAGE 64

/* ---- common ------------------------------------------------------------ */

/* One line on stderr for a usage error; returns the usage exit code. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("gg-data: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return EXIT_USAGE;
}

/* Report a library error code (its recorded message) and map it to the
 * contract's exit code: the one place this program decides to die. */
static int fail(int rc) {
  fprintf(stderr, "gg-data: %s\n", gg_err_msg(rc));
  return gg_exit_code(rc);
}

/* getopt_long reported '?' (unknown option) or ':' (missing value). */
static int bad_option(const char *cmd, int c, char **argv) {
  char shortopt[3] = {'-', (char)optopt, 0};
  const char *opt = optopt ? shortopt : argv[optind - 1];
  if (c == ':')
    return usage_error("%s: option '%s' needs a value (see gg-data %s --help)", cmd, opt, cmd);
  return usage_error("%s: unknown option '%s' (see gg-data %s --help)", cmd, opt, cmd);
}

/* Parse a whole decimal integer in [lo, hi] for flag. */
static int parse_u64(const char *cmd, const char *flag, const char *arg, uint64_t lo, uint64_t hi,
                     uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(arg, &end, 10);
  if (arg[0] == '-' || arg[0] == '+' || end == arg || *end || errno == ERANGE || v < lo || v > hi) {
    usage_error("%s: %s '%s' is not an integer in [%llu, %llu]", cmd, flag, arg,
                (unsigned long long)lo, (unsigned long long)hi);
    return -1;
  }
  *out = v;
  return 0;
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* A growable array of elements of one size (CSV rows arrive one by one). */
typedef struct {
  void *p;
  size_t len, cap, esize; /* len and cap in elements */
} vec_t;

static int vec_push(vec_t *v, const void *elems, size_t count) {
  if (count > SIZE_MAX / v->esize - v->len) return GG_ENOMEM;
  if (v->len + count > v->cap) {
    size_t cap = v->cap ? v->cap : 1024;
    while (cap < v->len + count) cap = cap > SIZE_MAX / 2 / v->esize ? v->len + count : 2 * cap;
    void *p = realloc(v->p, cap * v->esize);
    if (!p) return GG_ENOMEM;
    v->p = p;
    v->cap = cap;
  }
  memcpy((char *)v->p + v->len * v->esize, elems, count * v->esize);
  v->len += count;
  return 0;
}

/* Parse --compress: deflate level 0 (contiguous, default) .. 9. */
static int parse_compress(const char *cmd, const char *arg, int *level) {
  uint64_t v;
  if (parse_u64(cmd, "--compress", arg, 0, 9, &v)) return -1;
  *level = (int)v;
  return 0;
}

/* ---- import-idx -------------------------------------------------------- */

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Read exactly len bytes; what names the part they belong to and end is
 * the file offset where that part ends, for the truncation message (the
 * payload is read in chunks). */
static int gz_read_exact(gzFile gz, const char *path, void *buf, size_t len, size_t *done,
                         const char *what, size_t end) {
  unsigned char *p = buf;
  size_t got = 0;
  int errnum = Z_OK;
  while (got < len) {
    unsigned want = len - got > (1u << 30) ? (1u << 30) : (unsigned)(len - got);
    int r = gzread(gz, p + got, want);
    if (r < 0) {
      const char *msg = gzerror(gz, &errnum);
      if (errnum == Z_ERRNO)
        return gg_err_set(GG_ENOINPUT, "%s: cannot read: %s", path, strerror(errno));
      if (errnum != Z_BUF_ERROR) return gg_err_set(GG_EDATA, "%s: corrupt gzip data: %s", path, msg);
      break; /* Z_BUF_ERROR: the gzip stream ends early, i.e. truncated */
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  if (got < len)
    return gg_err_set(GG_EDATA, "%s: truncated: %s need %zu bytes but the file ends after %zu",
                      path, what, end, (size_t)(*done + got));
  *done += len;
  return 0;
}

/* After the payload there must be nothing: extra bytes mean a wrong header.
 * gzread answers 0 both at a clean end and where the file stops inside a
 * gzip stream (a cut trailer, a cut second member); gzerror's Z_BUF_ERROR
 * tells the second apart. */
static int gz_expect_end(gzFile gz, const char *path, size_t done) {
  unsigned char c;
  int errnum = Z_OK;
  int r = gzread(gz, &c, 1);
  if (r > 0)
    return gg_err_set(GG_EDATA, "%s: unexpected data after %zu bytes (wrong header counts?)",
                      path, done);
  const char *msg = gzerror(gz, &errnum);
  if (r < 0 || errnum != Z_OK) {
    if (errnum == Z_ERRNO)
      return gg_err_set(GG_ENOINPUT, "%s: cannot read: %s", path, strerror(errno));
    if (errnum == Z_BUF_ERROR)
      return gg_err_set(GG_EDATA, "%s: truncated: the gzip stream ends early", path);
    return gg_err_set(GG_EDATA, "%s: corrupt gzip data: %s", path, msg);
  }
  return 0;
}

static gzFile gz_open(const char *path, int *rc) {
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    *rc = errno ? gg_err_set(GG_ENOINPUT, "%s: cannot open: %s", path, strerror(errno))
                : gg_err_set(GG_ENOMEM, "%s: out of memory opening the file", path);
  else if (gzbuffer(gz, 1u << 17) != 0)
    *rc = gg_err_set(GG_EINTERNAL, "%s: cannot set the zlib buffer", path);
  return gz;
}

/* Close; a failure only becomes the status when nothing failed before.
 * gzclose reports Z_BUF_ERROR when the last read stopped inside a gzip
 * stream: malformed (truncated) input, not an unreadable file. */
static int gz_finish(gzFile gz, const char *path, int rc) {
  errno = 0;
  int r = gzclose(gz);
  if (r == Z_OK || rc != 0) return rc;
  if (r == Z_BUF_ERROR) return gg_err_set(GG_EDATA, "%s: truncated: the gzip stream ends early", path);
  return gg_err_set(GG_ENOINPUT, "%s: cannot close: %s", path,
                    errno ? strerror(errno) : "zlib error");
}

/* Open an IDX file and read its header: the magic first, alone (so a
 * swapped or foreign file is named as such), then the hdr_len - 4 bytes of
 * dimensions. On success *gz is open; on failure it is closed. */
static int idx_open(const char *path, uint32_t magic, const char *kind, unsigned char *hdr,
                    size_t hdr_len, gzFile *gz, size_t *done) {
  int rc = 0;
  *done = 0;
  *gz = gz_open(path, &rc);
  if (!*gz) return rc;
  if (!rc) rc = gz_read_exact(*gz, path, hdr, 4, done, "the IDX magic", 4);
  if (!rc && be32(hdr) != magic)
    rc = gg_err_set(GG_EDATA, "%s: IDX magic 0x%08x; expected 0x%08x (%s)", path,
                    (unsigned)be32(hdr), (unsigned)magic, kind);
  if (!rc) rc = gz_read_exact(*gz, path, hdr + 4, hdr_len - 4, done, "the IDX dimensions", hdr_len);
  if (rc) {
    gz_finish(*gz, path, rc);
    *gz = NULL;
  }
  return rc;
}

/* Make room for need elements of esize bytes in p (capacity *cap),
 * doubling but never past limit (>= need; limit * esize must not overflow).
 * The IDX payload is read in chunks and the arrays grow with the bytes that
 * actually arrive: a small file whose header declares billions of samples
 * ends as "truncated" instead of first allocating gigabytes. NULL (p
 * untouched) when out of memory. */
static void *grow(void *p, size_t *cap, size_t need, size_t limit, size_t esize) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : (size_t)1 << 16;
  while (c < need) c = c > limit / 2 ? limit : 2 * c;
  if (c > limit) c = limit;
  void *q = realloc(p, c * esize);
  if (q) *cap = c;
  return q;
}

/* Images: header (magic, n, rows, cols), then n*rows*cols unsigned bytes,
 * stored as X (n, rows*cols) = byte / 255 (torchvision's ToTensor). */
static int idx_read_images(const char *path, float **X, uint32_t *n, int *d) {
  unsigned char hdr[16], buf[1 << 16];
  size_t done, cap = 0;
  gzFile gz;
  int rc = idx_open(path, IDX_MAGIC_IMAGES, "unsigned-byte images, 3-D", hdr, 16, &gz, &done);
  if (rc) return rc;
  uint32_t cnt = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
  /* (size_t)cnt * rows * cols < 2^63; as floats it must still fit size_t */
  size_t total = (size_t)cnt * rows * cols;
  if (cnt == 0 || rows == 0 || cols == 0 || (uint64_t)rows * cols > INT_MAX ||
      total > (SIZE_MAX - 16) / sizeof **X) {
    rc = gg_err_set(GG_EDATA, "%s: IDX dimensions %u x %u x %u are not usable", path,
                    (unsigned)cnt, (unsigned)rows, (unsigned)cols);
    goto out;
  }
  char what[64];
  snprintf(what, sizeof what, "%u images", (unsigned)cnt);
  /* Stream through a small buffer: no second copy of the whole file. */
  for (size_t off = 0; off < total;) {
    size_t m = total - off < sizeof buf ? total - off : sizeof buf;
    rc = gz_read_exact(gz, path, buf, m, &done, what, 16 + total);
    if (rc) goto out;
    float *x = grow(*X, &cap, off + m, total, sizeof **X);
    if (!x) {
      rc = gg_err_set(GG_ENOMEM, "%s: out of memory for %u images", path, (unsigned)cnt);
      goto out;
    }
    *X = x;
    for (size_t i = 0; i < m; i++) x[off + i] = (float)buf[i] / 255.0f;
    off += m;
  }
  rc = gz_expect_end(gz, path, done);
  *n = cnt;
  *d = (int)(rows * cols);
out:
  return gz_finish(gz, path, rc);
}

/* Labels: header (magic, n), then n unsigned bytes -> int32. */
static int idx_read_labels(const char *path, int32_t **labels, uint32_t *n) {
  unsigned char hdr[8], buf[1 << 16];
  size_t done, cap = 0;
  gzFile gz;
  int rc = idx_open(path, IDX_MAGIC_LABELS, "unsigned-byte labels, 1-D", hdr, 8, &gz, &done);
  if (rc) return rc;
  uint32_t cnt = be32(hdr + 4);
  if (cnt == 0) {
    rc = gg_err_set(GG_EDATA, "%s: IDX file holds no labels", path);
    goto out;
  }
  char what[64];
  snprintf(what, sizeof what, "%u labels", (unsigned)cnt);
  for (size_t off = 0; off < cnt;) {
    size_t m = cnt - off < sizeof buf ? cnt - off : sizeof buf;
    rc = gz_read_exact(gz, path, buf, m, &done, what, 8 + (size_t)cnt);
    if (rc) goto out;
    int32_t *l = grow(*labels, &cap, off + m, cnt, sizeof **labels);
    if (!l) {
      rc = gg_err_set(GG_ENOMEM, "%s: out of memory for %u labels", path, (unsigned)cnt);
      goto out;
    }
    *labels = l;
    for (size_t i = 0; i < m; i++) l[off + i] = buf[i];
    off += m;
  }
  rc = gz_expect_end(gz, path, done);
  *n = cnt;
out:
  return gz_finish(gz, path, rc);
}

static const char help_import_idx[] =
    "usage: gg-data import-idx --images FILE --labels FILE -o OUT.h5 [--compress LEVEL]\n"
    "\n"
    "Convert an MNIST-style IDX pair (gzip'd or raw) to a gradguard dataset file:\n"
    "images (magic 0x00000803, unsigned bytes n x rows x cols) become /X float32\n"
    "(n, rows*cols) scaled to [0, 1] (byte / 255); labels (magic 0x00000801)\n"
    "become /y int32 class indices, for --loss softmax_ce.\n"
    "\n"
    "  --images FILE     IDX image file (e.g. train-images-idx3-ubyte.gz)\n"
    "  --labels FILE     IDX label file (e.g. train-labels-idx1-ubyte.gz)\n"
    "  -o, --output OUT  dataset file to write (overwritten)\n"
    "  --compress LEVEL  0 contiguous (default, fastest to read), 1-9 deflate\n"
    "  -h, --help        this help\n";

static int cmd_import_idx(int argc, char **argv) {
  static const struct option opts[] = {{"images", required_argument, NULL, 'i'},
                                       {"labels", required_argument, NULL, 'l'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"compress", required_argument, NULL, 'z'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "import-idx", *images = NULL, *labels_path = NULL, *out = NULL;
  int c, level = 0;
  while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'i': images = optarg; break;
    case 'l': labels_path = optarg; break;
    case 'o': out = optarg; break;
    case 'z':
      if (parse_compress(cmd, optarg, &level)) return EXIT_USAGE;
      break;
    case 'h': fputs(help_import_idx, stdout); return 0;
    default: return bad_option(cmd, c, argv);
    }
  }
  if (optind < argc) return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
  if (!images || !labels_path || !out)
    return usage_error("%s: --images, --labels and -o are required (see gg-data %s --help)", cmd,
                       cmd);

  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  float *X = NULL;
  int32_t *labels = NULL;
  uint32_t n_img = 0, n_lab = 0;
  int d = 0, rc;
  rc = idx_read_images(images, &X, &n_img, &d);
  if (rc == 0) rc = idx_read_labels(labels_path, &labels, &n_lab);
  if (rc == 0 && n_img != n_lab)
    rc = gg_err_set(GG_EDATA, "%s: %u labels but %s has %u images", labels_path, (unsigned)n_lab,
                    images, (unsigned)n_img);
  if (rc == 0) rc = gg_data_write_ex(out, n_img, d, X, 1, NULL, labels, 1, level);
  if (rc == 0) {
    int32_t mx = 0;
    for (uint32_t i = 0; i < n_lab; i++)
      if (labels[i] > mx) mx = labels[i];
    printf("gg-data: wrote %s: %u samples \u00d7 %d features, %d classes (%.2f s)\n", out,
           (unsigned)n_img, d, (int)mx + 1, seconds_since(&t0));
  }
  free(X);
  free(labels);
  return rc ? fail(rc) : 0;
}

/* ---- import-csv -------------------------------------------------------- */

/* Split line in place at commas into fields (trimmed, one pair of double
 * quotes removed). Returns the field count. */
static size_t csv_split(char *line, vec_t *fields) {
  fields->len = 0;
  for (char *p = line;;) {
    char *end = strchr(p, ',');
    if (end) *end = 0;
    while (*p == ' ' || *p == '\t') p++;
    char *e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
    if (e - p >= 2 && p[0] == '"' && e[-1] == '"') {
      e[-1] = 0;
      p++;
    }
    if (vec_push(fields, &p, 1)) return (size_t)-1;
    if (!end) break;
    p = end + 1;
  }
  return fields->len;
}

/* A finite number representable as float32; 0 or -1. */
static int csv_number(const char *s, double *v) {
  char *end;
  if (!*s) return -1;
  errno = 0;
  *v = strtod(s, &end);
  if (*end || errno == ERANGE || !isfinite(*v) || fabs(*v) > FLT_MAX) return -1;
  return 0;
}

static const char help_import_csv[] =
    "usage: gg-data import-csv --input FILE.csv -o OUT.h5 [--targets K] [--int-labels]\n"
    "                          [--skip-header] [--compress LEVEL]\n"
    "\n"
    "Convert a numeric CSV (comma-separated, one sample per line) to a gradguard\n"
    "dataset file. The last K columns are the targets, stored as /y float32 (N)\n"
    "for K = 1 or (N, K); the others are /X float32 (N, D). A first line that is\n"
    "not numeric is taken as a header and skipped.\n"
    "\n"
    "  --input FILE      CSV file to read\n"
    "  -o, --output OUT  dataset file to write (overwritten)\n"
    "  --targets K       number of target columns at the end (default 1)\n"
    "  --int-labels      the last column is an integer class index >= 0, stored as\n"
    "                    /y int32 (for --loss softmax_ce); implies --targets 1\n"
    "  --skip-header     always skip the first line\n"
    "  --compress LEVEL  0 contiguous (default), 1-9 deflate\n"
    "  -h, --help        this help\n";

static int cmd_import_csv(int argc, char **argv) {
  static const struct option opts[] = {{"input", required_argument, NULL, 'i'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"targets", required_argument, NULL, 'k'},
                                       {"int-labels", no_argument, NULL, 'L'},
                                       {"skip-header", no_argument, NULL, 'H'},
                                       {"compress", required_argument, NULL, 'z'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "import-csv", *in = NULL, *out = NULL;
  int c, level = 0, int_labels = 0, skip_header = 0, targets_given = 0;
  uint64_t K = 1;
  while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'i': in = optarg; break;
    case 'o': out = optarg; break;
    case 'k':
      if (parse_u64(cmd, "--targets", optarg, 1, INT_MAX, &K)) return EXIT_USAGE;
      targets_given = 1;
      break;
    case 'L': int_labels = 1; break;
    case 'H': skip_header = 1; break;
    case 'z':
      if (parse_compress(cmd, optarg, &level)) return EXIT_USAGE;
      break;
    case 'h': fputs(help_import_csv, stdout); return 0;
    default: return bad_option(cmd, c, argv);
    }
  }
  if (optind < argc) return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
  if (!in || !out)
    return usage_error("%s: --input and -o are required (see gg-data %s --help)", cmd, cmd);
  if (int_labels && targets_given && K != 1)
    return usage_error("%s: --int-labels takes exactly one label column, not --targets %llu", cmd,
                       (unsigned long long)K);

  FILE *f = fopen(in, "r");
  if (!f) return fail(gg_err_set(GG_ENOINPUT, "%s: cannot open: %s", in, strerror(errno)));

  vec_t fields = {.esize = sizeof(char *)}, X = {.esize = sizeof(float)},
        y = {.esize = int_labels ? sizeof(int32_t) : sizeof(float)};
  char *line = NULL;
  size_t cap = 0, ncols = 0, n = 0;
  long lineno = 0, first_data_line = 0;
  int rc = 0, header = 0;
  int32_t max_label = 0;
  float *row = NULL;
  while (rc == 0) {
    errno = 0;
    ssize_t len = getline(&line, &cap, f);
    if (len < 0) {
      if (ferror(f)) rc = gg_err_set(GG_ENOINPUT, "%s: cannot read: %s", in, strerror(errno));
      break;
    }
    lineno++;
    if (lineno == 1 && skip_header) {
      header = 1;
      continue;
    }
    /* The line is parsed as a C string: a NUL byte would silently cut it
     * (and drop the fields after it), so binary input is an error. */
    if (strlen(line) != (size_t)len) {
      rc = gg_err_set(GG_EDATA, "%s:%ld: NUL byte in the line (not a text CSV file)", in, lineno);
      break;
    }
    if (line[strspn(line, " \t\r\n")] == 0) continue; /* blank line */
    size_t nf = csv_split(line, &fields);
    if (nf == (size_t)-1) {
      rc = gg_err_set(GG_ENOMEM, "%s:%ld: out of memory", in, lineno);
      break;
    }
    char **fv = fields.p;
    if (ncols == 0) {
      /* A non-numeric first line is a header (names of the columns). */
      double v;
      size_t j = 0;
      while (j < nf && csv_number(fv[j], &v) == 0) j++;
      if (j < nf && !header) {
        header = 1;
        continue;
      }
      if (nf <= K) {
        rc = gg_err_set(GG_EDATA, "%s:%ld: %zu fields leave no feature columns with %llu target%s",
                        in, lineno, nf, (unsigned long long)K, K == 1 ? "" : "s");
        break;
      }
      if (nf - K > INT_MAX) { /* D is an int in the file writer and the network */
        rc = gg_err_set(GG_EDATA, "%s:%ld: %zu feature columns; at most %d are supported", in,
                        lineno, nf - (size_t)K, INT_MAX);
        break;
      }
      ncols = nf;
      first_data_line = lineno;
      row = malloc(ncols * sizeof *row);
      if (!row) {
        rc = gg_err_set(GG_ENOMEM, "%s: out of memory", in);
        break;
      }
    }
    if (nf != ncols) {
      rc = gg_err_set(GG_EDATA, "%s:%ld: %zu fields but line %ld has %zu", in, lineno, nf,
                      first_data_line, ncols);
      break;
    }
    int32_t lab = 0;
    for (size_t j = 0; j < nf && rc == 0; j++) {
      double v;
      if (csv_number(fv[j], &v))
        rc = gg_err_set(GG_EDATA, "%s:%ld: field %zu '%s' is not a finite float32 number", in,
                        lineno, j + 1, fv[j]);
      else if (int_labels && j == nf - 1 && (v < 0 || v > INT32_MAX || v != floor(v)))
        rc = gg_err_set(GG_EDATA, "%s:%ld: field %zu '%s' is not a class index (integer >= 0)",
                        in, lineno, j + 1, fv[j]);
      else if (int_labels && j == nf - 1)
        lab = (int32_t)v; /* exact: v is an integer below 2^31 */
      else
        row[j] = (float)v;
    }
    if (rc) break;
    size_t D = ncols - (size_t)K;
    if (lab > max_label) max_label = lab;
    if (vec_push(&X, row, D) ||
        (int_labels ? vec_push(&y, &lab, 1) : vec_push(&y, row + D, (size_t)K))) {
      rc = gg_err_set(GG_ENOMEM, "%s:%ld: out of memory", in, lineno);
      break;
    }
    n++;
  }
  if (fclose(f) != 0 && rc == 0) rc = gg_err_set(GG_ENOINPUT, "%s: cannot read: %s", in, strerror(errno));
  if (rc == 0 && n == 0) rc = gg_err_set(GG_EDATA, "%s: no data rows", in);
  if (rc == 0)
    rc = gg_data_write_ex(out, n, (int)(ncols - K), X.p, (int)K, int_labels ? NULL : y.p,
                          int_labels ? y.p : NULL, 1, level);
  if (rc == 0) {
    printf("gg-data: wrote %s: %zu samples \u00d7 %zu features, ", out, n, ncols - (size_t)K);
    if (int_labels) /* in long long: the largest label may be INT32_MAX */
      printf("%lld classes", (long long)max_label + 1);
    else
      printf("%llu float target%s", (unsigned long long)K, K == 1 ? "" : "s");
    printf("%s\n", header ? " (header line skipped)" : "");
  }
  free(line);
  free(row);
  free(fields.p);
  free(X.p);
  free(y.p);
  return rc ? fail(rc) : 0;
}

/* ---- synth ------------------------------------------------------------- */

/* Streams of the synthetic generators (separate from the trainer's, so a
 * data set does not share random numbers with the network that learns it). */
#define SYNTH_STREAM_X 0x53594e0000000001ull
#define SYNTH_STREAM_Y 0x53594e0000000002ull
#define SYNTH_STREAM_MODEL 0x53594e0000000003ull

typedef enum { SYNTH_SEED, SYNTH_BLOBS, SYNTH_REGRESSION, SYNTH_BINARY } synth_kind_t;

static const struct {
  const char *name;
  synth_kind_t kind;
  uint64_t n, d, k; /* defaults */
} synth_kinds[] = {
    {"seed", SYNTH_SEED, 1000, 100, 1},
    {"blobs", SYNTH_BLOBS, 1000, 2, 3},
    {"regression", SYNTH_REGRESSION, 1000, 8, 1},
    {"binary", SYNTH_BINARY, 1000, 2, 1},
};

static const char help_synth[] =
    "usage: gg-data synth --kind KIND -o OUT.h5 [--n N] [--d D] [--k K] [--seed S]\n"
    "                     [--compress LEVEL]\n"
    "\n"
    "Write a synthetic dataset, deterministic from --seed. Kinds (defaults n, d, k):\n"
    "  seed        X ~ U[0,1) (n, d), y ~ U[0,1) float32 (n) (or (n, k) if k > 1):\n"
    "              the example of the vanishing-gradients article; train with\n"
    "              --loss bce and one output.   (1000, 100, 1)\n"
    "  blobs       k Gaussian clusters (unit variance, centers ~ U[-10,10)^d),\n"
    "              y int32 class index; --loss softmax_ce.   (1000, 2, 3)\n"
    "  regression  X ~ N(0,1), y = tanh(W x + b) + N(0, 0.01^2) with a random\n"
    "              teacher W ~ N(0, 1/d), b ~ N(0, 0.1^2); y float32 (n, k);\n"
    "              --loss mse.   (1000, 8, 1)\n"
    "  binary      XOR-like: X ~ U[-1,1), y_j = 1 if x_j and x_(j+1 mod d) have the\n"
    "              same sign, else 0; float32 (n) or (n, k); --loss bce; d >= 2.\n"
    "              (1000, 2, 1)\n"
    "\n"
    "  --kind KIND       one of the above (required)\n"
    "  -o, --output OUT  dataset file to write (overwritten)\n"
    "  --n N, --d D, --k K  samples, features, targets/classes\n"
    "  --seed S          seed (default 0)\n"
    "  --compress LEVEL  0 contiguous (default), 1-9 deflate\n"
    "  -h, --help        this help\n";

/* Fill X (n, d) and y (n, k) or labels (n) for one kind. */
static int synth_fill(synth_kind_t kind, size_t n, int d, int k, uint64_t seed, float *X,
                      float *y, int32_t *labels) {
  gg_rng_t rx, ry, rm;
  size_t nd = n * (size_t)d;
  gg_rng_seed(&rx, seed, SYNTH_STREAM_X);
  gg_rng_seed(&ry, seed, SYNTH_STREAM_Y);
  gg_rng_seed(&rm, seed, SYNTH_STREAM_MODEL);
  switch (kind) {
  case SYNTH_SEED:
    for (size_t i = 0; i < nd; i++) X[i] = (float)gg_rng_uniform(&rx);
    for (size_t i = 0; i < n * (size_t)k; i++) y[i] = (float)gg_rng_uniform(&ry);
    return 0;
  case SYNTH_BLOBS: {
    double *centers = malloc((size_t)k * (size_t)d * sizeof *centers); /* (k, d) */
    if (!centers) return gg_err_set(GG_ENOMEM, "out of memory for %d centers", k);
    for (size_t i = 0; i < (size_t)k * (size_t)d; i++)
      centers[i] = 20.0 * gg_rng_uniform(&rm) - 10.0;
    for (size_t i = 0; i < n; i++) {
      labels[i] = (int32_t)gg_rng_below(&ry, (uint64_t)k);
      const double *c = centers + (size_t)labels[i] * (size_t)d;
      for (int j = 0; j < d; j++) X[i * (size_t)d + (size_t)j] = (float)(c[j] + gg_rng_normal(&rx));
    }
    free(centers);
    return 0;
  }
  case SYNTH_REGRESSION: {
    /* Teacher W (k, d) and b (k): z = W x + b has unit-order scale. */
    double *W = malloc(((size_t)k * (size_t)d + (size_t)k) * sizeof *W);
    if (!W) return gg_err_set(GG_ENOMEM, "out of memory for the teacher (%d x %d)", k, d);
    double *b = W + (size_t)k * (size_t)d, scale = 1.0 / sqrt((double)d);
    for (size_t i = 0; i < (size_t)k * (size_t)d; i++) W[i] = scale * gg_rng_normal(&rm);
    for (int o = 0; o < k; o++) b[o] = 0.1 * gg_rng_normal(&rm);
    for (size_t i = 0; i < nd; i++) X[i] = (float)gg_rng_normal(&rx);
    for (size_t i = 0; i < n; i++) {
      const float *x = X + i * (size_t)d;
      for (int o = 0; o < k; o++) {
        double z = b[o];
        for (int j = 0; j < d; j++) z += W[(size_t)o * (size_t)d + (size_t)j] * x[j];
        y[i * (size_t)k + (size_t)o] = (float)(tanh(z) + 0.01 * gg_rng_normal(&ry));
      }
    }
    free(W);
    return 0;
  }
  case SYNTH_BINARY:
    for (size_t i = 0; i < nd; i++) X[i] = (float)(2.0 * gg_rng_uniform(&rx) - 1.0);
    for (size_t i = 0; i < n; i++) {
      const float *x = X + i * (size_t)d;
      for (int o = 0; o < k; o++)
        y[i * (size_t)k + (size_t)o] = x[o % d] * x[(o + 1) % d] > 0.0f ? 1.0f : 0.0f;
    }
    return 0;
  }
  return gg_err_set(GG_EINTERNAL, "unknown synth kind %d", (int)kind);
}

static int cmd_synth(int argc, char **argv) {
  static const struct option opts[] = {{"kind", required_argument, NULL, 'K'},
                                       {"output", required_argument, NULL, 'o'},
                                       {"n", required_argument, NULL, 'n'},
                                       {"d", required_argument, NULL, 'd'},
                                       {"k", required_argument, NULL, 'k'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"compress", required_argument, NULL, 'z'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "synth", *kind_name = NULL, *out = NULL;
  uint64_t n = 0, d = 0, k = 0, seed = 0;
  int c, level = 0;
  while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'K': kind_name = optarg; break;
    case 'o': out = optarg; break;
    case 'n':
      if (parse_u64(cmd, "--n", optarg, 1, UINT32_MAX, &n)) return EXIT_USAGE;
      break;
    case 'd':
      if (parse_u64(cmd, "--d", optarg, 1, 1u << 24, &d)) return EXIT_USAGE;
      break;
    case 'k':
      if (parse_u64(cmd, "--k", optarg, 1, 1u << 24, &k)) return EXIT_USAGE;
      break;
    case 's':
      if (parse_u64(cmd, "--seed", optarg, 0, UINT64_MAX, &seed)) return EXIT_USAGE;
      break;
    case 'z':
      if (parse_compress(cmd, optarg, &level)) return EXIT_USAGE;
      break;
    case 'h': fputs(help_synth, stdout); return 0;
    default: return bad_option(cmd, c, argv);
    }
  }
  if (optind < argc) return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
  if (!kind_name || !out)
    return usage_error("%s: --kind and -o are required (see gg-data %s --help)", cmd, cmd);
  size_t ki = 0, nk = sizeof synth_kinds / sizeof synth_kinds[0];
  while (ki < nk && strcmp(synth_kinds[ki].name, kind_name)) ki++;
  if (ki == nk)
    return usage_error("%s: --kind '%s' is not one of seed, blobs, regression, binary", cmd,
                       kind_name);
  synth_kind_t kind = synth_kinds[ki].kind;
  if (!n) n = synth_kinds[ki].n;
  if (!d) d = synth_kinds[ki].d;
  if (!k) k = synth_kinds[ki].k;
  if (kind == SYNTH_BLOBS && k < 2) return usage_error("%s: blobs needs --k >= 2 classes", cmd);
  if (kind == SYNTH_BINARY && d < 2) return usage_error("%s: binary needs --d >= 2", cmd);
  if (n > SIZE_MAX / sizeof(float) / d || n > SIZE_MAX / sizeof(float) / k)
    return usage_error("%s: --n %llu is too large", cmd, (unsigned long long)n);

  int blobs = kind == SYNTH_BLOBS, rc;
  float *X = malloc((size_t)(n * d) * sizeof *X);
  float *y = blobs ? NULL : malloc((size_t)(n * k) * sizeof *y);
  int32_t *labels = blobs ? malloc((size_t)n * sizeof *labels) : NULL;
  if (!X || (!y && !labels))
    rc = gg_err_set(GG_ENOMEM, "%s: out of memory for %llu x %llu values", out,
                    (unsigned long long)n, (unsigned long long)d);
  else
    rc = synth_fill(kind, (size_t)n, (int)d, (int)k, seed, X, y, labels);
  /* regression keeps (n, k) even for k = 1; the others store (n) for k = 1. */
  if (rc == 0)
    rc = gg_data_write_ex(out, (size_t)n, (int)d, X, (int)k, y, labels,
                          kind != SYNTH_REGRESSION, level);
  if (rc == 0) {
    printf("gg-data: wrote %s: %llu samples \u00d7 %llu features, ", out, (unsigned long long)n,
           (unsigned long long)d);
    if (blobs)
      printf("%llu classes", (unsigned long long)k);
    else
      printf("%llu float target%s", (unsigned long long)k, k == 1 ? "" : "s");
    printf(" (kind %s, seed %llu)\n", kind_name, (unsigned long long)seed);
  }
  free(X);
  free(y);
  free(labels);
  return rc ? fail(rc) : 0;
}

/* ---- info -------------------------------------------------------------- */

typedef struct {
  double min, max, mean;
} summary_t;

/* min, max and mean (accumulated in double) of v[0..n). */
static summary_t summarize(const float *v, size_t n) {
  summary_t s = {v[0], v[0], 0.0};
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < s.min) s.min = v[i];
    if (v[i] > s.max) s.max = v[i];
    sum += v[i];
  }
  s.mean = sum / (double)n;
  return s;
}

static void json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static const char help_info[] =
    "usage: gg-data info FILE [--json]\n"
    "\n"
    "Read and validate a gradguard dataset file and describe it: samples N,\n"
    "features D, the kind and width of /y, the classes and their counts (int32\n"
    "labels) or the target range and mean (float targets), the range and mean\n"
    "of /X, and the file size.\n"
    "\n"
    "  --json      print one JSON object instead\n"
    "  -h, --help  this help\n";

/* Largest class count we tabulate (class indices are only checked >= 0). */
#define INFO_MAX_CLASSES (1 << 20)

static int cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = "info";
  int c, json = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'j': json = 1; break;
    case 'h': fputs(help_info, stdout); return 0;
    default: return bad_option(cmd, c, argv);
    }
  }
  if (argc - optind != 1)
    return usage_error("%s: expected one FILE (see gg-data %s --help)", cmd, cmd);
  const char *path = argv[optind];

  gg_data_t data;
  int rc = gg_data_load(&data, path);
  if (rc) return fail(rc);
  struct stat st;
  long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
  summary_t sx = summarize(data.X, data.n * (size_t)data.d), sy = {0, 0, 0};
  size_t *counts = NULL;
  long classes = 0;
  if (data.int_labels) {
    classes = (long)data.max_label + 1;
    if (classes <= INFO_MAX_CLASSES) counts = calloc((size_t)classes, sizeof *counts);
    for (size_t i = 0; counts && i < data.n; i++) counts[data.labels[i]]++;
  } else {
    sy = summarize(data.y, data.n * (size_t)data.k);
  }

  if (json) {
    printf("{\"file\": ");
    json_string(path);
    printf(", \"file_bytes\": %lld, \"samples\": %zu, \"features\": %d", bytes, data.n, data.d);
    printf(", \"x_min\": %.9g, \"x_max\": %.9g, \"x_mean\": %.9g", sx.min, sx.max, sx.mean);
    printf(", \"y_type\": \"%s\", \"y_width\": %d", data.int_labels ? "int32" : "float32", data.k);
    if (data.int_labels) {
      printf(", \"classes\": %ld, \"class_counts\": ", classes);
      if (counts) {
        putchar('[');
        for (long j = 0; j < classes; j++) printf("%s%zu", j ? ", " : "", counts[j]);
        putchar(']');
      } else {
        printf("null");
      }
    } else {
      printf(", \"y_min\": %.9g, \"y_max\": %.9g, \"y_mean\": %.9g", sy.min, sy.max, sy.mean);
    }
    printf("}\n");
  } else {
    printf("file      %s (%lld bytes, %.1f MiB)\n", path, bytes, (double)bytes / 1048576.0);
    printf("samples   %zu\n", data.n);
    printf("features  %d\n", data.d);
    printf("X         min %.6g  max %.6g  mean %.6g\n", sx.min, sx.max, sx.mean);
    if (data.int_labels) {
      printf("y         int32 class indices, %ld classes (0..%d)\n", classes, data.max_label);
      for (long j = 0; counts && j < classes; j++)
        printf("  class %-4ld %zu (%.1f%%)\n", j, counts[j], 100.0 * (double)counts[j] / (double)data.n);
    } else {
      printf("y         float32 targets, %d column%s  min %.6g  max %.6g  mean %.6g\n", data.k,
             data.k == 1 ? "" : "s", sy.min, sy.max, sy.mean);
    }
  }
  free(counts);
  gg_data_free(&data);
  if (fflush(stdout) != 0)
    return fail(gg_err_set(GG_EIO, "cannot write to stdout: %s", strerror(errno)));
  return 0;
}

/* ---- main -------------------------------------------------------------- */

static const char help_main[] =
    "usage: gg-data COMMAND [OPTIONS]\n"
    "\n"
    "Make and inspect gradguard dataset files (/X float32 (N, D); /y int32 class\n"
    "indices (N) or float32 targets (N) / (N, K)).\n"
    "\n"
    "  import-idx  convert an MNIST-style IDX image/label pair\n"
    "  import-csv  convert a numeric CSV\n"
    "  synth       write a synthetic dataset (seed, blobs, regression, binary)\n"
    "  info        describe a dataset file\n"
    "\n"
    "gg-data COMMAND --help describes each command. Exit codes: 0 done, 64 bad\n"
    "usage, 65 malformed input, 66 missing input, 73/74 cannot write the output.\n";

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
  } cmds[] = {{"import-idx", cmd_import_idx},
              {"import-csv", cmd_import_csv},
              {"synth", cmd_synth},
              {"info", cmd_info}};

  if (argc < 2) {
    fputs(help_main, stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(help_main, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("gg-data %s (gradguard)\n", GG_VERSION);
    return 0;
  }
  /* getopt's own messages would be prefixed with the subcommand name. */
  opterr = 0;
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name)) return cmds[i].run(argc - 1, argv + 1);
  return usage_error("unknown command '%s' (see gg-data --help)", argv[1]);
}
