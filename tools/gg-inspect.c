/* gg-inspect.c — the `gg-inspect` program: a read-only look at gradguard
 * checkpoints and statistics files.
 *
 *   gg-inspect summary  PATH [--config]
 *   gg-inspect stats    PATH [--layer N|NAME | --stat NAME] [--last N] [--every K]
 *                            [--steps A:B] [--csv]
 *   gg-inspect diagnose PATH [--window N] [--json]
 *   gg-inspect diff     A B [--tol X]
 *   gg-inspect export   PATH -o OUTDIR [--format npy|csv]
 *
 * PATH is a checkpoint (RUN/checkpoints/step-*.h5), a statistics file
 * (RUN/stats.h5) or a run folder RUN (its stats.h5 and the newest of its
 * checkpoints that reads back intact). Files are recognized by their root
 * attribute `format` (INTERFACE.md), never by name. stats.h5 is opened with
 * H5F_ACC_SWMR_READ first, so a file a trainer is still writing (or one left
 * by a crashed writer) can be read; every other file falls back to a plain
 * read-only open. Nothing is ever written to an input.
 *
 * Not an MPI program. Errors are one line "gg-inspect: PATH: cause" on
 * stderr; exit codes follow the contract (64 usage, 65 malformed input, 66
 * missing or unreadable input, 73/74 output trouble); `diagnose` and `diff`
 * exit 1 like a linter / cmp when they find something. Every function below
 * returns 0 or a negative GG_E* code with its message recorded by
 * gg_err_set(); main() alone turns codes into exit codes.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gradguard/ckpt.h"
#include "gradguard/error.h"
#include "gradguard/stats.h"
#include "internal.h" /* gg__h5_attr_read_* */

#ifndef GG_VERSION
#define GG_VERSION "unknown"
#endif

#define EXIT_FINDINGS 1 /* diagnose found something / diff found a difference */
#define CKPT_FORMAT "gradguard.checkpoint"
#define STATS_FORMAT "gradguard.stats"
#define FORMAT_VERSION 1
#define MAX_WIDTHS 4097   /* the trainer's limit: 4096 layers */
#define MAX_TENSORS 65536 /* sanity bound of a checkpoint walk */
#define PATHLEN 4352

/* ---- errors and usage ---------------------------------------------------- */

/* One line on stderr for a usage error; returns the usage exit code. */
__attribute__((format(printf, 2, 3))) static int usage_error(const char *cmd, const char *fmt,
                                                              ...) {
  va_list ap;
  fprintf(stderr, "gg-inspect: %s%s", cmd ? cmd : "", cmd ? ": " : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return gg_exit_code(GG_EUSAGE);
}

/* Report a library error code (its recorded message) and map it to the
 * contract's exit code: the one place this program decides to die. */
static int fail(int rc) {
  fprintf(stderr, "gg-inspect: %s\n", gg_err_msg(rc));
  return gg_exit_code(rc);
}

/* getopt_long reported '?' (unknown option) or ':' (missing value). */
static int bad_option(const char *cmd, int c, char **argv) {
  char shortopt[3] = {'-', (char)optopt, 0};
  const char *opt = optopt ? shortopt : argv[optind - 1];
  if (c == ':')
    return usage_error(cmd, "option '%s' needs a value (see gg-inspect %s --help)", opt, cmd);
  return usage_error(cmd, "unknown option '%s' (see gg-inspect %s --help)", opt, cmd);
}

/* A whole decimal integer in [lo, hi]; 0 or -1 (message printed). */
static int parse_long(const char *cmd, const char *flag, const char *arg, long lo, long hi,
                      long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (end == arg || *end || errno == ERANGE || v < lo || v > hi) {
    usage_error(cmd, "%s '%s' is not an integer in [%ld, %ld]", flag, arg, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_double(const char *cmd, const char *flag, const char *arg, double *out) {
  char *end;
  errno = 0;
  double v = strtod(arg, &end);
  if (end == arg || *end || errno == ERANGE || !isfinite(v) || v < 0) {
    usage_error(cmd, "%s '%s' is not a finite number >= 0", flag, arg);
    return -1;
  }
  *out = v;
  return 0;
}

/* ---- small numeric helpers ------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[0..n) (reordered); NAN when n = 0. */
static double median(double *v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A number for a table: finite values with %.4g, else nan/inf spelled out. */
static const char *fmt_num(char *buf, size_t len, double v) {
  if (isnan(v)) snprintf(buf, len, "nan");
  else if (isinf(v)) snprintf(buf, len, v > 0 ? "inf" : "-inf");
  else snprintf(buf, len, "%.4g", v);
  return buf;
}

/* ---- HDF5 reading helpers ------------------------------------------------- */

/* Open an HDF5 file read-only: SWMR-read first (a running trainer writes
 * stats.h5 in SWMR mode, and a crashed one leaves it flagged open, which
 * only SWMR readers accept), then plainly (checkpoints are not SWMR files). */
static int h5_open(const char *path, hid_t *out) {
  struct stat st;
  *out = -1;
  if (stat(path, &st) != 0) return gg_err_set(GG_ENOINPUT, "%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return gg_err_set(GG_ENOINPUT, "%s: is a folder, not a file", path);
  if (access(path, R_OK) != 0)
    return gg_err_set(GG_ENOINPUT, "%s: cannot read: %s", path, strerror(errno));
  if (st.st_size == 0) return gg_err_set(GG_EDATA, "%s: empty file, not HDF5", path);
  htri_t is = H5Fis_hdf5(path);
  if (is == 0) return gg_err_set(GG_EDATA, "%s: not an HDF5 file", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
  if (f < 0) f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return gg_err_set(GG_EDATA, "%s: cannot open as HDF5 (truncated or damaged file?)", path);
  *out = f;
  return 0;
}

/* Attribute readers (internal.h): 0, 1 when missing, -1 when unreadable. */
static int attr_i64(hid_t obj, const char *name, int64_t *v) {
  int n;
  return gg__h5_attr_read_nums(obj, name, H5T_INTEGER, H5T_NATIVE_INT64, v, 1, 1, &n);
}

static int attr_ints(hid_t obj, const char *name, int *v, int max, int *n) {
  return gg__h5_attr_read_nums(obj, name, H5T_INTEGER, H5T_NATIVE_INT, v, 1, max, n);
}

/* A link exists at path below loc (every component checked): 1, 0, -1. */
static int link_exists(hid_t loc, const char *path) {
  char buf[512];
  size_t len = strlen(path);
  if (len >= sizeof buf) return -1;
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char c = buf[i];
    buf[i] = 0;
    htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
    buf[i] = c;
    if (e <= 0) return e < 0 ? -1 : 0;
  }
  return 1;
}

/* Shape of dataset `name`: rank (<= 3) and dims; 0 or GG_EDATA. */
static int dset_shape(hid_t loc, const char *file, const char *name, int *rank, hsize_t *dims) {
  int e = link_exists(loc, name);
  if (e <= 0) return gg_err_set(GG_EDATA, "%s: /%s is missing", file, name);
  int rc = GG_EDATA;
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return gg_err_set(GG_EDATA, "%s: cannot open /%s (not a dataset?)", file, name);
  hid_t sp = H5Dget_space(d);
  if (sp < 0) goto out_d;
  int r = H5Sget_simple_extent_ndims(sp);
  dims[0] = dims[1] = dims[2] = 0;
  if (r >= 0 && r <= 3 && H5Sget_simple_extent_dims(sp, dims, NULL) == r) {
    *rank = r;
    rc = 0;
  }
  if (H5Sclose(sp) < 0) rc = GG_EDATA;
out_d:
  if (H5Dclose(d) < 0) rc = GG_EDATA;
  if (rc) gg_err_set(GG_EDATA, "%s: cannot read the shape of /%s", file, name);
  return rc;
}

/* Read the first `rows` rows of dataset `name` (whose shape dims/rank the
 * caller got from dset_shape) as memory type mtype into a malloc'ed *out.
 * 0 or GG_EDATA (checksum or read failure) / GG_ENOMEM. */
static int dset_read(hid_t loc, const char *file, const char *name, hid_t mtype, int rank,
                     const hsize_t *dims, hsize_t rows, void **out) {
  *out = NULL;
  hsize_t start[3] = {0, 0, 0}, count[3] = {rows, dims[1], dims[2]};
  size_t n = 1;
  if (rank == 0) count[0] = 1;
  for (int i = 0; i < (rank ? rank : 1); i++) n *= (size_t)count[i];
  size_t esize = H5Tget_size(mtype);
  void *buf = malloc(n * esize > 0 ? n * esize : 1);
  if (!buf) return gg_err_set(GG_ENOMEM, "%s: out of memory reading /%s", file, name);
  if (n == 0) {
    *out = buf;
    return 0;
  }
  int rc = GG_EDATA;
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) goto out_buf;
  hid_t fs = H5Dget_space(d);
  if (fs < 0) goto out_d;
  hid_t ms = rank ? H5Screate_simple(rank, count, NULL) : H5Screate(H5S_SCALAR);
  if (ms < 0) goto out_fs;
  if (rank && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) goto out_ms;
  if (H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) >= 0) rc = 0;
out_ms:
  if (H5Sclose(ms) < 0) rc = GG_EDATA;
out_fs:
  if (H5Sclose(fs) < 0) rc = GG_EDATA;
out_d:
  if (H5Dclose(d) < 0) rc = GG_EDATA;
out_buf:
  if (rc) {
    free(buf);
    return gg_err_set(GG_EDATA, "%s: cannot read /%s (checksum mismatch or damaged file)", file,
                      name);
  }
  *out = buf;
  return 0;
}

/* ---- the kind of a file --------------------------------------------------- */

enum { KIND_CKPT = 1, KIND_STATS = 2 };

/* Which gradguard file f is, from its format/format_version attributes;
 * GG_EDATA with one line for anything else. */
static int file_kind(hid_t f, const char *path, int *kind) {
  char *fmt = NULL;
  int64_t ver = 0;
  int e = gg__h5_attr_read_dup(f, "format", &fmt);
  if (e != 0) {
    return gg_err_set(GG_EDATA, "%s: not a gradguard checkpoint or statistics file (%s)", path,
                      e > 0 ? "no format attribute" : "unreadable format attribute");
  }
  int rc = 0;
  if (!strcmp(fmt, CKPT_FORMAT)) *kind = KIND_CKPT;
  else if (!strcmp(fmt, STATS_FORMAT)) *kind = KIND_STATS;
  else rc = gg_err_set(GG_EDATA, "%s: not a gradguard file (format is '%.60s')", path, fmt);
  if (!rc && attr_i64(f, "format_version", &ver) != 0)
    rc = gg_err_set(GG_EDATA, "%s: %s without a format_version attribute", path, fmt);
  else if (!rc && ver != FORMAT_VERSION)
    rc = gg_err_set(GG_EDATA, "%s: %s version %lld; this gg-inspect reads version %d", path, fmt,
                    (long long)ver, FORMAT_VERSION);
  free(fmt);
  return rc;
}

/* ---- checkpoints ---------------------------------------------------------- */

typedef struct {
  hid_t f;
  char path[PATHLEN];
  int64_t step, epoch, samples_seen, world_size, seed;
  int widths[MAX_WIDTHS], n_widths; /* layers attribute: D, H1, ..., K */
  char *act, *loss, *config;        /* malloc'ed */
  int has_opt;
  char *opt_kind;
  int64_t opt_t;
  int has_state;
  int64_t batch, batch_in_epoch, n_samples, n_skipped;
} ckpt_t;

static void ckpt_close(ckpt_t *c) {
  if (c->f >= 0) H5Fclose(c->f);
  c->f = -1;
  free(c->act);
  free(c->loss);
  free(c->config);
  free(c->opt_kind);
  c->act = c->loss = c->config = c->opt_kind = NULL;
}

/* Read the root attributes (and /optimizer, /state) of an open checkpoint;
 * takes ownership of f. */
static int ckpt_from_file(hid_t f, const char *path, ckpt_t *c) {
  memset(c, 0, sizeof *c);
  c->f = f;
  snprintf(c->path, sizeof c->path, "%s", path);
  struct { const char *name; int64_t *v; } req[] = {
      {"step", &c->step}, {"epoch", &c->epoch}, {"samples_seen", &c->samples_seen},
      {"world_size", &c->world_size}, {"seed", &c->seed}};
  for (size_t i = 0; i < sizeof req / sizeof *req; i++)
    if (attr_i64(f, req[i].name, req[i].v) != 0)
      return gg_err_set(GG_EDATA, "%s: checkpoint has no valid '%s' attribute", path, req[i].name);
  if (attr_ints(f, "layers", c->widths, MAX_WIDTHS, &c->n_widths) != 0 || c->n_widths < 2)
    return gg_err_set(GG_EDATA, "%s: checkpoint has no valid 'layers' attribute", path);
  for (int i = 0; i < c->n_widths; i++)
    if (c->widths[i] < 1)
      return gg_err_set(GG_EDATA, "%s: layers attribute has width %d", path, c->widths[i]);
  if (gg__h5_attr_read_dup(f, "activation", &c->act) || gg__h5_attr_read_dup(f, "loss", &c->loss))
    return gg_err_set(GG_EDATA, "%s: checkpoint has no activation/loss attribute", path);
  if (gg__h5_attr_read_dup(f, "config", &c->config) < 0)
    return gg_err_set(GG_EDATA, "%s: unreadable config attribute", path);
  int e = link_exists(f, "model");
  if (e <= 0) return gg_err_set(GG_EDATA, "%s: checkpoint has no /model group", path);
  e = link_exists(f, "optimizer");
  if (e < 0) return gg_err_set(GG_EDATA, "%s: cannot read /optimizer", path);
  if (e) {
    hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    if (g < 0) return gg_err_set(GG_EDATA, "%s: /optimizer is not a group", path);
    int bad = gg__h5_attr_read_dup(g, "kind", &c->opt_kind) < 0 || attr_i64(g, "t", &c->opt_t) < 0;
    if (H5Gclose(g) < 0) bad = 1;
    if (bad) return gg_err_set(GG_EDATA, "%s: unreadable /optimizer attributes", path);
    c->has_opt = 1;
  }
  e = link_exists(f, "state");
  if (e < 0) return gg_err_set(GG_EDATA, "%s: cannot read /state", path);
  if (e) {
    hid_t g = H5Gopen2(f, "state", H5P_DEFAULT);
    if (g < 0) return gg_err_set(GG_EDATA, "%s: /state is not a group", path);
    int bad = attr_i64(g, "batch", &c->batch) < 0 || attr_i64(g, "batch_in_epoch", &c->batch_in_epoch) < 0 ||
              attr_i64(g, "n_samples", &c->n_samples) < 0 || attr_i64(g, "n_skipped", &c->n_skipped) < 0;
    if (H5Gclose(g) < 0) bad = 1;
    if (bad) return gg_err_set(GG_EDATA, "%s: unreadable /state attributes", path);
    c->has_state = 1;
  }
  return 0;
}

/* Open path as a checkpoint (GG_EDATA if it is another kind of file). */
static int ckpt_open(const char *path, ckpt_t *c) {
  hid_t f;
  int kind = 0;
  memset(c, 0, sizeof *c);
  c->f = -1;
  int rc = h5_open(path, &f);
  if (rc) return rc;
  if ((rc = file_kind(f, path, &kind))) {
    H5Fclose(f);
    return rc;
  }
  if (kind != KIND_CKPT) {
    H5Fclose(f);
    return gg_err_set(GG_EDATA, "%s: a statistics file, not a checkpoint", path);
  }
  rc = ckpt_from_file(f, path, c);
  if (rc) ckpt_close(c);
  return rc;
}

/* One layer's weight (out, in) and bias (out) as floats, shapes checked
 * against the layers attribute. *w and *b malloc'ed. */
static int ckpt_layer(const ckpt_t *c, int l, float **w, float **b) {
  char name[64];
  int rank;
  hsize_t dims[3], want[2] = {(hsize_t)c->widths[l + 1], (hsize_t)c->widths[l]};
  *w = *b = NULL;
  snprintf(name, sizeof name, "model/layer_%02d/weight", l);
  int rc = dset_shape(c->f, c->path, name, &rank, dims);
  if (rc) return rc;
  if (rank != 2 || dims[0] != want[0] || dims[1] != want[1])
    return gg_err_set(GG_EDATA, "%s: /%s is [%llu, %llu] but the layers attribute says [%llu, %llu]",
                      c->path, name, (unsigned long long)dims[0], (unsigned long long)dims[1],
                      (unsigned long long)want[0], (unsigned long long)want[1]);
  if ((rc = dset_read(c->f, c->path, name, H5T_NATIVE_FLOAT, 2, dims, dims[0], (void **)w)))
    return rc;
  snprintf(name, sizeof name, "model/layer_%02d/bias", l);
  if ((rc = dset_shape(c->f, c->path, name, &rank, dims))) goto fail;
  if (rank != 1 || dims[0] != want[0]) {
    rc = gg_err_set(GG_EDATA, "%s: /%s is not [%llu]", c->path, name, (unsigned long long)want[0]);
    goto fail;
  }
  if ((rc = dset_read(c->f, c->path, name, H5T_NATIVE_FLOAT, 1, dims, dims[0], (void **)b)))
    goto fail;
  return 0;
fail:
  free(*w);
  *w = NULL;
  return rc;
}

/* Every model tensor reads back (shapes and Fletcher32 checksums). */
static int ckpt_verify(const ckpt_t *c) {
  for (int l = 0; l + 1 < c->n_widths; l++) {
    float *w, *b;
    int rc = ckpt_layer(c, l, &w, &b);
    if (rc) return rc;
    free(w);
    free(b);
  }
  return 0;
}

/* Value of `key` in the INI text cfg ("key = value" lines) into buf; 0 or -1. */
static int ini_get(const char *cfg, const char *key, char *buf, size_t len) {
  size_t kl = strlen(key);
  for (const char *p = cfg; p && *p;) {
    const char *eol = strchr(p, '\n');
    size_t ll = eol ? (size_t)(eol - p) : strlen(p);
    while (ll && (*p == ' ' || *p == '\t')) p++, ll--;
    if (ll > kl && !strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '=' || p[kl] == '\t')) {
      const char *v = p + kl;
      while (v < p + ll && (*v == ' ' || *v == '\t' || *v == '=')) v++;
      size_t vl = (size_t)(p + ll - v);
      while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\r')) vl--;
      snprintf(buf, len, "%.*s", (int)vl, v);
      return 0;
    }
    p = eol ? eol + 1 : NULL;
  }
  return -1;
}

static double ini_num(const char *cfg, const char *key) {
  char buf[64];
  return cfg && ini_get(cfg, key, buf, sizeof buf) == 0 ? strtod(buf, NULL) : NAN;
}

/* ---- checkpoint tensors: a walk of the groups ----------------------------- */

typedef struct {
  char name[256]; /* path without the leading '/', e.g. model/layer_00/weight */
  int rank;
  hsize_t dims[3];
  size_t n;
  H5T_class_t cls;
  size_t tsize;
  int is_signed;
} tinfo_t;

typedef struct {
  tinfo_t *t;
  size_t n, cap;
} tlist_t;

static int tlist_push(tlist_t *l, const tinfo_t *t) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    tinfo_t *p = realloc(l->t, cap * sizeof *p);
    if (!p) return gg_err_set(GG_ENOMEM, "out of memory");
    l->t = p;
    l->cap = cap;
  }
  l->t[l->n++] = *t;
  return 0;
}

/* Every dataset below group `prefix` (recursively, in name order). */
static int walk(hid_t f, const char *file, const char *prefix, tlist_t *out, int depth) {
  if (depth > 8) return gg_err_set(GG_EDATA, "%s: /%s nests too deep", file, prefix);
  hid_t g = H5Gopen2(f, prefix, H5P_DEFAULT);
  if (g < 0) return gg_err_set(GG_EDATA, "%s: cannot open group /%s", file, prefix);
  int rc = 0;
  H5G_info_t gi;
  if (H5Gget_info(g, &gi) < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot list /%s", file, prefix);
    goto out_g;
  }
  for (hsize_t i = 0; i < gi.nlinks && !rc; i++) {
    char link[128], full[256];
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, link, sizeof link,
                                     H5P_DEFAULT);
    if (len < 0 || (size_t)len >= sizeof link ||
        (size_t)snprintf(full, sizeof full, "%s/%s", prefix, link) >= sizeof full) {
      rc = gg_err_set(GG_EDATA, "%s: bad link name in /%s", file, prefix);
      break;
    }
    hid_t o = H5Oopen(g, link, H5P_DEFAULT);
    if (o < 0) {
      rc = gg_err_set(GG_EDATA, "%s: cannot open /%s", file, full);
      break;
    }
    H5I_type_t ty = H5Iget_type(o);
    if (H5Oclose(o) < 0) rc = gg_err_set(GG_EDATA, "%s: cannot close /%s", file, full);
    if (rc) break;
    if (ty == H5I_GROUP) {
      rc = walk(f, file, full, out, depth + 1);
    } else if (ty == H5I_DATASET) {
      tinfo_t t;
      memset(&t, 0, sizeof t);
      snprintf(t.name, sizeof t.name, "%s", full);
      if ((rc = dset_shape(f, file, full, &t.rank, t.dims))) break;
      t.n = 1;
      for (int k = 0; k < t.rank; k++) t.n *= (size_t)t.dims[k];
      hid_t d = H5Dopen2(f, full, H5P_DEFAULT);
      hid_t ft = d >= 0 ? H5Dget_type(d) : -1;
      if (ft >= 0) {
        t.cls = H5Tget_class(ft);
        t.tsize = H5Tget_size(ft);
        t.is_signed = t.cls == H5T_INTEGER && H5Tget_sign(ft) == H5T_SGN_2;
      }
      if (ft < 0 || H5Tclose(ft) < 0) rc = gg_err_set(GG_EDATA, "%s: bad type of /%s", file, full);
      if (d >= 0 && H5Dclose(d) < 0) rc = gg_err_set(GG_EDATA, "%s: cannot close /%s", file, full);
      if (!rc && out->n >= MAX_TENSORS) rc = gg_err_set(GG_EDATA, "%s: too many datasets", file);
      if (!rc) rc = tlist_push(out, &t);
    }
  }
out_g:
  if (H5Gclose(g) < 0 && !rc) rc = gg_err_set(GG_EDATA, "%s: cannot close /%s", file, prefix);
  return rc;
}

