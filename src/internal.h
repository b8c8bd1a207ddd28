/* internal.h — declarations shared by the library's own files (and the
 * HDF5 readers by the tools), not part of the public API (the gg__ prefix). */
#ifndef GRADGUARD_INTERNAL_H
#define GRADGUARD_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

/* HDF5 attribute writers and readers used by the checkpoint and statistics files. Each
 * returns 0 or -1 (the caller names the file in its message) and closes
 * every handle it opened. */

/* An attribute of `type` with rank 0 (scalar) or 1 (dims[0] values). */
int gg__h5_attr_write(hid_t obj, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const void *val);
/* n variable-length UTF-8 strings (n = 0: one scalar string), what h5py
 * reads back as str. */
int gg__h5_attr_strs(hid_t obj, const char *name, const char *const *s, hsize_t n);

/* Readers, for files of any origin (h5py writes fixed-length strings, other
 * programs other integer widths): 0 when read, 1 when the attribute is
 * missing, -1 when it is unreadable or not of the kind asked for. Nothing is
 * allocated and out is untouched on a non-zero return.
 *   _nums: a scalar or 1-D numeric attribute of min..max values, converted
 *          to memtype into v, *n values; cls is the class the file's type
 *          must have (H5T_INTEGER, H5T_FLOAT) or H5T_NO_CLASS for either.
 *   _dup:  a scalar string (fixed or variable length, read in its own
 *          character set) into a malloc'ed *out.
 *   _dups: exactly n strings into out[0..n), each malloc'ed. */
int gg__h5_attr_exists(hid_t obj, const char *name); /* 1, 0, or -1 on error */
int gg__h5_attr_read_nums(hid_t obj, const char *name, H5T_class_t cls, hid_t memtype, void *v,
                          int min, int max, int *n);
int gg__h5_attr_read_dup(hid_t obj, const char *name, char **out);
int gg__h5_attr_read_dups(hid_t obj, const char *name, int n, char **out);

/* The same as 0 or -1 (missing is an error too): a scalar string into buf
 * of len bytes (a longer one is an error); a scalar integer. */
int gg__h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t len);
int gg__h5_attr_read_i64(hid_t obj, const char *name, int64_t *v);

#endif
