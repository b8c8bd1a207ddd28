/* statsfile.c — RUN/stats.h5, the gradient statistics on disk (see
 * statsfile.h and the contract's "Statistics file" section).
 *
 * Layout (n rows, h histograms, L layers):
 *   /step int64 (n)          /loss /lr /grad_norm /grad_norm_clipped
 *   /nonfinite uint8 (n)     /clip_coef /clipped_fraction  float32 (n)
 *   /layers/{grad_norm,grad_max_abs,weight_norm,update_ratio,saturation}
 *                            float32 (n, L)
 *   /layers/grad_hist uint32 (h, L, 64), attribute bin_edges float64 (65)
 *   /hist_step int64 (h)
 *   /  attributes format="gradguard.stats", format_version=1,
 *      layer_names (L) variable-length UTF-8
 * Every dataset is chunked along an unlimited first axis, shuffle+deflate
 * compressed, with `units` and `description` attributes.
 *
 * SWMR: the file is created (or opened and truncated for a resume) with the
 * latest format, every object is created, then H5Fstart_swmr_write. From
 * then on the writer only grows datasets (H5Dset_extent + hyperslab write)
 * and flushes; readers (h5py swmr=True, h5dump) see a consistent file at
 * every flush. Within one append the row columns are written first and
 * /step last (likewise grad_hist before /hist_step), so a row whose step is
 * visible has its other columns written too.
 */
#include "gradguard/statsfile.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "gradguard/error.h"
#include "internal.h"

#define GG_STATS_FORMAT "gradguard.stats"
#define GG_STATS_VERSION 1
#define GG_STATS_DEFLATE 4
/* Chunk shapes. Small on purpose: every flush rewrites the partly filled
 * chunk of each dataset, compressed, so it grows and moves, and in SWMR
 * mode HDF5 never reuses the space it leaves (a reader may still be
 * reading the old copy). The space lost per flush is the compressed size of
 * the partial chunks, so with one row per flush (slow steps, or a sparse
 * --stats-every) a chunk of R rows wastes about R/2 rows per row written.
 * Measured, 10 layers of noise-like values, 2000 steps, one row per flush:
 * 1024/256/16-row chunks 32 KB per step, these 690 B (10 rows per flush
 * 325 B, 50 or more 305 B). The cost is in reading: ~15 us per row for
 * every dataset of a finished file. A histogram gets a chunk of its own, so
 * its chunks never move. (Not H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS: a SWMR
 * reader whose extent is older than the chunk index then reads a chunk
 * compressed since as raw bytes, garbage; seen under test.)
 *   (n)        16 rows
 *   (n, L)     about 80 bytes of rows: 80 / (4 L) rows, 1..16 (2 for L = 10)
 *   (h, L, 64) 1 histogram */
#define GG_CHUNK_1D 16
#define GG_CHUNK_ROW_BYTES 80
#define GG_CHUNK_2D_MAX 16

/* Dataset slots in f->d. */
enum {
  GG__D_STEP,
  GG__D_LOSS,
  GG__D_LR,
  GG__D_GRAD_NORM,
  GG__D_GRAD_NORM_CLIPPED,
  GG__D_CLIP_COEF,
  GG__D_CLIPPED_FRACTION,
  GG__D_NONFINITE,
  GG__D_LAYER0, /* GG_STAT__COUNT (n, L) columns */
  GG__D_HIST = GG__D_LAYER0 + GG_STAT__COUNT,
  GG__D_HIST_STEP,
  GG__D_COUNT
};
_Static_assert(GG__D_COUNT <= 32, "gg_statsfile_t.d is too small");

/* What a dataset holds: its shape kind, file/memory types, attributes. */
enum { GG__ROW1, GG__ROWL, GG__HIST, GG__HSTEP };
enum { GG__I64, GG__F32, GG__U8, GG__U32 };
typedef struct {
  const char *name; /* path from the root; NULL: layers/<gg_stat_names[k]> */
  int shape, type;
  const char *units, *description;
} gg__dspec_t;

#define GG__HIST_DESC                                                                        \
  "histogram of log2|g| of the averaged gradient per step and layer, (h, L, 64): bin k "   \
  "counts the values with floor(log2|g|) = bin_edges[k], i.e. 2^bin_edges[k] <= |g| < "     \
  "2^bin_edges[k+1]; bin_edges (65 values, -48..16) are in log2 units; values below the "    \
  "range and exact zeros count in bin 0, values above it and NaN/Inf in bin 63; the steps " \
  "are in /hist_step"

