/* test_data.c — Check suite for src/data.c: dataset files (write, load,
 * validation messages), the fit check against a network, the sampler and
 * gather.
 *
 * Every file lives in a mkdtemp directory made by the suite fixture and
 * removed at the end. Malformed files are written with raw HDF5 calls so
 * that each validation path of gg_data_load is reached.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "gradguard/data.h"
#include "gradguard/error.h"
#include "gradguard/nn.h"
#include "gg_check.h"

/* ---- scratch directory ------------------------------------------------- */

static char tmpdir[4096];

static void make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/gg-test-data-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    abort();
  }
}

static void remove_tmpdir(void) {
  DIR *dir = opendir(tmpdir);
  if (dir) {
    struct dirent *e;
    char p[8192];
    while ((e = readdir(dir)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
      if (unlink(p) != 0) rmdir(p);
    }
    closedir(dir);
  }
  rmdir(tmpdir);
}

/* Path of a file in the scratch directory (into a caller's buffer). */
#define TPATH(var, name)    \
  char var[8192];           \
  snprintf(var, sizeof var, "%s/%s", tmpdir, name)

/* Does the last error message contain every given fragment? */
static int msg_has(int code, const char *a, const char *b, const char *c) {
  const char *m = gg_err_msg(code);
  return strstr(m, a) && (!b || strstr(m, b)) && (!c || strstr(m, c));
}

static const char *or_empty(const char *s) { return s ? s : ""; }

#define ASSERT_MSG(code, a, b, c) \
  ck_assert_msg(msg_has(code, a, b, c), "message '%s' lacks '%s' / '%s' / '%s'", \
                gg_err_msg(code), a, or_empty(b), or_empty(c))

/* ---- raw HDF5 writers for malformed files ------------------------------- */

/* Add dataset /name (file type ftype, memory type mtype, given shape) to
 * path, creating the file when create is set. Aborts on HDF5 failure: a
 * broken fixture must not look like a passing test. */
static void h5_put(const char *path, int create, const char *name, hid_t ftype, hid_t mtype,
                   int rank, const hsize_t *dims, const void *buf) {
  hid_t f = create ? H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                   : H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  ck_assert_int_ge(f, 0);
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  ck_assert_int_ge(sp, 0);
  hid_t ds = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(ds, 0);
  ck_assert_int_ge(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
  ck_assert_int_ge(H5Dclose(ds), 0);
  ck_assert_int_ge(H5Sclose(sp), 0);
  ck_assert_int_ge(H5Fclose(f), 0);
}

/* X (n, d) with X[i][j] = i + j / 100, a valid float file. */
static float *make_X(size_t n, int d) {
  float *X = malloc(n * (size_t)d * sizeof *X);
  ck_assert_ptr_nonnull(X);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) X[i * (size_t)d + (size_t)j] = (float)i + (float)j / 100.0f;
  return X;
}

static void put_X(const char *path, size_t n, int d) {
  float *X = make_X(n, d);
  hsize_t dims[2] = {n, (hsize_t)d};
  h5_put(path, 1, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, X);
  free(X);
}

static void put_labels(const char *path, size_t n, const int32_t *lab) {
  hsize_t dims[1] = {n};
  h5_put(path, 0, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, lab);
}

/* ---- write + load round trips ------------------------------------------ */

START_TEST(roundtrip_int_labels) {
  TPATH(p, "int.h5");
  size_t n = 7;
  int d = 3;
  float *X = make_X(n, d);
  int32_t lab[7] = {0, 4, 2, 2, 1, 0, 3};
  gg_data_t data;
  ck_assert_int_eq(gg_data_write(p, n, d, X, 1, NULL, lab, 1), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_uint_eq(data.n, n);
  ck_assert_int_eq(data.d, d);
  ck_assert_int_eq(data.k, 1);
  ck_assert_int_eq(data.int_labels, 1);
  ck_assert_int_eq(data.max_label, 4);
  ck_assert_ptr_null(data.y);
  ck_assert_mem_eq(data.X, X, n * (size_t)d * sizeof *X);
  ck_assert_mem_eq(data.labels, lab, sizeof lab);
  gg_data_free(&data);
  ck_assert_ptr_null(data.X);
  free(X);
}
END_TEST

START_TEST(roundtrip_float_1d) {
  TPATH(p, "f1.h5");
  size_t n = 5;
  float *X = make_X(n, 2);
  float y[5] = {0.0f, 0.25f, 1.0f, -3.5f, 1e-7f};
  gg_data_t data;
  ck_assert_int_eq(gg_data_write(p, n, 2, X, 1, y, NULL, 1), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_int_eq(data.int_labels, 0);
  ck_assert_int_eq(data.k, 1);
  ck_assert_ptr_null(data.labels);
  ck_assert_mem_eq(data.y, y, sizeof y);
  ck_assert_mem_eq(data.X, X, n * 2 * sizeof *X);
  gg_data_free(&data);
  free(X);
}
END_TEST

START_TEST(roundtrip_float_2d) {
  TPATH(p, "f2.h5");
  size_t n = 4;
  int k = 3;
  float *X = make_X(n, 6);
  float y[12];
  for (int i = 0; i < 12; i++) y[i] = (float)i * 0.5f - 2.0f;
  gg_data_t data;
  ck_assert_int_eq(gg_data_write(p, n, 6, X, k, y, NULL, 0), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_int_eq(data.k, k);
  ck_assert_int_eq(data.d, 6);
  ck_assert_mem_eq(data.y, y, sizeof y);
  ck_assert_mem_eq(data.X, X, n * 6 * sizeof *X);
  gg_data_free(&data);
  free(X);
}
END_TEST

/* A (n, 1) float /y and a (n) one load alike: k = 1 either way. */
START_TEST(roundtrip_float_n1_is_k1) {
  TPATH(p, "n1.h5");
  float *X = make_X(3, 2), y[3] = {1, 2, 3};
  gg_data_t data;
  ck_assert_int_eq(gg_data_write(p, 3, 2, X, 1, y, NULL, 0), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_int_eq(data.k, 1);
  ck_assert_mem_eq(data.y, y, sizeof y);
  gg_data_free(&data);
  free(X);
}
END_TEST

START_TEST(roundtrip_deflate) {
  TPATH(p, "z.h5");
  size_t n = 3000;
  int d = 50;
  float *X = make_X(n, d);
  int32_t *lab = malloc(n * sizeof *lab);
  for (size_t i = 0; i < n; i++) lab[i] = (int32_t)(i % 7);
  gg_data_t data;
  ck_assert_int_eq(gg_data_write_ex(p, n, d, X, 1, NULL, lab, 1, 6), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_mem_eq(data.X, X, n * (size_t)d * sizeof *X);
  ck_assert_mem_eq(data.labels, lab, n * sizeof *lab);
  gg_data_free(&data);
  /* The file really is chunked and deflated. */
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  ck_assert_int_ge(f, 0);
  hid_t ds = H5Dopen2(f, "X", H5P_DEFAULT);
  ck_assert_int_ge(ds, 0);
  hid_t dcpl = H5Dget_create_plist(ds);
  ck_assert_int_ge(dcpl, 0);
  ck_assert_int_eq(H5Pget_layout(dcpl), H5D_CHUNKED);
  ck_assert_int_gt(H5Pget_nfilters(dcpl), 0);
  ck_assert_int_ge(H5Pclose(dcpl), 0);
  ck_assert_int_ge(H5Dclose(ds), 0);
  ck_assert_int_ge(H5Fclose(f), 0);
  ck_assert_int_eq(gg_data_write_ex(p, n, d, X, 1, NULL, lab, 1, 10), GG_EUSAGE);
  free(X);
  free(lab);
}
END_TEST

/* Contiguous float32 / int32 datasets are mapped, not copied; the mapped
 * view, the read fallback (GG_DATA_MMAP=0) and a compressed copy (read)
 * hold the same values; a file cut short inside /X is reported, not
 * mapped past its end. */
START_TEST(load_maps_contiguous) {
  TPATH(p, "map.h5");
  TPATH(pz, "mapz.h5");
  size_t n = 2000;
  int d = 33;
  float *X = make_X(n, d);
  float *y = malloc(n * 2 * sizeof *y);
  for (size_t i = 0; i < 2 * n; i++) y[i] = (float)i * 0.5f;
  ck_assert_int_eq(gg_data_write(p, n, d, X, 2, y, NULL, 0), 0);
  ck_assert_int_eq(gg_data_write_ex(pz, n, d, X, 2, y, NULL, 0, 3), 0);
  gg_data_t m, r, z;
  ck_assert_int_eq(gg_data_load(&m, p), 0);
  ck_assert_ptr_nonnull(m.map_base[0]);
  ck_assert_ptr_nonnull(m.map_base[1]);
  setenv("GG_DATA_MMAP", "0", 1);
  ck_assert_int_eq(gg_data_load(&r, p), 0);
  unsetenv("GG_DATA_MMAP");
  ck_assert_ptr_null(r.map_base[0]);
  ck_assert_int_eq(gg_data_load(&z, pz), 0);
  ck_assert_ptr_null(z.map_base[0]);
  ck_assert_mem_eq(m.X, X, n * (size_t)d * sizeof *X);
  ck_assert_mem_eq(r.X, X, n * (size_t)d * sizeof *X);
  ck_assert_mem_eq(z.X, X, n * (size_t)d * sizeof *X);
  ck_assert_mem_eq(m.y, y, 2 * n * sizeof *y);
  ck_assert_mem_eq(r.y, y, 2 * n * sizeof *y);
  gg_data_free(&m);
  ck_assert_ptr_null(m.X);
  gg_data_free(&r);
  gg_data_free(&z);
  /* cut the file in the middle of /X: an error, never a mapping past the end */
  struct stat st;
  ck_assert_int_eq(stat(p, &st), 0);
  ck_assert_int_eq(truncate(p, st.st_size / 2), 0);
  gg_data_t t;
  int rc = gg_data_load(&t, p);
  ck_assert(rc == GG_EDATA || rc == GG_ENOINPUT);
  ck_assert_ptr_null(t.X);
  free(X);
  free(y);
}
END_TEST

/* A chunked /X can declare any shape in a tiny file (unwritten chunks read
 * as zeros): more than the node's memory is GG_ENOMEM with the numbers,
 * before any allocation. */
START_TEST(load_refuses_more_than_memory) {
  TPATH(p, "huge.h5");
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(f, 0);
  hsize_t xd[2] = {(hsize_t)1 << 31, 1024}, xc[2] = {64, 1024}, yd[1] = {(hsize_t)1 << 31}, yc[1] = {4096};
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  ck_assert_int_ge(H5Pset_chunk(dcpl, 2, xc), 0);
  hid_t sp = H5Screate_simple(2, xd, NULL);
  hid_t ds = H5Dcreate2(f, "X", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ck_assert_int_ge(ds, 0);
  H5Dclose(ds);
  H5Sclose(sp);
  ck_assert_int_ge(H5Pset_chunk(dcpl, 1, yc), 0);
  sp = H5Screate_simple(1, yd, NULL);
  ds = H5Dcreate2(f, "y", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ck_assert_int_ge(ds, 0);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Pclose(dcpl);
  H5Fclose(f);
  gg_data_t data;
  int lrc = gg_data_load(&data, p);
  if (lrc != GG_ENOMEM) fprintf(stderr, "load: %s\n", gg_err_msg(lrc));
  ck_assert_int_eq(lrc, GG_ENOMEM);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_ENOMEM), "GB of memory"));
  ck_assert_ptr_null(data.X);
}
END_TEST

/* Other stored types are converted: float64 /X, uint8 /y. */
START_TEST(load_converts_types) {
  TPATH(p, "conv.h5");
  double Xd[6] = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5};
  uint8_t lab[3] = {2, 0, 9};
  hsize_t xd[2] = {3, 2}, yd[1] = {3};
  h5_put(p, 1, "X", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, xd, Xd);
  h5_put(p, 0, "y", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, yd, lab);
  gg_data_t data;
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  for (int i = 0; i < 6; i++) ck_assert_float_eq(data.X[i], (float)Xd[i]);
  ck_assert_int_eq(data.int_labels, 1);
  ck_assert_int_eq(data.labels[2], 9);
  ck_assert_int_eq(data.max_label, 9);
  gg_data_free(&data);
}
END_TEST

START_TEST(write_overwrites) {
  TPATH(p, "over.h5");
  float *X = make_X(10, 4), y[10] = {0};
  int32_t lab[2] = {1, 1};
  gg_data_t data;
  ck_assert_int_eq(gg_data_write(p, 10, 4, X, 1, y, NULL, 1), 0);
  ck_assert_int_eq(gg_data_write(p, 2, 1, X, 1, NULL, lab, 1), 0);
  ck_assert_int_eq(gg_data_load(&data, p), 0);
  ck_assert_uint_eq(data.n, 2);
  ck_assert_int_eq(data.d, 1);
  ck_assert_int_eq(data.int_labels, 1);
  gg_data_free(&data);
  free(X);
}
END_TEST

/* Count the entries of the scratch directory (no stray temporaries). */
static int tmpdir_entries(void) {
  DIR *dir = opendir(tmpdir);
  struct dirent *e;
  int n = 0;
  ck_assert_ptr_nonnull(dir);
  while ((e = readdir(dir)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(dir);
  return n;
}

START_TEST(write_cannot_create) {
  TPATH(p, "no-such-dir/out.h5");
  float X[2] = {1, 2};
  int32_t lab[2] = {0, 1};
  int before = tmpdir_entries();
  gg_err_clear();
  int rc = gg_data_write(p, 2, 1, X, 1, NULL, lab, 1);
  ck_assert_int_eq(rc, GG_ECANTCREAT);
  ASSERT_MSG(rc, p, "cannot create", NULL);
  /* Writing onto a directory fails at the rename and leaves no temporary. */
  TPATH(dirp, "a-directory");
  ck_assert_int_eq(mkdir(dirp, 0755), 0);
  rc = gg_data_write(dirp, 2, 1, X, 1, NULL, lab, 1);
  ck_assert_int_eq(rc, GG_ECANTCREAT);
  ASSERT_MSG(rc, dirp, "cannot create", NULL);
  ck_assert_int_eq(tmpdir_entries(), before + 1);
  ck_assert_int_eq(rmdir(dirp), 0);
}
END_TEST

/* ---- load: every validation error --------------------------------------- */

START_TEST(load_missing_file) {
  TPATH(p, "absent.h5");
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_ENOINPUT);
  ASSERT_MSG(rc, p, "cannot open", "No such file");
  ck_assert_ptr_null(data.X);
}
END_TEST

START_TEST(load_directory) {
  gg_data_t data;
  int rc = gg_data_load(&data, tmpdir);
  ck_assert_int_eq(rc, GG_ENOINPUT);
  ASSERT_MSG(rc, tmpdir, "cannot open", NULL);
}
END_TEST

START_TEST(load_not_hdf5) {
  TPATH(p, "text.h5");
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs("x,y\n1,2\n", f);
  ck_assert_int_eq(fclose(f), 0);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_ENOINPUT);
  ASSERT_MSG(rc, p, "not an HDF5 file", NULL);
}
END_TEST

START_TEST(load_missing_X) {
  TPATH(p, "nox.h5");
  float y[2] = {0, 1};
  hsize_t dims[1] = {2};
  h5_put(p, 1, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, y);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "no dataset /X", NULL);
}
END_TEST

START_TEST(load_missing_y) {
  TPATH(p, "noy.h5");
  put_X(p, 4, 2);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "no dataset /y", NULL);
}
END_TEST

START_TEST(load_X_wrong_rank) {
  TPATH(p, "rank.h5");
  float X[4] = {1, 2, 3, 4};
  int32_t lab[4] = {0, 0, 1, 1};
  hsize_t dims[1] = {4};
  h5_put(p, 1, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, X);
  put_labels(p, 4, lab);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/X has rank 1", "expected 2");
}
END_TEST

START_TEST(load_X_integer) {
  TPATH(p, "intx.h5");
  int32_t X[6] = {0, 255, 3, 4, 5, 6}, lab[3] = {0, 1, 2};
  hsize_t dims[2] = {3, 2};
  h5_put(p, 1, "X", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, X);
  put_labels(p, 3, lab);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/X is an integer dataset", "float32");
}
END_TEST

START_TEST(load_X_no_rows) {
  TPATH(p, "empty.h5");
  hsize_t dims[2] = {0, 3}, yd[1] = {0};
  float dummy = 0;
  h5_put(p, 1, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, &dummy);
  h5_put(p, 0, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, yd, &dummy);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/X has no rows", NULL);
}
END_TEST

START_TEST(load_n_mismatch) {
  TPATH(p, "mismatch.h5");
  int32_t lab[9] = {0};
  put_X(p, 10, 3);
  put_labels(p, 9, lab);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/y has 9 rows but /X has 10", NULL);
}
END_TEST

START_TEST(load_y_bad_type) {
  TPATH(p, "ystr.h5");
  hid_t str = H5Tcopy(H5T_C_S1);
  ck_assert_int_ge(H5Tset_size(str, 4), 0);
  char y[2][4] = {"abc", "def"};
  hsize_t dims[1] = {2};
  put_X(p, 2, 2);
  h5_put(p, 0, "y", str, str, 1, dims, y);
  ck_assert_int_ge(H5Tclose(str), 0);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/y has an unsupported type", NULL);
}
END_TEST

START_TEST(load_int_y_rank2) {
  TPATH(p, "y2int.h5");
  int32_t lab[4] = {0, 1, 1, 0};
  hsize_t dims[2] = {2, 2};
  put_X(p, 2, 2);
  h5_put(p, 0, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, lab);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/y", "1-D");
}
END_TEST

START_TEST(load_nan_in_X) {
  TPATH(p, "nan.h5");
  size_t n = 20;
  int d = 5;
  float *X = make_X(n, d);
  X[17 * 5 + 3] = NAN;
  X[18 * 5 + 0] = INFINITY; /* later: the first bad value is the one reported */
  int32_t lab[20] = {0};
  ck_assert_int_eq(gg_data_write(p, n, d, X, 1, NULL, lab, 1), 0);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/X row 17 col 3 is NaN", NULL);
  ck_assert_ptr_null(data.X);
  free(X);
}
END_TEST

START_TEST(load_inf_in_y) {
  TPATH(p, "inf.h5");
  float *X = make_X(3, 2), y[6] = {0, 1, 2, 3, -INFINITY, 5};
  ck_assert_int_eq(gg_data_write(p, 3, 2, X, 2, y, NULL, 0), 0);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/y row 2 col 0 is -inf", NULL);
  free(X);
}
END_TEST

START_TEST(load_negative_label) {
  TPATH(p, "neg.h5");
  float *X = make_X(4, 2);
  int32_t lab[4] = {0, 3, -1, 2};
  ck_assert_int_eq(gg_data_write(p, 4, 2, X, 1, NULL, lab, 1), 0);
  gg_data_t data;
  int rc = gg_data_load(&data, p);
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, p, "/y row 2 is -1", NULL);
  free(X);
}
END_TEST

/* gg_data_load silences HDF5's error printing only while it works. */
START_TEST(load_restores_hdf5_error_printer) {
  H5E_auto2_t f0, f1;
  void *c0, *c1;
  gg_data_t data;
  TPATH(p, "text2.h5");
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs("not hdf5", f);
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_ge(H5Eget_auto2(H5E_DEFAULT, &f0, &c0), 0);
  ck_assert_int_eq(gg_data_load(&data, p), GG_ENOINPUT);
  ck_assert_int_ge(H5Eget_auto2(H5E_DEFAULT, &f1, &c1), 0);
  ck_assert(f0 == f1 && c0 == c1);
}
END_TEST

/* ---- check_fit ---------------------------------------------------------- */

/* A hand-made arch: check_fit reads only widths, n_layers and loss. */
typedef struct {
  int widths[3];
  gg_arch_t arch;
} fit_arch_t;

static void fit_arch(fit_arch_t *a, int in, int out, gg_loss_t loss) {
  memset(a, 0, sizeof *a);
  a->widths[0] = in;
  a->widths[1] = 16;
  a->widths[2] = out;
  a->arch.n_layers = 2;
  a->arch.widths = a->widths;
  a->arch.loss = loss;
  a->arch.act = GG_ACT_RELU;
}

/* In-memory data (no file needed): n samples, d columns. */
static void fit_data(gg_data_t *data, float *X, size_t n, int d, int k, float *y, int32_t *lab) {
  memset(data, 0, sizeof *data);
  data->n = n;
  data->d = d;
  data->k = k;
  data->X = X;
  data->y = y;
  data->labels = lab;
  data->int_labels = lab != NULL;
  if (lab)
    for (size_t i = 0; i < n; i++)
      if (lab[i] > data->max_label) data->max_label = lab[i];
}

START_TEST(fit_ok) {
  float X[8] = {0}, y[4] = {0, 1, 0.5f, 1}, y2[8] = {0};
  int32_t lab[4] = {0, 9, 3, 1};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 4, 2, 1, NULL, lab);
  fit_arch(&a, 2, 10, GG_LOSS_SOFTMAX_CE);
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "f.h5"), 0);
  fit_data(&data, X, 4, 2, 1, y, NULL);
  fit_arch(&a, 2, 1, GG_LOSS_BCE);
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "f.h5"), 0);
  fit_data(&data, X, 4, 2, 2, y2, NULL);
  fit_arch(&a, 2, 2, GG_LOSS_MSE);
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "f.h5"), 0);
}
END_TEST