/* The tensors of a checkpoint: /model, /optimizer and /state datasets. */
static int ckpt_tensors(const ckpt_t *c, tlist_t *out) {
  static const char *const groups[] = {"model", "optimizer", "state"};
  for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
    int e = link_exists(c->f, groups[i]);
    if (e < 0) return gg_err_set(GG_EDATA, "%s: cannot read /%s", c->path, groups[i]);
    if (!e) continue;
    int rc = walk(c->f, c->path, groups[i], out, 0);
    if (rc) return rc;
  }
  return 0;
}

/* ---- statistics series ---------------------------------------------------- */

enum { S_LOSS, S_LR, S_GRAD_NORM, S_GRAD_NORM_CLIPPED, S_CLIP_COEF, S_CLIPPED_FRACTION, S__COUNT };
static const char *const s_names[S__COUNT] = {"loss", "lr", "grad_norm", "grad_norm_clipped",
                                              "clip_coef", "clipped_fraction"};

typedef struct {
  size_t n;                    /* rows (steps recorded) */
  int L;                       /* layers */
  char (*names)[64];           /* (L) layer names */
  int64_t *step;               /* (n) */
  float *col[S__COUNT];        /* each (n) */
  uint8_t *nonfinite;          /* (n) */
  float *layer[GG_STAT__COUNT];/* each (n, L) row-major */
  size_t h;                    /* histograms */
  int64_t *hist_step;          /* (h) */
  uint32_t *hist;              /* (h, L, 64) */
  double edges[GG_HIST_BINS + 1];
} series_t;

static void series_free(series_t *s) {
  free(s->names);
  free(s->step);
  for (int k = 0; k < S__COUNT; k++) free(s->col[k]);
  free(s->nonfinite);
  for (int k = 0; k < GG_STAT__COUNT; k++) free(s->layer[k]);
  free(s->hist_step);
  free(s->hist);
  memset(s, 0, sizeof *s);
}

/* The root attribute layer_names (L strings, variable or fixed length) into
 * s->names (left as the caller's layer_NN defaults when absent). 0 or
 * GG_EDATA. */
static int read_layer_names(hid_t f, const char *file, series_t *s) {
  char **v = calloc(s->L > 0 ? (size_t)s->L : 1, sizeof *v);
  if (!v) return gg_err_set(GG_ENOMEM, "%s: out of memory", file);
  int e = gg__h5_attr_read_dups(f, "layer_names", s->L, v);
  if (e == 0)
    for (int l = 0; l < s->L; l++) {
      snprintf(s->names[l], sizeof s->names[l], "%s", v[l]);
      free(v[l]);
    }
  free(v);
  return e < 0 ? gg_err_set(GG_EDATA, "%s: layer_names is not %d strings", file, s->L) : 0;
}

/* Load the series below `prefix` ("" for stats.h5, "stats/" for the newest
 * row stored in a checkpoint). Rows = the shortest column: a SWMR reader
 * may see a writer between the columns of one append (it writes /step
 * last). Histograms only with want_hist (stats.h5). */
static int series_load(hid_t f, const char *file, const char *prefix, int want_hist, series_t *s) {
  memset(s, 0, sizeof *s);
  char name[128];
  int rank, rc;
  hsize_t dims[3], rows = (hsize_t)-1;
  snprintf(name, sizeof name, "%sstep", prefix);
  if ((rc = dset_shape(f, file, name, &rank, dims))) return rc;
  if (rank != 1) return gg_err_set(GG_EDATA, "%s: /%s is not 1-D", file, name);
  rows = dims[0];
  for (int k = 0; k < S__COUNT; k++) {
    snprintf(name, sizeof name, "%s%s", prefix, s_names[k]);
    if ((rc = dset_shape(f, file, name, &rank, dims))) return rc;
    if (rank != 1) return gg_err_set(GG_EDATA, "%s: /%s is not 1-D", file, name);
    if (dims[0] < rows) rows = dims[0];
  }
  snprintf(name, sizeof name, "%snonfinite", prefix);
  if ((rc = dset_shape(f, file, name, &rank, dims))) return rc;
  if (rank != 1) return gg_err_set(GG_EDATA, "%s: /%s is not 1-D", file, name);
  if (dims[0] < rows) rows = dims[0];
  hsize_t L = 0;
  for (int k = 0; k < GG_STAT__COUNT; k++) {
    snprintf(name, sizeof name, "%slayers/%s", prefix, gg_stat_names[k]);
    if ((rc = dset_shape(f, file, name, &rank, dims))) return rc;
    if (rank != 2 || dims[1] < 1 || (k && dims[1] != L))
      return gg_err_set(GG_EDATA, "%s: /%s is not (rows, layers)", file, name);
    L = dims[1];
    if (dims[0] < rows) rows = dims[0];
  }
  if (L > MAX_WIDTHS) return gg_err_set(GG_EDATA, "%s: %llu layers", file, (unsigned long long)L);
  s->n = (size_t)rows;
  s->L = (int)L;
  s->names = calloc(L, sizeof *s->names);
  if (!s->names) return gg_err_set(GG_ENOMEM, "out of memory");
  for (int l = 0; l < s->L; l++) snprintf(s->names[l], sizeof s->names[l], "layer_%02d", l);
  /* a checkpoint's /stats has no names: its layers are layer_NN anyway */
  if (!*prefix && (rc = read_layer_names(f, file, s))) return rc;
  hsize_t d1[3] = {rows, 0, 0}, d2[3] = {rows, L, 0};
  snprintf(name, sizeof name, "%sstep", prefix);
  if ((rc = dset_read(f, file, name, H5T_NATIVE_INT64, 1, d1, rows, (void **)&s->step))) return rc;
  for (int k = 0; k < S__COUNT; k++) {
    snprintf(name, sizeof name, "%s%s", prefix, s_names[k]);
    if ((rc = dset_read(f, file, name, H5T_NATIVE_FLOAT, 1, d1, rows, (void **)&s->col[k])))
      return rc;
  }
  snprintf(name, sizeof name, "%snonfinite", prefix);
  if ((rc = dset_read(f, file, name, H5T_NATIVE_UINT8, 1, d1, rows, (void **)&s->nonfinite)))
    return rc;
  for (int k = 0; k < GG_STAT__COUNT; k++) {
    snprintf(name, sizeof name, "%slayers/%s", prefix, gg_stat_names[k]);
    if ((rc = dset_read(f, file, name, H5T_NATIVE_FLOAT, 2, d2, rows, (void **)&s->layer[k])))
      return rc;
  }
  if (!want_hist) return 0;
  /* Histograms: optional (an older or foreign writer may not have them). */
  int e1 = link_exists(f, "hist_step"), e2 = link_exists(f, "layers/grad_hist");
  if (e1 < 0 || e2 < 0) return gg_err_set(GG_EDATA, "%s: cannot read the histograms", file);
  if (!e1 || !e2) return 0;
  hsize_t hd[3], hh;
  if ((rc = dset_shape(f, file, "hist_step", &rank, hd))) return rc;
  if (rank != 1) return gg_err_set(GG_EDATA, "%s: /hist_step is not 1-D", file);
  hh = hd[0];
  if ((rc = dset_shape(f, file, "layers/grad_hist", &rank, hd))) return rc;
  if (rank != 3 || hd[1] != L || hd[2] != GG_HIST_BINS)
    return gg_err_set(GG_EDATA, "%s: /layers/grad_hist is not (h, %llu, %d)", file,
                      (unsigned long long)L, GG_HIST_BINS);
  if (hd[0] < hh) hh = hd[0];
  hsize_t h1[3] = {hh, 0, 0};
  if ((rc = dset_read(f, file, "hist_step", H5T_NATIVE_INT64, 1, h1, hh, (void **)&s->hist_step)))
    return rc;
  if ((rc = dset_read(f, file, "layers/grad_hist", H5T_NATIVE_UINT32, 3, hd, hh, (void **)&s->hist)))
    return rc;
  s->h = (size_t)hh;
  for (int k = 0; k <= GG_HIST_BINS; k++) s->edges[k] = GG_HIST_LO + k;
  /* bin_edges attribute, when readable, wins over the built-in edges */
  hid_t d = H5Dopen2(f, "layers/grad_hist", H5P_DEFAULT);
  if (d >= 0) {
    double tmp[GG_HIST_BINS + 1];
    int n;
    if (gg__h5_attr_read_nums(d, "bin_edges", H5T_NO_CLASS, H5T_NATIVE_DOUBLE, tmp, GG_HIST_BINS + 1,
                          GG_HIST_BINS + 1, &n) == 0)
      memcpy(s->edges, tmp, sizeof tmp);
    H5Dclose(d);
  }
  return 0;
}

