/* data.c — HDF5 dataset files and the sampler that deals out global batches.
 *
 * A dataset file holds /X float32 (N, D) and /y: int32 (N) class indices or
 * float32 (N) / (N, K) targets (INTERFACE.md). gg_data_load maps each
 * dataset that is stored as the array we want (contiguous, unfiltered,
 * little-endian float32 / int32: the ranks of a node then share the page
 * cache's copy), reads the others with one H5Dread each (HDF5 converts any
 * float type to native float, any integer type to int32), and validates the
 * whole, naming the file and the dataset in every message;
 * gg_data_check_fit is the separate question of whether the data fits a
 * network.
 *
 * Every hid_t is released through goto labels in reverse order of creation;
 * h5_close() folds a failed close into the status without hiding an earlier,
 * more informative error. HDF5's own error-stack printing is silenced while
 * we work, so an error is the one line we compose.
 */
#include "gradguard/data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "gradguard/error.h"
#include "gradguard/rng.h"

/* ---- HDF5 helpers ------------------------------------------------------ */

/* The automatic error printer that was installed before we silenced it. */
typedef struct {
  H5E_auto2_t func;
  void *client;
  int saved;
} h5_quiet_t;

static void h5_quiet(h5_quiet_t *q) {
  q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->client) >= 0;
  /* If silencing fails HDF5 merely prints its stack; nothing to unwind. */
  if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0) q->saved = 0;
}

static void h5_restore(const h5_quiet_t *q) {
  /* If this fails, printing merely stays off: nothing worth reporting. */
  if (q->saved) (void)H5Eset_auto2(H5E_DEFAULT, q->func, q->client);
}

/* Close any HDF5 handle (ignores invalid ids). A failure becomes the status
 * only when nothing failed before: the first error is the informative one. */
static int h5_close(hid_t id, int rc, int code, const char *path) {
  herr_t st;
  if (id < 0) return rc;
  switch (H5Iget_type(id)) {
  case H5I_FILE: st = H5Fclose(id); break;
  case H5I_DATASET: st = H5Dclose(id); break;
  case H5I_DATASPACE: st = H5Sclose(id); break;
  case H5I_DATATYPE: st = H5Tclose(id); break;
  case H5I_GENPROP_LST: st = H5Pclose(id); break;
  default: st = -1; break;
  }
  if (st < 0 && rc == 0) rc = gg_err_set(code, "%s: HDF5 could not close a handle", path);
  return rc;
}

/* What gg_data_load needs to know about a dataset before reading it. */
typedef struct {
  hid_t id;            /* open dataset; caller closes */
  int rank;
  hsize_t dims[2];     /* first two extents (0 where rank is smaller) */
  H5T_class_t cls;
} dset_info_t;

/* Open /name of file and describe its shape and type class. */
static int dset_open(hid_t file, const char *path, const char *name, dset_info_t *info) {
  hsize_t all[H5S_MAX_RANK];
  hid_t ds, sp = H5I_INVALID_HID, ty = H5I_INVALID_HID;
  int rc = 0;

  info->id = H5I_INVALID_HID;
  htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
  if (ex < 0) return gg_err_set(GG_EDATA, "%s: cannot look up /%s", path, name);
  if (ex == 0) return gg_err_set(GG_EDATA, "%s: no dataset /%s", path, name);
  ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) return gg_err_set(GG_EDATA, "%s: /%s is not a dataset", path, name);

  sp = H5Dget_space(ds);
  if (sp < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read the shape of /%s", path, name);
    goto fail_ds;
  }
  info->rank = H5Sget_simple_extent_ndims(sp);
  if (info->rank < 0 || H5Sget_simple_extent_dims(sp, all, NULL) < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read the shape of /%s", path, name);
    goto fail_sp;
  }
  info->dims[0] = info->rank > 0 ? all[0] : 0;
  info->dims[1] = info->rank > 1 ? all[1] : 0;
  ty = H5Dget_type(ds);
  if (ty < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read the type of /%s", path, name);
    goto fail_sp;
  }
  info->cls = H5Tget_class(ty);
  if (info->cls == H5T_NO_CLASS) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read the type of /%s", path, name);
    goto fail_ty;
  }

fail_ty:
  rc = h5_close(ty, rc, GG_EDATA, path);