static const gg__dspec_t gg__dspec[GG__D_COUNT] = {
    [GG__D_STEP] = {"step", GG__ROW1, GG__I64, "step",
                    "optimizer step (1-based) of each row; increasing, one row per recorded step"},
    [GG__D_LOSS] = {"loss", GG__ROW1, GG__F32, "1", "mean training loss of the global batch"},
    [GG__D_LR] = {"lr", GG__ROW1, GG__F32, "1", "learning rate used"},
    [GG__D_GRAD_NORM] = {"grad_norm", GG__ROW1, GG__F32, "1",
                         "global L2 norm of the averaged gradient before any clipping"},
    [GG__D_GRAD_NORM_CLIPPED] = {"grad_norm_clipped", GG__ROW1, GG__F32, "1",
                                 "global L2 norm of the gradient after all clipping "
                                 "(NaN on a non-finite step)"},
    [GG__D_CLIP_COEF] = {"clip_coef", GG__ROW1, GG__F32, "1",
                         "factor applied by norm clipping, 1 = untouched (NaN on a non-finite step)"},
    [GG__D_CLIPPED_FRACTION] = {"clipped_fraction", GG__ROW1, GG__F32, "fraction",
                                "fraction of gradient values changed by --clip-value "
                                "(NaN on a non-finite step)"},
    [GG__D_NONFINITE] = {"nonfinite", GG__ROW1, GG__U8, "flag",
                         "1 where the averaged gradient had NaN/Inf (the step was skipped)"},
    [GG__D_LAYER0 + GG_STAT_GRAD_NORM] = {NULL, GG__ROWL, GG__F32, "1",
                                          "per layer L2 norm of the averaged gradient (weight and "
                                          "bias together), before clipping"},
    [GG__D_LAYER0 + GG_STAT_GRAD_MAX_ABS] = {NULL, GG__ROWL, GG__F32, "1",
                                             "per layer max |g| of the averaged gradient, before "
                                             "clipping"},
    [GG__D_LAYER0 + GG_STAT_WEIGHT_NORM] = {NULL, GG__ROWL, GG__F32, "1",
                                            "per layer L2 norm of the parameters after the update"},
    [GG__D_LAYER0 + GG_STAT_UPDATE_RATIO] = {NULL, GG__ROWL, GG__F32, "1",
                                             "per layer ||w' - w|| / ||w|| of the update (0 on a "
                                             "skipped step)"},
    [GG__D_LAYER0 + GG_STAT_SATURATION] = {NULL, GG__ROWL, GG__F32, "fraction",
                                           "fraction of the layer's (sample, unit) pairs whose "
                                           "activation derivative is below 1e-3 (dead ReLUs, "
                                           "saturated sigmoid/tanh)"},
    [GG__D_HIST] = {"layers/grad_hist", GG__HIST, GG__U32, "count", GG__HIST_DESC},
    [GG__D_HIST_STEP] = {"hist_step", GG__HSTEP, GG__I64, "step",
                         "optimizer step of each histogram in /layers/grad_hist"},
};

static hid_t gg__ftype(int t) {
  return t == GG__I64 ? H5T_STD_I64LE : t == GG__F32 ? H5T_IEEE_F32LE : t == GG__U8 ? H5T_STD_U8LE
                                                                                      : H5T_STD_U32LE;
}
static hid_t gg__mtype(int t) {
  return t == GG__I64 ? H5T_NATIVE_INT64 : t == GG__F32 ? H5T_NATIVE_FLOAT
                                         : t == GG__U8  ? H5T_NATIVE_UINT8
                                                        : H5T_NATIVE_UINT32;
}

static const char *gg__dname(int slot, char *buf, size_t len) {
  if (gg__dspec[slot].name) return gg__dspec[slot].name;
  snprintf(buf, len, "layers/%s", gg_stat_names[slot - GG__D_LAYER0]);
  return buf;
}