/* Open a stats.h5 (SWMR first) and load it. */
static int stats_open(const char *path, int want_hist, series_t *s) {
  hid_t f;
  int kind = 0;
  memset(s, 0, sizeof *s);
  int rc = h5_open(path, &f);
  if (rc) return rc;
  rc = file_kind(f, path, &kind);
  if (!rc && kind != KIND_STATS) rc = gg_err_set(GG_EDATA, "%s: a checkpoint, not a statistics file", path);
  if (!rc) rc = series_load(f, path, "", want_hist, s);
  if (H5Fclose(f) < 0 && !rc) rc = gg_err_set(GG_EDATA, "%s: cannot close", path);
  if (rc) series_free(s);
  return rc;
}

/* ---- inputs: a checkpoint, a stats.h5 or a run folder ------------------- */

typedef struct {
  const char *arg;      /* as given */
  int is_dir;
  int kind;             /* for a file: KIND_CKPT or KIND_STATS */
  char stats[PATHLEN];  /* stats.h5 to read ("" if none) */
  char ckpt[PATHLEN];   /* checkpoint to read ("" if none) */
  char note[PATHLEN + 200]; /* a checkpoint skipped on the way, for stderr */
} input_t;

typedef struct {
  long step;
  char name[64];
} ckname_t;

static int cmp_ckname_desc(const void *a, const void *b) {
  long x = ((const ckname_t *)a)->step, y = ((const ckname_t *)b)->step;
  return (x < y) - (x > y);
}

/* The checkpoints step-%08d.h5 of dir/checkpoints, newest first (malloc'ed;
 * none: *n = 0). Temporary files (.tmp-PID) and other names are ignored. */
static int list_checkpoints(const char *dir, ckname_t **out, size_t *n) {
  char cdir[PATHLEN];
  *out = NULL;
  *n = 0;
  snprintf(cdir, sizeof cdir, "%s/checkpoints", dir);
  DIR *d = opendir(cdir);
  if (!d) return errno == ENOENT || errno == ENOTDIR ? 0
                                                     : gg_err_set(GG_ENOINPUT, "%s: %s", cdir, strerror(errno));
  size_t cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    long step;
    int used = 0;
    if (sscanf(e->d_name, "step-%8ld.h5%n", &step, &used) != 1 || used != (int)strlen(e->d_name) ||
        strlen(e->d_name) >= sizeof((*out)->name))
      continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      ckname_t *p = realloc(*out, cap * sizeof *p);
      if (!p) {
        rc = gg_err_set(GG_ENOMEM, "out of memory");
        break;
      }
      *out = p;
    }
    (*out)[*n].step = step;
    snprintf((*out)[*n].name, sizeof(*out)[*n].name, "%.63s", e->d_name);
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(*out, *n, sizeof **out, cmp_ckname_desc);
  return rc;
}

/* Resolve PATH. need: bit 1 a checkpoint is required, bit 2 a stats file
 * is required (for a run folder; a file must simply be one of the two). */
enum { NEED_CKPT = 1, NEED_STATS = 2 };
static int input_resolve(const char *path, int need, input_t *in) {
  struct stat st;
  memset(in, 0, sizeof *in);
  in->arg = path;
  if (stat(path, &st) != 0) return gg_err_set(GG_ENOINPUT, "%s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    hid_t f;
    int rc = h5_open(path, &f);
    if (rc) return rc;
    rc = file_kind(f, path, &in->kind);
    if (H5Fclose(f) < 0 && !rc) rc = gg_err_set(GG_EDATA, "%s: cannot close", path);
    if (rc) return rc;
    snprintf(in->kind == KIND_CKPT ? in->ckpt : in->stats, PATHLEN, "%s", path);
    if ((need & NEED_CKPT) && in->kind != KIND_CKPT)
      return gg_err_set(GG_EDATA, "%s: a statistics file, not a checkpoint", path);
    return 0;
  }
  in->is_dir = 1;
  char sp[PATHLEN];
  snprintf(sp, sizeof sp, "%s/stats.h5", path);
  if (access(sp, F_OK) == 0) snprintf(in->stats, sizeof in->stats, "%s", sp);
  ckname_t *ck = NULL;
  size_t nck = 0;
  int rc = list_checkpoints(path, &ck, &nck);
  if (rc) return rc;
  /* the newest checkpoint that reads back intact */
  for (size_t i = 0; i < nck && !in->ckpt[0]; i++) {
    char cp[PATHLEN];
    ckpt_t c;
    snprintf(cp, sizeof cp, "%s/checkpoints/%s", path, ck[i].name);
    int r = ckpt_open(cp, &c);
    if (!r) r = ckpt_verify(&c);
    ckpt_close(&c);
    if (!r) snprintf(in->ckpt, sizeof in->ckpt, "%s", cp);
    else if (!in->note[0])
      snprintf(in->note, sizeof in->note, "skipping %.4200s", gg_err_msg(r));
  }
  free(ck);
  if (in->note[0] && in->ckpt[0]) fprintf(stderr, "gg-inspect: note: %s\n", in->note);
  if (!in->stats[0] && !in->ckpt[0])
    return gg_err_set(GG_ENOINPUT, "%s: not a run folder (no stats.h5 and no readable checkpoints/step-*.h5)%s%s",
                      path, in->note[0] ? ": " : "", in->note);
  if ((need & NEED_CKPT) && !in->ckpt[0])
    return gg_err_set(in->note[0] ? GG_EDATA : GG_ENOINPUT, "%s: no readable checkpoint in %s/checkpoints%s%s",
                      path, path, in->note[0] ? ": " : "", in->note);
  if ((need & NEED_STATS) && !in->stats[0])
    return gg_err_set(GG_ENOINPUT, "%s: no stats.h5 in the run folder", path);
  return 0;
}

/* ---- output helpers ------------------------------------------------------- */

/* Append printf text to buf (truncating at len). */
__attribute__((format(printf, 3, 4))) static void cat(char *buf, size_t len, const char *fmt, ...) {
  size_t used = strlen(buf);
  if (used + 1 >= len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, len - used, fmt, ap);
  va_end(ap);
}

/* Print text after a label, wrapped at ~100 columns, continuation lines
 * indented under the text. */
static void print_wrapped(FILE *out, const char *label, const char *text) {
  const int width = 100, indent = (int)strlen(label);
  int col = fprintf(out, "%s", label);
  const char *p = text;
  while (*p) {
    const char *sp = strchr(p, ' ');
    int wl = sp ? (int)(sp - p) : (int)strlen(p);
    if (col > indent && col + 1 + wl > width) {
      col = fprintf(out, "\n%*s", indent, "") - 1;
    } else if (col > indent) {
      fputc(' ', out);
      col++;
    }
    col += fprintf(out, "%.*s", wl, p);
    p += wl;
    while (*p == ' ') p++;
  }
  fputc('\n', out);
}

/* A JSON string literal. */
static void json_str(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", out);
    else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
    else fputc(*p, out);
  }
  fputc('"', out);
}

/* A JSON number (null for NaN/Inf, which JSON cannot spell). */
static void json_num(FILE *out, double v) {
  if (isfinite(v)) fprintf(out, "%.9g", v);
  else fputs("null", out);
}

static const char *shape_str(char *buf, size_t len, int rank, const hsize_t *dims) {
  buf[0] = 0;
  cat(buf, len, "[");
  for (int k = 0; k < rank; k++) cat(buf, len, "%s%llu", k ? ", " : "", (unsigned long long)dims[k]);
  cat(buf, len, "]");
  return buf;
}

static const char *widths_str(char *buf, size_t len, const int *w, int n) {
  buf[0] = 0;
  for (int i = 0; i < n; i++) cat(buf, len, "%s%d", i ? "," : "", w[i]);
  return buf;
}

/* ---- summary -------------------------------------------------------------- */

static const char *const summary_help =
    "usage: gg-inspect summary PATH [--config]\n"
    "\n"
    "PATH is a checkpoint, a stats.h5 or a run folder (its newest readable checkpoint\n"
    "and its stats.h5). For a checkpoint: format, step, epoch, samples seen, ranks,\n"
    "seed, network, parameter count, optimizer state, and a per-layer table (shape,\n"
    "weight L2 norm, max |w|, bias L2 norm, non-finite weights, and the newest\n"
    "gradient statistics stored in the checkpoint). For statistics: rows recorded,\n"
    "first/last/min loss, grad_norm, non-finite steps, clipping frequency and the\n"
    "last row per layer.\n"
    "\n"
    "  --config     also print the resolved configuration stored in the checkpoint\n"
    "  -h, --help   this help\n";

static int summary_ckpt(const char *path, int show_config) {
  ckpt_t c;
  int rc = ckpt_open(path, &c);
  if (rc) return rc;
  /* every tensor reads back before anything is printed: no half a summary */
  if ((rc = ckpt_verify(&c))) {
    ckpt_close(&c);
    return rc;
  }
  char buf[1024], n1[32], n2[32], n3[32], n4[32], n5[32], n6[32];
  int L = c.n_widths - 1;
  series_t st;
  memset(&st, 0, sizeof st);
  int e = link_exists(c.f, "stats/step");
  if (e < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read /stats", path);
    goto out;
  }
  if (e && (rc = series_load(c.f, path, "stats/", 0, &st))) goto out;
  if (e && st.L != L) {
    rc = gg_err_set(GG_EDATA, "%s: /stats has %d layers, the network %d", path, st.L, L);
    goto out;
  }
  size_t nparams = 0;
  for (int l = 0; l < L; l++) nparams += (size_t)c.widths[l + 1] * ((size_t)c.widths[l] + 1);
  printf("checkpoint    %s\n", path);
  printf("format        %s v%d\n", CKPT_FORMAT, FORMAT_VERSION);
  printf("step          %lld   epoch %lld   samples_seen %lld   world_size %lld   seed %lld\n",
         (long long)c.step, (long long)c.epoch, (long long)c.samples_seen,
         (long long)c.world_size, (long long)c.seed);
  printf("network       %s   activation %s   loss %s\n",
         widths_str(buf, sizeof buf, c.widths, c.n_widths), c.act, c.loss);
  printf("parameters    %zu in %d layers\n", nparams, L);
  if (c.has_opt) {
    /* slot names from the first layer's weight group */
    char slots[512] = "";
    hid_t g = link_exists(c.f, "optimizer/layer_00/weight") > 0
                  ? H5Gopen2(c.f, "optimizer/layer_00/weight", H5P_DEFAULT) : -1;
    H5G_info_t gi;
    if (g >= 0 && H5Gget_info(g, &gi) >= 0) {
      for (hsize_t i = 0; i < gi.nlinks; i++) {
        char nm[128];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
        if (len > 0 && (size_t)len < sizeof nm) cat(slots, sizeof slots, "%s%s", i ? ", " : "", nm);
      }
    }
    if (g >= 0) H5Gclose(g);
    printf("optimizer     %s, t = %lld, state: %s\n", c.opt_kind ? c.opt_kind : "?", (long long)c.opt_t,
           slots[0] ? slots : "none (stateless)");
  } else {
    printf("optimizer     no optimizer state stored\n");
  }
  if (c.has_state)
    printf("position      batch %lld, batch_in_epoch %lld, n_samples %lld, skipped (non-finite) steps %lld\n",
           (long long)c.batch, (long long)c.batch_in_epoch, (long long)c.n_samples,
           (long long)c.n_skipped);
  if (st.n) {
    size_t i = st.n - 1;
    printf("newest stats  step %lld: loss %s  grad_norm %s -> %s  clip_coef %s%s\n",
           (long long)st.step[i], fmt_num(n1, sizeof n1, st.col[S_LOSS][i]),
           fmt_num(n2, sizeof n2, st.col[S_GRAD_NORM][i]),
           fmt_num(n3, sizeof n3, st.col[S_GRAD_NORM_CLIPPED][i]),
           fmt_num(n4, sizeof n4, st.col[S_CLIP_COEF][i]), st.nonfinite[i] ? "  NON-FINITE" : "");
  }
  printf("\n%5s  %-9s  %-12s  %9s  %11s  %9s  %9s  %9s", "layer", "name", "shape", "params",
         "weight_norm", "max|w|", "bias_norm", "nonfinite");
  if (st.n) printf("  %9s  %12s  %10s", "grad_norm", "update_ratio", "saturation");
  printf("\n");
  for (int l = 0; l < L; l++) {
    float *w, *b;
    if ((rc = ckpt_layer(&c, l, &w, &b))) goto out;
    size_t nw = (size_t)c.widths[l + 1] * (size_t)c.widths[l], nb = (size_t)c.widths[l + 1];
    double ww = 0, bb = 0, mx = 0;
    size_t bad = 0;
    for (size_t k = 0; k < nw; k++) {
      if (!isfinite(w[k])) { bad++; continue; }
      ww += (double)w[k] * w[k];
      if (fabs(w[k]) > mx) mx = fabs(w[k]);
    }
    for (size_t k = 0; k < nb; k++) {
      if (!isfinite(b[k])) { bad++; continue; }
      bb += (double)b[k] * b[k];
    }
    free(w);
    free(b);
    char shape[48], nm[24];
    snprintf(shape, sizeof shape, "[%d, %d]", c.widths[l + 1], c.widths[l]);
    snprintf(nm, sizeof nm, "layer_%02d", l);
    printf("%5d  %-9s  %-12s  %9zu  %11s  %9s  %9s  %9zu", l, nm, shape, nw + nb,
           fmt_num(n1, sizeof n1, sqrt(ww)), fmt_num(n2, sizeof n2, mx),
           fmt_num(n3, sizeof n3, sqrt(bb)), bad);
    if (st.n) {
      size_t r = (st.n - 1) * (size_t)L + (size_t)l;
      printf("  %9s  %12s  %10s", fmt_num(n4, sizeof n4, st.layer[GG_STAT_GRAD_NORM][r]),
             fmt_num(n5, sizeof n5, st.layer[GG_STAT_UPDATE_RATIO][r]),
             fmt_num(n6, sizeof n6, st.layer[GG_STAT_SATURATION][r]));
    }
    printf("\n");
  }
  if (show_config) printf("\n# resolved configuration (INI, reusable with gradguard train --config)\n%s%s",
                          c.config ? c.config : "",
                          c.config && *c.config && c.config[strlen(c.config) - 1] != '\n' ? "\n" : "");
out:
  series_free(&st);
  ckpt_close(&c);
  return rc;
}

