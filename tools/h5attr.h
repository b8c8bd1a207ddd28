/* h5attr.h — reading HDF5 attributes in the tools (gg-inspect, gg-plot).
 *
 * The library's own readers (src/h5util.c) serve files gradguard wrote and
 * fail on anything unexpected; the tools read files of any origin (h5py
 * writes fixed-length strings, other programs other integer widths) and
 * must tell a missing attribute from a broken one. So every reader here
 * returns 0 when it read the attribute, 1 when the attribute is missing,
 * and -1 when it cannot be read or is not of the kind asked for; the
 * messages are the caller's. Nothing is allocated on a non-zero return.
 */
#ifndef GG_TOOLS_H5ATTR_H
#define GG_TOOLS_H5ATTR_H

#include <hdf5.h>

/* 1 if obj has the attribute, 0 if not, -1 on error. */
int gg_tool_attr_exists(hid_t obj, const char *name);

/* A scalar or 1-D numeric attribute of min..max values, converted to
 * memtype (e.g. H5T_NATIVE_INT64, H5T_NATIVE_DOUBLE) into v; *n values.
 * cls: the class the file's type must have (H5T_INTEGER, H5T_FLOAT), or
 * H5T_NO_CLASS for any number that converts. */
int gg_tool_attr_nums(hid_t obj, const char *name, H5T_class_t cls, hid_t memtype, void *v,
                      int min, int max, int *n);

/* A scalar string attribute (variable or fixed length) into a malloc'ed
 * string *out (NULL unless 0 is returned). */
int gg_tool_attr_str(hid_t obj, const char *name, char **out);

/* Exactly n strings (variable or fixed length) into out[0..n), each
 * malloc'ed; out is left untouched unless 0 is returned. */
int gg_tool_attr_strs(hid_t obj, const char *name, int n, char **out);

#endif
