/* h5util.c — HDF5 attribute writers and readers shared by ckpt.c,
 * statsfile.c and the tools gg-inspect and gg-plot (see internal.h). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int gg__h5_attr_write(hid_t obj, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const void *val) {
  int rc = -1;
  hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  if (sp < 0) return -1;
  hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) goto out_sp;
  if (H5Awrite(a, type, val) >= 0) rc = 0;
  if (H5Aclose(a) < 0) rc = -1;
out_sp:
  if (H5Sclose(sp) < 0) rc = -1;
  return rc;
}

int gg__h5_attr_strs(hid_t obj, const char *name, const char *const *s, hsize_t n) {
  int rc = -1;
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return -1;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) goto out_t;
  rc = gg__h5_attr_write(obj, name, t, n ? 1 : 0, &n, s);
out_t:
  if (H5Tclose(t) < 0) rc = -1;
  return rc;
}

/* ---- readers: 0, 1 when the attribute is missing, -1 when unreadable or
 * not of the kind asked for. Each opens what it needs and closes it on every
 * path; a failed close counts as a failed read. */

int gg__h5_attr_exists(hid_t obj, const char *name) {
  htri_t e = H5Aexists(obj, name);
  return e < 0 ? -1 : e > 0;
}

/* Open attribute `name` of obj with its file type and dataspace.
 * 0, 1 when missing, -1 on error (nothing left open unless 0). */
static int gg__attr_open(hid_t obj, const char *name, hid_t *a, hid_t *ft, hid_t *sp) {
  int e = gg__h5_attr_exists(obj, name);
  if (e <= 0) return e < 0 ? -1 : 1;
  *a = H5Aopen(obj, name, H5P_DEFAULT);
  if (*a < 0) return -1;
  *ft = H5Aget_type(*a);
  *sp = *ft >= 0 ? H5Aget_space(*a) : -1;
  if (*sp >= 0) return 0;
  if (*ft >= 0) H5Tclose(*ft);
  H5Aclose(*a);
  return -1;
}

/* Close what gg__attr_open opened; rc, or -1 when a close fails. */
static int gg__attr_close(hid_t a, hid_t ft, hid_t sp, int rc) {
  if (H5Sclose(sp) < 0) rc = -1;
  if (H5Tclose(ft) < 0) rc = -1;
  if (H5Aclose(a) < 0) rc = -1;
  return rc;
}

int gg__h5_attr_read_nums(hid_t obj, const char *name, H5T_class_t cls, hid_t memtype, void *v,
                      int min, int max, int *n) {
  hid_t a, ft, sp;
  int rc = gg__attr_open(obj, name, &a, &ft, &sp);
  if (rc) return rc;
  rc = -1;
  H5T_class_t c = H5Tget_class(ft);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  int rank = H5Sget_simple_extent_ndims(sp);
  if ((cls == H5T_NO_CLASS ? c == H5T_INTEGER || c == H5T_FLOAT : c == cls) && rank >= 0 &&
      rank <= 1 && np >= min && np <= max && H5Aread(a, memtype, v) >= 0) {
    *n = (int)np;
    rc = 0;
  }
  return gg__attr_close(a, ft, sp, rc);
}

static void gg__free_strs(char **v, int n) {
  if (!v) return;
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Read attribute a (string type ft, n strings) into *got, a malloc'ed
 * array of n malloc'ed strings; 0, or -1 with nothing allocated. */
static int gg__read_strs(hid_t a, hid_t ft, hid_t sp, int n, char ***got_out) {
  htri_t vl = H5Tis_variable_str(ft);
  H5T_cset_t cset = H5Tget_cset(ft);
  if (vl < 0 || cset < 0) return -1;
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (mt < 0) return -1;
  int rc = -1;
  char **got = calloc((size_t)n, sizeof *got);
  if (!got || H5Tset_cset(mt, cset) < 0) goto out;
  if (vl) {
    char **tmp = calloc((size_t)n, sizeof *tmp);
    if (tmp && H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, tmp) >= 0) {
      rc = 0;
      for (int i = 0; i < n; i++)
        if (!(got[i] = strdup(tmp[i] ? tmp[i] : ""))) rc = -1;
#if H5_VERSION_GE(1, 12, 0)
      if (H5Treclaim(mt, sp, H5P_DEFAULT, tmp) < 0) rc = -1;
#else
      if (H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, tmp) < 0) rc = -1;
#endif
    }
    free(tmp);
  } else {
    size_t sz = H5Tget_size(ft);
    char *tmp = sz ? malloc((size_t)n * (sz + 1)) : NULL;
    if (tmp && H5Tset_size(mt, sz + 1) >= 0 && H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 &&
        H5Aread(a, mt, tmp) >= 0) {
      rc = 0;
      for (int i = 0; i < n; i++)
        if (!(got[i] = strndup(tmp + (size_t)i * (sz + 1), sz))) rc = -1;
    }
    free(tmp);
  }
out:
  if (H5Tclose(mt) < 0) rc = -1;
  if (rc) gg__free_strs(got, n);
  else *got_out = got;
  return rc;
}

int gg__h5_attr_read_dups(hid_t obj, const char *name, int n, char **out) {
  hid_t a, ft, sp;
  int rc = gg__attr_open(obj, name, &a, &ft, &sp);
  if (rc) return rc;
  rc = -1;
  char **got = NULL;
  if (n >= 1 && H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_ndims(sp) <= 1 &&
      H5Sget_simple_extent_npoints(sp) == n)
    rc = gg__read_strs(a, ft, sp, n, &got);
  if (gg__attr_close(a, ft, sp, rc)) {
    gg__free_strs(got, n); /* NULL unless the read succeeded */
    return -1;
  }
  memcpy(out, got, (size_t)n * sizeof *out);
  free(got);
  return 0;
}

int gg__h5_attr_read_dup(hid_t obj, const char *name, char **out) {
  *out = NULL;
  char *s = NULL;
  int rc = gg__h5_attr_read_dups(obj, name, 1, &s);
  if (!rc) *out = s;
  return rc;
}

/* The 0/-1 forms the library's own files use (missing is an error there). */
int gg__h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t len) {
  buf[0] = 0;
  char *s = NULL;
  if (gg__h5_attr_read_dup(obj, name, &s)) return -1;
  int fits = strlen(s) < len;
  if (fits) memcpy(buf, s, strlen(s) + 1);
  free(s);
  return fits ? 0 : -1;
}

int gg__h5_attr_read_i64(hid_t obj, const char *name, int64_t *v) {
  int n;
  return gg__h5_attr_read_nums(obj, name, H5T_INTEGER, H5T_NATIVE_INT64, v, 1, 1, &n) ? -1 : 0;
}