START_TEST(fit_columns_mismatch) {
  float X[8] = {0};
  int32_t lab[1] = {0};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 1, 784, 1, NULL, lab);
  fit_arch(&a, 100, 10, GG_LOSS_SOFTMAX_CE);
  int rc = gg_data_check_fit(&data, &a.arch, "data/train.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "data/train.h5: /X has 784 columns but --layers starts with 100", NULL, NULL);
}
END_TEST

START_TEST(fit_label_too_large) {
  float X[3] = {0};
  int32_t lab[3] = {1, 10, 2};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 3, 1, 1, NULL, lab);
  fit_arch(&a, 1, 10, GG_LOSS_SOFTMAX_CE);
  int rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y has label 10", "row 1", "--layers ends with 10 outputs");
  fit_arch(&a, 1, 11, GG_LOSS_SOFTMAX_CE);
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "t.h5"), 0);
}
END_TEST

START_TEST(fit_softmax_needs_int_labels) {
  float X[2] = {0}, y[2] = {0, 1};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 2, 1, 1, y, NULL);
  fit_arch(&a, 1, 2, GG_LOSS_SOFTMAX_CE);
  int rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y", "softmax_ce", "int32");
}
END_TEST

START_TEST(fit_mse_bce_need_float_targets) {
  float X[2] = {0};
  int32_t lab[2] = {0, 1};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 2, 1, 1, NULL, lab);
  fit_arch(&a, 1, 1, GG_LOSS_MSE);
  int rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y", "--loss mse", "float targets");
  fit_arch(&a, 1, 1, GG_LOSS_BCE);
  rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y", "--loss bce", "float targets");
}
END_TEST

