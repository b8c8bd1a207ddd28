/* h5util.c — HDF5 attribute writers shared by ckpt.c and statsfile.c
 * (see internal.h). */
#include "internal.h"

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