fail_sp:
  rc = h5_close(sp, rc, GG_EDATA, path);
  if (rc == 0) {
    info->id = ds;
    return 0;
  }
fail_ds:
  return h5_close(ds, rc, GG_EDATA, path);
}

static const char *nonfinite_name(float v) {
  return isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
}

/* ---- loading ----------------------------------------------------------- */

/* Structure of /X and /y, checked before anything big is allocated. */
static int check_shapes(const char *path, const dset_info_t *x, const dset_info_t *y,
                        gg_data_t *data) {
  if (x->cls == H5T_INTEGER)
    return gg_err_set(GG_EDATA, "%s: /X is an integer dataset; expected float32 (N, D)", path);
  if (x->cls != H5T_FLOAT)
    return gg_err_set(GG_EDATA, "%s: /X is not a float dataset; expected float32 (N, D)", path);
  if (x->rank != 2)
    return gg_err_set(GG_EDATA, "%s: /X has rank %d; expected 2 (N, D)", path, x->rank);
  if (x->dims[0] < 1) return gg_err_set(GG_EDATA, "%s: /X has no rows", path);
  if (x->dims[1] < 1) return gg_err_set(GG_EDATA, "%s: /X has no columns", path);
  /* Sample indices are uint32 in the sampler; widths are int in the network. */
  if (x->dims[0] > UINT32_MAX)
    return gg_err_set(GG_EDATA, "%s: /X has %llu rows; at most %lu are supported", path,
                      (unsigned long long)x->dims[0], (unsigned long)UINT32_MAX);
  if (x->dims[1] > INT_MAX)
    return gg_err_set(GG_EDATA, "%s: /X has %llu columns; at most %d are supported", path,
                      (unsigned long long)x->dims[1], INT_MAX);

  if (y->cls == H5T_INTEGER) {
    if (y->rank != 1)
      return gg_err_set(GG_EDATA,
                        "%s: /y holds integers with rank %d; class indices must be 1-D (N)",
                        path, y->rank);
    data->int_labels = 1;
    data->k = 1;
  } else if (y->cls == H5T_FLOAT) {
    if (y->rank != 1 && y->rank != 2)
      return gg_err_set(GG_EDATA, "%s: /y has rank %d; expected (N) or (N, K)", path, y->rank);
    if (y->rank == 2 && y->dims[1] < 1) return gg_err_set(GG_EDATA, "%s: /y has no columns", path);
    if (y->rank == 2 && y->dims[1] > INT_MAX)
      return gg_err_set(GG_EDATA, "%s: /y has %llu columns; at most %d are supported", path,
                        (unsigned long long)y->dims[1], INT_MAX);
    data->int_labels = 0;
    data->k = y->rank == 2 ? (int)y->dims[1] : 1;
  } else {
    return gg_err_set(GG_EDATA,
                      "%s: /y has an unsupported type; expected int32 class indices or "
                      "float32 targets",
                      path);
  }
  if (y->dims[0] != x->dims[0])
    return gg_err_set(GG_EDATA, "%s: /y has %llu rows but /X has %llu", path,
                      (unsigned long long)y->dims[0], (unsigned long long)x->dims[0]);
  data->n = (size_t)x->dims[0];
  data->d = (int)x->dims[1];
  return 0;
}

/* Allocate count elements of size bytes each, checking the product. */
static void *alloc_array(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  return malloc(count * size);
}

/* Values: every X and float target finite, every label >= 0. */
static int check_values(const char *path, gg_data_t *data) {
  size_t nx = data->n * (size_t)data->d;
  for (size_t i = 0; i < nx; i++)
    if (!isfinite(data->X[i]))
      return gg_err_set(GG_EDATA, "%s: /X row %zu col %zu is %s", path, i / (size_t)data->d,
                        i % (size_t)data->d, nonfinite_name(data->X[i]));
  if (data->int_labels) {
    int32_t mx = 0;
    for (size_t i = 0; i < data->n; i++) {
      if (data->labels[i] < 0)
        return gg_err_set(GG_EDATA, "%s: /y row %zu is %d; class indices must be >= 0", path, i,
                          (int)data->labels[i]);
      if (data->labels[i] > mx) mx = data->labels[i];
    }
    data->max_label = (int)mx;
  } else {
    size_t ny = data->n * (size_t)data->k;
    for (size_t i = 0; i < ny; i++)
      if (!isfinite(data->y[i]))
        return gg_err_set(GG_EDATA, "%s: /y row %zu col %zu is %s", path, i / (size_t)data->k,
                          i % (size_t)data->k, nonfinite_name(data->y[i]));
  }
  return 0;
}

