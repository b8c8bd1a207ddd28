/* test_statsfile.c — src/statsfile.c: RUN/stats.h5 as the contract lays it
 * out, checked with plain HDF5 calls (not through the writer):
 *   appends in several batches (crossing chunk boundaries) read back bit for
 *   bit, NaN included; every dataset's type, shape, unlimited first axis,
 *   chunking, shuffle+deflate and units/description; the root attributes and
 *   bin_edges; resume truncation (rows and histograms past the resumed step
 *   dropped, exactly one row per step after appending again), a resume past
 *   the end, a missing file on resume, a file left by a crashed writer, a
 *   layer-count mismatch (GG_EDATA), a file that is not ours, a new run
 *   replacing an old file, an uncreatable path (GG_ECANTCREAT), a second
 *   writer refused, steps out of order refused, close on a never-opened
 *   struct, a SWMR reader in another process seeing each flush, the flush
 *   cost, and the contract's budget of 1 KB per step for a 10-layer network.
 *
 * Values come from a hash of (step, column), so every column of every row
 * differs and nothing compresses better than real statistics would. */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gradguard/ckpt.h"
#include "gradguard/error.h"
#include "gradguard/stats.h"
#include "gradguard/statsfile.h"
#include "gg_check.h"

/* ---- a scratch folder per test ---- */

static char g_dir[512];

static void scratch_setup(void) {
  const char *t = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/gg_statsfile_XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void scratch_teardown(void) {
  DIR *d = opendir(g_dir);
  if (!d) return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
      unlink(p);
    }
  closedir(d);
  rmdir(g_dir);
}

static const char *tpath(const char *name) {
  static char p[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
  return p[k];
}

/* ---- deterministic rows ---- */

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/* A float of column col at step s, in (0, scale). */
static float val(int64_t s, int col, double scale) {
  return (float)(scale * ((double)(mix((uint64_t)s * 1000003u + (uint64_t)col) >> 11) + 1.0) /
                 9007199254740993.0);
}
static int is_nonfinite(int64_t s) { return s % 13 == 0; }
static int has_hist(int64_t s, int every) { return s == 1 || s % every == 0; }
static uint32_t hist_val(int64_t s, int l, int b) {
  /* a plausible shape: mass in the middle bins, zeros at the ends */
  int c = 30 + (int)(mix((uint64_t)s * 31u + (uint64_t)l) % 8);
  int dist = abs(b - c);
  return dist > 12 ? 0u : (uint32_t)((mix((uint64_t)s * 7919u + (uint64_t)(l * 64 + b)) % 1000) >> dist / 2);
}

/* Expected column values (the same functions the reads are checked with). */
static float exp_scalar(int64_t s, int col) {
  if (is_nonfinite(s) && col >= 3 && col <= 5) return NAN; /* clipped, coef, fraction */
  return val(s, col, col == 1 ? 0.1 : col == 4 ? 1.0 : 10.0);
}
static float exp_layer(int64_t s, int k, int l) { return val(s, 100 + k * 1000 + l, 5.0); }

/* Record steps [from, to] into s (histograms every hist_every and at step 1). */
static void record(gg_stats_t *s, int64_t from, int64_t to, int hist_every) {
  size_t L = (size_t)s->n_layers;
  uint32_t *h = malloc(L * GG_HIST_BINS * sizeof *h);
  ck_assert_ptr_nonnull(h);
  for (int64_t t = from; t <= to; t++) {
    ck_assert_uint_lt(s->n, s->cap);
    size_t i = s->n++;
    s->step[i] = t;
    s->loss[i] = exp_scalar(t, 0);
    s->lr[i] = exp_scalar(t, 1);
    s->grad_norm[i] = exp_scalar(t, 2);
    s->grad_norm_clipped[i] = exp_scalar(t, 3);
    s->clip_coef[i] = exp_scalar(t, 4);
    s->clipped_fraction[i] = exp_scalar(t, 5);
    s->nonfinite[i] = (uint8_t)is_nonfinite(t);
    for (int k = 0; k < GG_STAT__COUNT; k++)
      for (size_t l = 0; l < L; l++) s->layer[k][i * L + l] = exp_layer(t, k, (int)l);
    s->last_step = t;
    if (hist_every > 0 && has_hist(t, hist_every)) {
      for (size_t l = 0; l < L; l++)
        for (int b = 0; b < GG_HIST_BINS; b++) h[l * GG_HIST_BINS + (size_t)b] = hist_val(t, (int)l, b);
      ck_assert_int_eq(gg_stats_record_hist(s, t, h), 0);
    }
  }
  free(h);
}

/* Append steps [from, to] in batches of `batch`, flushing after each if asked. */
static void write_steps(gg_statsfile_t *f, gg_stats_t *s, int64_t from, int64_t to, int64_t batch,
                        int hist_every, int flush) {
  for (int64_t a = from; a <= to; a += batch) {
    int64_t b = a + batch - 1 < to ? a + batch - 1 : to;
    record(s, a, b, hist_every);
    ck_assert_msg(gg_statsfile_append(f, s) == 0, "%s", gg_err_msg(GG_EIO));
    gg_stats_clear(s);
    if (flush) ck_assert_int_eq(gg_statsfile_flush(f), 0);
  }
}

static const char *NAMES10[10] = {"fc0", "fc1", "fc2", "fc3", "fc4", "fc5", "fc6", "fc7", "fc8", "fc9"};

/* Open, write steps [1, n] with histograms every hist_every, close. */
static void make_file(const char *path, int L, int64_t n, int hist_every) {
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 4096, 64), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, path, L, NAMES10, -1), 0);
  write_steps(&f, &s, 1, n, 17, hist_every, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  gg_stats_free(&s);
}