/* Rank and dims of a slot with `rows` rows; chunk rows in *chunk_rows. */
static int gg__dims(int slot, int n_layers, hsize_t rows, hsize_t *dims, hsize_t *chunk_rows) {
  hsize_t L = (hsize_t)n_layers, cr;
  dims[0] = rows;
  switch (gg__dspec[slot].shape) {
  case GG__ROWL:
    dims[1] = L;
    cr = GG_CHUNK_ROW_BYTES / (4 * L);
    *chunk_rows = cr < 1 ? 1 : cr > GG_CHUNK_2D_MAX ? GG_CHUNK_2D_MAX : cr;
    return 2;
  case GG__HIST:
    dims[1] = L;
    dims[2] = GG_HIST_BINS;
    *chunk_rows = 1;
    return 3;
  default:
    *chunk_rows = GG_CHUNK_1D;
    return 1;
  }
}

static double gg__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- attributes (shared writers in internal.h) ---- */

static int gg__attr_str(hid_t obj, const char *name, const char *s) {
  return gg__h5_attr_strs(obj, name, &s, 0);
}


/* ---- creating ---- */

/* Create dataset `slot` with no rows; its id in f->d[slot]. 0 or -1. */
static int gg__create_dataset(gg_statsfile_t *f, int slot) {
  const gg__dspec_t *sp = &gg__dspec[slot];
  char name[64];
  hsize_t dims[3], maxdims[3], chunk[3], cr;
  int rank = gg__dims(slot, f->n_layers, 0, dims, &cr);
  for (int i = 0; i < rank; i++) {
    maxdims[i] = i ? dims[i] : H5S_UNLIMITED;
    chunk[i] = i ? dims[i] : cr;
  }
  int rc = -1;
  hid_t space = H5Screate_simple(rank, dims, maxdims);
  if (space < 0) return -1;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) goto out_space;
  if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
      H5Pset_deflate(dcpl, GG_STATS_DEFLATE) < 0)
    goto out_dcpl;
  hid_t d = H5Dcreate2(f->file, gg__dname(slot, name, sizeof name), gg__ftype(sp->type), space,
                       H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d < 0) goto out_dcpl;
  f->d[slot] = d;
  if (gg__attr_str(d, "units", sp->units) || gg__attr_str(d, "description", sp->description))
    goto out_dcpl;
  if (slot == GG__D_HIST) {
    double edges[GG_HIST_BINS + 1];
    hsize_t ne = GG_HIST_BINS + 1;
    for (int k = 0; k <= GG_HIST_BINS; k++) edges[k] = GG_HIST_LO + k;
    if (gg__h5_attr_write(d, "bin_edges", H5T_IEEE_F64LE, 1, &ne, edges)) goto out_dcpl;
  }
  rc = 0;
out_dcpl:
  if (H5Pclose(dcpl) < 0) rc = -1;
out_space:
  if (H5Sclose(space) < 0) rc = -1;
  return rc;
}

/* Root attributes, /layers and every dataset, in a freshly created file. */
static int gg__create_layout(gg_statsfile_t *f, const char *const *layer_names) {
  if (gg__attr_str(f->file, "format", GG_STATS_FORMAT)) return -1;
  int32_t version = GG_STATS_VERSION;
  if (gg__h5_attr_write(f->file, "format_version", H5T_STD_I32LE, 0, NULL, &version)) return -1;
  if (gg__h5_attr_strs(f->file, "layer_names", layer_names, (hsize_t)f->n_layers)) return -1;
  hid_t g = H5Gcreate2(f->file, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  int rc = gg__attr_str(g, "description", "per layer statistics; columns are the layers of "
                                          "/layer_names, in order");
  if (H5Gclose(g) < 0) rc = -1;
  for (int slot = 0; !rc && slot < GG__D_COUNT; slot++) rc = gg__create_dataset(f, slot);
  return rc;
}

/* ---- resuming ---- */

/* The dims of dataset d, which must have rank `rank` (<= 3); 0 or -1. */
static int gg__extent(hid_t d, int rank, hsize_t *dims) {
  dims[0] = dims[1] = dims[2] = 0;
  hid_t sp = H5Dget_space(d);
  if (sp < 0) return -1;
  int r = H5Sget_simple_extent_ndims(sp);
  int rc = (r == rank && H5Sget_simple_extent_dims(sp, dims, NULL) == r) ? 0 : -1;
  if (H5Sclose(sp) < 0) rc = -1;
  return rc;
}

/* Rows [lo, lo+n) of the int64 dataset d into buf. 0 or -1. */
static int gg__read_i64(hid_t d, hsize_t lo, hsize_t n, int64_t *buf) {
  int rc = -1;
  hid_t fs = H5Dget_space(d);
  if (fs < 0) return -1;
  if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, &lo, NULL, &n, NULL) < 0) goto out_fs;
  hid_t ms = H5Screate_simple(1, &n, NULL);
  if (ms < 0) goto out_fs;
  if (H5Dread(d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, buf) >= 0) rc = 0;
  if (H5Sclose(ms) < 0) rc = -1;
