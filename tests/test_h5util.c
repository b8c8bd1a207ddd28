/* test_h5util.c — the HDF5 attribute readers of src/h5util.c (the library's
 * and the tools'): what they read, and that missing (1) and unreadable or
 * ill-shaped (-1) stay apart, on attributes written here through the HDF5
 * API in the forms other programs write them (h5py's fixed-length strings,
 * int32 and int64, float edges, a 2-D array); the 0/-1 forms the library
 * reads its own files with. */
#include <check.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "gg_check.h"

static char path[64];
static hid_t F = -1;

/* attribute `name` on F: type t, rank 0 (n = 0) or 1 (n values) */
static void put(const char *name, hid_t t, int n, const void *v) {
  hsize_t d = (hsize_t)n;
  hid_t sp = n ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(F, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert(a >= 0 && H5Awrite(a, t, v) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
}

static hid_t str_type(size_t size) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, size);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

static void setup(void) {
  snprintf(path, sizeof path, "/tmp/test_h5util.%ld.h5", (long)getpid());
  F = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert(F >= 0);
  int64_t step = 42;
  put("step", H5T_NATIVE_INT64, 0, &step);
  int32_t widths[4] = {784, 256, 256, 10};
  put("layers", H5T_STD_I32LE, 4, widths);
  double edges[3] = {-3.0, -2.0, -1.0};
  put("edges", H5T_IEEE_F64LE, 3, edges);
  float lr = 0.5f;
  put("lr", H5T_IEEE_F32LE, 0, &lr);
  const char *vl[3] = {"dense_0", "dense_1", "dense_2"};
  hid_t t = str_type(H5T_VARIABLE);
  put("names_vl", t, 3, vl);
  put("loss", t, 0, &vl[1]);
  H5Tclose(t);
  char fixed[3][8] = {"fc1", "fc2", "fc3xxxxx"}; /* the last fills its 8 bytes, no NUL */
  t = str_type(8);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  put("names_fixed", t, 3, fixed);
  put("act", t, 0, fixed[0]);
  H5Tclose(t);
  int32_t grid[2][2] = {{1, 2}, {3, 4}};
  hsize_t d2[2] = {2, 2};
  hid_t sp = H5Screate_simple(2, d2, NULL);
  hid_t a = H5Acreate2(F, "grid", H5T_NATIVE_INT32, sp, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert(a >= 0 && H5Awrite(a, H5T_NATIVE_INT32, grid) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
}

static void teardown(void) {
  H5Fclose(F);
  unlink(path);
}

START_TEST(exists) {
  ck_assert_int_eq(gg__h5_attr_exists(F, "step"), 1);
  ck_assert_int_eq(gg__h5_attr_exists(F, "nope"), 0);
}
END_TEST

START_TEST(library_forms) {
  /* 0 or -1: missing is an error, a string must fit the buffer */
  int64_t v = 0;
  ck_assert_int_eq(gg__h5_attr_read_i64(F, "step", &v), 0);
  ck_assert(v == 42);
  ck_assert_int_eq(gg__h5_attr_read_i64(F, "nope", &v), -1);
  ck_assert_int_eq(gg__h5_attr_read_i64(F, "layers", &v), -1); /* 4 values */
  char buf[8];
  ck_assert_int_eq(gg__h5_attr_read_str(F, "loss", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "dense_1");
  ck_assert_int_eq(gg__h5_attr_read_str(F, "act", buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "fc1");
  ck_assert_int_eq(gg__h5_attr_read_str(F, "loss", buf, 7), -1); /* "dense_1" needs 8 */
  ck_assert_int_eq(gg__h5_attr_read_str(F, "nope", buf, sizeof buf), -1);
  ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(numbers) {
  int64_t v = 0;
  int n = -1;
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "step", H5T_INTEGER, H5T_NATIVE_INT64, &v, 1, 1, &n), 0);
  ck_assert(v == 42 && n == 1);
  /* int32 in the file, read as int and as int64 */
  int w[8] = {0};
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "layers", H5T_INTEGER, H5T_NATIVE_INT, w, 1, 8, &n), 0);
  ck_assert(n == 4 && w[0] == 784 && w[3] == 10);
  int64_t w64[4] = {0};
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "layers", H5T_INTEGER, H5T_NATIVE_INT64, w64, 4, 4, &n), 0);
  ck_assert(w64[1] == 256);
  /* more values than there is room for, fewer than required */
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "layers", H5T_INTEGER, H5T_NATIVE_INT, w, 1, 3, &n), -1);
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "layers", H5T_INTEGER, H5T_NATIVE_INT, w, 5, 8, &n), -1);
  /* the class asked for */
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "lr", H5T_INTEGER, H5T_NATIVE_INT64, &v, 1, 1, &n), -1);
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "loss", H5T_NO_CLASS, H5T_NATIVE_INT64, &v, 1, 1, &n), -1);
  double e[3] = {0};
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "edges", H5T_NO_CLASS, H5T_NATIVE_DOUBLE, e, 3, 3, &n), 0);
  ck_assert(e[0] == -3.0 && e[2] == -1.0);
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "edges", H5T_FLOAT, H5T_NATIVE_DOUBLE, e, 3, 3, &n), 0);
  /* a 2-D attribute is not a list, even with the right count */
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "grid", H5T_INTEGER, H5T_NATIVE_INT, w, 4, 4, &n), -1);
  ck_assert_int_eq(gg__h5_attr_read_nums(F, "nope", H5T_INTEGER, H5T_NATIVE_INT, w, 1, 8, &n), 1);
}
END_TEST