START_TEST(fit_bce_target_out_of_range) {
  float X[3] = {0}, y[3] = {0, 1, 1.5f};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 3, 1, 1, y, NULL);
  fit_arch(&a, 1, 1, GG_LOSS_BCE);
  int rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y row 2 col 0 is 1.5", "[0, 1]", NULL);
  y[2] = -0.1f;
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "t.h5"), GG_EDATA);
  /* The same targets are fine for mse. */
  fit_arch(&a, 1, 1, GG_LOSS_MSE);
  ck_assert_int_eq(gg_data_check_fit(&data, &a.arch, "t.h5"), 0);
}
END_TEST

START_TEST(fit_target_width_mismatch) {
  float X[2] = {0}, y[6] = {0};
  gg_data_t data;
  fit_arch_t a;
  fit_data(&data, X, 2, 1, 3, y, NULL);
  fit_arch(&a, 1, 5, GG_LOSS_MSE);
  int rc = gg_data_check_fit(&data, &a.arch, "t.h5");
  ck_assert_int_eq(rc, GG_EDATA);
  ASSERT_MSG(rc, "t.h5: /y has 3 target columns", "--layers ends with 5 outputs", NULL);
}
END_TEST

/* ---- sampler ------------------------------------------------------------ */

static int is_permutation(const uint32_t *p, size_t n) {
  char *seen = calloc(n, 1);
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++) {
    ok = p[i] < n && !seen[p[i]];
    if (ok) seen[p[i]] = 1;
  }
  free(seen);
  return ok;
}