/* Short summary of a statistics series (the per-step rows of stats.h5). */
static void summary_series(const char *path, const series_t *s) {
  char n1[32], n2[32], n3[32], n4[32], n5[32];
  printf("statistics    %s\n", path);
  if (s->n == 0) {
    printf("rows          0 (no step recorded yet)\n");
    return;
  }
  size_t nf = 0, nfin = 0, nclip = 0, nval = 0, imin = 0, imax = 0;
  double lmin = INFINITY, gmax = -INFINITY;
  double *g = malloc(s->n * sizeof *g);
  for (size_t i = 0; i < s->n; i++) {
    double gi = s->col[S_GRAD_NORM][i], li = s->col[S_LOSS][i];
    if (s->nonfinite[i] || !isfinite(gi)) { nf++; continue; }
    if (g) g[nfin] = gi;
    nfin++;
    if (s->col[S_CLIP_COEF][i] < 1.0f) nclip++;
    if (s->col[S_CLIPPED_FRACTION][i] > 0.0f) nval++;
    if (isfinite(li) && li < lmin) { lmin = li; imin = i; }
    if (gi > gmax) { gmax = gi; imax = i; }
  }
  size_t last = s->n - 1;
  printf("rows          %zu (steps %lld-%lld), %zu histograms, %d layers\n", s->n,
         (long long)s->step[0], (long long)s->step[last], s->h, s->L);
  printf("loss          first %s (step %lld), last %s (step %lld)", fmt_num(n1, sizeof n1, s->col[S_LOSS][0]),
         (long long)s->step[0], fmt_num(n2, sizeof n2, s->col[S_LOSS][last]), (long long)s->step[last]);
  if (isfinite(lmin)) printf(", min %s (step %lld)", fmt_num(n3, sizeof n3, lmin), (long long)s->step[imin]);
  printf("\n");
  printf("grad_norm     last %s", fmt_num(n1, sizeof n1, s->col[S_GRAD_NORM][last]));
  if (nfin && g)
    printf(", median %s, max %s (step %lld)", fmt_num(n2, sizeof n2, median(g, nfin)),
           fmt_num(n3, sizeof n3, gmax), (long long)s->step[imax]);
  printf("\n");
  free(g);
  printf("non-finite    %zu of %zu steps\n", nf, s->n);
  printf("clipping      norm clipping (clip_coef < 1) on %zu of %zu finite steps (%.1f%%); "
         "--clip-value changed values on %zu\n",
         nclip, nfin, nfin ? 100.0 * (double)nclip / (double)nfin : 0.0, nval);
  printf("\nlast row, step %lld:\n%5s  %-16s  %10s  %12s  %11s  %12s  %10s\n", (long long)s->step[last],
         "layer", "name", "grad_norm", "grad_max_abs", "weight_norm", "update_ratio", "saturation");
  for (int l = 0; l < s->L; l++) {
    size_t r = last * (size_t)s->L + (size_t)l;
    char n6[32];
    printf("%5d  %-16s  %10s  %12s  %11s  %12s  %10s\n", l, s->names[l],
           fmt_num(n1, sizeof n1, s->layer[GG_STAT_GRAD_NORM][r]),
           fmt_num(n2, sizeof n2, s->layer[GG_STAT_GRAD_MAX_ABS][r]),
           fmt_num(n4, sizeof n4, s->layer[GG_STAT_WEIGHT_NORM][r]),
           fmt_num(n5, sizeof n5, s->layer[GG_STAT_UPDATE_RATIO][r]),
           fmt_num(n6, sizeof n6, s->layer[GG_STAT_SATURATION][r]));
  }
}

static int cmd_summary(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", no_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int show_config = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (c == 'c') show_config = 1;
    else if (c == 'h') return fputs(summary_help, stdout), 0;
    else return bad_option("summary", c, argv);
  }
  if (argc - optind != 1) return usage_error("summary", "needs exactly one PATH (see gg-inspect summary --help)");
  input_t in;
  int rc = input_resolve(argv[optind], 0, &in);
  if (rc) return fail(rc);
  if (in.is_dir) printf("run           %s\n", in.arg);
  if (in.ckpt[0]) {
    if ((rc = summary_ckpt(in.ckpt, show_config))) return fail(rc);
  } else if (in.is_dir) {
    printf("checkpoint    none readable in %s/checkpoints\n", in.arg);
  }
  if (in.stats[0]) {
    series_t s;
    if ((rc = stats_open(in.stats, 1, &s))) return fail(rc);
    if (in.ckpt[0]) printf("\n");
    summary_series(in.stats, &s);
    series_free(&s);
  }
  if (show_config && !in.ckpt[0]) fprintf(stderr, "gg-inspect: note: --config: no checkpoint, no configuration to show\n");
  return 0;
}

/* ---- stats ---------------------------------------------------------------- */

static const char *const stats_help =
    "usage: gg-inspect stats PATH [--layer N|NAME | --stat NAME] [--last N] [--every K]\n"
    "                             [--steps A:B] [--csv]\n"
    "\n"
    "The per-step series of a stats.h5 (or of a run folder, or the newest row stored in\n"
    "a checkpoint) as an aligned table, one row per recorded step.\n"
    "\n"
    "  (default)        step loss lr grad_norm grad_norm_clipped clip_coef\n"
    "                   clipped_fraction nonfinite\n"
    "  --layer N|NAME   one layer: step grad_norm grad_max_abs weight_norm update_ratio\n"
    "                   saturation (N counts from 0 = first layer; NAME as in layer_names)\n"
    "  --stat NAME      one per-layer statistic for every layer, one column per layer\n"
    "                   (grad_norm, grad_max_abs, weight_norm, update_ratio, saturation)\n"
    "  --steps A:B      only steps A..B (inclusive; A: or :B leave one end open)\n"
    "  --every K        only steps that are multiples of K\n"
    "  --last N         only the last N rows (after --steps and --every)\n"
    "  --csv            comma-separated with a header line, full float32 precision\n"
    "  -h, --help       this help\n";

static int cmd_stats(int argc, char **argv) {
  static const struct option opts[] = {
      {"layer", required_argument, 0, 'l'}, {"stat", required_argument, 0, 's'},
      {"last", required_argument, 0, 'n'},  {"every", required_argument, 0, 'e'},
      {"steps", required_argument, 0, 'r'}, {"csv", no_argument, 0, 'c'},
      {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
  const char *layer_arg = NULL, *stat_arg = NULL;
  long last = -1, every = 1, a = LONG_MIN, b = LONG_MAX;
  int csv = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case 'l': layer_arg = optarg; break;
    case 's': stat_arg = optarg; break;
    case 'n': if (parse_long("stats", "--last", optarg, 1, LONG_MAX, &last)) return 64; break;
    case 'e': if (parse_long("stats", "--every", optarg, 1, LONG_MAX, &every)) return 64; break;
    case 'c': csv = 1; break;
    case 'r': {
      const char *colon = strchr(optarg, ':');
      char lo[32] = "", hi[32] = "";
      if (!colon || (size_t)(colon - optarg) >= sizeof lo || strlen(colon + 1) >= sizeof hi)
        return usage_error("stats", "--steps '%s' is not A:B (A: and :B allowed)", optarg);
      snprintf(lo, sizeof lo, "%.*s", (int)(colon - optarg), optarg);
      snprintf(hi, sizeof hi, "%s", colon + 1);
      if (lo[0] && parse_long("stats", "--steps (start)", lo, 0, LONG_MAX, &a)) return 64;
      if (hi[0] && parse_long("stats", "--steps (end)", hi, 0, LONG_MAX, &b)) return 64;
      if (a > b) return usage_error("stats", "--steps '%s': start after end", optarg);
      break;
    }
    case 'h': return fputs(stats_help, stdout), 0;
    default: return bad_option("stats", c, argv);
    }
  }
  if (argc - optind != 1) return usage_error("stats", "needs exactly one PATH (see gg-inspect stats --help)");
  if (layer_arg && stat_arg) return usage_error("stats", "--layer and --stat exclude each other");
  int stat_k = -1;
  if (stat_arg) {
    for (int k = 0; k < GG_STAT__COUNT; k++)
      if (!strcmp(stat_arg, gg_stat_names[k])) stat_k = k;
    if (stat_k < 0)
      return usage_error("stats", "--stat '%s': not one of grad_norm, grad_max_abs, weight_norm, "
                                  "update_ratio, saturation", stat_arg);
  }
  input_t in;
  int rc = input_resolve(argv[optind], 0, &in);
  if (rc) return fail(rc);
  series_t s;
  if (in.stats[0]) {
    rc = stats_open(in.stats, 0, &s);
  } else {
    /* a checkpoint: its newest statistics row */
    ckpt_t ck;
    if (!(rc = ckpt_open(in.ckpt, &ck))) {
      int e = link_exists(ck.f, "stats/step");
      if (e <= 0) rc = gg_err_set(e < 0 ? GG_EDATA : GG_EDATA, "%s: the checkpoint holds no statistics row (/stats)", in.ckpt);
      else rc = series_load(ck.f, in.ckpt, "stats/", 0, &s);
      ckpt_close(&ck);
    }
  }
  if (rc) return fail(rc);
  const char *src = in.stats[0] ? in.stats : in.ckpt;
  int layer = -1;
  if (layer_arg) {
    for (int l = 0; l < s.L && layer < 0; l++)
      if (!strcmp(layer_arg, s.names[l])) layer = l;
    long v;
    char *end;
    errno = 0;
    v = strtol(layer_arg, &end, 10);
    if (layer < 0 && end != layer_arg && !*end && errno == 0 && v >= 0 && v < s.L) layer = (int)v;
    if (layer < 0) {
      int L = s.L;
      series_free(&s);
      return usage_error("stats", "--layer '%s': %s has %d layers (0..%d or layer_00..)", layer_arg, src, L, L - 1);
    }
  }
  /* rows to show: --steps, then --every, then --last */
  size_t *idx = malloc((s.n ? s.n : 1) * sizeof *idx), m = 0;
  if (!idx) {
    series_free(&s);
    return fail(gg_err_set(GG_ENOMEM, "out of memory"));
  }
  for (size_t i = 0; i < s.n; i++)
    if (s.step[i] >= a && s.step[i] <= b && s.step[i] % every == 0) idx[m++] = i;
  size_t first = last > 0 && (size_t)last < m ? m - (size_t)last : 0;
  const char *sep = csv ? "," : "  ";
  char nb[32];
  /* header */
  if (!csv && s.n == 0) fprintf(stderr, "gg-inspect: note: %s: no rows recorded yet\n", src);
  if (layer >= 0) {
    if (!csv) printf("# %s: %s (layer %d)\n", src, s.names[layer], layer);
    printf(csv ? "step" : "%8s", "step");
    for (int k = 0; k < GG_STAT__COUNT; k++) printf(csv ? "%s%s" : "%s%12s", sep, gg_stat_names[k]);
  } else if (stat_k >= 0) {
    if (!csv) printf("# %s: %s per layer\n", src, gg_stat_names[stat_k]);
    printf(csv ? "step" : "%8s", "step");
    for (int l = 0; l < s.L; l++) printf(csv ? "%s%s" : "%s%10s", sep, s.names[l]);
  } else {
    printf(csv ? "step" : "%8s", "step");
    for (int k = 0; k < S__COUNT; k++) {
      if (csv) printf(",%s", s_names[k]);
      else printf("%s%*s", sep, k == S_GRAD_NORM_CLIPPED || k == S_CLIPPED_FRACTION ? 17 : 11, s_names[k]);
    }
    printf(csv ? "%snonfinite" : "%s%9s", sep, "nonfinite");
  }
  printf("\n");
  for (size_t j = first; j < m; j++) {
    size_t i = idx[j];
    printf(csv ? "%lld" : "%8lld", (long long)s.step[i]);
    if (layer >= 0) {
      for (int k = 0; k < GG_STAT__COUNT; k++) {
        double v = s.layer[k][i * (size_t)s.L + (size_t)layer];
        if (csv) printf(",%.9g", v);
        else printf("%s%12s", sep, fmt_num(nb, sizeof nb, v));
      }
    } else if (stat_k >= 0) {
      for (int l = 0; l < s.L; l++) {
        double v = s.layer[stat_k][i * (size_t)s.L + (size_t)l];
        if (csv) printf(",%.9g", v);
        else printf("%s%10s", sep, fmt_num(nb, sizeof nb, v));
      }
    } else {
      for (int k = 0; k < S__COUNT; k++) {
        double v = s.col[k][i];
        if (csv) printf(",%.9g", v);
        else printf("%s%*s", sep, k == S_GRAD_NORM_CLIPPED || k == S_CLIPPED_FRACTION ? 17 : 11,
                    fmt_num(nb, sizeof nb, v));
      }
      if (csv) printf(",%d", s.nonfinite[i]);
      else printf("%s%9d", sep, s.nonfinite[i]);
    }
    printf("\n");
  }
  free(idx);
  series_free(&s);
  if (fflush(stdout) != 0 || ferror(stdout))
    return fail(gg_err_set(GG_EIO, "stdout: %s", strerror(errno)));
  return 0;
}

/* ---- diagnose ------------------------------------------------------------- */

static const char *const diagnose_help =
    "usage: gg-inspect diagnose PATH [--window N] [--json]\n"
    "\n"
    "Findings about the gradients of a run, from its statistics (PATH: a run folder,\n"
    "a stats.h5, or a checkpoint, which holds only its newest row). Each finding names\n"
    "the layer, the evidence in numbers over the last N recorded steps, and a fix in\n"
    "gradguard flags. Checked: non-finite gradients/loss, exploding norms (spikes of\n"
    "100x over the recent median), vanishing gradients (first layer below 1e-3 of the\n"
    "output layer), dead or saturated units (the output layer excepted), update ratios\n"
    "far from ~1e-3 (below 1e-5, above 1e-1), norm clipping on (nearly) every step or\n"
    "configured but never acting, --clip-value changing most values. The activation,\n"
    "learning rate and clip settings come from the run's newest checkpoint when there\n"
    "is one. A live run can be diagnosed while it trains.\n"
    "\n"
    "  --window N   the last N recorded steps (default 100)\n"
    "  --json       one JSON object: {path, rows, window, context, healthy, findings[]}\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 0 healthy (or nothing recorded yet), 1 findings, 64/65/66 errors.\n";

typedef struct {
  const char *key;
  double v;
} kv_t;

typedef struct {
  const char *id, *severity; /* severity: critical, warning, note */
  int layer;                 /* -1: the whole network */
  char title[128], evidence[1536], suggestion[1024];
  kv_t kv[12];
  int nkv;
} finding_t;

#define MAX_FINDINGS 16
typedef struct {
  finding_t f[MAX_FINDINGS];
  int n;
} findings_t;

static finding_t *finding_add(findings_t *fs, const char *id, const char *severity, int layer,
                              const char *title) {
  if (fs->n == MAX_FINDINGS) return NULL;
  finding_t *f = &fs->f[fs->n++];
  memset(f, 0, sizeof *f);
  f->id = id;
  f->severity = severity;
  f->layer = layer;
  snprintf(f->title, sizeof f->title, "%s", title);
  return f;
}

static void kv_add(finding_t *f, const char *key, double v) {
  if (f->nkv < (int)(sizeof f->kv / sizeof *f->kv)) f->kv[f->nkv++] = (kv_t){key, v};
}

/* What the run's checkpoint says about it (all optional). */
typedef struct {
  int have;
  char src[PATHLEN];
  char act[32], loss[32], opt[32], init[64], layers[512];
  double lr, clip_norm, autoclip, clip_value;
  char run[PATHLEN]; /* run folder, for suggesting checkpoints */
  ckname_t *ck;      /* its checkpoints, newest first */
  size_t nck;
} ctx_t;

static void ctx_from_ckpt(ctx_t *x, const char *path) {
  ckpt_t c;
  if (ckpt_open(path, &c)) return;
  x->have = 1;
  snprintf(x->src, sizeof x->src, "%s", path);
  snprintf(x->act, sizeof x->act, "%s", c.act);
  snprintf(x->loss, sizeof x->loss, "%s", c.loss);
  widths_str(x->layers, sizeof x->layers, c.widths, c.n_widths);
  x->lr = ini_num(c.config, "lr");
  x->clip_norm = ini_num(c.config, "clip-norm");
  x->autoclip = ini_num(c.config, "autoclip");
  x->clip_value = ini_num(c.config, "clip-value");
  if (!c.config || ini_get(c.config, "optimizer", x->opt, sizeof x->opt)) snprintf(x->opt, sizeof x->opt, "%s", c.opt_kind ? c.opt_kind : "");
  if (!c.config || ini_get(c.config, "init", x->init, sizeof x->init)) x->init[0] = 0;
  ckpt_close(&c);
}

/* The context of a diagnosis: the run folder (given, or the folder of a
 * stats.h5) and its newest readable checkpoint. */