/* Is the path an existing, readable regular file? Gives the errno message
 * HDF5 would otherwise hide. */
static int check_readable(const char *path) {
  struct stat st;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return gg_err_set(GG_ENOINPUT, "%s: cannot open: %s", path, strerror(errno));
  int err = fstat(fd, &st) < 0 ? errno : (S_ISDIR(st.st_mode) ? EISDIR : 0);
  if (close(fd) < 0 && err == 0) err = errno;
  if (err) return gg_err_set(GG_ENOINPUT, "%s: cannot open: %s", path, strerror(err));
  return 0;
}

/* Map dataset `id` of the file at `path` read-only instead of reading it,
 * when its bytes in the file are exactly the array we want: contiguous, no
 * filters, allocated, and stored as `want` (little-endian IEEE float32 or
 * int32 on a little-endian host). Every rank of a node that maps the same
 * file shares the page cache's pages: one copy of the dataset per node
 * instead of one per rank, and nothing to read at start. Returns the
 * pointer to the first element, or NULL to fall back to H5Dread (not an
 * error). *base / *len: the mapping, for munmap. GG_DATA_MMAP=0 in the
 * environment turns it off. */
static void *map_dataset(hid_t id, const char *path, hid_t want, size_t bytes, void **base,
                         size_t *len) {
  *base = NULL;
  *len = 0;
  const char *env = getenv("GG_DATA_MMAP");
  if ((env && strcmp(env, "0") == 0) || bytes == 0) return NULL;
  const uint16_t one = 1;
  if (*(const unsigned char *)&one != 1) return NULL; /* big-endian host: convert on read */
  hid_t type = H5Dget_type(id), dcpl = H5Dget_create_plist(id);
  int ok = type >= 0 && dcpl >= 0 && H5Tequal(type, want) > 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
           H5Pget_nfilters(dcpl) == 0 && H5Dget_storage_size(id) == (hsize_t)bytes;
  if (type >= 0) H5Tclose(type);
  if (dcpl >= 0) H5Pclose(dcpl);
  haddr_t off = ok ? H5Dget_offset(id) : HADDR_UNDEF;
  if (off == HADDR_UNDEF) return NULL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  struct stat st;
  long page = sysconf(_SC_PAGESIZE);
  void *p = MAP_FAILED;
  size_t start = (size_t)off - (size_t)off % (size_t)(page > 0 ? page : 4096);
  size_t span = (size_t)off - start + bytes;
  /* the file must hold the whole array: a truncated file is read (and
   * reported) by H5Dread instead of faulting later */
  if (fstat(fd, &st) == 0 && (uint64_t)st.st_size >= (uint64_t)off + bytes)
    p = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)start);
  close(fd);
  if (p == MAP_FAILED) return NULL;
  *base = p;
  *len = span;
  return (char *)p + ((size_t)off - start);
}