START_TEST(sampler_deterministic) {
  gg_sampler_t a, b;
  ck_assert_int_eq(gg_sampler_init(&a, 100, 10, 42), 0);
  ck_assert_int_eq(gg_sampler_init(&b, 100, 10, 42), 0);
  ck_assert_int_eq(a.epoch, -1);
  /* b visits another epoch first: the permutation depends on the epoch only. */
  ck_assert_ptr_nonnull(gg_sampler_slice(&b, 5, 0, 0, 1));
  ck_assert_ptr_nonnull(gg_sampler_slice(&a, 3, 0, 0, 1));
  ck_assert_ptr_nonnull(gg_sampler_slice(&b, 3, 0, 0, 1));
  ck_assert_mem_eq(a.perm, b.perm, 100 * sizeof *a.perm);
  ck_assert(is_permutation(a.perm, 100));
  /* Not the identity (probability 1/100! of a false failure). */
  size_t fixed = 0;
  for (uint32_t i = 0; i < 100; i++) fixed += a.perm[i] == i;
  ck_assert_uint_lt(fixed, 100);
  gg_sampler_free(&a);
  gg_sampler_free(&b);
}
END_TEST

START_TEST(sampler_epochs_and_seeds_differ) {
  gg_sampler_t s, t;
  uint32_t e0[64];
  ck_assert_int_eq(gg_sampler_init(&s, 64, 8, 7), 0);
  ck_assert_int_eq(gg_sampler_init(&t, 64, 8, 8), 0);
  gg_sampler_slice(&s, 0, 0, 0, 1);
  memcpy(e0, s.perm, sizeof e0);
  gg_sampler_slice(&s, 1, 0, 0, 1);
  ck_assert(memcmp(e0, s.perm, sizeof e0) != 0);
  ck_assert(is_permutation(s.perm, 64));
  gg_sampler_slice(&t, 0, 0, 0, 1);
  ck_assert(memcmp(e0, t.perm, sizeof e0) != 0);
  /* Back to epoch 0: the same permutation again. */
  gg_sampler_slice(&s, 0, 0, 0, 1);
  ck_assert_mem_eq(e0, s.perm, sizeof e0);
  gg_sampler_free(&s);
  gg_sampler_free(&t);
}
END_TEST

