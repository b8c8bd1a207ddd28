/* h5util.c — HDF5 attribute writers and readers shared by ckpt.c and statsfile.c
 * (see internal.h). */
#include "internal.h"

#include <stdio.h>

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

/* Read a scalar string attribute (fixed or variable length) into buf; 0 or -1. */
int gg__h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t len) {
  int rc = -1;
  buf[0] = 0;
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t ft = H5Aget_type(a);
  if (ft < 0) goto out_a;
  if (H5Tget_class(ft) != H5T_STRING) goto out_ft;
  htri_t vl = H5Tis_variable_str(ft);
  if (vl < 0) goto out_ft;
  H5T_cset_t cset = H5Tget_cset(ft);
  if (cset < 0) goto out_ft;
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (mt < 0) goto out_ft;
  /* HDF5 converts no string between character sets: read in the file's */
  if (H5Tset_cset(mt, cset) < 0) goto out_mt;
  if (vl) {
    char *s = NULL;
    if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &s) < 0) goto out_mt;
    snprintf(buf, len, "%s", s ? s : "");
    H5free_memory(s);
    rc = 0;
  } else {
    size_t sz = H5Tget_size(ft);
    if (sz == 0 || sz >= len || H5Tset_size(mt, sz + 1) < 0) goto out_mt;
    if (H5Aread(a, mt, buf) < 0) goto out_mt;
    buf[sz] = 0;
    rc = 0;
  }
out_mt:
  if (H5Tclose(mt) < 0) rc = -1;
out_ft:
  if (H5Tclose(ft) < 0) rc = -1;
out_a:
  if (H5Aclose(a) < 0) rc = -1;
  return rc;
}

int gg__h5_attr_read_i64(hid_t obj, const char *name, int64_t *v) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  int rc = -1;
  hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
  if (ft >= 0 && sp >= 0 && H5Tget_class(ft) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1 &&
      H5Aread(a, H5T_NATIVE_INT64, v) >= 0)
    rc = 0;
  if (sp >= 0 && H5Sclose(sp) < 0) rc = -1;
  if (ft >= 0 && H5Tclose(ft) < 0) rc = -1;
  if (H5Aclose(a) < 0) rc = -1;
  return rc;
}