/* Every HDF5 file, dataset, group, type and attribute id closed (STYLE
 * rule 7: on success and on every error path). */
static void assert_no_open_ids(void) {
  ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  ck_assert_msg(n == 0, "%zd HDF5 ids still open", n);
}

/* ---- reading back with plain HDF5 ---- */

static hid_t ropen(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert_msg(f >= 0, "cannot open %s", path);
  return f;
}

/* Dims of dataset name into dims; returns the rank. */
static int dims_of(hid_t f, const char *name, hsize_t *dims) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  ck_assert_msg(d >= 0, "no dataset %s", name);
  hid_t sp = H5Dget_space(d);
  ck_assert_int_ge(sp, 0);
  int r = H5Sget_simple_extent_ndims(sp);
  ck_assert_int_eq(H5Sget_simple_extent_dims(sp, dims, NULL), r);
  H5Sclose(sp);
  H5Dclose(d);
  return r;
}

/* The whole dataset name read as memtype into a new buffer of `elems`
 * elements of `size` bytes (elems must match the dataset's size). */
static void *read_all(hid_t f, const char *name, hid_t memtype, size_t size, size_t *elems) {
  hsize_t dims[3] = {1, 1, 1};
  int r = dims_of(f, name, dims);
  size_t n = 1;
  for (int i = 0; i < r; i++) n *= (size_t)dims[i];
  void *buf = malloc(n ? n * size : 1);
  ck_assert_ptr_nonnull(buf);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (n) ck_assert_int_ge(H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
  H5Dclose(d);
  *elems = n;
  return buf;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Check that the file holds exactly the rows of `steps` (n of them) and
 * the histograms of `hsteps` (nh), all with the generator's values. */
static void check_file(const char *path, int L, const int64_t *steps, size_t n,
                       const int64_t *hsteps, size_t nh) {
  hid_t f = ropen(path);
  size_t m;
  int64_t *st = read_all(f, "step", H5T_NATIVE_INT64, 8, &m);
  ck_assert_uint_eq(m, n);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(st[i], steps[i]);
  static const char *scal[6] = {"loss", "lr", "grad_norm", "grad_norm_clipped", "clip_coef",
                                "clipped_fraction"};
  for (int c = 0; c < 6; c++) {
    float *v = read_all(f, scal[c], H5T_NATIVE_FLOAT, 4, &m);
    ck_assert_uint_eq(m, n);
    for (size_t i = 0; i < n; i++)
      ck_assert_msg(same_bits(v[i], exp_scalar(steps[i], c)), "/%s row %zu: %.9g != %.9g",
                    scal[c], i, v[i], exp_scalar(steps[i], c));
    free(v);
  }
  uint8_t *nf = read_all(f, "nonfinite", H5T_NATIVE_UINT8, 1, &m);
  ck_assert_uint_eq(m, n);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(nf[i], is_nonfinite(steps[i]));
  free(nf);
  for (int k = 0; k < GG_STAT__COUNT; k++) {
    char name[64];
    snprintf(name, sizeof name, "layers/%s", gg_stat_names[k]);
    float *v = read_all(f, name, H5T_NATIVE_FLOAT, 4, &m);
    ck_assert_uint_eq(m, n * (size_t)L);
    for (size_t i = 0; i < n; i++)
      for (int l = 0; l < L; l++)
        ck_assert_msg(same_bits(v[i * (size_t)L + (size_t)l], exp_layer(steps[i], k, l)),
                      "/%s [%zu, %d]", name, i, l);
    free(v);
  }
  int64_t *hs = read_all(f, "hist_step", H5T_NATIVE_INT64, 8, &m);
  ck_assert_uint_eq(m, nh);
  for (size_t j = 0; j < nh; j++) ck_assert_int_eq(hs[j], hsteps[j]);
  uint32_t *h = read_all(f, "layers/grad_hist", H5T_NATIVE_UINT32, 4, &m);
  ck_assert_uint_eq(m, nh * (size_t)L * GG_HIST_BINS);
  for (size_t j = 0; j < nh; j++)
    for (int l = 0; l < L; l++)
      for (int b = 0; b < GG_HIST_BINS; b++)
        ck_assert_uint_eq(h[(j * (size_t)L + (size_t)l) * GG_HIST_BINS + (size_t)b],
                          hist_val(hsteps[j], l, b));
  free(h);
  free(hs);
  free(st);
  H5Fclose(f);
}

/* Steps [1, n] and the histogram steps among them. */
static size_t range_steps(int64_t *steps, int64_t from, int64_t to) {
  size_t n = 0;
  for (int64_t t = from; t <= to; t++) steps[n++] = t;
  return n;
}
static size_t hist_steps(int64_t *hs, int64_t from, int64_t to, int every) {
  size_t n = 0;
  for (int64_t t = from; t <= to; t++)
    if (has_hist(t, every)) hs[n++] = t;
  return n;
}

/* ---- tests ---- */

START_TEST(test_append_batches_roundtrip) {
  const char *p = tpath("stats.h5");
  enum { L = 3 };
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 2048, 64), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  /* 7, 1, an empty append, 1500 (many chunks at once), 20 */
  write_steps(&f, &s, 1, 7, 7, 100, 0);
  write_steps(&f, &s, 8, 8, 1, 100, 1);
  ck_assert_int_eq(gg_statsfile_append(&f, &s), 0);
  write_steps(&f, &s, 9, 1508, 1500, 100, 0);
  write_steps(&f, &s, 1509, 1528, 20, 100, 1);
  ck_assert_int_eq(f.rows, 1528);
  ck_assert_int_eq(f.hists, 16); /* 1, 100, ..., 1500 */
  ck_assert_int_eq(f.last_step, 1528);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  ck_assert_int_eq(f.file, -1);
  assert_no_open_ids();
  static int64_t st[1528], hs[32];
  size_t n = range_steps(st, 1, 1528), nh = hist_steps(hs, 1, 1528, 100);
  check_file(p, L, st, n, hs, nh);
  gg_stats_free(&s);
}
END_TEST

static hid_t t_i64(void) { return H5T_STD_I64LE; }
static hid_t t_f32(void) { return H5T_IEEE_F32LE; }
static hid_t t_u8(void) { return H5T_STD_U8LE; }
static hid_t t_u32(void) { return H5T_STD_U32LE; }
/* Type, rank and chunk rows of every dataset. */
static const struct {
  const char *name;
  int rank, chunk_rows;
  hid_t (*type)(void);
} LAYOUT[] = {
    {"step", 1, 16, t_i64},
    {"loss", 1, 16, t_f32},
    {"lr", 1, 16, t_f32},
    {"grad_norm", 1, 16, t_f32},
    {"grad_norm_clipped", 1, 16, t_f32},
    {"clip_coef", 1, 16, t_f32},
    {"clipped_fraction", 1, 16, t_f32},
    {"nonfinite", 1, 16, t_u8},
    {"layers/grad_norm", 2, 2, t_f32},
    {"layers/grad_max_abs", 2, 2, t_f32},
    {"layers/weight_norm", 2, 2, t_f32},
    {"layers/update_ratio", 2, 2, t_f32},
    {"layers/saturation", 2, 2, t_f32},
    {"layers/grad_hist", 3, 1, t_u32},
    {"hist_step", 1, 16, t_i64},
};

/* A string attribute of obj read as UTF-8 or ASCII; "" if absent. */
static void attr_str(hid_t obj, const char *name, char *out, size_t len) {
  out[0] = 0;
  if (H5Aexists(obj, name) <= 0) return;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  ck_assert_int_eq(H5Tget_class(ft), H5T_STRING);
  ck_assert_int_gt(H5Tis_variable_str(ft), 0);
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, H5T_VARIABLE);
  H5Tset_cset(mt, H5Tget_cset(ft));
  char *s = NULL;
  ck_assert_int_ge(H5Aread(a, mt, &s), 0);
  snprintf(out, len, "%s", s ? s : "");
  H5free_memory(s);
  H5Tclose(mt);
  H5Tclose(ft);
  H5Aclose(a);
}