/* Global batch b is the same samples for P = 1, 2, 4 ranks: the P slices
 * in rank order are exactly the P = 1 slice (hence also their union). */
START_TEST(sampler_rank_count_independent) {
  const size_t n = 37;
  const long B = 8;
  gg_sampler_t one, many;
  ck_assert_int_eq(gg_sampler_init(&one, n, B, 1234), 0);
  for (int P = 1; P <= 4; P *= 2) {
    ck_assert_int_eq(gg_sampler_init(&many, n, B, 1234), 0);
    for (long e = 0; e < 3; e++) {
      uint32_t seen[37] = {0};
      for (long b = 0; b < one.steps_per_epoch; b++) {
        uint32_t ref[8], got[8];
        memcpy(ref, gg_sampler_slice(&one, e, b, 0, 1), sizeof ref);
        for (int r = 0; r < P; r++) {
          const uint32_t *sl = gg_sampler_slice(&many, e, b, r, P);
          ck_assert_ptr_nonnull(sl);
          memcpy(got + r * (B / P), sl, (size_t)(B / P) * sizeof *got);
        }
        ck_assert_mem_eq(ref, got, sizeof ref);
        for (long i = 0; i < B; i++) seen[got[i]]++;
      }
      /* Within an epoch no sample is drawn twice. */
      for (size_t i = 0; i < n; i++) ck_assert_uint_le(seen[i], 1);
    }
    gg_sampler_free(&many);
  }
  gg_sampler_free(&one);
}
END_TEST