static void ctx_load(ctx_t *x, const input_t *in) {
  memset(x, 0, sizeof *x);
  x->lr = x->clip_norm = x->autoclip = x->clip_value = NAN;
  if (in->is_dir) {
    snprintf(x->run, sizeof x->run, "%s", in->arg);
  } else if (in->kind == KIND_STATS) {
    snprintf(x->run, sizeof x->run, "%s", in->arg);
    char *slash = strrchr(x->run, '/');
    if (slash) *slash = 0;
    else snprintf(x->run, sizeof x->run, ".");
  }
  if (x->run[0] && list_checkpoints(x->run, &x->ck, &x->nck)) x->nck = 0;
  if (in->ckpt[0]) {
    ctx_from_ckpt(x, in->ckpt);
  } else {
    for (size_t i = 0; i < x->nck && !x->have; i++) {
      char p[PATHLEN + 128];
      snprintf(p, sizeof p, "%s/checkpoints/%s", x->run, x->ck[i].name);
      ctx_from_ckpt(x, p);
    }
  }
}

static int act_is(const ctx_t *x, const char *a) { return x->have && !strcmp(x->act, a); }

/* Saturation above which a hidden layer is flagged, for the activation;
 * > 1 means never (leaky_relu's derivative never drops below 1e-3, identity's
 * is 1). Unknown activation: the relu threshold. */
static double sat_threshold(const ctx_t *x) {
  if (act_is(x, "leaky_relu") || act_is(x, "identity")) return 2.0;
  if (act_is(x, "sigmoid") || act_is(x, "tanh")) return 0.5;
  return 0.9;
}

/* "layer_03" or "layers layer_00-layer_08" style lists of flagged layers. */
static void layer_list(char *buf, size_t len, const series_t *s, const int *flag) {
  buf[0] = 0;
  int n = 0;
  for (int l = 0; l < s->L; l++) {
    if (!flag[l]) continue;
    int e = l;
    while (e + 1 < s->L && flag[e + 1]) e++;
    if (e > l + 1) cat(buf, len, "%s%s-%s", n ? ", " : "", s->names[l], s->names[e]);
    else if (e == l + 1) cat(buf, len, "%s%s, %s", n ? ", " : "", s->names[l], s->names[e]);
    else cat(buf, len, "%s%s", n ? ", " : "", s->names[l]);
    n++;
    l = e;
  }
}

/* The findings over rows [lo, n) of s. */
static void diagnose_run(const series_t *s, size_t lo, const ctx_t *x, findings_t *fs) {
  const size_t n = s->n, L = (size_t)s->L, W = n - lo;
  char a[32], b[32], c[32], lrbuf[32], refbuf[32], lrs[64] = "--lr";
  double lr = isfinite(x->lr) ? x->lr : NAN;
  if (!isfinite(lr)) {
    for (size_t i = n; i-- > lo;)
      if (isfinite(s->col[S_LR][i])) { lr = s->col[S_LR][i]; break; }
  }
  if (isfinite(lr)) snprintf(lrs, sizeof lrs, "--lr (now %g)", lr);
  const char *lr_to = isfinite(lr) ? fmt_num(lrbuf, sizeof lrbuf, lr / 10) : "a tenth";

  /* finite rows: the gradient had no NaN/Inf */
  uint8_t *ok = calloc(W ? W : 1, 1);
  double *tmp = malloc((W ? W : 1) * sizeof *tmp);
  double *gmed = calloc(L, sizeof *gmed), *umed = calloc(L, sizeof *umed), *smed = calloc(L, sizeof *smed);
  int *flag = calloc(L, sizeof *flag), *explained = calloc(L, sizeof *explained);
  if (!ok || !tmp || !gmed || !umed || !smed || !flag || !explained) goto out;
  size_t nfin = 0, nf = 0, nloss = 0, first_nf = 0, last_nf = 0, trailing = 0;
  for (size_t i = lo; i < n; i++) {
    int bad = s->nonfinite[i] || !isfinite(s->col[S_GRAD_NORM][i]);
    ok[i - lo] = !bad;
    if (bad) {
      if (!nf) first_nf = i;
      last_nf = i;
      nf++;
      trailing++;
    } else {
      nfin++;
      trailing = 0;
      if (!isfinite(s->col[S_LOSS][i])) nloss++;
    }
  }
  /* medians per layer over the finite rows */
  for (size_t l = 0; l < L; l++) {
    for (int k = 0; k < 3; k++) {
      static const int col[3] = {GG_STAT_GRAD_NORM, GG_STAT_UPDATE_RATIO, GG_STAT_SATURATION};
      size_t m = 0;
      for (size_t i = lo; i < n; i++) {
        double v = s->layer[col[k]][i * L + l];
        if (ok[i - lo] && isfinite(v)) tmp[m++] = v;
      }
      double md = median(tmp, m);
      (k == 0 ? gmed : k == 1 ? umed : smed)[l] = md;
    }
  }
  size_t m = 0;
  for (size_t i = lo; i < n; i++)
    if (ok[i - lo]) tmp[m++] = s->col[S_GRAD_NORM][i];
  double gnorm_med = median(tmp, m);

  /* Spikes: a finite norm 100x above the median of the (up to) 10 finite
   * norms before it; a decaying start is not a spike. The first one marks
   * the onset, the largest one the worst. The reference norm for a
   * --clip-norm suggestion comes from the healthy stretch before the onset
   * (else the 10th percentile of the window), not from the exploded steps. */
  double spike_best = 0, first_ratio = 0, first_ref = 0, gmax = -INFINITY;
  size_t spike_at = 0, first_at = 0, at_max = 0, nspike = 0;
  {
    double prev[10];
    size_t np = 0;
    for (size_t i = lo; i < n; i++) {
      if (!ok[i - lo]) continue;
      double g = s->col[S_GRAD_NORM][i];
      if (g > gmax) gmax = g, at_max = i;
      if (np) {
        double cp[10];
        size_t k = np < 10 ? np : 10;
        memcpy(cp, prev, k * sizeof *cp);
        double ref = median(cp, k);
        double r = ref > 0 ? g / ref : (g > 0 ? INFINITY : 0);
        if (r >= 100 && !nspike++) first_ratio = r, first_at = i, first_ref = ref;
        if (r > spike_best) spike_best = r, spike_at = i;
      }
      prev[np % 10] = g;
      np++;
    }
  }
  size_t onset = nspike ? first_at : nf ? first_nf : n;
  m = 0;
  for (size_t i = lo; i < onset; i++)
    if (ok[i - lo]) tmp[m++] = s->col[S_GRAD_NORM][i];
  double ref_norm = median(tmp, m);
  if (!m || (!nspike && !nf)) {
    m = 0;
    for (size_t i = lo; i < n; i++)
      if (ok[i - lo]) tmp[m++] = s->col[S_GRAD_NORM][i];
    if (m) {
      qsort(tmp, m, sizeof *tmp, cmp_double);
      ref_norm = tmp[m / 10];
    }
  }
  if (!nspike && !nf) ref_norm = gnorm_med;
  const char *clip_to = isfinite(ref_norm) && ref_norm > 0 ? fmt_num(refbuf, sizeof refbuf, ref_norm) : "C";

  /* 1. non-finite gradients (or loss) */
  if (nf) {
    finding_t *f = finding_add(fs, "nonfinite_gradients", "critical", -1, "non-finite gradients (exploding)");
    if (f) {
      snprintf(f->evidence, sizeof f->evidence,
               "%zu of the %zu steps in the window had NaN/Inf in the averaged gradient "
               "(first at step %lld, last at step %lld)",
               nf, W, (long long)s->step[first_nf], (long long)s->step[last_nf]);
      if (trailing >= 3 && trailing == n - first_nf)
        cat(f->evidence, sizeof f->evidence,
            "; every step since step %lld was non-finite: the weights themselves are NaN/Inf "
            "now and the rest of the run is wasted", (long long)s->step[first_nf]);
      /* the last finite norm before the first non-finite step */
      for (size_t i = first_nf; i-- > lo;) {
        if (!ok[i - lo]) continue;
        cat(f->evidence, sizeof f->evidence, "; the last finite grad_norm before it was %s at step %lld",
            fmt_num(a, sizeof a, s->col[S_GRAD_NORM][i]), (long long)s->step[i]);
        if (isfinite(gnorm_med)) cat(f->evidence, sizeof f->evidence, " (window median %s)", fmt_num(b, sizeof b, gnorm_med));
        break;
      }
      kv_add(f, "nonfinite_steps", (double)nf);
      kv_add(f, "window_steps", (double)W);
      kv_add(f, "first_step", (double)s->step[first_nf]);
      kv_add(f, "last_step", (double)s->step[last_nf]);
      kv_add(f, "trailing_nonfinite", (double)trailing);
      snprintf(f->suggestion, sizeof f->suggestion, "lower %s to %s and add --clip-norm %s (the "
               "median raw norm before the trouble started) or --autoclip 10", lrs, lr_to, clip_to);
      /* the newest kept checkpoint before the first non-finite step */
      for (size_t i = 0; i < x->nck; i++) {
        if (x->ck[i].step >= s->step[first_nf]) continue;
        cat(f->suggestion, sizeof f->suggestion, "; restart from the weights of %s/checkpoints/%s "
            "(before the first non-finite step) with --init-from and those flags",
            x->run, x->ck[i].name);
        break;
      }
      cat(f->suggestion, sizeof f->suggestion, "; --nonfinite abort ends such a run at once (exit 70) "
          "instead of skipping step after step");
    }
  }
  if (nloss) {
    finding_t *f = finding_add(fs, "nonfinite_loss", "critical", -1, "non-finite loss with a finite gradient");
    if (f) {
      snprintf(f->evidence, sizeof f->evidence, "the loss was NaN/Inf on %zu of the %zu steps whose "
               "gradient was finite", nloss, nfin);
      kv_add(f, "steps", (double)nloss);
      snprintf(f->suggestion, sizeof f->suggestion, "check the data (gg-data info: NaN/Inf features, "
               "labels out of range) and lower %s", lrs);
    }
  }

  /* 2. exploding: spikes of 100x (found above) */
  if (nspike) {
    finding_t *f = finding_add(fs, "exploding_gradients", nf ? "critical" : "warning", -1, "exploding gradients");
    if (f) {
      snprintf(f->evidence, sizeof f->evidence,
               "grad_norm jumped to %s at step %lld, %sx the median %s of the finite steps before it",
               fmt_num(a, sizeof a, s->col[S_GRAD_NORM][first_at]), (long long)s->step[first_at],
               fmt_num(b, sizeof b, first_ratio), fmt_num(c, sizeof c, first_ref));
      if (nspike > 1)
        cat(f->evidence, sizeof f->evidence, "; %zu such spikes in the window, the largest %sx at step %lld",
            nspike, fmt_num(a, sizeof a, spike_best), (long long)s->step[spike_at]);
      cat(f->evidence, sizeof f->evidence, "; the largest norm is %s (step %lld), the window median %s",
          fmt_num(a, sizeof a, gmax), (long long)s->step[at_max], fmt_num(b, sizeof b, gnorm_med));
      kv_add(f, "spike_ratio", first_ratio);
      kv_add(f, "spike_step", (double)s->step[first_at]);
      kv_add(f, "spike_grad_norm", s->col[S_GRAD_NORM][first_at]);
      kv_add(f, "spikes", (double)nspike);
      kv_add(f, "max_grad_norm", gmax);
      kv_add(f, "median_grad_norm", gnorm_med);
      kv_add(f, "reference_grad_norm", ref_norm);
      /* where the spike sits: the layer with the largest norm at the onset */
      int top = 0;
      for (size_t l = 1; l < L; l++)
        if (s->layer[GG_STAT_GRAD_NORM][first_at * L + l] > s->layer[GG_STAT_GRAD_NORM][first_at * L + (size_t)top])
          top = (int)l;
      f->layer = top;
      cat(f->evidence, sizeof f->evidence, "; at the onset %s carried the largest layer norm (%s)", s->names[top],
          fmt_num(a, sizeof a, s->layer[GG_STAT_GRAD_NORM][first_at * L + (size_t)top]));
      snprintf(f->suggestion, sizeof f->suggestion,
               "add --clip-norm %s (the median raw norm before the first spike, so only spikes are cut) or "
               "--autoclip 10, and lower %s to about %s%s",
               clip_to, lrs, lr_to,
               x->have && (!strcmp(x->opt, "sgd") || !strcmp(x->opt, "momentum") || !strcmp(x->opt, "nesterov"))
                   ? "; an adaptive --optimizer adam is far less sensitive to the gradient scale" : "");
    }
  }

  /* 3. dead or saturated hidden units (the output layer's saturation is the
   * loss's nonlinearity: for softmax_ce/bce it counts confident predictions) */
  double thr = sat_threshold(x);
  int dead_top = -1, nflag = 0, worst = -1;
  for (size_t l = 0; l + 1 < L; l++) {
    flag[l] = isfinite(smed[l]) && smed[l] >= thr;
    if (!flag[l]) continue;
    nflag++;
    if (worst < 0 || smed[l] > smed[worst]) worst = (int)l;
    if (smed[l] >= 0.99) dead_top = (int)l;
  }
  if (nflag) {
    int sat = act_is(x, "sigmoid") || act_is(x, "tanh");
    int relu = act_is(x, "relu");
    const char *what = sat ? "saturated units" : relu ? "dead ReLUs" : "dead or saturated units";
    finding_t *f = finding_add(fs, sat ? "saturated_units" : "dead_units", "warning", worst, what);
    if (f) {
      char list[512];
      layer_list(list, sizeof list, s, flag);
      snprintf(f->evidence, sizeof f->evidence,
               "median saturation (fraction of (sample, unit) pairs whose activation derivative is "
               "below 1e-3) over the window is >= %.2f in %s:", thr, list);
      for (size_t l = 0; l + 1 < L; l++)
        if (flag[l]) cat(f->evidence, sizeof f->evidence, " %s %.3f", s->names[l], smed[l]);
      if (dead_top >= 0)
        cat(f->evidence, sizeof f->evidence, "; %s is (almost) entirely %s, so (almost) no gradient "
            "reaches it or the layers below it (median grad_norm of %s: %s)", s->names[dead_top],
            sat ? "saturated" : "inactive", s->names[0], fmt_num(a, sizeof a, gmed[0]));
      kv_add(f, "threshold", thr);
      kv_add(f, "max_saturation", smed[worst]);
      kv_add(f, "layers_flagged", nflag);
      if (dead_top >= 0) kv_add(f, "dead_layer", dead_top);
      if (sat)
        snprintf(f->suggestion, sizeof f->suggestion,
                 "the pre-activations are too large: a smaller init (--init xavier_uniform%s%s), "
                 "standardized inputs, a lower %s, or --max-norm 3; or --activation relu",
                 x->init[0] ? "; now " : "", x->init, lrs);
      else {
        snprintf(f->suggestion, sizeof f->suggestion,
                 "--activation leaky_relu (or gelu) keeps a gradient on every unit; a lower %s and "
                 "--clip-norm stop one large step from pushing every pre-activation negative; check "
                 "--init%s%s: kaiming_uniform suits relu, a negative constant init kills ReLUs",
                 lrs, x->init[0] ? " (now " : "", x->init[0] ? x->init : "");
        if (x->init[0]) cat(f->suggestion, sizeof f->suggestion, ")");
      }
    }
  }
  for (int l = 0; l <= dead_top; l++) explained[l] = 1;

  /* 4. vanishing: the lowest layer with a gradient of its own (above any
   * dead layer) against the output layer */
  size_t base = (size_t)(dead_top + 1);
  memset(flag, 0, L * sizeof *flag);
  if (L >= 2 && base + 1 < L && isfinite(gmed[L - 1]) && gmed[L - 1] > 0 && isfinite(gmed[base])) {
    double top = gmed[L - 1], r = gmed[base] / top;
    if (r < 1e-3) {
      int nv = 0;
      for (size_t l = base; l + 1 < L; l++)
        if (gmed[l] / top < 1e-3) flag[l] = explained[l] = 1, nv++;
      finding_t *f = finding_add(fs, "vanishing_gradients", "warning", (int)base, "vanishing gradients");
      if (f) {
        char list[512];
        double per = pow(r > 0 ? r : 1e-45, 1.0 / (double)(L - 1 - base));
        layer_list(list, sizeof list, s, flag);
        snprintf(f->evidence, sizeof f->evidence,
                 "median grad_norm of %s is %s, %s of the output layer %s's %s: it shrinks about "
                 "%.2gx per layer over %zu layers; below 1e-3 of the output layer: %s",
                 s->names[base], fmt_num(a, sizeof a, gmed[base]), fmt_num(b, sizeof b, r),
                 s->names[L - 1], fmt_num(c, sizeof c, top), per > 0 ? 1 / per : INFINITY, L - 1 - base, list);
        if (gmed[base] < 1e-30)
          cat(f->evidence, sizeof f->evidence, " (%s's gradient has underflowed to ~0)", s->names[base]);
        /* loss hardly moving is the usual company */
        size_t q = W / 10 ? W / 10 : 1, m1 = 0, m2 = 0;
        double *t2 = malloc(q * sizeof *t2);
        if (t2 && W >= 20) {
          for (size_t i = lo; i < lo + q; i++) if (isfinite(s->col[S_LOSS][i])) tmp[m1++] = s->col[S_LOSS][i];
          for (size_t i = n - q; i < n; i++) if (isfinite(s->col[S_LOSS][i])) t2[m2++] = s->col[S_LOSS][i];
          double l1 = median(tmp, m1), l2 = median(t2, m2);
          if (isfinite(l1) && isfinite(l2))
            cat(f->evidence, sizeof f->evidence, "; the loss went from %s to %s over the window",
                fmt_num(a, sizeof a, l1), fmt_num(b, sizeof b, l2));
        }
        free(t2);
        kv_add(f, "ratio", r);
        kv_add(f, "first_grad_norm", gmed[base]);
        kv_add(f, "last_grad_norm", top);
        kv_add(f, "per_layer_factor", per > 0 ? 1 / per : INFINITY);
        kv_add(f, "layers_below", nv);
        if (act_is(x, "sigmoid") || act_is(x, "tanh"))
          snprintf(f->suggestion, sizeof f->suggestion,
                   "%s's derivative (at most %s) compounds over the depth: use --activation relu (or "
                   "leaky_relu, gelu) with its default kaiming_uniform init, or fewer layers in --layers; "
                   "clipping cannot bring a vanished gradient back", x->act,
                   act_is(x, "sigmoid") ? "1/4" : "1");
        else
          snprintf(f->suggestion, sizeof f->suggestion,
                   "use an init matched to the activation (--init kaiming_uniform for relu-like, "
                   "xavier_uniform for tanh/sigmoid%s%s), a relu-like --activation, or fewer layers "
                   "in --layers; clipping cannot bring a vanished gradient back",
                   x->init[0] ? "; now " : "", x->init);
      }
    }
  }

  /* 5. update ratio ||dw|| / ||w||: ~1e-3 is healthy */
  {
    memset(flag, 0, L * sizeof *flag);
    int nh = 0, worst_h = -1;
    for (size_t l = 0; l < L; l++)
      if (isfinite(umed[l]) && umed[l] > 1e-1) {
        flag[l] = 1, nh++;
        if (worst_h < 0 || umed[l] > umed[worst_h]) worst_h = (int)l;
      }
    if (nh) {
      finding_t *f = finding_add(fs, "update_ratio_high", "warning", worst_h, "updates too large for the weights");
      if (f) {
        char list[512];
        layer_list(list, sizeof list, s, flag);
        snprintf(f->evidence, sizeof f->evidence, "median update_ratio ||dw||/||w|| over the finite "
                 "steps is above 1e-1 (healthy: ~1e-3) in %s:", list);
        for (size_t l = 0; l < L; l++)
          if (flag[l]) cat(f->evidence, sizeof f->evidence, " %s %s", s->names[l], fmt_num(a, sizeof a, umed[l]));
        kv_add(f, "max_update_ratio", umed[worst_h]);
        kv_add(f, "layers_flagged", nh);
        double want = isfinite(lr) ? lr * 1e-3 / umed[worst_h] : NAN;
        snprintf(f->suggestion, sizeof f->suggestion, "lower %s%s%s (that scales the ratio to ~1e-3), "
                 "or bound the step with --clip-norm, --agc 0.01 or --max-norm 3",
                 lrs, isfinite(want) ? " to about " : "", isfinite(want) ? fmt_num(b, sizeof b, want) : "");
      }
    }
    /* A run whose loss fell 1000x below its first recorded value has
     * converged: tiny updates are expected there, not a problem. */
    size_t ml = 0;
    for (size_t i = lo; i < n; i++)
      if (ok[i - lo] && isfinite(s->col[S_LOSS][i])) tmp[ml++] = s->col[S_LOSS][i];
    double loss_now = median(tmp, ml), loss_first = s->col[S_LOSS][0];
    int converged = isfinite(loss_now) && isfinite(loss_first) && loss_first > 0 && loss_now <= 1e-3 * loss_first;
    memset(flag, 0, L * sizeof *flag);
    int nl = 0, worst_l = -1;
    for (size_t l = 0; l < L && !converged; l++)
      if (!explained[l] && isfinite(umed[l]) && umed[l] < 1e-5) {
        flag[l] = 1, nl++;
        if (worst_l < 0 || umed[l] < umed[worst_l]) worst_l = (int)l;
      }
    if (nl) {
      finding_t *f = finding_add(fs, "update_ratio_low", "warning", worst_l, "layers barely learning");
      if (f) {
        char list[512];
        layer_list(list, sizeof list, s, flag);
        snprintf(f->evidence, sizeof f->evidence, "median update_ratio ||dw||/||w|| over the finite "
                 "steps is below 1e-5 (healthy: ~1e-3) in %s:", list);
        for (size_t l = 0; l < L; l++)
          if (flag[l])
            cat(f->evidence, sizeof f->evidence, " %s %s (weight_norm %s)", s->names[l], fmt_num(a, sizeof a, umed[l]),
                fmt_num(b, sizeof b, s->layer[GG_STAT_WEIGHT_NORM][(n - 1) * L + l]));
        kv_add(f, "min_update_ratio", umed[worst_l]);
        kv_add(f, "layers_flagged", nl);
        if (s->layer[GG_STAT_WEIGHT_NORM][(n - 1) * L + (size_t)worst_l] > 1e6)
          snprintf(f->suggestion, sizeof f->suggestion, "the weights were blown up by an earlier explosion "
                   "(weight_norm above 1e6): restart with a lower %s and --clip-norm or --max-norm", lrs);
        else
          snprintf(f->suggestion, sizeof f->suggestion, "raise %s if the gradients are healthy (see the "
                   "other findings); with sgd/momentum the update scales with lr x grad_norm", lrs);
      }
    }
  }

  /* 6. clipping */
  if (nfin >= 10) {
    size_t nclip = 0, m2 = 0;
    for (size_t i = lo; i < n; i++)
      if (ok[i - lo] && s->col[S_CLIP_COEF][i] < 1.0f) nclip++;
    for (size_t i = lo; i < n; i++)
      if (ok[i - lo] && isfinite(s->col[S_CLIP_COEF][i])) tmp[m2++] = s->col[S_CLIP_COEF][i];
    double coef_med = median(tmp, m2);
    int configured = (isfinite(x->clip_norm) && x->clip_norm > 0) || (isfinite(x->autoclip) && x->autoclip > 0);
    char cs[64] = "the threshold";
    if (isfinite(x->clip_norm) && x->clip_norm > 0) snprintf(cs, sizeof cs, "--clip-norm %g", x->clip_norm);
    else if (isfinite(x->autoclip) && x->autoclip > 0) snprintf(cs, sizeof cs, "--autoclip %g", x->autoclip);
    if ((double)nclip >= 0.9 * (double)nfin) {
      finding_t *f = finding_add(fs, "clipping_always", "warning", -1, "norm clipping active on (nearly) every step");
      if (f) {
        snprintf(f->evidence, sizeof f->evidence, "clip_coef < 1 on %zu of %zu finite steps (median "
                 "coef %s): %s is below the typical raw norm (median grad_norm %s), so every step has "
                 "the same norm and lr and the threshold act as one knob",
                 nclip, nfin, fmt_num(a, sizeof a, coef_med), cs, fmt_num(b, sizeof b, gnorm_med));
        kv_add(f, "clipped_steps", (double)nclip);
        kv_add(f, "finite_steps", (double)nfin);
        kv_add(f, "median_clip_coef", coef_med);
        kv_add(f, "median_grad_norm", gnorm_med);
        snprintf(f->suggestion, sizeof f->suggestion, "raise --clip-norm to about %s (the median raw "
                 "norm) so that only spikes are cut, or use --autoclip 50",
                 fmt_num(c, sizeof c, gnorm_med));
      }
    } else if (configured && nclip == 0) {
      finding_t *f = finding_add(fs, "clipping_never", "note", -1, "norm clipping configured but never active");
      if (f) {
        snprintf(f->evidence, sizeof f->evidence, "%s never changed a gradient in the window "
                 "(clip_coef = 1 on all %zu finite steps; largest raw norm %s, median %s)",
                 cs, nfin, fmt_num(a, sizeof a, gmax), fmt_num(b, sizeof b, gnorm_med));
        kv_add(f, "finite_steps", (double)nfin);
        kv_add(f, "max_grad_norm", gmax);
        kv_add(f, "median_grad_norm", gnorm_med);
        snprintf(f->suggestion, sizeof f->suggestion, "to cut spikes set --clip-norm near 2x the median "
                 "raw norm (%s), or drop the flag; it costs nothing but protects nothing now",
                 fmt_num(c, sizeof c, 2 * gnorm_med));
      }
    }
    size_t m3 = 0;
    for (size_t i = lo; i < n; i++)
      if (ok[i - lo] && isfinite(s->col[S_CLIPPED_FRACTION][i])) tmp[m3++] = s->col[S_CLIPPED_FRACTION][i];
    double cf = median(tmp, m3);
    if (isfinite(cf) && cf >= 0.5) {
      finding_t *f = finding_add(fs, "clip_value_most", "warning", -1, "--clip-value changes most gradient values");
      if (f) {
        snprintf(f->evidence, sizeof f->evidence, "median clipped_fraction %.3f: on a typical step %.0f%% "
                 "of the gradient values are cut to +-C, so the update follows the gradient's sign, not "
                 "its direction", cf, 100 * cf);
        kv_add(f, "median_clipped_fraction", cf);
        snprintf(f->suggestion, sizeof f->suggestion, "raise --clip-value%s%s%s, or replace it with "
                 "--clip-norm %s", isfinite(x->clip_value) ? " (now " : "",
                 isfinite(x->clip_value) ? fmt_num(a, sizeof a, x->clip_value) : "",
                 isfinite(x->clip_value) ? ")" : "", fmt_num(b, sizeof b, gnorm_med));
      }
    }
  }
out:
  free(ok);
  free(tmp);
  free(gmed);
  free(umed);
  free(smed);
  free(flag);
  free(explained);
}