START_TEST(test_layout_types_chunks_filters) {
  const char *p = tpath("stats.h5");
  enum { L = 10 };
  make_file(p, L, 30, 10);
  hid_t f = ropen(p);
  for (size_t i = 0; i < sizeof LAYOUT / sizeof LAYOUT[0]; i++) {
    const char *name = LAYOUT[i].name;
    int hist = !strcmp(name, "layers/grad_hist") || !strcmp(name, "hist_step");
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "missing /%s", name);
    hid_t t = H5Dget_type(d);
    ck_assert_msg(H5Tequal(t, LAYOUT[i].type()) > 0, "/%s has the wrong type", name);
    H5Tclose(t);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3], maxd[3];
    ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), LAYOUT[i].rank);
    H5Sget_simple_extent_dims(sp, dims, maxd);
    ck_assert_uint_eq(dims[0], hist ? 4 : 30); /* hist at 1, 10, 20, 30 */
    ck_assert_msg(maxd[0] == H5S_UNLIMITED, "/%s: first axis not unlimited", name);
    if (LAYOUT[i].rank > 1) ck_assert_uint_eq(dims[1], L);
    if (LAYOUT[i].rank > 2) ck_assert_uint_eq(dims[2], GG_HIST_BINS);
    H5Sclose(sp);
    hid_t dcpl = H5Dget_create_plist(d);
    ck_assert_int_eq(H5Pget_layout(dcpl), H5D_CHUNKED);
    hsize_t chunk[3];
    ck_assert_int_eq(H5Pget_chunk(dcpl, 3, chunk), LAYOUT[i].rank);
    ck_assert_uint_eq(chunk[0], (hsize_t)LAYOUT[i].chunk_rows);
    ck_assert_int_eq(H5Pget_nfilters(dcpl), 2);
    unsigned flags, cd[4];
    size_t ncd = 4;
    ck_assert_int_eq(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_SHUFFLE);
    ncd = 4;
    ck_assert_int_eq(H5Pget_filter2(dcpl, 1, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_DEFLATE);
    H5Pclose(dcpl);
    char units[256], desc[1024];
    attr_str(d, "units", units, sizeof units);
    attr_str(d, "description", desc, sizeof desc);
    ck_assert_msg(units[0] && desc[0], "/%s lacks units or description", name);
    H5Dclose(d);
  }
  H5Fclose(f);
}
END_TEST