START_TEST(sampler_steps_per_epoch) {
  gg_sampler_t s;
  ck_assert_int_eq(gg_sampler_init(&s, 37, 8, 0), 0);
  ck_assert_int_eq(s.steps_per_epoch, 4);
  /* The dropped last partial batch is not addressable. */
  ck_assert_ptr_null(gg_sampler_slice(&s, 0, 4, 0, 1));
  ck_assert_ptr_nonnull(gg_sampler_slice(&s, 0, 3, 0, 1));
  gg_sampler_free(&s);
  ck_assert_int_eq(gg_sampler_init(&s, 32, 8, 0), 0);
  ck_assert_int_eq(s.steps_per_epoch, 4);
  gg_sampler_free(&s);
  ck_assert_int_eq(gg_sampler_init(&s, 5, 5, 0), 0);
  ck_assert_int_eq(s.steps_per_epoch, 1);
  gg_sampler_free(&s);
}
END_TEST

START_TEST(sampler_bad_batch) {
  gg_sampler_t s;
  int rc = gg_sampler_init(&s, 10, 11, 0);
  ck_assert_int_eq(rc, GG_EUSAGE);
  ASSERT_MSG(rc, "--batch 11", "10 samples", NULL);
  ck_assert_ptr_null(s.perm);
  gg_sampler_free(&s);
  ck_assert_int_eq(gg_sampler_init(&s, 10, 0, 0), GG_EUSAGE);
  ck_assert_int_eq(gg_sampler_init(&s, 10, -4, 0), GG_EUSAGE);
}
END_TEST