static int cmd_diagnose(int argc, char **argv) {
  static const struct option opts[] = {{"window", required_argument, 0, 'w'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  long window = 100;
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    if (c == 'w') { if (parse_long("diagnose", "--window", optarg, 1, LONG_MAX, &window)) return 64; }
    else if (c == 'j') json = 1;
    else if (c == 'h') return fputs(diagnose_help, stdout), 0;
    else return bad_option("diagnose", c, argv);
  }
  if (argc - optind != 1) return usage_error("diagnose", "needs exactly one PATH (see gg-inspect diagnose --help)");
  input_t in;
  int rc = input_resolve(argv[optind], 0, &in);
  if (rc) return fail(rc);
  series_t s;
  const char *src = in.stats[0] ? in.stats : in.ckpt;
  if (in.stats[0]) {
    rc = stats_open(in.stats, 0, &s);
  } else {
    ckpt_t ck;
    if (!(rc = ckpt_open(in.ckpt, &ck))) {
      int e = link_exists(ck.f, "stats/step");
      if (e <= 0) rc = gg_err_set(GG_EDATA, "%s: the checkpoint holds no statistics row (/stats) to diagnose", in.ckpt);
      else rc = series_load(ck.f, in.ckpt, "stats/", 0, &s);
      ckpt_close(&ck);
    }
  }
  if (rc) return fail(rc);
  ctx_t x;
  ctx_load(&x, &in);
  findings_t fs;
  memset(&fs, 0, sizeof fs);
  size_t lo = s.n > (size_t)window ? s.n - (size_t)window : 0;
  if (s.n) diagnose_run(&s, lo, &x, &fs);
  int ncrit = 0, nwarn = 0, nnote = 0;
  for (int i = 0; i < fs.n; i++) {
    if (!strcmp(fs.f[i].severity, "critical")) ncrit++;
    else if (!strcmp(fs.f[i].severity, "warning")) nwarn++;
    else nnote++;
  }
  if (json) {
    printf("{\"path\": ");
    json_str(stdout, in.arg);
    printf(", \"source\": ");
    json_str(stdout, src);
    printf(", \"rows\": %zu, \"window\": {\"rows\": %zu", s.n, s.n - lo);
    if (s.n) printf(", \"first_step\": %lld, \"last_step\": %lld", (long long)s.step[lo], (long long)s.step[s.n - 1]);
    printf("}, \"context\": ");
    if (x.have) {
      printf("{\"checkpoint\": ");
      json_str(stdout, x.src);
      printf(", \"layers\": ");
      json_str(stdout, x.layers);
      printf(", \"activation\": ");
      json_str(stdout, x.act);
      printf(", \"loss\": ");
      json_str(stdout, x.loss);
      printf(", \"optimizer\": ");
      json_str(stdout, x.opt);
      printf(", \"lr\": ");
      json_num(stdout, x.lr);
      printf("}");
    } else {
      printf("null");
    }
    printf(", \"healthy\": %s, \"findings\": [", fs.n ? "false" : "true");
    for (int i = 0; i < fs.n; i++) {
      const finding_t *f = &fs.f[i];
      printf("%s\n  {\"id\": \"%s\", \"severity\": \"%s\", \"layer\": ", i ? "," : "", f->id, f->severity);
      if (f->layer >= 0) {
        printf("%d, \"layer_name\": ", f->layer);
        json_str(stdout, s.names[f->layer]);
      } else {
        printf("null, \"layer_name\": null");
      }
      printf(", \"title\": ");
      json_str(stdout, f->title);
      printf(", \"evidence\": ");
      json_str(stdout, f->evidence);
      printf(", \"suggestion\": ");
      json_str(stdout, f->suggestion);
      printf(", \"values\": {");
      for (int k = 0; k < f->nkv; k++) {
        printf("%s\"%s\": ", k ? ", " : "", f->kv[k].key);
        json_num(stdout, f->kv[k].v);
      }
      printf("}}");
    }
    printf("%s]}\n", fs.n ? "\n" : "");
  } else {
    printf("diagnose %s\n", in.arg);
    if (s.n)
      printf("data     %s: %zu rows (steps %lld-%lld); window: the last %zu rows, steps %lld-%lld\n", src, s.n,
             (long long)s.step[0], (long long)s.step[s.n - 1], s.n - lo, (long long)s.step[lo],
             (long long)s.step[s.n - 1]);
    if (x.have)
      printf("context  %s %s %s, %s lr %g (from %s)\n", x.layers, x.act, x.loss, x.opt, x.lr, x.src);
    else
      printf("context  no checkpoint found: activation and flags unknown, generic thresholds\n");
    if (!in.stats[0]) printf("note     a checkpoint holds only its newest statistics row; pass the run folder for the history\n");
    if (s.n == 0) {
      printf("\nno statistics recorded yet: nothing to diagnose\n");
    } else if (fs.n == 0) {
      printf("\nhealthy: no finding in the last %zu recorded steps\n", s.n - lo);
    }
    for (int i = 0; i < fs.n; i++) {
      const finding_t *f = &fs.f[i];
      char label[160];
      printf("\n");
      snprintf(label, sizeof label, "%s%s%s", f->title, f->layer >= 0 ? " — " : "",
               f->layer >= 0 ? s.names[f->layer] : "");
      printf("[%s] %s  (%s)\n", f->severity, label, f->id);
      print_wrapped(stdout, "  evidence:   ", f->evidence);
      print_wrapped(stdout, "  suggestion: ", f->suggestion);
    }
    if (fs.n)
      printf("\n%d finding%s: %d critical, %d warning%s, %d note%s\n", fs.n, fs.n == 1 ? "" : "s", ncrit,
             nwarn, nwarn == 1 ? "" : "s", nnote, nnote == 1 ? "" : "s");
  }
  free(x.ck);
  series_free(&s);
  if (fflush(stdout) != 0) return fail(gg_err_set(GG_EIO, "stdout: %s", strerror(errno)));
  return fs.n ? EXIT_FINDINGS : 0;
}

/* ---- reading whole tensors (diff, export) --------------------------------- */

/* The memory type that reads tensor t little-endian (for .npy) and its
 * NumPy descr; -1 for a type we do not handle. */
static hid_t le_type(const tinfo_t *t, char *descr, size_t len) {
  if (t->cls == H5T_FLOAT && t->tsize == 4) return snprintf(descr, len, "<f4"), H5T_IEEE_F32LE;
  if (t->cls == H5T_FLOAT && t->tsize == 8) return snprintf(descr, len, "<f8"), H5T_IEEE_F64LE;
  if (t->cls == H5T_INTEGER) {
    switch (t->tsize) {
    case 1: snprintf(descr, len, "|%c1", t->is_signed ? 'i' : 'u'); return t->is_signed ? H5T_STD_I8LE : H5T_STD_U8LE;
    case 2: snprintf(descr, len, "<%c2", t->is_signed ? 'i' : 'u'); return t->is_signed ? H5T_STD_I16LE : H5T_STD_U16LE;
    case 4: snprintf(descr, len, "<%c4", t->is_signed ? 'i' : 'u'); return t->is_signed ? H5T_STD_I32LE : H5T_STD_U32LE;
    case 8: snprintf(descr, len, "<%c8", t->is_signed ? 'i' : 'u'); return t->is_signed ? H5T_STD_I64LE : H5T_STD_U64LE;
    default: break;
    }
  }
  return -1;
}

/* Element k of a buffer read with le_type (host order assumed little-endian
 * is checked in main) as a double. */
static double elem(const tinfo_t *t, const void *buf, size_t k) {
  if (t->cls == H5T_FLOAT) return t->tsize == 4 ? ((const float *)buf)[k] : ((const double *)buf)[k];
  switch (t->tsize) {
  case 1: return t->is_signed ? (double)((const int8_t *)buf)[k] : (double)((const uint8_t *)buf)[k];
  case 2: return t->is_signed ? (double)((const int16_t *)buf)[k] : (double)((const uint16_t *)buf)[k];
  case 4: return t->is_signed ? (double)((const int32_t *)buf)[k] : (double)((const uint32_t *)buf)[k];
  default: return t->is_signed ? (double)((const int64_t *)buf)[k] : (double)((const uint64_t *)buf)[k];
  }
}

static int host_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* ---- diff ----------------------------------------------------------------- */

static const char *const diff_help =
    "usage: gg-inspect diff A B [--tol X] [-q]\n"
    "\n"
    "Compare two checkpoints (or the newest checkpoints of two run folders) tensor by\n"
    "tensor: every dataset of /model, /optimizer and /state. Per tensor: 'identical'\n"
    "when bitwise equal, else the max abs diff, the max rel diff |a-b|/max(|a|,|b|) and\n"
    "how many values differ. Architecture and optimizer mismatches are reported, and so\n"
    "are differing metadata (step, epoch, ...) and configuration keys, which do not\n"
    "count as a difference by themselves.\n"
    "\n"
    "  --tol X      tensors whose max abs diff is <= X count as equal\n"
    "  -q, --quiet  print nothing, only the exit status\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status (like cmp): 0 identical (or within --tol), 1 different, 64/65/66 errors.\n";

static int cmp_tinfo(const void *a, const void *b) {
  return strcmp(((const tinfo_t *)a)->name, ((const tinfo_t *)b)->name);
}

typedef struct {
  int identical, shape_mismatch, type_mismatch;
  double max_abs, max_rel;
  size_t ndiff;
  size_t at; /* index of max abs diff */
} tdiff_t;

/* Compare one tensor present in both files. */
static int diff_tensor(const ckpt_t *ca, const tinfo_t *ta, const ckpt_t *cb, const tinfo_t *tb, tdiff_t *r) {
  memset(r, 0, sizeof *r);
  if (ta->rank != tb->rank || memcmp(ta->dims, tb->dims, sizeof ta->dims)) {
    r->shape_mismatch = 1;
    return 0;
  }
  char da[16], db[16];
  hid_t ma = le_type(ta, da, sizeof da), mb = le_type(tb, db, sizeof db);
  if (ma < 0 || mb < 0) {
    r->type_mismatch = 1;
    return 0;
  }
  void *a = NULL, *b = NULL;
  int rc = dset_read(ca->f, ca->path, ta->name, ma, ta->rank, ta->dims, ta->rank ? ta->dims[0] : 1, &a);
  if (!rc) rc = dset_read(cb->f, cb->path, tb->name, mb, tb->rank, tb->dims, tb->rank ? tb->dims[0] : 1, &b);
  if (rc) goto out;
  r->type_mismatch = strcmp(da, db) != 0;
  r->identical = !r->type_mismatch && memcmp(a, b, ta->n * ta->tsize) == 0;
  if (r->identical) goto out;
  for (size_t k = 0; k < ta->n; k++) {
    double x = elem(ta, a, k), y = elem(tb, b, k);
    if (x == y || (isnan(x) && isnan(y))) continue;
    r->ndiff++;
    double ad = fabs(x - y);
    if (isnan(ad)) ad = INFINITY; /* NaN against a number, or inf - inf of opposite signs */
    double den = fmax(fabs(x), fabs(y));
    double rd = den > 0 && isfinite(den) ? ad / den : (ad > 0 ? INFINITY : 0);
    if (ad > r->max_abs || r->ndiff == 1) r->max_abs = ad, r->at = k;
    if (rd > r->max_rel) r->max_rel = rd;
  }
  /* bitwise different but numerically equal (e.g. -0 vs 0) */
out:
  free(a);
  free(b);
  return rc;
}

static int cmd_diff(int argc, char **argv) {
  static const struct option opts[] = {{"tol", required_argument, 0, 't'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  double tol = -1;
  int quiet = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
    if (c == 't') { if (parse_double("diff", "--tol", optarg, &tol)) return 64; }
    else if (c == 'q') quiet = 1;
    else if (c == 'h') return fputs(diff_help, stdout), 0;
    else return bad_option("diff", c, argv);
  }
  if (argc - optind != 2) return usage_error("diff", "needs two checkpoints A B (see gg-inspect diff --help)");
  input_t ia, ib;
  int rc = input_resolve(argv[optind], NEED_CKPT, &ia);
  if (!rc) rc = input_resolve(argv[optind + 1], NEED_CKPT, &ib);
  if (rc) return fail(rc);
  ckpt_t ca, cb;
  if ((rc = ckpt_open(ia.ckpt, &ca))) return fail(rc);
  if ((rc = ckpt_open(ib.ckpt, &cb))) {
    ckpt_close(&ca);
    return fail(rc);
  }
  tlist_t la = {0}, lb = {0};
  if ((rc = ckpt_tensors(&ca, &la)) || (rc = ckpt_tensors(&cb, &lb))) goto out;
  qsort(la.t, la.n, sizeof *la.t, cmp_tinfo);
  qsort(lb.t, lb.n, sizeof *lb.t, cmp_tinfo);
  FILE *out = quiet ? NULL : stdout;
  char w1[512], w2[512], n1[32], n2[32], sh[64], sh2[64];
  int arch_differs = ca.n_widths != cb.n_widths || memcmp(ca.widths, cb.widths, (size_t)ca.n_widths * sizeof *ca.widths) ||
                     strcmp(ca.act, cb.act) || strcmp(ca.loss, cb.loss);
  if (out) {
    fprintf(out, "A  %s  (step %lld)\nB  %s  (step %lld)\n", ca.path, (long long)ca.step, cb.path, (long long)cb.step);
    if (arch_differs)
      fprintf(out, "architecture differs: A %s %s %s, B %s %s %s\n", widths_str(w1, sizeof w1, ca.widths, ca.n_widths),
              ca.act, ca.loss, widths_str(w2, sizeof w2, cb.widths, cb.n_widths), cb.act, cb.loss);
    if ((ca.opt_kind || cb.opt_kind) && (!ca.opt_kind || !cb.opt_kind || strcmp(ca.opt_kind, cb.opt_kind)))
      fprintf(out, "optimizer differs: A %s, B %s\n", ca.opt_kind ? ca.opt_kind : "none", cb.opt_kind ? cb.opt_kind : "none");
    struct { const char *name; int64_t a, b; } md[] = {
        {"step", ca.step, cb.step}, {"epoch", ca.epoch, cb.epoch}, {"samples_seen", ca.samples_seen, cb.samples_seen},
        {"world_size", ca.world_size, cb.world_size}, {"seed", ca.seed, cb.seed}, {"optimizer t", ca.opt_t, cb.opt_t}};
    for (size_t i = 0; i < sizeof md / sizeof *md; i++)
      if (md[i].a != md[i].b) fprintf(out, "metadata: %s %lld vs %lld\n", md[i].name, (long long)md[i].a, (long long)md[i].b);
    /* configuration keys that differ (A's keys, then B's keys missing in A) */
    for (int pass = 0; pass < 2; pass++) {
      const char *cfg = pass ? cb.config : ca.config, *other = pass ? ca.config : cb.config;
      for (const char *p = cfg; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        const char *eq = memchr(p, '=', ll);
        if (eq && ll < 600) {
          char key[256], va[512], vb[512];
          size_t kl = (size_t)(eq - p);
          while (kl && p[kl - 1] == ' ') kl--;
          if (kl && kl < sizeof key) {
            snprintf(key, sizeof key, "%.*s", (int)kl, p);
            int ha = ini_get(cfg, key, va, sizeof va) == 0, hb = other && ini_get(other, key, vb, sizeof vb) == 0;
            if (pass == 0 && (!hb || strcmp(va, vb)))
              fprintf(out, "config: %s = %s | %s\n", key, ha ? va : "(none)", hb ? vb : "(none)");
            else if (pass == 1 && !hb)
              fprintf(out, "config: %s = (none) | %s\n", key, va);
          }
        }
        p = eol ? eol + 1 : NULL;
      }
    }
    fprintf(out, "\n%-40s  %-12s  %12s  %12s  %s\n", "tensor", "shape", "max_abs_diff", "max_rel_diff", "values differing");
  }
  size_t i = 0, j = 0, ndiffer = 0, nsame = 0, nwithin = 0;
  double worst = 0;
  const char *worst_name = NULL;
  while (i < la.n || j < lb.n) {
    int k = i >= la.n ? 1 : j >= lb.n ? -1 : strcmp(la.t[i].name, lb.t[j].name);
    if (k < 0) {
      if (out) fprintf(out, "%-40s  %-12s  only in A\n", la.t[i].name, shape_str(sh, sizeof sh, la.t[i].rank, la.t[i].dims));
      ndiffer++, i++;
      continue;
    }
    if (k > 0) {
      if (out) fprintf(out, "%-40s  %-12s  only in B\n", lb.t[j].name, shape_str(sh, sizeof sh, lb.t[j].rank, lb.t[j].dims));
      ndiffer++, j++;
      continue;
    }
    tdiff_t r;
    if ((rc = diff_tensor(&ca, &la.t[i], &cb, &lb.t[j], &r))) goto out;
    shape_str(sh, sizeof sh, la.t[i].rank, la.t[i].dims);
    if (r.shape_mismatch) {
      if (out) fprintf(out, "%-40s  %-12s  shape differs: B is %s\n", la.t[i].name, sh,
                       shape_str(sh2, sizeof sh2, lb.t[j].rank, lb.t[j].dims));
      ndiffer++;
    } else if (r.identical) {
      if (out) fprintf(out, "%-40s  %-12s  identical\n", la.t[i].name, sh);
      nsame++;
    } else {
      int within = r.ndiff == 0 || (tol >= 0 && r.max_abs <= tol);
      if (out)
        fprintf(out, "%-40s  %-12s  %12s  %12s  %zu of %zu%s%s\n", la.t[i].name, sh, fmt_num(n1, sizeof n1, r.max_abs),
                fmt_num(n2, sizeof n2, r.max_rel), r.ndiff, la.t[i].n, r.type_mismatch ? " (types differ)" : "",
                r.ndiff == 0 ? " (equal values, different bits)" : within ? " (within --tol)" : "");
      if (within) nwithin++;
      else ndiffer++;
      if (r.max_abs > worst || !worst_name) worst = r.max_abs, worst_name = la.t[i].name;
    }
    i++, j++;
  }
  if (out) {
    size_t total = nsame + nwithin + ndiffer;
    if (!ndiffer && !nwithin) fprintf(out, "\nidentical: all %zu tensors are bitwise equal\n", total);
    else if (!ndiffer) fprintf(out, "\nequal within --tol %g: %zu identical, %zu within (largest abs diff %s in %s)\n", tol,
                               nsame, nwithin, fmt_num(n1, sizeof n1, worst), worst_name ? worst_name : "-");
    else {
      fprintf(out, "\ndifferent: %zu of %zu tensors differ", ndiffer, total);
      if (worst_name) fprintf(out, " (largest abs diff %s in %s)", fmt_num(n1, sizeof n1, worst), worst_name);
      fprintf(out, "\n");
    }
  }
  rc = ndiffer ? 1 : 0;
out:
  free(la.t);
  free(lb.t);
  ckpt_close(&ca);
  ckpt_close(&cb);
  if (rc < 0) return fail(rc);
  return rc;
}

/* ---- export --------------------------------------------------------------- */

static const char *const export_help =
    "usage: gg-inspect export PATH -o OUTDIR [--format npy|csv]\n"
    "\n"
    "Write the tensors of a checkpoint and/or the series of a stats.h5 (a run folder:\n"
    "both) as plain files into OUTDIR (created if missing; files are overwritten).\n"
    "\n"
    "  checkpoint  every dataset of /model, /optimizer and /state, named by its path with\n"
    "              '/' -> '.': model.layer_00.weight.npy (float32 [out, in], C order),\n"
    "              optimizer.layer_00.weight.exp_avg.npy, ...; plus config.ini\n"
    "  stats.h5    stats.csv (step, loss, lr, grad_norm, grad_norm_clipped, clip_coef,\n"
    "              clipped_fraction, nonfinite), stats.layers.NAME.csv (step and one column\n"
    "              per layer, for each per-layer statistic), stats.grad_hist.csv (step,\n"
    "              layer, then the 64 bin counts headed by floor(log2|g|));\n"
    "              with npy: stats.NAME.npy / stats.layers.NAME.npy as stored\n"
    "\n"
    "  -o, --output OUTDIR   where to write (required)\n"
    "  --format npy|csv      npy: NumPy .npy v1.0, little-endian, C order; csv: text.\n"
    "                        Default: npy for checkpoint tensors, csv for statistics\n"
    "  -h, --help            this help\n";

/* Create dir and its parents (mkdir -p). */
static int mkdir_p(const char *dir) {
  char buf[PATHLEN];
  if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return gg_err_set(GG_ECANTCREAT, "%s: path too long", dir);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char ch = *p;
      *p = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return gg_err_set(GG_ECANTCREAT, "%s: cannot create folder: %s", buf, strerror(errno));
      *p = ch;
      if (!ch) break;
    }
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return gg_err_set(GG_ECANTCREAT, "%s: not a folder", dir);
  return 0;
}

typedef struct {
  FILE *fp;
  char path[PATHLEN];
} ofile_t;

static int ofile_open(ofile_t *o, const char *dir, const char *name) {
  if (snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= (int)sizeof o->path)
    return gg_err_set(GG_ECANTCREAT, "%s/%s: path too long", dir, name);
  o->fp = fopen(o->path, "wb");
  if (!o->fp) return gg_err_set(GG_ECANTCREAT, "%s: cannot create: %s", o->path, strerror(errno));
  return 0;
}

/* Close, turning any write error into GG_EIO. */
static int ofile_close(ofile_t *o, int rc) {
  if (!o->fp) return rc;
  int bad = ferror(o->fp);
  if (fclose(o->fp) != 0) bad = 1;
  o->fp = NULL;
  if (bad && !rc) rc = gg_err_set(GG_EIO, "%s: write failed: %s", o->path, strerror(errno));
  if (rc) remove(o->path);
  return rc;
}

/* A .npy v1.0 file: magic, version, header length (uint16 LE), the header
 * dict padded with spaces and a newline to a multiple of 64 bytes, then the
 * data (already little-endian, C order). */
static int npy_write(const char *dir, const char *name, const char *descr, int rank, const hsize_t *dims,
                     const void *data, size_t nbytes) {
  char hdr[512], shape[256] = "";
  for (int k = 0; k < rank; k++) cat(shape, sizeof shape, "%llu,%s", (unsigned long long)dims[k], k + 1 < rank ? " " : "");
  if (rank > 1) shape[strlen(shape) - 1] = 0; /* (2, 3) not (2, 3,); (5,) keeps its comma */
  int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
  size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
  if ((size_t)len + pad + 1 >= sizeof hdr) return gg_err_set(GG_EINTERNAL, "npy header too long");
  memset(hdr + len, ' ', pad);
  hdr[(size_t)len + pad] = '\n';
  uint16_t hl = (uint16_t)((size_t)len + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
  ofile_t o;
  int rc = ofile_open(&o, dir, name);
  if (rc) return rc;
  if (fwrite(pre, 1, sizeof pre, o.fp) != sizeof pre || fwrite(hdr, 1, hl, o.fp) != hl ||
      (nbytes && fwrite(data, 1, nbytes, o.fp) != nbytes))
    rc = gg_err_set(GG_EIO, "%s: write failed: %s", o.path, strerror(errno));
  return ofile_close(&o, rc);
}

/* A tensor as CSV: one value per line (rank <= 1), one row per line (rank
 * 2), rank 3 as rows of its last axis. */
static int csv_tensor(const char *dir, const char *name, const tinfo_t *t, const void *buf) {
  ofile_t o;
  int rc = ofile_open(&o, dir, name);
  if (rc) return rc;
  size_t cols = t->rank >= 2 ? (size_t)t->dims[t->rank - 1] : 1;
  for (size_t k = 0; k < t->n; k++) {
    double v = elem(t, buf, k);
    if (t->cls == H5T_FLOAT) fprintf(o.fp, t->tsize == 4 ? "%.9g" : "%.17g", v);
    else fprintf(o.fp, "%.0f", v);
    fputc(cols && (k + 1) % cols == 0 ? '\n' : ',', o.fp);
  }
  return ofile_close(&o, 0);
}

static int export_ckpt(const char *path, const char *dir, int csv, size_t *nfiles) {
  ckpt_t c;
  int rc = ckpt_open(path, &c);
  if (rc) return rc;
  tlist_t l = {0};
  if ((rc = ckpt_tensors(&c, &l))) goto out;
  for (size_t i = 0; i < l.n && !rc; i++) {
    const tinfo_t *t = &l.t[i];
    char descr[16], fname[300], sh[64];
    hid_t mt = le_type(t, descr, sizeof descr);
    if (mt < 0) {
      fprintf(stderr, "gg-inspect: note: %s: /%s has a type export does not handle; skipped\n", path, t->name);
      continue;
    }
    snprintf(fname, sizeof fname, "%s.%s", t->name, csv ? "csv" : "npy");
    for (char *p = fname; *p; p++)
      if (*p == '/') *p = '.';
    void *buf = NULL;
    if ((rc = dset_read(c.f, c.path, t->name, mt, t->rank, t->dims, t->rank ? t->dims[0] : 1, &buf))) break;
    /* read with an explicit little-endian memory type: elem() needs host order */
    if (csv && !host_little_endian()) rc = gg_err_set(GG_EINTERNAL, "CSV export needs a little-endian host");
    if (!rc) rc = csv ? csv_tensor(dir, fname, t, buf) : npy_write(dir, fname, descr, t->rank, t->dims, buf, t->n * t->tsize);
    free(buf);
    if (!rc) {
      printf("%-48s %s %s\n", fname, descr, shape_str(sh, sizeof sh, t->rank, t->dims));
      (*nfiles)++;
    }
  }
  if (!rc) {
    ofile_t o;
    if (!(rc = ofile_open(&o, dir, "config.ini"))) {
      fputs(c.config ? c.config : "", o.fp);
      rc = ofile_close(&o, 0);
    }
    if (!rc) {
      printf("%-48s resolved configuration (gradguard train --config)\n", "config.ini");
      (*nfiles)++;
    }
  }
out:
  free(l.t);
  ckpt_close(&c);
  return rc;
}

/* One column of values per line of a CSV, %.9g floats. */
static int export_stats(const char *path, const char *dir, int csv, size_t *nfiles) {
  series_t s;
  int rc = stats_open(path, 1, &s);
  if (rc) return rc;
  const size_t n = s.n, L = (size_t)s.L;
  char sh[64];
  if (!csv) {
    if (!host_little_endian()) {
      rc = gg_err_set(GG_EINTERNAL, "npy export of statistics needs a little-endian host");
      goto out;
    }
    hsize_t d1[1] = {n}, d2[2] = {n, L}, d3[3] = {s.h, L, GG_HIST_BINS}, dh[1] = {s.h};
    typedef struct { const char *name, *descr; int rank; const hsize_t *dims; const void *data; size_t esize; } arr_t;
    arr_t f[16];
    int nf = 0;
    f[nf++] = (arr_t){"stats.step.npy", "<i8", 1, d1, s.step, 8};
    for (int k = 0; k < S__COUNT; k++) {
      static char names[S__COUNT][64];
      snprintf(names[k], sizeof names[k], "stats.%s.npy", s_names[k]);
      f[nf++] = (arr_t){names[k], "<f4", 1, d1, s.col[k], 4};
    }
    f[nf++] = (arr_t){"stats.nonfinite.npy", "|u1", 1, d1, s.nonfinite, 1};
    for (int k = 0; k < GG_STAT__COUNT; k++) {
      static char names[GG_STAT__COUNT][64];
      snprintf(names[k], sizeof names[k], "stats.layers.%s.npy", gg_stat_names[k]);
      f[nf++] = (arr_t){names[k], "<f4", 2, d2, s.layer[k], 4};
    }
    if (s.hist) {
      f[nf++] = (arr_t){"stats.hist_step.npy", "<i8", 1, dh, s.hist_step, 8};
      f[nf++] = (arr_t){"stats.layers.grad_hist.npy", "<u4", 3, d3, s.hist, 4};
    }
    for (int i = 0; i < nf && !rc; i++) {
      size_t cnt = 1;
      for (int k = 0; k < f[i].rank; k++) cnt *= (size_t)f[i].dims[k];
      rc = npy_write(dir, f[i].name, f[i].descr, f[i].rank, f[i].dims, f[i].data, cnt * f[i].esize);
      if (!rc) {
        printf("%-48s %s %s\n", f[i].name, f[i].descr, shape_str(sh, sizeof sh, f[i].rank, f[i].dims));
        (*nfiles)++;
      }
    }
    goto out;
  }
  ofile_t o;
  /* stats.csv: the per-step series */
  if ((rc = ofile_open(&o, dir, "stats.csv"))) goto out;
  fprintf(o.fp, "step");
  for (int k = 0; k < S__COUNT; k++) fprintf(o.fp, ",%s", s_names[k]);
  fprintf(o.fp, ",nonfinite\n");
  for (size_t i = 0; i < n; i++) {
    fprintf(o.fp, "%lld", (long long)s.step[i]);
    for (int k = 0; k < S__COUNT; k++) fprintf(o.fp, ",%.9g", s.col[k][i]);
    fprintf(o.fp, ",%d\n", s.nonfinite[i]);
  }
  if ((rc = ofile_close(&o, 0))) goto out;
  printf("%-48s %zu rows x 8 columns\n", "stats.csv", n);
  (*nfiles)++;
  /* stats.layers.NAME.csv: step and one column per layer */
  for (int k = 0; k < GG_STAT__COUNT && !rc; k++) {
    char fname[96];
    snprintf(fname, sizeof fname, "stats.layers.%s.csv", gg_stat_names[k]);
    if ((rc = ofile_open(&o, dir, fname))) goto out;
    fprintf(o.fp, "step");
    for (size_t l = 0; l < L; l++) fprintf(o.fp, ",%s", s.names[l]);
    fputc('\n', o.fp);
    for (size_t i = 0; i < n; i++) {
      fprintf(o.fp, "%lld", (long long)s.step[i]);
      for (size_t l = 0; l < L; l++) fprintf(o.fp, ",%.9g", s.layer[k][i * L + l]);
      fputc('\n', o.fp);
    }
    if ((rc = ofile_close(&o, 0))) goto out;
    printf("%-48s %zu rows x %zu layers\n", fname, n, L);
    (*nfiles)++;
  }
  if (s.hist) {
    if ((rc = ofile_open(&o, dir, "stats.grad_hist.csv"))) goto out;
    fprintf(o.fp, "step,layer");
    for (int b = 0; b < GG_HIST_BINS; b++) fprintf(o.fp, ",%g", s.edges[b]);
    fputc('\n', o.fp);
    for (size_t i = 0; i < s.h; i++)
      for (size_t l = 0; l < L; l++) {
        fprintf(o.fp, "%lld,%s", (long long)s.hist_step[i], s.names[l]);
        for (int b = 0; b < GG_HIST_BINS; b++) fprintf(o.fp, ",%u", s.hist[(i * L + l) * GG_HIST_BINS + (size_t)b]);
        fputc('\n', o.fp);
      }
    if ((rc = ofile_close(&o, 0))) goto out;
    printf("%-48s %zu histograms x %zu layers x %d bins\n", "stats.grad_hist.csv", s.h, L, GG_HIST_BINS);
    (*nfiles)++;
  }
out:
  series_free(&s);
  return rc;
}

static int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"format", required_argument, 0, 'f'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *outdir = NULL;
  int format = 0, c; /* 0 default, 1 npy, 2 csv */
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
    if (c == 'o') outdir = optarg;
    else if (c == 'f') {
      if (!strcmp(optarg, "npy")) format = 1;
      else if (!strcmp(optarg, "csv")) format = 2;
      else return usage_error("export", "--format '%s': npy or csv", optarg);
    } else if (c == 'h') return fputs(export_help, stdout), 0;
    else return bad_option("export", c, argv);
  }
  if (argc - optind != 1) return usage_error("export", "needs exactly one PATH (see gg-inspect export --help)");
  if (!outdir || !*outdir) return usage_error("export", "needs -o OUTDIR");
  input_t in;
  int rc = input_resolve(argv[optind], 0, &in);
  if (rc) return fail(rc);
  if ((rc = mkdir_p(outdir))) return fail(rc);
  size_t nfiles = 0;
  if (in.ckpt[0] && (rc = export_ckpt(in.ckpt, outdir, format == 2, &nfiles))) return fail(rc);
  if (in.stats[0] && (rc = export_stats(in.stats, outdir, format != 1, &nfiles))) return fail(rc);
  printf("wrote %zu files to %s\n", nfiles, outdir);
  if (fflush(stdout) != 0) return fail(gg_err_set(GG_EIO, "stdout: %s", strerror(errno)));
  return 0;
}