START_TEST(test_root_attributes_and_bin_edges) {
  const char *p = tpath("stats.h5");
  enum { L = 4 };
  static const char *names[L] = {"input", "hidden_1", "hïdden_2", "output"}; /* UTF-8 kept */
  gg_statsfile_t f;
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, names, -1), 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  hid_t h = ropen(p);
  char s[256];
  attr_str(h, "format", s, sizeof s);
  ck_assert_str_eq(s, "gradguard.stats");
  int32_t version = 0;
  hid_t a = H5Aopen(h, "format_version", H5P_DEFAULT);
  ck_assert_int_ge(a, 0);
  ck_assert_int_ge(H5Aread(a, H5T_NATIVE_INT32, &version), 0);
  ck_assert_int_eq(version, 1);
  H5Aclose(a);
  /* layer_names: (L) variable-length UTF-8 */
  a = H5Aopen(h, "layer_names", H5P_DEFAULT);
  ck_assert_int_ge(a, 0);
  hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
  ck_assert_int_gt(H5Tis_variable_str(ft), 0);
  ck_assert_int_eq(H5Tget_cset(ft), H5T_CSET_UTF8);
  hsize_t n = 0;
  ck_assert_int_eq(H5Sget_simple_extent_ndims(sp), 1);
  H5Sget_simple_extent_dims(sp, &n, NULL);
  ck_assert_uint_eq(n, L);
  char *got[L];
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, H5T_VARIABLE);
  H5Tset_cset(mt, H5T_CSET_UTF8);
  ck_assert_int_ge(H5Aread(a, mt, got), 0);
  for (int l = 0; l < L; l++) ck_assert_str_eq(got[l], names[l]);
  for (int l = 0; l < L; l++) H5free_memory(got[l]);
  H5Tclose(mt);
  H5Sclose(sp);
  H5Tclose(ft);
  H5Aclose(a);
  /* bin_edges: 65 values GG_HIST_LO + k, log2 units */
  hid_t d = H5Dopen2(h, "layers/grad_hist", H5P_DEFAULT);
  a = H5Aopen(d, "bin_edges", H5P_DEFAULT);
  ck_assert_int_ge(a, 0);
  sp = H5Aget_space(a);
  H5Sget_simple_extent_dims(sp, &n, NULL);
  ck_assert_uint_eq(n, GG_HIST_BINS + 1);
  double e[GG_HIST_BINS + 1];
  ck_assert_int_ge(H5Aread(a, H5T_NATIVE_DOUBLE, e), 0);
  for (int k = 0; k <= GG_HIST_BINS; k++) ck_assert_double_eq(e[k], GG_HIST_LO + k);
  H5Sclose(sp);
  H5Aclose(a);
  char desc[1024];
  attr_str(d, "description", desc, sizeof desc);
  ck_assert_ptr_nonnull(strstr(desc, "log2"));
  ck_assert_ptr_nonnull(strstr(desc, "bin_edges"));
  H5Dclose(d);
  H5Fclose(h);
}
END_TEST