START_TEST(sampler_slice_bad_ranks) {
  gg_sampler_t s;
  ck_assert_int_eq(gg_sampler_init(&s, 40, 8, 0), 0);
  ck_assert_ptr_null(gg_sampler_slice(&s, 0, 0, 0, 3)); /* 3 does not divide 8 */
  ck_assert_ptr_null(gg_sampler_slice(&s, 0, 0, 2, 2)); /* rank out of range */
  ck_assert_ptr_null(gg_sampler_slice(&s, -1, 0, 0, 1));
  ck_assert_ptr_nonnull(gg_sampler_slice(&s, 0, 0, 1, 2));
  gg_sampler_free(&s);
}
END_TEST

/* ---- gather ------------------------------------------------------------- */

START_TEST(gather_rows) {
  float *X = make_X(5, 3), y[10], gx[9], gy[6];
  int32_t lab[5] = {10, 11, 12, 13, 14}, gl[3];
  uint32_t idx[3] = {4, 0, 4};
  gg_data_t data;
  for (int i = 0; i < 10; i++) y[i] = (float)i;
  fit_data(&data, X, 5, 3, 1, NULL, lab);
  gg_data_gather(&data, idx, 3, gx, NULL, gl);
  for (int i = 0; i < 3; i++) {
    ck_assert_mem_eq(gx + 3 * i, X + 3 * idx[i], 3 * sizeof *gx);
    ck_assert_int_eq(gl[i], lab[idx[i]]);
  }
  fit_data(&data, X, 5, 3, 2, y, NULL);
  memset(gx, 0, sizeof gx);
  gg_data_gather(&data, idx, 3, gx, gy, NULL);
  for (int i = 0; i < 3; i++) {
    ck_assert_mem_eq(gx + 3 * i, X + 3 * idx[i], 3 * sizeof *gx);
    ck_assert_float_eq(gy[2 * i], y[2 * idx[i]]);
    ck_assert_float_eq(gy[2 * i + 1], y[2 * idx[i] + 1]);
  }
  free(X);
}
END_TEST