int gg_data_load(gg_data_t *data, const char *path) {
  h5_quiet_t quiet;
  dset_info_t x = {.id = H5I_INVALID_HID}, y = {.id = H5I_INVALID_HID};
  hid_t file;
  int rc;

  memset(data, 0, sizeof *data);
  rc = check_readable(path);
  if (rc) return rc;

  h5_quiet(&quiet);
  htri_t is_h5 = H5Fis_hdf5(path);
  if (is_h5 <= 0) {
    rc = gg_err_set(GG_ENOINPUT, is_h5 == 0 ? "%s: not an HDF5 file" : "%s: cannot open as HDF5",
                    path);
    goto fail_quiet;
  }
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    rc = gg_err_set(GG_ENOINPUT, "%s: cannot open as HDF5", path);
    goto fail_quiet;
  }
  rc = dset_open(file, path, "X", &x);
  if (rc) goto fail_file;
  rc = dset_open(file, path, "y", &y);
  if (rc) goto fail_x;
  rc = check_shapes(path, &x, &y, data);
  if (rc) goto fail_y;

  /* Mapped where the file holds the arrays as they are, else read (and
   * converted by HDF5) into memory. */
  size_t nx = data->n * (size_t)data->d, ny = data->int_labels ? data->n : data->n * (size_t)data->k;
  if (nx / (size_t)data->d != data->n || nx > SIZE_MAX / 4 || ny > SIZE_MAX / 4) {
    rc = gg_err_set(GG_ENOMEM, "%s: %zu samples x %d features do not fit in memory", path, data->n, data->d);
    goto fail_y;
  }
  data->X = map_dataset(x.id, path, H5T_IEEE_F32LE, nx * 4, &data->map_base[0], &data->map_len[0]);
  void *ym = map_dataset(y.id, path, data->int_labels ? H5T_STD_I32LE : H5T_IEEE_F32LE, ny * 4,
                         &data->map_base[1], &data->map_len[1]);
  if (data->int_labels) data->labels = ym;
  else data->y = ym;
  int x_read = data->X == NULL, y_read = ym == NULL;
  /* A chunked dataset may declare any shape in a tiny file (unwritten
   * chunks read as zeros): more than the machine's memory is an error with
   * the numbers, not a malloc that Linux grants and the OOM killer ends. */
  double need = (x_read ? (double)nx * 4 : 0) + (y_read ? (double)ny * 4 : 0);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && need > (double)pages * (double)page) {
    rc = gg_err_set(GG_ENOMEM, "%s: %zu samples x %d features need %.1f GB of memory; this node has %.1f GB",
                    path, data->n, data->d, need / 1e9, (double)pages * (double)page / 1e9);
    goto fail_y;
  }
  if (x_read) data->X = alloc_array(nx, sizeof *data->X);
  if (y_read) {
    if (data->int_labels) data->labels = alloc_array(ny, sizeof *data->labels);
    else data->y = alloc_array(ny, sizeof *data->y);
  }
  if (!data->X || (!data->labels && !data->y)) {
    rc = gg_err_set(GG_ENOMEM, "%s: out of memory for %zu samples x %d features", path, data->n,
                    data->d);
    goto fail_y;
  }
  /* One read per dataset; HDF5 converts the file's type to ours. */
  if (x_read && H5Dread(x.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data->X) < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read /X", path);
    goto fail_y;
  }
  if (y_read && (data->int_labels ? H5Dread(y.id, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                            data->labels) < 0
                                  : H5Dread(y.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                            data->y) < 0)) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read /y", path);
    goto fail_y;
  }
  rc = check_values(path, data);

fail_y:
  rc = h5_close(y.id, rc, GG_EDATA, path);
fail_x:
  rc = h5_close(x.id, rc, GG_EDATA, path);
fail_file:
  rc = h5_close(file, rc, GG_EDATA, path);
fail_quiet:
  h5_restore(&quiet);
  if (rc) gg_data_free(data);
  return rc;
}

void gg_data_free(gg_data_t *data) {
  if (data->map_base[0]) munmap(data->map_base[0], data->map_len[0]);
  else free(data->X);
  if (data->map_base[1]) {
    munmap(data->map_base[1], data->map_len[1]);
  } else {
    free(data->y);
    free(data->labels);
  }
  memset(data, 0, sizeof *data);
}

/* ---- fit --------------------------------------------------------------- */

int gg_data_check_fit(const gg_data_t *data, const gg_arch_t *arch, const char *path) {
  int K = arch->widths[arch->n_layers];
  const char *loss = gg_loss_name(arch->loss);

  if (data->d != arch->widths[0])
    return gg_err_set(GG_EDATA, "%s: /X has %d columns but --layers starts with %d", path,
                      data->d, arch->widths[0]);
  if (arch->loss == GG_LOSS_SOFTMAX_CE) {
    if (!data->int_labels)
      return gg_err_set(GG_EDATA,
                        "%s: /y holds float targets but --loss %s needs int32 class indices",
                        path, loss);
    if (data->max_label >= K) {
      /* Name the first offending row: that is where the user will look. */
      size_t i = 0;
      while (i + 1 < data->n && data->labels[i] < K) i++;
      return gg_err_set(GG_EDATA, "%s: /y has label %d (row %zu) but --layers ends with %d outputs",
                        path, (int)data->labels[i], i, K);
    }
    return 0;
  }
  if (data->int_labels)
    return gg_err_set(GG_EDATA,
                      "%s: /y holds int32 class indices but --loss %s needs float targets "
                      "(class indices go with --loss softmax_ce)",
                      path, loss);
  if (data->k != K)
    return gg_err_set(GG_EDATA, "%s: /y has %d target columns but --layers ends with %d outputs",
                      path, data->k, K);
  if (arch->loss == GG_LOSS_BCE) {
    size_t ny = data->n * (size_t)data->k;
    for (size_t i = 0; i < ny; i++)
      if (!(data->y[i] >= 0.0f && data->y[i] <= 1.0f))
        return gg_err_set(GG_EDATA,
                          "%s: /y row %zu col %zu is %g but --loss bce needs targets in [0, 1]",
                          path, i / (size_t)data->k, i % (size_t)data->k, (double)data->y[i]);
  }
  return 0;
}