START_TEST(test_resume_truncates_rows_and_hists) {
  const char *p = tpath("stats.h5");
  enum { L = 3 };
  make_file(p, L, 40, 10); /* rows 1..40, histograms at 1, 10, 20, 30, 40 */
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 20), 0);
  ck_assert_int_eq(f.rows, 20);
  ck_assert_int_eq(f.hists, 3);
  ck_assert_int_eq(f.last_step, 20);
  ck_assert_int_eq(f.last_hist_step, 20);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[64], hs[8];
  size_t n = range_steps(st, 1, 20), nh = hist_steps(hs, 1, 20, 10);
  check_file(p, L, st, n, hs, nh); /* cut by the open alone */
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 20), 0);
  write_steps(&f, &s, 21, 30, 4, 10, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  n = range_steps(st, 1, 30);
  nh = hist_steps(hs, 1, 30, 10);
  ck_assert_uint_eq(n, 30);
  ck_assert_uint_eq(nh, 4);
  check_file(p, L, st, n, hs, nh); /* steps 1..30 once each, hists 1, 10, 20, 30 */
  gg_stats_free(&s);
}
END_TEST

/* A resume inside chunks that were already full (so compressed): they
 * become the last, partial chunks again, and the rows after them are new. */
START_TEST(test_resume_into_full_chunks) {
  const char *p = tpath("stats.h5");
  enum { L = 3 };
  make_file(p, L, 1500, 100); /* 1000 is inside a full chunk of 16 (n) and 13 (n, L) rows */
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 256, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 1000), 0);
  ck_assert_int_eq(f.rows, 1000);
  ck_assert_int_eq(f.hists, 11);
  write_steps(&f, &s, 1001, 1300, 37, 100, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  static int64_t st[1300], hs[16];
  size_t n = range_steps(st, 1, 1300), nh = hist_steps(hs, 1, 1300, 100);
  check_file(p, L, st, n, hs, nh);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_resume_between_rows_and_past_end) {
  const char *p = tpath("stats.h5");
  enum { L = 2 };
  /* stats every 5 steps: rows 5, 10, ..., 40; resume at 23 keeps 5..20 */
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  for (int64_t t = 5; t <= 40; t += 5) record(&s, t, t, 0);
  ck_assert_int_eq(gg_statsfile_append(&f, &s), 0);
  gg_stats_clear(&s);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 23), 0);
  ck_assert_int_eq(f.rows, 4);
  ck_assert_int_eq(f.last_step, 20);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  /* past the end: everything stays */
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 1000), 0);
  ck_assert_int_eq(f.rows, 4);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  /* resume at 0: nothing stays */
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 0), 0);
  ck_assert_int_eq(f.rows, 0);
  ck_assert_int_eq(f.last_step, -1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  check_file(p, L, NULL, 0, NULL, 0);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_resume_missing_file_creates) {
  const char *p = tpath("new.h5");
  enum { L = 2 };
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, 50), 0);
  ck_assert_int_eq(f.rows, 0);
  write_steps(&f, &s, 51, 60, 10, 10, 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[16], hs[4];
  size_t n = range_steps(st, 51, 60), nh = hist_steps(hs, 51, 60, 10);
  check_file(p, L, st, n, hs, nh);
  gg_stats_free(&s);
}
END_TEST