static Suite *data_suite(void) {
  Suite *s = suite_create("data");
  TCase *io = tcase_create("io");
  tcase_add_unchecked_fixture(io, make_tmpdir, remove_tmpdir);
  tcase_add_test(io, roundtrip_int_labels);
  tcase_add_test(io, roundtrip_float_1d);
  tcase_add_test(io, roundtrip_float_2d);
  tcase_add_test(io, roundtrip_float_n1_is_k1);
  tcase_add_test(io, roundtrip_deflate);
  tcase_add_test(io, load_maps_contiguous);
  tcase_add_test(io, load_refuses_more_than_memory);
  tcase_add_test(io, load_converts_types);
  tcase_add_test(io, write_overwrites);
  tcase_add_test(io, write_cannot_create);
  tcase_add_test(io, load_missing_file);
  tcase_add_test(io, load_directory);
  tcase_add_test(io, load_not_hdf5);
  tcase_add_test(io, load_missing_X);
  tcase_add_test(io, load_missing_y);
  tcase_add_test(io, load_X_wrong_rank);
  tcase_add_test(io, load_X_integer);
  tcase_add_test(io, load_X_no_rows);
  tcase_add_test(io, load_n_mismatch);
  tcase_add_test(io, load_y_bad_type);
  tcase_add_test(io, load_int_y_rank2);
  tcase_add_test(io, load_nan_in_X);
  tcase_add_test(io, load_inf_in_y);
  tcase_add_test(io, load_negative_label);
  tcase_add_test(io, load_restores_hdf5_error_printer);
  suite_add_tcase(s, io);

  TCase *fit = tcase_create("fit");
  tcase_add_test(fit, fit_ok);
  tcase_add_test(fit, fit_columns_mismatch);
  tcase_add_test(fit, fit_label_too_large);
  tcase_add_test(fit, fit_softmax_needs_int_labels);
  tcase_add_test(fit, fit_mse_bce_need_float_targets);
  tcase_add_test(fit, fit_bce_target_out_of_range);
  tcase_add_test(fit, fit_target_width_mismatch);
  suite_add_tcase(s, fit);

  TCase *smp = tcase_create("sampler");
  tcase_add_test(smp, sampler_deterministic);
  tcase_add_test(smp, sampler_epochs_and_seeds_differ);
  tcase_add_test(smp, sampler_rank_count_independent);
  tcase_add_test(smp, sampler_steps_per_epoch);
  tcase_add_test(smp, sampler_bad_batch);
  tcase_add_test(smp, sampler_slice_bad_ranks);
  tcase_add_test(smp, gather_rows);
  suite_add_tcase(s, smp);
  return s;
}

int main(void) {
  return gg_check_run(data_suite());
}