/* ---- writing ----------------------------------------------------------- */

/* Create and write one dataset /name of the given file type and shape from
 * buf (memory type mtype). deflate 0: contiguous; 1..9: chunks of about
 * 1 MiB with shuffle + deflate at that level. */
static int write_dset(hid_t file, const char *path, const char *name, hid_t ftype, hid_t mtype,
                      int rank, const hsize_t *dims, const void *buf, int deflate) {
  hid_t sp, dcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
  int rc = 0;

  sp = H5Screate_simple(rank, dims, NULL);
  if (sp < 0) return gg_err_set(GG_EIO, "%s: cannot create the dataspace of /%s", path, name);
  dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) {
    rc = gg_err_set(GG_EIO, "%s: cannot create a property list for /%s", path, name);
    goto fail_sp;
  }
  /* No modification times in object headers: the same data gives the same
   * bytes, which makes files from gg-data synth reproducible. */
  if (H5Pset_obj_track_times(dcpl, 0) < 0) {
    rc = gg_err_set(GG_EIO, "%s: cannot set properties of /%s", path, name);
    goto fail_dcpl;
  }
  if (deflate > 0) {
    size_t esize = H5Tget_size(ftype); /* 0 on failure */
    size_t row = (esize ? esize : 4) * (rank == 2 ? (size_t)dims[1] : 1);
    hsize_t chunk[2];
    /* Whole rows, about 1 MiB per chunk (HDF5's chunk size limit is 4 GiB). */
    chunk[0] = row >= (1u << 20) ? 1 : (hsize_t)((1u << 20) / row);
    if (chunk[0] > dims[0]) chunk[0] = dims[0];
    if (rank == 2) chunk[1] = dims[1] > (1u << 26) ? (1u << 26) : dims[1];
    if (esize == 0 || H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
        H5Pset_deflate(dcpl, (unsigned)deflate) < 0) {
      rc = gg_err_set(GG_EIO, "%s: cannot set compression of /%s", path, name);
      goto fail_dcpl;
    }
  }
  ds = H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (ds < 0) {
    rc = gg_err_set(GG_EIO, "%s: cannot create /%s", path, name);
    goto fail_dcpl;
  }
  if (H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    rc = gg_err_set(GG_EIO, "%s: cannot write /%s", path, name);

  rc = h5_close(ds, rc, GG_EIO, path);
fail_dcpl:
  rc = h5_close(dcpl, rc, GG_EIO, path);
fail_sp:
  return h5_close(sp, rc, GG_EIO, path);
}

int gg_data_write(const char *path, size_t n, int d, const float *X, int k, const float *y,
                  const int32_t *labels, int y_1d) {
  return gg_data_write_ex(path, n, d, X, k, y, labels, y_1d, 0);
}