/* A writer killed in SWMR mode leaves the file marked open for writing; a
 * resume must still open it (and keep its flushed rows). */
START_TEST(test_resume_after_crashed_writer) {
  const char *p = tpath("stats.h5");
  enum { L = 3 };
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    gg_statsfile_t f;
    gg_stats_t s;
    if (gg_stats_init(&s, L, 64, 8) || gg_statsfile_open(&f, p, L, NAMES10, -1)) _exit(1);
    record(&s, 1, 50, 10);
    if (gg_statsfile_append(&f, &s) || gg_statsfile_flush(&f)) _exit(2);
    _exit(0); /* no close: as if killed */
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  /* plain HDF5 refuses it */
  ck_assert_int_lt(H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT), 0);
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  int rc = gg_statsfile_open(&f, p, L, NAMES10, 30);
  ck_assert_msg(rc == 0, "%s", gg_err_msg(rc));
  ck_assert_int_eq(f.rows, 30);
  write_steps(&f, &s, 31, 35, 5, 10, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[64], hs[8];
  size_t n = range_steps(st, 1, 35), nh = hist_steps(hs, 1, 35, 10);
  check_file(p, L, st, n, hs, nh);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_resume_layer_mismatch_edata) {
  const char *p = tpath("stats.h5");
  make_file(p, 3, 40, 10);
  struct stat before, after;
  ck_assert_int_eq(stat(p, &before), 0);
  gg_statsfile_t f;
  gg_err_clear();
  int rc = gg_statsfile_open(&f, p, 4, NAMES10, 20);
  ck_assert_int_eq(rc, GG_EDATA);
  ck_assert_int_eq(f.file, -1);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(rc), p));
  ck_assert_ptr_nonnull(strstr(gg_err_msg(rc), "3 layers"));
  assert_no_open_ids();
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  /* untouched: same size, still 40 rows */
  ck_assert_int_eq(stat(p, &after), 0);
  ck_assert_int_eq(after.st_size, before.st_size);
  hid_t h = ropen(p);
  hsize_t dims[3];
  dims_of(h, "step", dims);
  ck_assert_uint_eq(dims[0], 40);
  H5Fclose(h);
}
END_TEST

START_TEST(test_resume_foreign_file_edata) {
  const char *p = tpath("stats.h5");
  FILE *fp = fopen(p, "w");
  ck_assert_ptr_nonnull(fp);
  fputs("not hdf5\n", fp);
  fclose(fp);
  gg_statsfile_t f;
  ck_assert_int_eq(gg_statsfile_open(&f, p, 2, NAMES10, 5), GG_EDATA);
  /* an HDF5 file that is not ours */
  hid_t h = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(h, 0);
  H5Fclose(h);
  int rc = gg_statsfile_open(&f, p, 2, NAMES10, 5);
  ck_assert_int_eq(rc, GG_EDATA);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(rc), "not a gradguard statistics file"));
  assert_no_open_ids();
}
END_TEST

