/* internal.h — declarations shared by the library's own files, not part of
 * the public API (the gg__ prefix). */
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

/* Readers: 0, or -1 when the attribute is missing, of another kind, or
 * unreadable (the caller names the file in its message). A scalar string
 * (fixed or variable length, read in its own character set) into buf of len
 * bytes (a longer fixed-length string is an error); a scalar integer. */
int gg__h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t len);
int gg__h5_attr_read_i64(hid_t obj, const char *name, int64_t *v);

#endif