out_fs:
  if (H5Sclose(fs) < 0) rc = -1;
  return rc;
}

/* Of the first n values of the sorted int64 dataset d, how many are <=
 * limit (*count), and the last of them (*last, -1 if none). Reads blocks
 * from the end, since a resume usually drops only a short tail. 0 or -1. */
static int gg__count_le(hid_t d, hsize_t n, int64_t limit, hsize_t *count, int64_t *last) {
  int64_t buf[2048];
  hsize_t hi = n;
  *count = 0;
  *last = -1;
  while (hi > 0) {
    hsize_t lo = hi > 2048 ? hi - 2048 : 0;
    if (gg__read_i64(d, lo, hi - lo, buf)) return -1;
    if (buf[0] <= limit) {
      hsize_t j = hi - lo;
      while (j > 0 && buf[j - 1] > limit) j--;
      *count = lo + j;
      *last = buf[j - 1];
      return 0;
    }
    hi = lo;
  }
  return 0;
}

/* Open the datasets of an existing statistics file, check it is one for
 * n_layers layers, and cut every row past resume_step. Returns 0 or a
 * GG_E* code with its message set. */
static int gg__open_resume(gg_statsfile_t *f, const char *path, int64_t resume_step) {
  char fmt[64];
  if (gg__h5_attr_read_str(f->file, "format", fmt, sizeof fmt) || strcmp(fmt, GG_STATS_FORMAT))
    return gg_err_set(GG_EDATA, "%s: not a gradguard statistics file (format attribute)", path);
  for (int slot = 0; slot < GG__D_COUNT; slot++) {
    char name[64];
    f->d[slot] = H5Dopen2(f->file, gg__dname(slot, name, sizeof name), H5P_DEFAULT);
    if (f->d[slot] < 0)
      return gg_err_set(GG_EDATA, "%s: statistics file has no /%s", path,
                        gg__dname(slot, name, sizeof name));
  }
  /* Rows on disk: the shortest column (a crash between the columns of one
   * append leaves some longer), the same for the histograms. */
  hsize_t rows = (hsize_t)-1, hists = (hsize_t)-1;
  for (int slot = 0; slot < GG__D_COUNT; slot++) {
    const gg__dspec_t *sp = &gg__dspec[slot];
    int rank = sp->shape == GG__ROWL ? 2 : sp->shape == GG__HIST ? 3 : 1;
    hsize_t dims[3], n;
    char name[64];
    if (gg__extent(f->d[slot], rank, dims) ||
        (rank == 3 && dims[2] != GG_HIST_BINS))
      return gg_err_set(GG_EDATA, "%s: /%s has the wrong shape", path,
                        gg__dname(slot, name, sizeof name));
    if (rank > 1 && dims[1] != (hsize_t)f->n_layers)
      return gg_err_set(GG_EDATA, "%s: statistics of %llu layers, but the network has %d", path,
                        (unsigned long long)dims[1], f->n_layers);
    n = dims[0];
    if (sp->shape == GG__HIST || sp->shape == GG__HSTEP) {
      if (n < hists) hists = n;
    } else if (n < rows) {
      rows = n;
    }
  }
  hsize_t keep, keep_h;
  if (gg__count_le(f->d[GG__D_STEP], rows, resume_step, &keep, &f->last_step) ||
      gg__count_le(f->d[GG__D_HIST_STEP], hists, resume_step, &keep_h, &f->last_hist_step))
    return gg_err_set(GG_EDATA, "%s: cannot read /step or /hist_step", path);
  for (int slot = 0; slot < GG__D_COUNT; slot++) {
    const gg__dspec_t *sp = &gg__dspec[slot];
    int hist = sp->shape == GG__HIST || sp->shape == GG__HSTEP;
    hsize_t dims[3], cr, now[3];
    int rank = gg__dims(slot, f->n_layers, hist ? keep_h : keep, dims, &cr);
    if (gg__extent(f->d[slot], rank, now))
      return gg_err_set(GG_EIO, "%s: cannot read the statistics file", path);
    if (now[0] != dims[0] && H5Dset_extent(f->d[slot], dims) < 0)
      return gg_err_set(GG_EIO, "%s: cannot truncate the statistics file to step %lld", path,
                        (long long)resume_step);
  }
  f->rows = (int64_t)keep;
  f->hists = (int64_t)keep_h;
  return 0;
}