/* ---- main ----------------------------------------------------------------- */

static const char *const main_help =
    "usage: gg-inspect COMMAND PATH... [options]\n"
    "\n"
    "Read-only inspection of gradguard checkpoints and statistics files. PATH is a\n"
    "checkpoint (RUN/checkpoints/step-*.h5), a statistics file (RUN/stats.h5) or a run\n"
    "folder RUN (its stats.h5 and its newest readable checkpoint). A running trainer's\n"
    "stats.h5 can be read while it is written (HDF5 SWMR).\n"
    "\n"
    "commands:\n"
    "  summary PATH [--config]          what a checkpoint / run holds, per-layer norms\n"
    "  stats PATH [--layer N|NAME] [--stat NAME] [--last N] [--every K] [--steps A:B] [--csv]\n"
    "                                   the per-step statistics as a table or CSV\n"
    "  diagnose PATH [--window N] [--json]\n"
    "                                   vanishing/exploding gradients, dead units, ... (exit 1 on findings)\n"
    "  diff A B [--tol X]               compare two checkpoints tensor by tensor (exit 1 if they differ)\n"
    "  export PATH -o OUTDIR [--format npy|csv]\n"
    "                                   tensors to .npy, statistics to CSV\n"
    "\n"
    "  gg-inspect COMMAND --help        the options of a command\n"
    "  -V, --version                    the version\n"
    "\n"
    "exit status: 0 ok, 1 findings (diagnose) / differences (diff), 64 usage, 65 malformed\n"
    "input, 66 missing or unreadable input, 73/74 output cannot be created/written.\n";