START_TEST(test_new_run_replaces_old_file) {
  const char *p = tpath("stats.h5");
  enum { L = 3 };
  make_file(p, 5, 40, 10); /* a different network, even */
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  ck_assert_int_eq(f.rows, 0);
  write_steps(&f, &s, 1, 3, 3, 10, 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[4], hs[2];
  size_t n = range_steps(st, 1, 3), nh = hist_steps(hs, 1, 3, 10);
  check_file(p, L, st, n, hs, nh);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_uncreatable_path_ecantcreat) {
  const char *p = "/nonexistent-gradguard-dir/run/stats.h5";
  gg_statsfile_t f;
  gg_err_clear();
  int rc = gg_statsfile_open(&f, p, 2, NAMES10, -1);
  ck_assert_int_eq(rc, GG_ECANTCREAT);
  ck_assert_int_eq(f.file, -1);
  char want[256];
  snprintf(want, sizeof want, "%s: cannot create statistics file", p);
  ck_assert_msg(strncmp(gg_err_msg(rc), want, strlen(want)) == 0, "message: %s", gg_err_msg(rc));
  /* on a resume too: the file is missing, so it is created, and cannot be */
  ck_assert_int_eq(gg_statsfile_open(&f, p, 2, NAMES10, 10), GG_ECANTCREAT);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  assert_no_open_ids();
}
END_TEST

START_TEST(test_close_never_opened_is_safe) {
  gg_statsfile_t f;
  memset(&f, 0, sizeof f);
  f.file = -1;
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  memset(&f, 0, sizeof f); /* fully zeroed: id 0 is never a valid HDF5 id */
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  /* and after a real close */
  const char *p = tpath("stats.h5");
  ck_assert_int_eq(gg_statsfile_open(&f, p, 2, NAMES10, -1), 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  /* appending to or flushing a closed file is an error, not a crash */
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, 2, 4, 1), 0);
  ck_assert_int_eq(gg_statsfile_append(&f, &s), GG_EINTERNAL);
  ck_assert_int_eq(gg_statsfile_flush(&f), GG_EINTERNAL);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_steps_out_of_order_refused) {
  const char *p = tpath("stats.h5");
  enum { L = 2 };
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  write_steps(&f, &s, 1, 10, 10, 0, 0);
  record(&s, 10, 11, 0); /* step 10 again */
  ck_assert_int_eq(gg_statsfile_append(&f, &s), GG_EINTERNAL);
  gg_stats_clear(&s);
  record(&s, 12, 12, 0);
  record(&s, 11, 11, 0); /* decreasing inside a batch */
  ck_assert_int_eq(gg_statsfile_append(&f, &s), GG_EINTERNAL);
  gg_stats_clear(&s);
  ck_assert_int_eq(f.rows, 10);
  write_steps(&f, &s, 11, 12, 2, 0, 0);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[16];
  check_file(p, L, st, range_steps(st, 1, 12), NULL, 0);
  gg_stats_free(&s);
}
END_TEST

START_TEST(test_second_writer_refused) {
  const char *p = tpath("stats.h5");
  enum { L = 2 };
  gg_statsfile_t f, g;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  write_steps(&f, &s, 1, 10, 10, 0, 1);
  /* a second run on the same file: neither a new file nor a resume */
  int rc = gg_statsfile_open(&g, p, L, NAMES10, -1);
  ck_assert_int_eq(rc, GG_ECANTCREAT);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(rc), "another process"));
  ck_assert_int_eq(gg_statsfile_open(&g, p, L, NAMES10, 5), GG_EIO);
  ck_assert_int_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE), 1); /* f's file only */
  /* the first writer carries on unharmed */
  write_steps(&f, &s, 11, 20, 10, 0, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  int64_t st[32];
  check_file(p, L, st, range_steps(st, 1, 20), NULL, 0);
  gg_stats_free(&s);
}
END_TEST

/* The writer in a child, this process reading in SWMR mode: each flush
 * becomes visible to a reader that opened the file before it. */
START_TEST(test_swmr_reader_sees_flushes) {
  const char *p = tpath("stats.h5");
  enum { L = 2 };
  int go[2], done[2];
  ck_assert_int_eq(pipe(go), 0);
  ck_assert_int_eq(pipe(done), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    gg_statsfile_t f;
    gg_stats_t s;
    char c = 'x';
    if (gg_stats_init(&s, L, 64, 8) || gg_statsfile_open(&f, p, L, NAMES10, -1)) _exit(1);
    for (int64_t a = 1; a <= 30; a += 10) {
      record(&s, a, a + 9, 10);
      if (gg_statsfile_append(&f, &s) || gg_statsfile_flush(&f)) _exit(2);
      gg_stats_clear(&s);
      if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(3);
    }
    _exit(gg_statsfile_close(&f) ? 4 : 0);
  }
  char c = 'x';
  hid_t h = -1, d = -1;
  for (int k = 1; k <= 3; k++) {
    ck_assert_int_eq(read(done[0], &c, 1), 1);
    if (h < 0) {
      hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
      H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
      h = H5Fopen(p, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
      H5Pclose(fapl);
      ck_assert_msg(h >= 0, "SWMR reader cannot open the file");
      d = H5Dopen2(h, "step", H5P_DEFAULT);
      ck_assert_int_ge(d, 0);
    }
    ck_assert_int_ge(H5Drefresh(d), 0);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    H5Sclose(sp);
    ck_assert_uint_eq(n, (hsize_t)(10 * k));
    int64_t st[30];
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, st), 0);
    for (hsize_t i = 0; i < n; i++) ck_assert_int_eq(st[i], (int64_t)i + 1);
    ck_assert_int_eq(write(go[1], &c, 1), 1);
  }
  H5Dclose(d);
  H5Fclose(h);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Cheap enough for every ~2 s: 10-layer rows, flushed after each append. */