/* Close whatever of f is open, without flushing; 0 or -1. */
static int gg__close_all(gg_statsfile_t *f) {
  int rc = 0;
  for (int slot = 0; slot < 32; slot++) {
    if (f->d[slot] > 0 && H5Dclose(f->d[slot]) < 0) rc = -1;
    f->d[slot] = -1;
  }
  if (f->file > 0 && H5Fclose(f->file) < 0) rc = -1;
  f->file = -1;
  /* after the file: the lock keeps other writers out until HDF5 is done */
  if (f->fd >= 0 && close(f->fd) != 0) rc = -1;
  f->fd = -1;
  return rc;
}

/* ---- opening: locks, then create or resume ---- */

/* HDF5 locks a file (flock) only until H5Fstart_swmr_write, and it
 * truncates a file for H5Fcreate before it checks the lock; so the writer
 * holds its own shared lock (SWMR readers hold shared locks too) for as
 * long as the file is open, and opening first probes for an exclusive one:
 * a second writer on the same file fails instead of destroying it. Like
 * HDF5, no locking with HDF5_USE_FILE_LOCKING=FALSE, and none where the
 * file system has no locks. */
static int gg__locking(void) {
  const char *e = getenv("HDF5_USE_FILE_LOCKING");
  return !(e && (!strcmp(e, "FALSE") || !strcmp(e, "0")));
}

/* path is locked by another process (a writer, or a reader holding it). */
static int gg__busy(const char *path) {
  if (!gg__locking()) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0; /* missing or unreadable: HDF5 reports it */
  int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (close(fd) != 0) busy = 1; /* cannot tell: do not touch the file */
  return busy;
}

/* Open f->fd on path (for fsync) holding the writer's shared lock. 0, or
 * -1 (errno set; EWOULDBLOCK when someone else holds the file). */
static int gg__lock_shared(gg_statsfile_t *f) {
  f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) return -1;
  if (gg__locking() && flock(f->fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) return -1;
  return 0;
}

/* A file left by a writer that died in SWMR mode still has its "open for
 * writing" flags set, and HDF5 refuses to open it for writing again. h5clear
 * clears them with this fapl property, which the library registers for
 * every file access property list. Only used once gg__busy has found no
 * live writer (a live one holds its lock), and SWMR's write ordering keeps
 * the file readable up to its last flush. */
static int gg__set_clear_flags(hid_t fapl) {
  hbool_t clear = 1;
  return H5Pset(fapl, "clear_status_flags", &clear) < 0 ? -1 : 0;
}

#define GG__BUSY_MSG                                                                      \
  "%s: %s statistics file: it is open in another process (a running writer, or a reader " \
  "such as h5py: close it, or set HDF5_USE_FILE_LOCKING=FALSE)"