int gg_data_write_ex(const char *path, size_t n, int d, const float *X, int k, const float *y,
                     const int32_t *labels, int y_1d, int deflate) {
  h5_quiet_t quiet;
  hid_t file;
  hsize_t xdims[2] = {n, (hsize_t)d}, ydims[2] = {n, (hsize_t)k};
  char *tmp;
  int rc, fd;

  if (n < 1 || d < 1 || (!labels && k < 1) || !X || (!labels && !y) || deflate < 0 ||
      deflate > 9)
    return gg_err_set(GG_EUSAGE, "%s: cannot write %zu samples x %d features (k %d, deflate %d)",
                      path, n, d, k, deflate);

  /* Write under a temporary name and rename: a failed or interrupted write
   * never leaves a half-written dataset file under the final name. */
  size_t len = strlen(path) + 32;
  tmp = malloc(len);
  if (!tmp) return gg_err_set(GG_ENOMEM, "%s: out of memory", path);
  snprintf(tmp, len, "%s.tmp%ld", path, (long)getpid());
  /* Create it ourselves first: HDF5 does not report errno reliably. */
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) {
    rc = gg_err_set(GG_ECANTCREAT, "%s: cannot create: %s", path, strerror(errno));
    goto fail_tmp;
  }
  if (close(fd) < 0) {
    rc = gg_err_set(GG_EIO, "%s: cannot write: %s", path, strerror(errno));
    goto fail_unlink;
  }

  h5_quiet(&quiet);
  file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) {
    rc = gg_err_set(GG_ECANTCREAT, "%s: cannot create as HDF5", path);
    goto fail_quiet;
  }
  rc = write_dset(file, path, "X", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, xdims, X, deflate);
  if (rc) goto fail_file;
  if (labels)
    rc = write_dset(file, path, "y", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ydims, labels, deflate);
  else
    rc = write_dset(file, path, "y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (k == 1 && y_1d) ? 1 : 2,
                    ydims, y, deflate);

fail_file:
  rc = h5_close(file, rc, GG_EIO, path);
fail_quiet:
  h5_restore(&quiet);
  if (rc == 0 && rename(tmp, path) < 0)
    rc = gg_err_set(GG_ECANTCREAT, "%s: cannot create: %s", path, strerror(errno));
fail_unlink:
  if (rc) unlink(tmp);
fail_tmp:
  free(tmp);
  return rc;
}

/* ---- sampler ----------------------------------------------------------- */

int gg_sampler_init(gg_sampler_t *s, size_t n, long batch, uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->epoch = -1;
  if (batch < 1) return gg_err_set(GG_EUSAGE, "--batch %ld: must be at least 1", batch);
  if ((size_t)batch > n)
    return gg_err_set(GG_EUSAGE, "--batch %ld is larger than the %zu samples of the data", batch,
                      n);
  if (n > UINT32_MAX)
    return gg_err_set(GG_EUSAGE, "%zu samples: at most %lu are supported", n,
                      (unsigned long)UINT32_MAX);
  s->perm = alloc_array(n, sizeof *s->perm);
  if (!s->perm) return gg_err_set(GG_ENOMEM, "out of memory for the permutation of %zu samples", n);
  s->n = n;
  s->batch = batch;
  s->steps_per_epoch = (long)(n / (size_t)batch);
  s->seed = seed;
  return 0;
}

void gg_sampler_free(gg_sampler_t *s) {
  free(s->perm);
  memset(s, 0, sizeof *s);
  s->epoch = -1;
}

const uint32_t *gg_sampler_slice(gg_sampler_t *s, long epoch, long b, int rank, int n_ranks) {
  /* Preconditions are the caller's (the trainer validates the config), so a
   * violation is a bug: answer NULL rather than read out of bounds. */
  if (!s->perm || epoch < 0 || b < 0 || b >= s->steps_per_epoch || n_ranks < 1 || rank < 0 ||
      rank >= n_ranks || s->batch % n_ranks != 0)
    return NULL;
  if (epoch != s->epoch) {
    gg_rng_t r;
    gg_rng_seed(&r, s->seed, GG_STREAM_SHUFFLE(epoch));
    gg_rng_permutation(&r, s->perm, s->n);
    s->epoch = epoch;
  }
  /* With P | B, rank r's slice [r*B/P, (r+1)*B/P) starts at r * (B/P). */
  return s->perm + (size_t)b * (size_t)s->batch + (size_t)rank * (size_t)(s->batch / n_ranks);
}

void gg_data_gather(const gg_data_t *data, const uint32_t *idx, int m, float *X, float *targets,
                    int32_t *labels) {
  size_t d = (size_t)data->d, k = (size_t)data->k;
  for (int i = 0; i < m; i++) {
    size_t j = idx[i];
    memcpy(X + (size_t)i * d, data->X + j * d, d * sizeof *X);
    if (data->int_labels) {
      if (labels) labels[i] = data->labels[j];
    } else if (targets) {
      memcpy(targets + (size_t)i * k, data->y + j * k, k * sizeof *targets);
    }
  }
}