int main(int argc, char **argv) {
  gg_h5_quiet();
  if (argc < 2) {
    fputs(main_help, stderr);
    return gg_exit_code(GG_EUSAGE);
  }
  const char *cmd = argv[1];
  /* `gg-inspect help CMD` is `gg-inspect CMD --help` */
  char help_flag[] = "--help";
  char *hargv[] = {argc > 2 ? argv[2] : NULL, help_flag, NULL};
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
    if (strcmp(cmd, "help") || argc < 3) return fputs(main_help, stdout), 0;
    argv = hargv, argc = 2, cmd = hargv[0];
  }
  if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) return printf("gg-inspect %s (gradguard)\n", GG_VERSION), 0;
  int shift = argv == hargv ? 0 : 1; /* the subcommand's argv[0] is its name */
  if (!strcmp(cmd, "summary")) return cmd_summary(argc - shift, argv + shift);
  if (!strcmp(cmd, "stats")) return cmd_stats(argc - shift, argv + shift);
  if (!strcmp(cmd, "diagnose")) return cmd_diagnose(argc - shift, argv + shift);
  if (!strcmp(cmd, "diff")) return cmd_diff(argc - shift, argv + shift);
  if (!strcmp(cmd, "export")) return cmd_export(argc - shift, argv + shift);
  return usage_error(NULL, "unknown command '%s' (summary, stats, diagnose, diff, export; see gg-inspect --help)", cmd);
}