int gg_statsfile_open(gg_statsfile_t *f, const char *path, int n_layers,
                      const char *const *layer_names, int64_t resume_step) {
  memset(f, 0, sizeof *f);
  f->file = -1;
  f->fd = -1;
  for (int slot = 0; slot < 32; slot++) f->d[slot] = -1;
  f->n_layers = n_layers;
  f->last_step = f->last_hist_step = -1;
  if (strlen(path) >= sizeof f->path)
    return gg_err_set(GG_ECANTCREAT, "%.200s...: cannot create statistics file: path too long",
                      path);
  memcpy(f->path, path, strlen(path) + 1);
  if (n_layers < 1) return gg_err_set(GG_EINTERNAL, "%s: statistics file needs layers", path);

  int resume = resume_step >= 0 && access(path, F_OK) == 0;
  if (gg__busy(path))
    return resume ? gg_err_set(GG_EIO, GG__BUSY_MSG, path, "cannot append to")
                  : gg_err_set(GG_ECANTCREAT, GG__BUSY_MSG, path, "cannot create");
  if (resume && H5Fis_hdf5(path) <= 0)
    return gg_err_set(GG_EDATA, "%s: not an HDF5 statistics file", path);

  int rc = GG_EINTERNAL;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return gg_err_set(GG_EINTERNAL, "%s: cannot create a property list", path);
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) {
    rc = gg_err_set(GG_EINTERNAL, "%s: cannot set the HDF5 format version", path);
    goto out_fapl;
  }
  if (resume) {
    if (access(path, R_OK | W_OK) != 0) {
      rc = gg_err_set(GG_ECANTCREAT, "%s: cannot append to statistics file: %s", path,
                      strerror(errno));
      goto out_fapl;
    }
    f->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (f->file < 0) {
      /* left open by a crashed writer: retry clearing its flags */
      if (gg__set_clear_flags(fapl) == 0) f->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
      if (f->file < 0) {
        rc = gg_err_set(GG_EDATA, "%s: cannot open statistics file for appending (damaged?)",
                        path);
        goto out_fapl;
      }
    }
    if ((rc = gg__open_resume(f, path, resume_step))) goto out_file;
  } else {
    errno = 0;
    f->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f->file < 0) {
      int e = errno;
      rc = gg_err_set(GG_ECANTCREAT, "%s: cannot create statistics file%s%s", path, e ? ": " : "",
                      e ? strerror(e) : "");
      goto out_fapl;
    }
    if (gg__create_layout(f, layer_names)) {
      rc = gg_err_set(GG_EIO, "%s: cannot write the statistics file layout", path);
      goto out_file;
    }
  }
  /* From here on only appends: no new objects or attributes, no shrinking.
   * This also flushes everything, so readers can open the file now. */
  if (H5Fstart_swmr_write(f->file) < 0) {
    rc = gg_err_set(GG_EIO, "%s: cannot start SWMR writing", path);
    goto out_file;
  }
  if (gg__lock_shared(f)) {
    rc = errno == EWOULDBLOCK ? gg_err_set(GG_EIO, GG__BUSY_MSG, path, "cannot write")
                              : gg_err_set(GG_EIO, "%s: cannot reopen the statistics file: %s",
                                           path, strerror(errno));
    goto out_file;
  }
  f->last_flush = gg__now();
  rc = 0;
  goto out_fapl;
out_file:
  gg__close_all(f);
  /* A half-built new file is of no use. Best effort: the error that brought
   * us here is the one to report. */
  if (!resume) (void)unlink(path);
out_fapl:
  if (H5Pclose(fapl) < 0 && rc == 0) {
    gg__close_all(f);
    rc = gg_err_set(GG_EINTERNAL, "%s: cannot close a property list", path);
  }
  return rc;
}

/* ---- appending ---- */

/* Grow dataset d from `old` to old + n rows and write rows [old, old+n)
 * from buf (n rows of the dataset's row shape). 0 or -1. */
static int gg__append(hid_t d, int slot, int n_layers, hsize_t old, hsize_t n, const void *buf) {
  hsize_t dims[3], count[3], start[3] = {old, 0, 0}, cr;
  int rank = gg__dims(slot, n_layers, old + n, dims, &cr);
  if (H5Dset_extent(d, dims) < 0) return -1;
  memcpy(count, dims, sizeof count);
  count[0] = n;
  int rc = -1;
  hid_t fs = H5Dget_space(d);
  if (fs < 0) return -1;
  if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) goto out_fs;
  hid_t ms = H5Screate_simple(rank, count, NULL);
  if (ms < 0) goto out_fs;
  if (H5Dwrite(d, gg__mtype(gg__dspec[slot].type), ms, fs, H5P_DEFAULT, buf) >= 0) rc = 0;
  if (H5Sclose(ms) < 0) rc = -1;
out_fs:
  if (H5Sclose(fs) < 0) rc = -1;
  return rc;
}

/* steps[0..n) strictly increasing and all after `after`. */
static int gg__increasing(const int64_t *steps, size_t n, int64_t after) {
  for (size_t i = 0; i < n; i++) {
    if (steps[i] <= after) return 0;
    after = steps[i];
  }
  return 1;
}