START_TEST(test_flush_is_cheap) {
  const char *p = tpath("stats.h5");
  enum { L = 10, N = 50 };
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 64, 8), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  double worst = 0, total = 0;
  for (int k = 0; k < N; k++) {
    record(&s, 20 * k + 1, 20 * k + 20, 100);
    ck_assert_int_eq(gg_statsfile_append(&f, &s), 0);
    gg_stats_clear(&s);
    double t0 = now(), before = f.last_flush;
    ck_assert_int_eq(gg_statsfile_flush(&f), 0);
    double dt = now() - t0;
    ck_assert(f.last_flush >= t0 && f.last_flush > before);
    total += dt;
    worst = dt > worst ? dt : worst;
  }
  fprintf(stderr, "test_statsfile: flush (append of 20 rows + flush + fsync): mean %.2f ms, worst %.2f ms\n",
          1e3 * total / N, 1e3 * worst);
  ck_assert_msg(total / N < 0.1, "mean flush %.1f ms", 1e3 * total / N);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  gg_stats_free(&s);
}
END_TEST

/* The contract's budget: about 1 KB per recorded step for a 10-layer
 * network, stats every step, histograms every 100. Written the way a slow
 * run writes it, flushed every `batch` steps: each flush rewrites the
 * partly filled compressed chunks, the costly case for the file size. */
static double bytes_per_step(const char *p, int batch) {
  enum { L = 10, N = 2000 };
  gg_statsfile_t f;
  gg_stats_t s;
  ck_assert_int_eq(gg_stats_init(&s, L, 1024, 16), 0);
  ck_assert_int_eq(gg_statsfile_open(&f, p, L, NAMES10, -1), 0);
  write_steps(&f, &s, 1, N, batch, 100, 1);
  ck_assert_int_eq(gg_statsfile_close(&f), 0);
  gg_stats_free(&s);
  struct stat st;
  ck_assert_int_eq(stat(p, &st), 0);
  double b = (double)st.st_size / N;
  fprintf(stderr, "test_statsfile: 10 layers, 2000 steps, flush every %d steps: %lld bytes, %.1f bytes/step\n",
          batch, (long long)st.st_size, b);
  return b;
}

START_TEST(test_size_budget_10_layers) {
  static const int batches[] = {1000, 50, 10, 1};
  double b = bytes_per_step(tpath("stats.h5"), batches[_i]);
  ck_assert_msg(b < 1024.0, "%.1f bytes per step with a flush every %d steps", b, batches[_i]);
}
END_TEST

static Suite *statsfile_suite(void) {
  Suite *s = suite_create("statsfile");
  TCase *tc = tcase_create("layout");
  tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
  tcase_add_test(tc, test_append_batches_roundtrip);
  tcase_add_test(tc, test_layout_types_chunks_filters);
  tcase_add_test(tc, test_root_attributes_and_bin_edges);
  tcase_add_test(tc, test_steps_out_of_order_refused);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("resume");
  tcase_add_checked_fixture(tr, scratch_setup, scratch_teardown);
  tcase_add_test(tr, test_resume_truncates_rows_and_hists);
  tcase_add_test(tr, test_resume_into_full_chunks);
  tcase_add_test(tr, test_resume_between_rows_and_past_end);
  tcase_add_test(tr, test_resume_missing_file_creates);
  tcase_add_test(tr, test_resume_after_crashed_writer);
  tcase_add_test(tr, test_resume_layer_mismatch_edata);
  tcase_add_test(tr, test_resume_foreign_file_edata);
  tcase_add_test(tr, test_new_run_replaces_old_file);
  suite_add_tcase(s, tr);
  TCase *te = tcase_create("errors");
  tcase_add_checked_fixture(te, scratch_setup, scratch_teardown);
  tcase_add_test(te, test_uncreatable_path_ecantcreat);
  tcase_add_test(te, test_close_never_opened_is_safe);
  tcase_add_test(te, test_second_writer_refused);
  suite_add_tcase(s, te);
  TCase *tw = tcase_create("swmr and size");
  tcase_add_checked_fixture(tw, scratch_setup, scratch_teardown);
  tcase_set_timeout(tw, 120);
  tcase_add_test(tw, test_swmr_reader_sees_flushes);
  tcase_add_test(tw, test_flush_is_cheap);
  tcase_add_loop_test(tw, test_size_budget_10_layers, 0, 4);
  suite_add_tcase(s, tw);
  return s;
}

int main(void) {
  gg_h5_quiet();
  return gg_check_run(statsfile_suite());
}