START_TEST(strings) {
  char *s = (char *)1;
  ck_assert_int_eq(gg__h5_attr_read_dup(F, "loss", &s), 0);
  ck_assert_str_eq(s, "dense_1");
  free(s);
  ck_assert_int_eq(gg__h5_attr_read_dup(F, "act", &s), 0);
  ck_assert_str_eq(s, "fc1");
  free(s);
  ck_assert_int_eq(gg__h5_attr_read_dup(F, "nope", &s), 1);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(gg__h5_attr_read_dup(F, "step", &s), -1); /* not a string */
  ck_assert_ptr_null(s);
  ck_assert_int_eq(gg__h5_attr_read_dup(F, "names_vl", &s), -1); /* 3 strings, not 1 */
  ck_assert_ptr_null(s);
}
END_TEST

START_TEST(string_lists) {
  char *v[3] = {NULL, NULL, NULL};
  ck_assert_int_eq(gg__h5_attr_read_dups(F, "names_vl", 3, v), 0);
  ck_assert_str_eq(v[0], "dense_0");
  ck_assert_str_eq(v[2], "dense_2");
  for (int i = 0; i < 3; i++) free(v[i]);
  ck_assert_int_eq(gg__h5_attr_read_dups(F, "names_fixed", 3, v), 0);
  ck_assert_str_eq(v[1], "fc2");
  ck_assert_str_eq(v[2], "fc3xxxxx"); /* a full fixed-length string gets its NUL */
  for (int i = 0; i < 3; i++) free(v[i]);
  /* the wrong count or kind leaves v alone */
  char *keep[3] = {(char *)1, (char *)2, (char *)3};
  ck_assert_int_eq(gg__h5_attr_read_dups(F, "names_vl", 2, keep), -1);
  ck_assert_int_eq(gg__h5_attr_read_dups(F, "layers", 4, keep), -1);
  ck_assert_int_eq(gg__h5_attr_read_dups(F, "nope", 3, keep), 1);
  ck_assert(keep[0] == (char *)1 && keep[2] == (char *)3);
}
END_TEST

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the failures above are on purpose */
  Suite *s = suite_create("h5util");
  TCase *tc = tcase_create("h5util");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, exists);
  tcase_add_test(tc, library_forms);
  tcase_add_test(tc, numbers);
  tcase_add_test(tc, strings);
  tcase_add_test(tc, string_lists);
  suite_add_tcase(s, tc);
  return gg_check_run(s);
}