int gg_statsfile_append(gg_statsfile_t *f, const gg_stats_t *s) {
  if (f->file <= 0) return gg_err_set(GG_EINTERNAL, "statistics file is not open");
  if (s->n_layers != f->n_layers)
    return gg_err_set(GG_EINTERNAL, "%s: statistics of %d layers for a file of %d", f->path,
                      s->n_layers, f->n_layers);
  if (!gg__increasing(s->step, s->n, f->last_step) ||
      !gg__increasing(s->hist_step, s->hist_n, f->last_hist_step))
    return gg_err_set(GG_EINTERNAL, "%s: statistics rows out of order (last on disk: step %lld)",
                      f->path, (long long)f->last_step);
  const void *col[GG__D_COUNT] = {
      [GG__D_STEP] = s->step,
      [GG__D_LOSS] = s->loss,
      [GG__D_LR] = s->lr,
      [GG__D_GRAD_NORM] = s->grad_norm,
      [GG__D_GRAD_NORM_CLIPPED] = s->grad_norm_clipped,
      [GG__D_CLIP_COEF] = s->clip_coef,
      [GG__D_CLIPPED_FRACTION] = s->clipped_fraction,
      [GG__D_NONFINITE] = s->nonfinite,
      [GG__D_HIST] = s->hist,
      [GG__D_HIST_STEP] = s->hist_step,
  };
  for (int k = 0; k < GG_STAT__COUNT; k++) col[GG__D_LAYER0 + k] = s->layer[k];
  /* The step columns last: a reader that sees a step sees its row. */
  static const int order[GG__D_COUNT] = {
      GG__D_LOSS, GG__D_LR, GG__D_GRAD_NORM, GG__D_GRAD_NORM_CLIPPED, GG__D_CLIP_COEF,
      GG__D_CLIPPED_FRACTION, GG__D_NONFINITE, GG__D_LAYER0 + 0, GG__D_LAYER0 + 1,
      GG__D_LAYER0 + 2, GG__D_LAYER0 + 3, GG__D_LAYER0 + 4, GG__D_STEP, GG__D_HIST,
      GG__D_HIST_STEP};
  _Static_assert(GG_STAT__COUNT == 5, "update the append order");
  for (int i = 0; i < GG__D_COUNT; i++) {
    int slot = order[i];
    int hist = slot == GG__D_HIST || slot == GG__D_HIST_STEP;
    hsize_t n = hist ? s->hist_n : s->n;
    hsize_t old = (hsize_t)(hist ? f->hists : f->rows);
    if (n == 0) continue;
    if (gg__append(f->d[slot], slot, f->n_layers, old, n, col[slot])) {
      char name[64];
      return gg_err_set(GG_EIO, "%s: cannot append to /%s of the statistics file", f->path,
                        gg__dname(slot, name, sizeof name));
    }
  }
  f->rows += (int64_t)s->n;
  f->hists += (int64_t)s->hist_n;
  if (s->n) f->last_step = s->step[s->n - 1];
  if (s->hist_n) f->last_hist_step = s->hist_step[s->hist_n - 1];
  return 0;
}

/* ---- flushing and closing ---- */

int gg_statsfile_flush(gg_statsfile_t *f) {
  if (f->file <= 0) return gg_err_set(GG_EINTERNAL, "statistics file is not open");
  /* H5Fflush writes the chunk caches and the metadata in SWMR order; the
   * fsync makes it survive a machine crash, not only a process crash. */
  if (H5Fflush(f->file, H5F_SCOPE_LOCAL) < 0)
    return gg_err_set(GG_EIO, "%s: cannot flush the statistics file", f->path);
  if (f->fd >= 0 && fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS)
    return gg_err_set(GG_EIO, "%s: cannot sync the statistics file: %s", f->path, strerror(errno));
  f->last_flush = gg__now();
  return 0;
}

int gg_statsfile_close(gg_statsfile_t *f) {
  if (f->file <= 0) {
    f->file = -1;
    return 0;
  }
  int rc = 0;
  if (gg_statsfile_flush(f)) rc = GG_EIO;
  if (gg__close_all(f)) rc = gg_err_set(GG_EIO, "%s: cannot close the statistics file", f->path);
  return rc;
}
