/* gg-plot.c — the `gg-plot` program: pictures (PNG) of the gradient
 * statistics a run writes to RUN/stats.h5 (contract: "Statistics file").
 *
 *   gg-plot PATH [-o OUT.png] [--what overview|layers|update|saturation|hist|all]
 *           [--steps A:B] [--hist-step S] [--width W] [--height H] [--title T]
 *           [--loss-scale auto|linear|log] [-v] [-q]
 *
 * PATH is a run folder (its stats.h5 is read) or a stats file. The file is
 * opened for SWMR reading first, so the statistics of a run that is still
 * training can be plotted, and plainly read-only if that fails (a file
 * written without SWMR). Only the rows inside --steps are read.
 *
 * Panels (--what all stacks them, sharing the step axis):
 *   overview    loss; global grad_norm before/after clipping (log) with
 *               clip_coef (0..1, right axis)
 *   layers      per-layer gradient L2 norm (log), first layer dark purple to
 *               last layer yellow-green along viridis
 *   update      per-layer ||dw||/||w|| (log) with a reference band 1e-4..1e-2
 *   saturation  per-layer fraction of saturated/dead units (0..1)
 *   hist        heatmap of the log2|g| histogram of one recorded step
 *               (layers x bins, colour = log count)
 * Every step panel marks the steps with a non-finite gradient in red along
 * its top edge. Values a log axis cannot show (NaN, Inf, <= 0) leave gaps.
 * Series are decimated to the pixel grid (per pixel column: the min..max
 * span, joined to the neighbours), so 1e5+ rows draw in milliseconds.
 *
 * The PNG is written to a temporary file next to OUT and renamed, so a
 * viewer never sees half a picture; OUT "-" is stdout. Default OUT: the
 * stats file with .h5 replaced by .png (stats-WHAT.png for one panel).
 *
 * Errors are one line "gg-plot: PATH: cause" on stderr, exit codes from the
 * contract: 64 usage, 65 malformed stats file, 66 missing/unreadable input,
 * 73/74 output cannot be created/written. -v prints the geometry of every
 * panel on stdout (the end-to-end test reads it).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>
#include <hdf5.h>

#include "gradguard/error.h"
#include "internal.h" /* gg__h5_attr_read_* */

/* ---- configuration ------------------------------------------------------ */

enum {
  GG_PLOT_OVERVIEW = 1,
  GG_PLOT_LAYERS = 2,
  GG_PLOT_UPDATE = 4,
  GG_PLOT_SATURATION = 8,
  GG_PLOT_HIST = 16,
  GG_PLOT_ALL = 31
};
enum { GG_PLOT_SCALE_AUTO, GG_PLOT_SCALE_LINEAR, GG_PLOT_SCALE_LOG };

typedef struct {
  const char *path;     /* PATH argument: run folder or stats file */
  const char *out;      /* -o; NULL: next to the stats file */
  const char *what_name;/* --what as given */
  unsigned what;        /* GG_PLOT_* bits */
  int64_t step_lo;      /* --steps A:B, inclusive; INT64_MIN/MAX when open */
  int64_t step_hi;
  int64_t hist_step;    /* --hist-step; -1: the last one inside --steps */
  int width, height;    /* 0: default for the panels */
  const char *title;    /* NULL: file, steps and layer count */
  int loss_scale;       /* GG_PLOT_SCALE_* */
  int verbose;          /* -1 quiet, 0 normal, 1 panel geometry */
} gg_plot_cfg_t;

static const gg_plot_cfg_t gg_plot_cfg_default = {
    .what_name = "all", .what = GG_PLOT_ALL, .step_lo = INT64_MIN, .step_hi = INT64_MAX,
    .hist_step = -1, .loss_scale = GG_PLOT_SCALE_AUTO};

/* ---- the statistics in memory ------------------------------------------- */

typedef struct {
  char file[4096];     /* the stats file read */
  int64_t rows_total;  /* rows in the file */
  int64_t n;           /* rows inside --steps (those below) */
  int L;               /* layers; 0 if no per-layer panel was asked for */
  int64_t *step;       /* (n) */
  float *loss;         /* (n) */
  float *gn;           /* (n) global grad_norm before clipping */
  float *gnc;          /* (n) after clipping */
  float *coef;         /* (n) clip_coef */
  uint8_t *nonfinite;  /* (n) */
  int64_t n_nonfinite; /* count of nonfinite[] != 0 */
  float *lgn;          /* (n, L) layers/grad_norm */
  float *upd;          /* (n, L) layers/update_ratio */
  float *sat;          /* (n, L) layers/saturation */
  char **names;        /* (L) layer names */
  int64_t n_hist;      /* histograms in the file */
  int64_t hist_step;   /* step of the histogram shown, -1 if none */
  int nb;              /* bins per histogram */
  uint32_t *hist;      /* (L, nb) the histogram shown */
  double *edges;       /* (nb + 1) log2 bin edges */
} gg_plot_data_t;

static void gg_plot_data_free(gg_plot_data_t *d) {
  free(d->step);
  free(d->loss);
  free(d->gn);
  free(d->gnc);
  free(d->coef);
  free(d->nonfinite);
  free(d->lgn);
  free(d->upd);
  free(d->sat);
  if (d->names)
    for (int l = 0; l < d->L; l++) free(d->names[l]);
  free(d->names);
  free(d->hist);
  free(d->edges);
  memset(d, 0, sizeof *d);
}

/* ---- reading stats.h5 --------------------------------------------------- */

#define GG_PLOT_ALL_ROWS ((hsize_t)-1)
#define GG_PLOT_BLOCK_ROWS ((hsize_t)4096) /* rows per H5Dread */

/* Read rows [i0, i0 + *cnt) of dataset `name` (all rows from i0 when *cnt
 * is GG_PLOT_ALL_ROWS) as mtype (esize bytes each) into a new buffer *out.
 * The dataset must have `rank` dimensions; dims[k] (k >= 1) is the size
 * required along axis k (0: any). On return dims holds the dataset's shape
 * and *cnt the number of rows read. */
static int gg_plot_read(hid_t f, const char *file, const char *name, hid_t mtype, size_t esize,
                        int rank, hsize_t dims[3], hsize_t i0, hsize_t *cnt, void **out) {
  int rc;
  hsize_t fdims[3] = {0, 0, 0}, start[3] = {0, 0, 0}, count[3] = {0, 0, 0};
  hsize_t n = 0;
  void *buf = NULL, *res = NULL;
  hid_t ms = -1;
  if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
    return gg_err_set(GG_EDATA, "%s: no dataset /%s", file, name);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return gg_err_set(GG_EDATA, "%s: cannot open dataset /%s", file, name);
  hid_t fs = H5Dget_space(d);
  if (fs < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read the shape of /%s", file, name);
    goto out_d;
  }
  if (H5Sget_simple_extent_ndims(fs) != rank || H5Sget_simple_extent_dims(fs, fdims, NULL) < 0) {
    rc = gg_err_set(GG_EDATA, "%s: /%s is not %d-dimensional", file, name, rank);
    goto out_fs;
  }
  size_t per = esize;
  for (int k = 1; k < rank; k++) {
    if (dims[k] && fdims[k] != dims[k]) {
      rc = gg_err_set(GG_EDATA, "%s: /%s has %llu entries along axis %d, expected %llu", file,
                      name, (unsigned long long)fdims[k], k, (unsigned long long)dims[k]);
      goto out_fs;
    }
    if (fdims[k] == 0 || fdims[k] > 100000) {
      rc = gg_err_set(GG_EDATA, "%s: /%s has %llu entries along axis %d", file, name,
                      (unsigned long long)fdims[k], k);
      goto out_fs;
    }
    per *= (size_t)fdims[k];
  }
  /* SWMR: the writer extends the other columns before /step, so they may
   * hold more rows than /step, never fewer. */
  if (i0 > fdims[0] || (*cnt != GG_PLOT_ALL_ROWS && *cnt > fdims[0] - i0)) {
    rc = gg_err_set(GG_EDATA, "%s: /%s has %llu rows, fewer than /step", file, name,
                    (unsigned long long)fdims[0]);
    goto out_fs;
  }
  n = *cnt == GG_PLOT_ALL_ROWS ? fdims[0] - i0 : *cnt;
  if (n > SIZE_MAX / 2 / per) {
    rc = gg_err_set(GG_EDATA, "%s: /%s is too large (%llu rows)", file, name,
                    (unsigned long long)n);
    goto out_fs;
  }
  buf = malloc(n ? (size_t)n * per : 1);
  if (!buf) {
    rc = gg_err_set(GG_ENOMEM, "%s: out of memory reading /%s", file, name);
    goto out_fs;
  }
  /* In blocks of rows: one H5Dread over many small chunks makes HDF5 1.10
   * build a map of every chunk first (hundreds of MB for 1e5 rows). */
  for (hsize_t done = 0; done < n; done += count[0]) {
    start[0] = i0 + done;
    count[0] = n - done < GG_PLOT_BLOCK_ROWS ? n - done : GG_PLOT_BLOCK_ROWS;
    for (int k = 1; k < rank; k++) count[k] = fdims[k];
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
      rc = gg_err_set(GG_EDATA, "%s: cannot select rows of /%s", file, name);
      goto out_ms;
    }
    if (ms >= 0 && H5Sclose(ms) < 0) {
      ms = -1;
      rc = gg_err_set(GG_EIO, "%s: H5Sclose", file);
      goto out_ms;
    }
    ms = H5Screate_simple(rank, count, NULL);
    if (ms < 0) {
      rc = gg_err_set(GG_ENOMEM, "%s: cannot make a dataspace for /%s", file, name);
      goto out_ms;
    }
    if (H5Dread(d, mtype, ms, fs, H5P_DEFAULT, (char *)buf + (size_t)done * per) < 0) {
      rc = gg_err_set(GG_EDATA, "%s: cannot read /%s (damaged file?)", file, name);
      goto out_ms;
    }
  }
  rc = 0;
  res = buf;
  buf = NULL;
out_ms:
  if (ms >= 0 && H5Sclose(ms) < 0 && rc == 0) rc = gg_err_set(GG_EIO, "%s: H5Sclose", file);
  free(buf);
out_fs:
  if (H5Sclose(fs) < 0 && rc == 0) rc = gg_err_set(GG_EIO, "%s: H5Sclose", file);
out_d:
  if (H5Dclose(d) < 0 && rc == 0) rc = gg_err_set(GG_EIO, "%s: H5Dclose", file);
  if (rc) {
    free(res);
    return rc;
  }
  for (int k = 0; k < rank; k++) dims[k] = fdims[k];
  *cnt = n;
  *out = res;
  return 0;
}

/* Fill names[0..L) from the root attribute layer_names (variable- or
 * fixed-length strings). Returns 0 when read, -1 when it is missing or does
 * not list L names; the caller then uses "layer_NN". */
static int gg_plot_read_names(hid_t f, int L, char **names) {
  return gg__h5_attr_read_dups(f, "layer_names", L, names) == 0 ? 0 : -1;
}

/* The log2 bin edges of /layers/grad_hist: nb + 1 increasing finite values. */
static int gg_plot_read_edges(hid_t f, const char *file, int nb, double *edges) {
  int n = 0, got = -1;
  hid_t d = H5Dopen2(f, "layers/grad_hist", H5P_DEFAULT);
  if (d >= 0) {
    got = gg__h5_attr_read_nums(d, "bin_edges", H5T_NO_CLASS, H5T_NATIVE_DOUBLE, edges, nb + 1, nb + 1,
                            &n);
    if (H5Dclose(d) < 0 && got == 0) return gg_err_set(GG_EIO, "%s: H5Dclose", file);
  }
  int good = got == 0;
  for (int k = 0; good && k <= nb; k++)
    if (!isfinite(edges[k]) || (k > 0 && !(edges[k] > edges[k - 1]))) good = 0;
  return good ? 0
              : gg_err_set(GG_EDATA, "%s: /layers/grad_hist has no valid bin_edges attribute (%d values)",
                           file, nb + 1);
}

/* Pick and read the histogram to show: --hist-step exactly, else the last
 * one inside --steps. None recorded there is not an error: the panel says so. */
static int gg_plot_read_hist(hid_t f, const gg_plot_cfg_t *c, gg_plot_data_t *d) {
  int64_t *hs = NULL;
  hsize_t dims[3] = {0, 0, 0}, nh = GG_PLOT_ALL_ROWS;
  int rc = gg_plot_read(f, d->file, "hist_step", H5T_NATIVE_INT64, sizeof(int64_t), 1, dims, 0,
                        &nh, (void **)&hs);
  if (rc) return rc;
  d->n_hist = (int64_t)nh;
  d->hist_step = -1;
  int64_t pick = -1;
  for (hsize_t i = 0; i < nh; i++) {
    if (c->hist_step >= 0 ? hs[i] == c->hist_step
                          : (hs[i] >= c->step_lo && hs[i] <= c->step_hi))
      pick = (int64_t)i;
  }
  if (c->hist_step >= 0 && pick < 0) {
    rc = nh ? gg_err_set(GG_EUSAGE, "%s: --hist-step %" PRId64 ": no histogram at that step "
                         "(%llu recorded, steps %" PRId64 " .. %" PRId64 ")",
                         d->file, c->hist_step, (unsigned long long)nh, hs[0], hs[nh - 1])
            : gg_err_set(GG_EUSAGE, "%s: --hist-step %" PRId64 ": the file holds no histogram",
                         d->file, c->hist_step);
    free(hs);
    return rc;
  }
  /* with no histogram to show, still read 0 rows: a missing or misshapen
   * dataset is reported either way */
  hsize_t hd[3] = {0, (hsize_t)d->L, 0}, cnt = pick < 0 ? 0 : 1;
  rc = gg_plot_read(f, d->file, "layers/grad_hist", H5T_NATIVE_UINT32, sizeof(uint32_t), 3, hd,
                    pick < 0 ? 0 : (hsize_t)pick, &cnt, (void **)&d->hist);
  if (!rc && hd[0] < nh)
    rc = gg_err_set(GG_EDATA, "%s: /layers/grad_hist has %llu rows, /hist_step %llu", d->file,
                    (unsigned long long)hd[0], (unsigned long long)nh);
  if (!rc) {
    d->nb = (int)hd[2];
    if (pick >= 0) d->hist_step = hs[pick];
  }
  free(hs);
  if (rc) return rc;
  d->edges = malloc(((size_t)d->nb + 1) * sizeof *d->edges);
  if (!d->edges) return gg_err_set(GG_ENOMEM, "%s: out of memory", d->file);
  return gg_plot_read_edges(f, d->file, d->nb, d->edges);
}

/* Read everything the chosen panels need from the open file f. */
static int gg_plot_read_file(hid_t f, const gg_plot_cfg_t *c, gg_plot_data_t *d) {
  hsize_t dims[3] = {0, 0, 0}, nrows = GG_PLOT_ALL_ROWS;
  int64_t *all = NULL;
  int rc = gg_plot_read(f, d->file, "step", H5T_NATIVE_INT64, sizeof(int64_t), 1, dims, 0, &nrows,
                        (void **)&all);
  if (rc) return rc;
  d->rows_total = (int64_t)nrows;
  if (nrows == 0) {
    free(all);
    return gg_err_set(GG_EDATA, "%s: no rows recorded yet (/step is empty)", d->file);
  }
  for (hsize_t i = 1; i < nrows; i++)
    if (all[i] <= all[i - 1]) {
      rc = gg_err_set(GG_EDATA, "%s: /step is not increasing at row %llu (%" PRId64 " after %" PRId64
                      ")", d->file, (unsigned long long)i, all[i], all[i - 1]);
      free(all);
      return rc;
    }
  /* the rows of --steps A:B: steps increase, so they are one contiguous block */
  hsize_t i0 = 0, i1 = nrows;
  while (i0 < nrows && all[i0] < c->step_lo) i0++;
  while (i1 > i0 && all[i1 - 1] > c->step_hi) i1--;
  if (i1 == i0) {
    rc = gg_err_set(GG_EUSAGE, "%s: --steps: no recorded step in the range (the file has steps %" PRId64
                    " .. %" PRId64 ")", d->file, all[0], all[nrows - 1]);
    free(all);
    return rc;
  }
  hsize_t n = i1 - i0;
  d->n = (int64_t)n;
  d->step = malloc((size_t)n * sizeof *d->step);
  if (!d->step) {
    free(all);
    return gg_err_set(GG_ENOMEM, "%s: out of memory", d->file);
  }
  memcpy(d->step, all + i0, (size_t)n * sizeof *d->step);
  free(all);

  struct {
    unsigned what;
    const char *name;
    int rank;
    void **dst;
  } cols[] = {
      {GG_PLOT_ALL, "nonfinite", 1, (void **)&d->nonfinite},
      {GG_PLOT_OVERVIEW, "loss", 1, (void **)&d->loss},
      {GG_PLOT_OVERVIEW, "grad_norm", 1, (void **)&d->gn},
      {GG_PLOT_OVERVIEW, "grad_norm_clipped", 1, (void **)&d->gnc},
      {GG_PLOT_OVERVIEW, "clip_coef", 1, (void **)&d->coef},
      {GG_PLOT_LAYERS, "layers/grad_norm", 2, (void **)&d->lgn},
      {GG_PLOT_UPDATE, "layers/update_ratio", 2, (void **)&d->upd},
      {GG_PLOT_SATURATION, "layers/saturation", 2, (void **)&d->sat},
  };
  hsize_t L = 0; /* the layer count, fixed by the first per-layer dataset */
  for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++) {
    if (!(cols[k].what & c->what)) continue;
    hsize_t cnt = n, cd[3] = {0, L, 0};
    int is_u8 = k == 0;
    rc = gg_plot_read(f, d->file, cols[k].name, is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                      is_u8 ? 1 : sizeof(float), cols[k].rank, cd, i0, &cnt, cols[k].dst);
    if (rc) return rc;
    if (cols[k].rank == 2) L = cd[1];
  }
  for (int64_t i = 0; i < d->n; i++) d->n_nonfinite += d->nonfinite[i] != 0;

  if (c->what & (GG_PLOT_LAYERS | GG_PLOT_UPDATE | GG_PLOT_SATURATION | GG_PLOT_HIST)) {
    if (L == 0) { /* hist alone: the layer count comes from grad_hist */
      hsize_t hd[3] = {0, 0, 0}, zero = 0;
      uint32_t *tmp = NULL;
      rc = gg_plot_read(f, d->file, "layers/grad_hist", H5T_NATIVE_UINT32, sizeof(uint32_t), 3, hd,
                        0, &zero, (void **)&tmp);
      free(tmp);
      if (rc) return rc;
      L = hd[1];
    }
    d->L = (int)L;
    d->names = calloc((size_t)d->L, sizeof *d->names);
    if (!d->names) return gg_err_set(GG_ENOMEM, "%s: out of memory", d->file);
    if (gg_plot_read_names(f, d->L, d->names)) {
      for (int l = 0; l < d->L; l++) {
        free(d->names[l]);
        d->names[l] = NULL;
      }
    }
    for (int l = 0; l < d->L; l++) {
      if (d->names[l]) continue;
      char tmp[32];
      snprintf(tmp, sizeof tmp, "layer_%02d", l);
      d->names[l] = strdup(tmp);
      if (!d->names[l]) return gg_err_set(GG_ENOMEM, "%s: out of memory", d->file);
    }
  }
  if (c->what & GG_PLOT_HIST) return gg_plot_read_hist(f, c, d);
  return 0;
}

/* Resolve PATH (a run folder or a stats file), open it (SWMR read, then
 * plain read-only) and read what the panels need. */
static int gg_plot_load(const gg_plot_cfg_t *c, gg_plot_data_t *d) {
  struct stat st;
  if (stat(c->path, &st) != 0)
    return gg_err_set(GG_ENOINPUT, "%s: %s", c->path, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    if ((size_t)snprintf(d->file, sizeof d->file, "%s/stats.h5", c->path) >= sizeof d->file)
      return gg_err_set(GG_EUSAGE, "%s: path too long", c->path);
    if (stat(d->file, &st) != 0)
      return gg_err_set(GG_ENOINPUT, "%s: %s (is it a run folder?)", d->file, strerror(errno));
  } else if ((size_t)snprintf(d->file, sizeof d->file, "%s", c->path) >= sizeof d->file) {
    return gg_err_set(GG_EUSAGE, "%s: path too long", c->path);
  }
  if (!S_ISREG(st.st_mode)) return gg_err_set(GG_ENOINPUT, "%s: not a regular file", d->file);
  FILE *probe = fopen(d->file, "rb");
  if (!probe) return gg_err_set(GG_ENOINPUT, "%s: %s", d->file, strerror(errno));
  fclose(probe);
#if H5_VERSION_GE(1, 12, 0)
  htri_t is_h5 = H5Fis_accessible(d->file, H5P_DEFAULT);
#else
  htri_t is_h5 = H5Fis_hdf5(d->file);
#endif
  if (is_h5 == 0) return gg_err_set(GG_EDATA, "%s: not an HDF5 file", d->file);
  /* A trainer writes in SWMR mode: only a SWMR reader may open the file
   * while it runs. A file written without SWMR refuses that flag. */
  hid_t f = H5Fopen(d->file, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
  if (f < 0) f = H5Fopen(d->file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return gg_err_set(is_h5 > 0 ? GG_ENOINPUT : GG_EDATA,
                      "%s: cannot open the HDF5 file (damaged, or held by a writer without SWMR; "
                      "after a crash try h5clear -s)", d->file);
  int rc = gg_plot_read_file(f, c, d);
  if (H5Fclose(f) < 0 && rc == 0) rc = gg_err_set(GG_EIO, "%s: H5Fclose failed", d->file);
  return rc;
}

/* ---- drawing primitives ------------------------------------------------- */

#define GG_PLOT_HALF_PI 1.57079632679489661923

typedef struct {
  double r, g, b;
} gg_rgb_t;

/* matplotlib's viridis at t = 0, 1/9, ..., 1 (perceptually uniform, dark
 * purple to yellow, readable in grey and by colour-blind readers). */
static const unsigned char gg_plot_viridis_lut[10][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e},
    {0x26, 0x82, 0x8e}, {0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58},
    {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25}};

/* viridis(t), t in [0, 1], linear between the 10 anchors. */
static gg_rgb_t gg_plot_viridis(double t) {
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double u = t * 9;
  int k = (int)u;
  if (k > 8) k = 8;
  double w = u - k;
  const unsigned char *a = gg_plot_viridis_lut[k], *b = gg_plot_viridis_lut[k + 1];
  return (gg_rgb_t){((1 - w) * a[0] + w * b[0]) / 255, ((1 - w) * a[1] + w * b[1]) / 255,
                    ((1 - w) * a[2] + w * b[2]) / 255};
}

/* Colour of layer l of L: first layer dark purple, last yellow-green (the
 * top of viridis is cut: pure yellow vanishes on white). */
static gg_rgb_t gg_plot_layer_rgb(int l, int L) {
  return gg_plot_viridis(L > 1 ? 0.88 * l / (L - 1) : 0);
}

static const gg_rgb_t GG_PLOT_INK = {0.13, 0.13, 0.13};
static const gg_rgb_t GG_PLOT_GRID = {0.88, 0.88, 0.88};
static const gg_rgb_t GG_PLOT_RED = {214 / 255., 39 / 255., 40 / 255.}; /* non-finite marks */
static const gg_rgb_t GG_PLOT_BLUE = {31 / 255., 119 / 255., 180 / 255.};
static const gg_rgb_t GG_PLOT_ORANGE = {255 / 255., 127 / 255., 14 / 255.};
static const gg_rgb_t GG_PLOT_GREEN = {44 / 255., 160 / 255., 44 / 255.};

static void gg_plot_color(cairo_t *cr, gg_rgb_t c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

/* One straight stroke in colour c (grid lines, ticks). */
static void gg_plot_line(cairo_t *cr, gg_rgb_t c, double x0, double y0, double x1, double y1) {
  gg_plot_color(cr, c);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
}

/* Copy s into buf (size sz), keeping at most max_chars characters and
 * replacing bytes that are not valid UTF-8 by '?': cairo refuses invalid
 * UTF-8 and would stop drawing (names and titles come from files and flags). */
static void gg_plot_utf8(char *buf, size_t sz, const char *s, size_t max_chars) {
  const unsigned char *u = (const unsigned char *)s;
  size_t o = 0, chars = 0;
  while (*u && chars < max_chars) {
    size_t len = *u < 0x80 ? 1 : (*u & 0xe0) == 0xc0 ? 2 : (*u & 0xf0) == 0xe0 ? 3
               : (*u & 0xf8) == 0xf0 ? 4 : 0;
    for (size_t k = 1; k < len; k++)
      if ((u[k] & 0xc0) != 0x80) len = 0;
    if (len == 2 && *u < 0xc2) len = 0; /* overlong */
    if (o + (len ? len : 1) + 1 > sz) break;
    if (len) {
      memcpy(buf + o, u, len);
      o += len;
      u += len;
    } else {
      buf[o++] = '?';
      u++;
    }
    chars++;
  }
  buf[o] = 0;
}

/* Draw text with its anchor at (x, y): ax 0/0.5/1 = left/centre/right,
 * ay 0/0.5/1 = top/middle/bottom of a line of capitals; rotated by angle
 * (radians) around the anchor. */
static void gg_plot_text(cairo_t *cr, double x, double y, double size, int bold, double ax,
                         double ay, double angle, const char *s) {
  char u[512];
  cairo_text_extents_t e;
  gg_plot_utf8(u, sizeof u, s, 200);
  cairo_save(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  /* the height of digits and capitals, so labels of one row line up */
  cairo_text_extents(cr, "0H", &e);
  double h = e.height, top = e.y_bearing;
  cairo_text_extents(cr, u, &e);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -e.x_advance * ax, -top - h * ay);
  cairo_show_text(cr, u);
  cairo_restore(cr);
}

/* A tick label for 10^k: plain for 0.01 .. 100, else 1e<k>. */
static void gg_plot_decade_label(char *buf, size_t sz, int k) {
  if (k >= -2 && k <= 2)
    snprintf(buf, sz, "%g", pow(10, k));
  else
    snprintf(buf, sz, "1e%d", k);
}

/* 1, 2 or 5 times a power of ten, about span / target. */
static double gg_plot_nice_step(double span, int target) {
  double raw = span / target, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct {
  double x, y, w, h;
} gg_rect_t;

typedef struct {
  int log;       /* 1: log10 axis; lo/hi are then exponents */
  double lo, hi; /* the axis range (data units, or log10 of them) */
} gg_axis_t;

/* One plot area with a step axis (x) and a value axis (y). */
typedef struct {
  cairo_t *cr;
  gg_rect_t r;   /* the plot area, pixels */
  double s0, s1; /* step range on x */
  gg_axis_t y;
  double s;      /* scale of fonts and strokes (1 at 1600 px wide) */
} gg_panel_t;

static double gg_plot_xmap(const gg_panel_t *p, double step) {
  return p->r.x + (step - p->s0) / (p->s1 - p->s0) * p->r.w;
}

/* Pixel row of v, or NAN when the axis cannot show it (NaN, Inf, <= 0 on log). */
static double gg_plot_ymap(const gg_axis_t *a, const gg_rect_t *r, double v) {
  if (!isfinite(v)) return NAN;
  if (a->log) {
    if (!(v > 0)) return NAN;
    v = log10(v);
  }
  double y = r->y + r->h * (1 - (v - a->lo) / (a->hi - a->lo));
  /* far outside a fixed axis (a malformed value): keep cairo's fixed-point
   * coordinates small; the clip hides it anyway */
  return fmin(fmax(y, r->y - r->h), r->y + 2 * r->h);
}

/* Running min/max of the values an axis can show (for log: positive). */
typedef struct {
  double min, max;
  int64_t count;
} gg_range_t;

static void gg_plot_range_add(gg_range_t *rg, int log, const float *v, size_t stride, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double x = v[(size_t)i * stride];
    if (!isfinite(x) || (log && !(x > 0))) continue;
    if (rg->count == 0 || x < rg->min) rg->min = x;
    if (rg->count == 0 || x > rg->max) rg->max = x;
    rg->count++;
  }
}

/* The axis for a range: whole decades on log axes, nice steps on linear
 * ones; a fallback when nothing is drawable. */
static gg_axis_t gg_plot_axis_fit(int log, const gg_range_t *rg) {
  gg_axis_t a = {log, 0, 1};
  if (log) {
    if (rg->count == 0) return (gg_axis_t){1, -1, 1};
    a.lo = floor(log10(rg->min)) + 0.0; /* + 0.0: no "-0" */
    a.hi = ceil(log10(rg->max)) + 0.0;
    if (a.hi <= a.lo) a.hi = a.lo + 1;
    return a;
  }
  if (rg->count == 0) return a;
  double lo = rg->min, hi = rg->max;
  if (hi - lo < 1e-12 * (fabs(hi) + fabs(lo)) || hi == lo) {
    double pad = fabs(hi) > 0 ? 0.1 * fabs(hi) : 1;
    lo -= pad;
    hi += pad;
  }
  double st = gg_plot_nice_step(hi - lo, 5);
  a.lo = floor(lo / st) * st;
  a.hi = ceil(hi / st) * st;
  return a;
}

/* Frame, grid, ticks and tick labels of a panel's y axis on the left (or
 * the right when right != 0); x grid and step labels when xlabels. */
static void gg_plot_axes(const gg_panel_t *p, int xlabels, int ygrid) {
  cairo_t *cr = p->cr;
  const gg_rect_t *r = &p->r;
  double fs = 13 * p->s;
  char buf[64];
  cairo_save(cr);
  cairo_set_line_width(cr, 1);
  /* x: steps at nice intervals */
  double span = p->s1 - p->s0, st = gg_plot_nice_step(span, 8);
  if (st < 1) st = 1;
  for (double t = ceil(p->s0 / st) * st; t <= p->s1 + 1e-9; t += st) {
    double x = round(gg_plot_xmap(p, t)) + 0.5;
    gg_plot_line(cr, GG_PLOT_GRID, x, r->y, x, r->y + r->h);
    gg_plot_line(cr, GG_PLOT_INK, x, r->y + r->h, x, r->y + r->h + 5 * p->s);
    if (xlabels) {
      snprintf(buf, sizeof buf, "%.0f", t);
      gg_plot_text(cr, x, r->y + r->h + 7 * p->s, fs, 0, 0.5, 0, 0, buf);
    }
  }
  /* y */
  if (p->y.log) {
    double dec = p->y.hi - p->y.lo;
    int every = dec <= 8 ? 1 : dec <= 16 ? 2 : dec <= 24 ? 3 : dec <= 40 ? 5 : dec <= 80 ? 10 : 20;
    for (int k = (int)p->y.lo; k <= (int)p->y.hi; k++) {
      double y = round(gg_plot_ymap(&p->y, r, pow(10, k))) + 0.5;
      if (every == 1 && dec <= 6 && k < (int)p->y.hi) /* minor ticks 2..9 x 10^k */
        for (int m = 2; m <= 9; m++) {
          double ym = gg_plot_ymap(&p->y, r, m * pow(10, k));
          gg_plot_line(cr, GG_PLOT_INK, r->x - 3 * p->s, ym, r->x, ym);
        }
      if (k % every) continue;
      if (ygrid && k > p->y.lo && k < p->y.hi) gg_plot_line(cr, GG_PLOT_GRID, r->x, y, r->x + r->w, y);
      gg_plot_line(cr, GG_PLOT_INK, r->x - 6 * p->s, y, r->x, y);
      gg_plot_decade_label(buf, sizeof buf, k);
      gg_plot_text(cr, r->x - 8 * p->s, y, fs, 0, 1, 0.5, 0, buf);
    }
  } else {
    double st2 = gg_plot_nice_step(p->y.hi - p->y.lo, 5);
    for (double t = ceil(p->y.lo / st2 - 1e-9) * st2; t <= p->y.hi + 1e-9 * st2; t += st2) {
      double y = round(gg_plot_ymap(&p->y, r, t)) + 0.5;
      if (ygrid && t > p->y.lo + 1e-9 * st2 && t < p->y.hi - 1e-9 * st2)
        gg_plot_line(cr, GG_PLOT_GRID, r->x, y, r->x + r->w, y);
      gg_plot_line(cr, GG_PLOT_INK, r->x - 6 * p->s, y, r->x, y);
      snprintf(buf, sizeof buf, "%g", fabs(t) < 1e-9 * st2 ? 0.0 : t);
      gg_plot_text(cr, r->x - 8 * p->s, y, fs, 0, 1, 0.5, 0, buf);
    }
  }
  gg_plot_color(cr, GG_PLOT_INK);
  cairo_rectangle(cr, round(r->x) + 0.5, round(r->y) + 0.5, round(r->w), round(r->h));
  cairo_stroke(cr);
  cairo_restore(cr);
}

/* The y-axis title, rotated, left of the tick labels. */
static void gg_plot_ylabel(const gg_panel_t *p, const char *s) {
  gg_plot_text(p->cr, p->r.x - 66 * p->s, p->r.y + p->r.h / 2, 14 * p->s, 0, 0.5, 0.5,
               -GG_PLOT_HALF_PI, s);
}

/* One pixel column of a dense series: the min..max of its drawable values
 * (pixel rows; ymin is the top). */
typedef struct {
  double x, ymin, ymax, ysum;
  int64_t count;
  int broken; /* a value the axis cannot show lies between this and the previous column */
} gg_plot_col_t;

/* A dense series (more values than pixel columns): per pixel column the
 * min..max of its values as a translucent band (thickened by the line
 * width; one polygon per unbroken run) and a line through the column means
 * on top, so overlapping layers stay apart. Filling one polygon is much
 * cheaper than stroking 1e5 overlapping segments. Returns -1 (nothing
 * drawn) when out of memory. */
static int gg_plot_envelope(const gg_panel_t *p, const gg_axis_t *ax, const int64_t *step,
                            const float *v, size_t stride, int64_t n, double hw, gg_rgb_t c,
                            int dashed) {
  cairo_t *cr = p->cr;
  gg_plot_col_t *col = malloc((size_t)(n > 0 ? n : 1) * sizeof *col);
  if (!col) return -1;
  int64_t m = 0;
  int broken = 1;
  long last = LONG_MIN;
  for (int64_t i = 0; i < n; i++) {
    double y = gg_plot_ymap(ax, &p->r, v[(size_t)i * stride]);
    if (isnan(y)) {
      broken = 1;
      continue;
    }
    double x = gg_plot_xmap(p, (double)step[i]);
    long cc = (long)floor(x);
    if (m && cc == last && !broken) {
      col[m - 1].ymin = fmin(col[m - 1].ymin, y);
      col[m - 1].ymax = fmax(col[m - 1].ymax, y);
      col[m - 1].ysum += y;
      col[m - 1].count++;
      continue;
    }
    col[m++] = (gg_plot_col_t){cc + 0.5, y, y, y, 1, broken};
    last = cc;
    broken = 0;
  }
  for (int64_t r0 = 0; r0 < m;) {
    int64_t r1 = r0 + 1;
    while (r1 < m && !col[r1].broken) r1++;
    /* top edge left to right, bottom edge back */
    cairo_move_to(cr, col[r0].x - hw, col[r0].ymin - hw);
    for (int64_t k = r0; k < r1; k++) cairo_line_to(cr, col[k].x, col[k].ymin - hw);
    cairo_line_to(cr, col[r1 - 1].x + hw, col[r1 - 1].ymin - hw);
    cairo_line_to(cr, col[r1 - 1].x + hw, col[r1 - 1].ymax + hw);
    for (int64_t k = r1 - 1; k >= r0; k--) cairo_line_to(cr, col[k].x, col[k].ymax + hw);
    cairo_line_to(cr, col[r0].x - hw, col[r0].ymax + hw);
    cairo_close_path(cr);
    r0 = r1;
  }
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
  cairo_fill(cr);
  /* the trend: a line through the mean pixel row of each column (on a log
   * axis the geometric mean) */
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
  cairo_set_line_width(cr, 2 * hw);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  if (dashed) {
    double dash[2] = {7 * p->s, 4 * p->s};
    cairo_set_dash(cr, dash, 2, 0);
  }
  for (int64_t k = 0; k < m; k++) {
    double y = col[k].ysum / col[k].count;
    if (k == 0 || col[k].broken)
      cairo_move_to(cr, col[k].x, y);
    else
      cairo_line_to(cr, col[k].x, y);
  }
  cairo_stroke(cr);
  free(col);
  return 0;
}

/* One series y(step). Sparse (at most 2 values per pixel column): a
 * polyline; a value the axis cannot show breaks it, an isolated value is a
 * dot. Dense: per-column bands and means (gg_plot_envelope); the dashed
 * style gets a fainter band there. */
static void gg_plot_series(const gg_panel_t *p, const gg_axis_t *ax, const int64_t *step,
                           const float *v, size_t stride, int64_t n, gg_rgb_t c, double width,
                           int dashed) {
  cairo_t *cr = p->cr;
  cairo_save(cr);
  cairo_rectangle(cr, p->r.x, p->r.y, p->r.w, p->r.h);
  cairo_clip(cr);
  cairo_new_path(cr);
  if (n > 2 * p->r.w) {
    cairo_set_source_rgba(cr, c.r, c.g, c.b, dashed ? 0.15 : 0.3);
    if (gg_plot_envelope(p, ax, step, v, stride, n, width * p->s / 2, c, dashed) == 0) {
      cairo_restore(cr);
      return;
    }
  }
  gg_plot_color(cr, c);
  cairo_set_line_width(cr, width * p->s);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  if (dashed) {
    double dash[2] = {7 * p->s, 4 * p->s};
    cairo_set_dash(cr, dash, 2, 0);
  }
  int open = 0, broken = 1;
  long col = 0;
  double cx = 0, ymin = 0, ymax = 0, ylast = 0;
  for (int64_t i = 0; i < n; i++) {
    double y = gg_plot_ymap(ax, &p->r, v[(size_t)i * stride]);
    if (isnan(y)) {
      broken = 1;
      continue;
    }
    double x = gg_plot_xmap(p, (double)step[i]);
    long cc = (long)floor(x);
    if (open && cc == col && !broken) {
      ymin = fmin(ymin, y);
      ymax = fmax(ymax, y);
      ylast = y;
      continue;
    }
    if (open) { /* close the previous column: its span, then back to its last value */
      cairo_move_to(cr, cx, ymin);
      cairo_line_to(cr, cx, ymax);
      cairo_move_to(cr, cx, ylast);
    }
    if (open && !broken)
      cairo_line_to(cr, x, y);
    else
      cairo_move_to(cr, x, y);
    open = 1;
    broken = 0;
    col = cc;
    cx = x;
    ymin = ymax = ylast = y;
  }
  if (open) {
    cairo_move_to(cr, cx, ymin);
    cairo_line_to(cr, cx, ymax);
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

/* Red marks along the top edge of the plot area at the non-finite steps
 * (one per pixel column that holds any). */
static void gg_plot_nonfinite_marks(const gg_panel_t *p, const gg_plot_data_t *d) {
  if (d->n_nonfinite == 0) return;
  cairo_t *cr = p->cr;
  double h = 7 * p->s, w = fmax(2, 2 * p->s);
  long last = LONG_MIN;
  cairo_save(cr);
  gg_plot_color(cr, GG_PLOT_RED);
  for (int64_t i = 0; i < d->n; i++) {
    if (!d->nonfinite[i]) continue;
    double x = gg_plot_xmap(p, (double)d->step[i]);
    long cc = (long)floor(x);
    if (cc == last) continue;
    last = cc;
    cairo_rectangle(cr, round(x - w / 2), round(p->r.y + 1), round(w), round(h));
  }
  cairo_fill(cr);
  cairo_restore(cr);
}

/* A legend row: a short line in colour c and its text, at (x, y) middle. */
static void gg_plot_legend_row(const gg_panel_t *p, double x, double y, gg_rgb_t c, int dashed,
                               int mark, const char *s) {
  cairo_t *cr = p->cr;
  cairo_save(cr);
  gg_plot_color(cr, c);
  if (mark) {
    cairo_rectangle(cr, round(x + 10 * p->s), round(y - 6 * p->s), round(fmax(2, 3 * p->s)),
                    round(12 * p->s));
    cairo_fill(cr);
  } else {
    cairo_set_line_width(cr, 2.5 * p->s);
    if (dashed) {
      double dash[2] = {6 * p->s, 3 * p->s};
      cairo_set_dash(cr, dash, 2, 0);
    }
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 24 * p->s, y);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
  gg_plot_color(cr, GG_PLOT_INK);
  gg_plot_text(cr, x + 32 * p->s, y, 13 * p->s, 0, 0, 0.5, 0, s);
}

/* The layer legend right of the plot area: one row per layer when they
 * fit, else a viridis bar from the first to the last layer. */
static void gg_plot_layer_legend(const gg_panel_t *p, const gg_plot_data_t *d, double x) {
  cairo_t *cr = p->cr;
  double row = 17 * p->s, y = p->r.y + 12 * p->s;
  int fit = (int)((p->r.h - 16 * p->s) / row);
  char buf[64];
  if (d->L <= fit) {
    for (int l = 0; l < d->L; l++) {
      gg_plot_utf8(buf, sizeof buf, d->names[l], 24);
      gg_plot_legend_row(p, x, y + l * row, gg_plot_layer_rgb(l, d->L), 0, 0, buf);
    }
    return;
  }
  double bh = p->r.h - 24 * p->s, bw = 18 * p->s;
  for (int k = 0; k < (int)bh; k++) {
    gg_plot_color(cr, gg_plot_viridis(0.88 * k / (bh - 1)));
    cairo_rectangle(cr, round(x), round(y) + k, round(bw), 1); /* whole pixels: no seams */
    cairo_fill(cr);
  }
  int marks = fit / 2 < 2 ? 2 : fit / 2 > 8 ? 8 : fit / 2;
  for (int m = 0; m < marks; m++) {
    int l = (int)lround((double)m * (d->L - 1) / (marks - 1));
    gg_plot_utf8(buf, sizeof buf, d->names[l], 20);
    gg_plot_color(cr, GG_PLOT_INK);
    gg_plot_text(cr, x + bw + 6 * p->s, y + bh * l / (d->L - 1), 13 * p->s, 0, 0, 0.5, 0, buf);
  }
}

/* ---- panels ------------------------------------------------------------- */

/* The box a panel gets, its title and the geometry of its plot area. */
typedef struct {
  cairo_t *cr;
  const gg_plot_cfg_t *cfg;
  const gg_plot_data_t *d;
  double s;           /* scale */
  double left, right; /* margins left of the plot area and right of it (legend) */
  int width;          /* image width */
  double s0, s1;      /* step range */
} gg_canvas_t;

/* The plot area inside the panel box [y, y + h): title above, tick labels
 * below. */
static gg_panel_t gg_plot_panel(const gg_canvas_t *cv, double y, double h, const char *title) {
  gg_panel_t p = {.cr = cv->cr, .s0 = cv->s0, .s1 = cv->s1, .s = cv->s};
  double top = 28 * cv->s, bottom = 26 * cv->s;
  p.r = (gg_rect_t){cv->left, y + top, cv->width - cv->left - cv->right, h - top - bottom};
  gg_plot_color(cv->cr, GG_PLOT_INK);
  gg_plot_text(cv->cr, cv->left, y + 6 * cv->s, 16 * cv->s, 1, 0, 0, 0, title);
  return p;
}

static void gg_plot_report(const gg_canvas_t *cv, const char *name, const gg_panel_t *p) {
  if (cv->cfg->verbose < 1) return;
  printf("gg-plot: panel %s plot=%.1f,%.1f,%.1f,%.1f y=%s:%g:%g\n", name, p->r.x, p->r.y, p->r.w,
         p->r.h, p->y.log ? "log" : "linear", p->y.lo, p->y.hi);
}

/* overview: the loss above, the global norms and clip_coef below. */
static void gg_plot_overview(const gg_canvas_t *cv, double y, double h) {
  const gg_plot_data_t *d = cv->d;
  char title[160];
  snprintf(title, sizeof title, "Overview: loss, global gradient norm, clipping%s",
           d->n_nonfinite ? " (red marks: non-finite gradient, step skipped or zeroed)" : "");
  gg_panel_t whole = gg_plot_panel(cv, y, h, title);
  double gap = 20 * cv->s, h1 = (whole.r.h - gap) * 0.42;
  gg_panel_t a = whole, b = whole;
  a.r.h = h1;
  b.r.y = whole.r.y + h1 + gap;
  b.r.h = whole.r.h - h1 - gap;

  /* loss: log when positive and spread over two decades or more */
  gg_range_t rg = {0};
  gg_plot_range_add(&rg, 1, d->loss, 1, d->n);
  gg_range_t rl = {0};
  gg_plot_range_add(&rl, 0, d->loss, 1, d->n);
  /* auto: log when nearly all values are positive (a loss that reaches an
   * exact 0 now and then) and they span two decades or more */
  int log = cv->cfg->loss_scale == GG_PLOT_SCALE_LOG ||
            (cv->cfg->loss_scale == GG_PLOT_SCALE_AUTO && rg.count > 0 &&
             rg.count >= 0.99 * rl.count && rg.max >= 100 * rg.min);
  a.y = gg_plot_axis_fit(log, log ? &rg : &rl);
  gg_plot_axes(&a, 0, 1);
  gg_plot_ylabel(&a, log ? "loss (log)" : "loss");
  gg_plot_series(&a, &a.y, d->step, d->loss, 1, d->n, GG_PLOT_INK, 1.6, 0);
  gg_plot_nonfinite_marks(&a, d);
  gg_plot_report(cv, "loss", &a);

  /* norms (log, left axis) and clip_coef (0..1, right axis) */
  gg_range_t rn = {0};
  gg_plot_range_add(&rn, 1, d->gn, 1, d->n);
  gg_plot_range_add(&rn, 1, d->gnc, 1, d->n);
  b.y = gg_plot_axis_fit(1, &rn);
  gg_plot_axes(&b, 1, 1);
  gg_plot_ylabel(&b, "global \xe2\x80\x96g\xe2\x80\x96 (log)");
  gg_axis_t cax = {0, 0, 1.05};
  {
    cairo_t *cr = cv->cr;
    char buf[16];
    for (int k = 0; k <= 4; k++) {
      double yy = round(gg_plot_ymap(&cax, &b.r, k * 0.25)) + 0.5;
      cairo_set_line_width(cr, 1);
      gg_plot_line(cr, GG_PLOT_GREEN, b.r.x + b.r.w, yy, b.r.x + b.r.w + 6 * cv->s, yy);
      snprintf(buf, sizeof buf, "%g", k * 0.25);
      gg_plot_text(cr, b.r.x + b.r.w + 8 * cv->s, yy, 12 * cv->s, 0, 0, 0.5, 0, buf);
    }
  }
  gg_plot_series(&b, &cax, d->step, d->coef, 1, d->n, GG_PLOT_GREEN, 1.2, 0);
  gg_plot_series(&b, &b.y, d->step, d->gn, 1, d->n, GG_PLOT_BLUE, 1.6, 0);
  gg_plot_series(&b, &b.y, d->step, d->gnc, 1, d->n, GG_PLOT_ORANGE, 1.6, 1);
  gg_plot_nonfinite_marks(&b, d);
  gg_plot_report(cv, "norms", &b);

  /* legends, right of the plot areas (after clip_coef's tick labels) */
  double lx = b.r.x + b.r.w + 52 * cv->s, row = 18 * cv->s;
  char buf[96];
  gg_plot_legend_row(&a, lx, a.r.y + 12 * cv->s, GG_PLOT_INK, 0, 0, "loss (global batch)");
  snprintf(buf, sizeof buf, "non-finite: %" PRId64 " of %" PRId64, d->n_nonfinite, d->n);
  /* the red swatch only when there are red marks (the test looks for red) */
  gg_plot_legend_row(&a, lx, a.r.y + 12 * cv->s + row, d->n_nonfinite ? GG_PLOT_RED : GG_PLOT_GRID,
                     0, 1, buf);
  double ly = b.r.y + 12 * cv->s;
  gg_plot_legend_row(&b, lx, ly, GG_PLOT_BLUE, 0, 0, "before clipping");
  gg_plot_legend_row(&b, lx, ly + row, GG_PLOT_ORANGE, 1, 0, "after clipping");
  gg_plot_legend_row(&b, lx, ly + 2 * row, GG_PLOT_GREEN, 0, 0, "clip_coef (right axis)");
}

/* A per-layer panel: one line per layer, first layer drawn first. */
static void gg_plot_layer_panel(const gg_canvas_t *cv, double y, double h, const char *name,
                                const char *title, const char *ylabel, const float *v, int log,
                                double band_lo, double band_hi) {
  const gg_plot_data_t *d = cv->d;
  gg_panel_t p = gg_plot_panel(cv, y, h, title);
  gg_range_t rg = {0};
  for (int l = 0; l < d->L; l++) gg_plot_range_add(&rg, log, v + l, (size_t)d->L, d->n);
  if (band_hi > 0 && rg.count) { /* keep the reference band in view */
    rg.min = fmin(rg.min, band_lo);
    rg.max = fmax(rg.max, band_hi);
  }
  p.y = log ? gg_plot_axis_fit(1, &rg) : (gg_axis_t){0, 0, 1.02};
  if (!log) p.y.lo = -0.02;
  if (band_hi > 0) {
    cairo_t *cr = cv->cr;
    double y0 = gg_plot_ymap(&p.y, &p.r, band_hi), y1 = gg_plot_ymap(&p.y, &p.r, band_lo);
    cairo_save(cr);
    cairo_rectangle(cr, p.r.x, y0, p.r.w, y1 - y0);
    cairo_set_source_rgb(cr, 0.90, 0.96, 0.90);
    cairo_fill(cr);
    double ym = gg_plot_ymap(&p.y, &p.r, sqrt(band_lo * band_hi));
    double dash[2] = {5 * cv->s, 4 * cv->s};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.45, 0.65, 0.45);
    cairo_move_to(cr, p.r.x, ym);
    cairo_line_to(cr, p.r.x + p.r.w, ym);
    cairo_stroke(cr);
    cairo_restore(cr);
  }
  gg_plot_axes(&p, 1, 1);
  gg_plot_ylabel(&p, ylabel);
  for (int l = 0; l < d->L; l++)
    gg_plot_series(&p, &p.y, d->step, v + l, (size_t)d->L, d->n, gg_plot_layer_rgb(l, d->L), 1.8, 0);
  gg_plot_nonfinite_marks(&p, d);
  gg_plot_layer_legend(&p, d, p.r.x + p.r.w + 16 * cv->s);
  gg_plot_report(cv, name, &p);
}

/* The histogram heatmap: layers top (first) to bottom (last), log2 bins
 * left to right, colour = log count, empty cells white. */
static void gg_plot_hist(const gg_canvas_t *cv, double y, double h) {
  const gg_plot_data_t *d = cv->d;
  cairo_t *cr = cv->cr;
  char title[200], buf[64];
  if (d->hist_step >= 0)
    snprintf(title, sizeof title, "Gradient histogram at step %" PRId64
             ": count of |g| per power-of-two bin, per layer (colour: log count; white: none)",
             d->hist_step);
  else
    snprintf(title, sizeof title, "Gradient histogram");
  gg_panel_t p = gg_plot_panel(cv, y, h, title);
  p.r.h -= 16 * cv->s; /* room for the note on the edge bins */
  if (d->hist_step < 0 || d->L < 1) {
    gg_plot_color(cr, GG_PLOT_INK);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(p.r.x) + 0.5, round(p.r.y) + 0.5, round(p.r.w), round(p.r.h));
    cairo_stroke(cr);
    gg_plot_text(cr, p.r.x + p.r.w / 2, p.r.y + p.r.h / 2, 16 * cv->s, 0, 0.5, 0.5, 0,
                 d->n_hist ? "no histogram recorded inside --steps"
                           : "no histogram recorded yet");
    if (cv->cfg->verbose >= 1) printf("gg-plot: panel hist none\n");
    return;
  }
  int L = d->L, nb = d->nb;
  uint32_t cmax = 0;
  long nonzero = 0;
  for (size_t k = 0; k < (size_t)L * nb; k++) {
    if (d->hist[k] > cmax) cmax = d->hist[k];
    nonzero += d->hist[k] != 0;
  }
  double lmax = cmax > 1 ? log((double)cmax) : 1;
  double e0 = d->edges[0], e1 = d->edges[nb];
  double ch = p.r.h / L;
  for (int l = 0; l < L; l++)
    for (int k = 0; k < nb; k++) {
      uint32_t cnt = d->hist[(size_t)l * nb + k];
      if (!cnt) continue;
      double x0 = round(p.r.x + p.r.w * (d->edges[k] - e0) / (e1 - e0));
      double x1 = round(p.r.x + p.r.w * (d->edges[k + 1] - e0) / (e1 - e0));
      double y0 = round(p.r.y + l * ch), y1 = round(p.r.y + (l + 1) * ch);
      gg_plot_color(cr, gg_plot_viridis(log((double)cnt) / lmax));
      cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
      cairo_fill(cr);
    }
  cairo_set_line_width(cr, 1);
  /* x: decades of |g| at log2 = k * log2(10) */
  double dec_lo = ceil(e0 / log2(10)), dec_hi = floor(e1 / log2(10));
  int every = dec_hi - dec_lo > 12 ? 2 : 1;
  for (int k = (int)dec_lo; k <= (int)dec_hi; k++) {
    if (k % every) continue;
    double x = round(p.r.x + p.r.w * (k * log2(10) - e0) / (e1 - e0)) + 0.5;
    gg_plot_line(cr, GG_PLOT_INK, x, p.r.y + p.r.h, x, p.r.y + p.r.h + 5 * cv->s);
    gg_plot_decade_label(buf, sizeof buf, k);
    gg_plot_text(cr, x, p.r.y + p.r.h + 7 * cv->s, 13 * cv->s, 0, 0.5, 0, 0, buf);
  }
  gg_plot_text(cr, p.r.x + p.r.w, p.r.y + p.r.h + 24 * cv->s, 12 * cv->s, 0, 1, 0, 0,
               "|g|; the first bin also counts exact zeros, the last one NaN/Inf");
  /* y: layer names, thinned when rows are short */
  double fs = fmin(13 * cv->s, ch * 0.8);
  int lstep = 1;
  while (ch * lstep < 11 * cv->s && lstep < L) lstep++;
  for (int l = 0; l < L; l += lstep) {
    gg_plot_utf8(buf, sizeof buf, d->names[l], 12);
    gg_plot_color(cr, GG_PLOT_INK);
    gg_plot_text(cr, p.r.x - 6 * cv->s, p.r.y + (l + 0.5) * ch, fs, 0, 1, 0.5, 0, buf);
  }
  gg_plot_color(cr, GG_PLOT_INK);
  cairo_rectangle(cr, round(p.r.x) + 0.5, round(p.r.y) + 0.5, round(p.r.w), round(p.r.h));
  cairo_stroke(cr);
  /* colour bar: count 1 .. max, log */
  double bx = p.r.x + p.r.w + 16 * cv->s, bw = 18 * cv->s, bh = p.r.h;
  for (int k = 0; k < (int)bh; k++) {
    gg_plot_color(cr, gg_plot_viridis(1 - (double)k / (bh - 1)));
    cairo_rectangle(cr, round(bx), round(p.r.y) + k, round(bw), 1);
    cairo_fill(cr);
  }
  gg_plot_color(cr, GG_PLOT_INK);
  int top = cmax > 1 ? (int)floor(log10((double)cmax)) : 0;
  for (int k = 0; k <= top; k++) {
    double t = cmax > 1 ? k * log(10) / lmax : 0;
    double yy = p.r.y + bh * (1 - t);
    snprintf(buf, sizeof buf, "%g", pow(10, k));
    gg_plot_text(cr, bx + bw + 5 * cv->s, yy, 12 * cv->s, 0, 0, 0.5, 0, buf);
  }
  snprintf(buf, sizeof buf, "max %" PRIu32, cmax);
  gg_plot_text(cr, bx, p.r.y - 4 * cv->s, 12 * cv->s, 0, 0, 1, 0, buf);
  if (cv->cfg->verbose >= 1)
    printf("gg-plot: panel hist plot=%.1f,%.1f,%.1f,%.1f grid=%dx%d step=%" PRId64
           " nonzero=%ld max=%" PRIu32 "\n", p.r.x, p.r.y, p.r.w, p.r.h, nb, L, d->hist_step,
           nonzero, cmax);
}

/* ---- the picture -------------------------------------------------------- */

static void gg_plot_draw(cairo_t *cr, const gg_plot_cfg_t *c, const gg_plot_data_t *d, int W,
                         int H) {
  gg_canvas_t cv = {.cr = cr, .cfg = c, .d = d, .width = W};
  cv.s = fmin(fmax(W / 1600.0, 0.6), 2.5);
  cv.left = 100 * cv.s;
  cv.right = 240 * cv.s;
  cv.s0 = (double)d->step[0];
  cv.s1 = (double)d->step[d->n - 1];
  if (cv.s1 <= cv.s0) {
    cv.s0 -= 0.5;
    cv.s1 += 0.5;
  }
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  char title[4352]; /* a path of up to 4095 bytes and the step range */
  if (c->title)
    snprintf(title, sizeof title, "%s", c->title);
  else if (d->L)
    snprintf(title, sizeof title, "%s \xe2\x80\x94 steps %" PRId64 "..%" PRId64
             " (%" PRId64 " rows), %d layers", d->file, d->step[0], d->step[d->n - 1], d->n, d->L);
  else
    snprintf(title, sizeof title, "%s \xe2\x80\x94 steps %" PRId64 "..%" PRId64
             " (%" PRId64 " rows)", d->file, d->step[0], d->step[d->n - 1], d->n);
  double head = 44 * cv.s, gap = 12 * cv.s;
  gg_plot_color(cr, GG_PLOT_INK);
  gg_plot_text(cr, W / 2.0, 12 * cv.s, 20 * cv.s, 1, 0.5, 0, 0, title);

  static const struct {
    unsigned bit;
    double weight;
  } order[] = {{GG_PLOT_OVERVIEW, 1.45},
               {GG_PLOT_LAYERS, 1.25},
               {GG_PLOT_UPDATE, 1.0},
               {GG_PLOT_SATURATION, 0.8},
               {GG_PLOT_HIST, 1.05}};
  double total = 0;
  int count = 0;
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
    if (c->what & order[k].bit) {
      total += order[k].weight;
      count++;
    }
  double avail = H - head - gap * (count - 1) - 8 * cv.s, y = head;
  for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
    if (!(c->what & order[k].bit)) continue;
    double h = avail * order[k].weight / total;
    switch (order[k].bit) {
    case GG_PLOT_OVERVIEW:
      gg_plot_overview(&cv, y, h);
      break;
    case GG_PLOT_LAYERS:
      gg_plot_layer_panel(&cv, y, h, "layers",
                          "Gradient L2 norm per layer (log): lines fanned out over decades, "
                          "first layers lowest = vanishing; rising together = exploding",
                          "\xe2\x80\x96g\xe2\x80\x96 per layer (log)", d->lgn, 1, 0, 0);
      break;
    case GG_PLOT_UPDATE:
      gg_plot_layer_panel(&cv, y, h, "update",
                          "Update ratio \xe2\x80\x96\xce\x94w\xe2\x80\x96/\xe2\x80\x96w\xe2\x80\x96 "
                          "per layer (log): about 1e-3 is healthy (band 1e-4..1e-2)",
                          "\xe2\x80\x96\xce\x94w\xe2\x80\x96/\xe2\x80\x96w\xe2\x80\x96 (log)",
                          d->upd, 1, 1e-4, 1e-2);
      break;
    case GG_PLOT_SATURATION:
      gg_plot_layer_panel(&cv, y, h, "saturation",
                          "Saturation per layer: fraction of units with activation derivative "
                          "< 1e-3 (dead ReLU, saturated sigmoid/tanh)",
                          "saturated fraction", d->sat, 0, 0, 0);
      break;
    case GG_PLOT_HIST:
      gg_plot_hist(&cv, y, h);
      break;
    }
    y += h + gap;
  }
}

/* ---- writing the PNG ---------------------------------------------------- */

typedef struct {
  FILE *fp;
  int err; /* errno of the first failed write, 0 if none */
} gg_plot_sink_t;

static cairo_status_t gg_plot_sink_write(void *closure, const unsigned char *data,
                                         unsigned int len) {
  gg_plot_sink_t *k = closure;
  if (fwrite(data, 1, len, k->fp) != len) {
    if (!k->err) k->err = errno ? errno : EIO;
    return CAIRO_STATUS_WRITE_ERROR;
  }
  return CAIRO_STATUS_SUCCESS;
}

/* Encode s as PNG to fp; fp is closed (unless stdout). 74 on any error. */
static int gg_plot_png_to(cairo_surface_t *s, FILE *fp, const char *name, int close_it) {
  gg_plot_sink_t k = {fp, 0};
  errno = 0;
  cairo_status_t st = cairo_surface_write_to_png_stream(s, gg_plot_sink_write, &k);
  int flush_failed = fflush(fp) != 0;
  if (flush_failed && !k.err) k.err = errno ? errno : EIO;
  int close_failed = close_it && fclose(fp) != 0;
  if (close_failed && !k.err) k.err = errno ? errno : EIO;
  if (st != CAIRO_STATUS_SUCCESS || flush_failed || close_failed)
    return gg_err_set(GG_EIO, "%s: cannot write the PNG: %s", name,
                      k.err ? strerror(k.err) : cairo_status_to_string(st));
  return 0;
}

/* Write s to out: "-" is stdout; an existing non-regular file (a device,
 * a pipe) is written in place; otherwise a temporary file next to out is
 * written and renamed over it. */
static int gg_plot_write(cairo_surface_t *s, const char *out) {
  if (strcmp(out, "-") == 0) return gg_plot_png_to(s, stdout, "stdout", 0);
  struct stat st;
  if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
    return gg_err_set(GG_ECANTCREAT, "%s: is a directory", out);
  if (stat(out, &st) == 0 && !S_ISREG(st.st_mode)) {
    FILE *fp = fopen(out, "wb");
    if (!fp) return gg_err_set(GG_ECANTCREAT, "%s: %s", out, strerror(errno));
    return gg_plot_png_to(s, fp, out, 1);
  }
  char tmp[4200];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out, (long)getpid()) >= sizeof tmp)
    return gg_err_set(GG_ECANTCREAT, "%s: path too long", out);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0666);
  if (fd < 0) return gg_err_set(GG_ECANTCREAT, "%s: %s", out, strerror(errno));
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return gg_err_set(GG_ECANTCREAT, "%s: %s", out, strerror(e));
  }
  int rc = gg_plot_png_to(s, fp, out, 1);
  if (rc) {
    unlink(tmp);
    return rc;
  }
  if (rename(tmp, out) != 0) {
    int e = errno;
    unlink(tmp);
    return gg_err_set(GG_ECANTCREAT, "%s: cannot rename %s onto it: %s", out, tmp, strerror(e));
  }
  return 0;
}

/* ---- command line ------------------------------------------------------- */

static void gg_plot_usage(FILE *fp) {
  fputs("usage: gg-plot PATH [options]      PATH: a run folder or its stats.h5\n"
        "\n"
        "  -o, --out FILE           PNG to write ('-' = stdout) [PATH's stats.png,\n"
        "                           or stats-WHAT.png for one panel]\n"
        "  -w, --what WHAT          overview|layers|update|saturation|hist|all [all]\n"
        "  -s, --steps A:B          only steps A..B (A: or :B leave one end open)\n"
        "      --hist-step S        the histogram of step S [the last one in --steps]\n"
        "      --width W            image width in pixels [1600]\n"
        "      --height H           image height [1800 for all, 800 overview, 700 others]\n"
        "  -t, --title T            title line [file, steps, layers]\n"
        "      --loss-scale S       auto|linear|log for the loss [auto: log if it\n"
        "                           spans two decades or more]\n"
        "  -v, --verbose            also print each panel's geometry\n"
        "  -q, --quiet              print nothing on success\n"
        "  -h, --help               this help\n"
        "\n"
        "Exit codes: 0 done, 64 bad usage, 65 malformed stats file, 66 missing or\n"
        "unreadable input, 73/74 the PNG cannot be created/written.\n",
        fp);
}

__attribute__((format(printf, 1, 2))) static int gg_plot_usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("gg-plot: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (gg-plot --help)\n", stderr);
  return 64;
}

/* A whole decimal integer in [lo, hi]. */
static int gg_plot_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > hi) return -1;
  *v = x;
  return 0;
}

/* --steps A:B, A: or :B */
static int gg_plot_parse_steps(const char *s, int64_t *lo, int64_t *hi) {
  const char *colon = strchr(s, ':');
  if (!colon || strchr(colon + 1, ':')) return -1;
  char a[64];
  size_t na = (size_t)(colon - s);
  if (na >= sizeof a) return -1;
  memcpy(a, s, na);
  a[na] = 0;
  *lo = INT64_MIN;
  *hi = INT64_MAX;
  if (na && gg_plot_parse_i64(a, 0, INT64_MAX, lo)) return -1;
  if (colon[1] && gg_plot_parse_i64(colon + 1, 0, INT64_MAX, hi)) return -1;
  if (!na && !colon[1]) return -1;
  return *lo <= *hi ? 0 : -1;
}

/* Parse argv into c; returns 0, or the exit code (64 for bad usage, -1 for
 * --help which exits 0). */
static int gg_plot_parse(int argc, char **argv, gg_plot_cfg_t *c) {
  enum { OPT_HIST_STEP = 256, OPT_WIDTH, OPT_HEIGHT, OPT_LOSS_SCALE, OPT_VERSION };
  static const struct option opts[] = {{"out", required_argument, 0, 'o'},
                                       {"what", required_argument, 0, 'w'},
                                       {"steps", required_argument, 0, 's'},
                                       {"hist-step", required_argument, 0, OPT_HIST_STEP},
                                       {"width", required_argument, 0, OPT_WIDTH},
                                       {"height", required_argument, 0, OPT_HEIGHT},
                                       {"title", required_argument, 0, 't'},
                                       {"loss-scale", required_argument, 0, OPT_LOSS_SCALE},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, OPT_VERSION},
                                       {0, 0, 0, 0}};
  static const struct {
    const char *name;
    unsigned bits;
  } whats[] = {{"all", GG_PLOT_ALL},         {"overview", GG_PLOT_OVERVIEW},
               {"layers", GG_PLOT_LAYERS},   {"update", GG_PLOT_UPDATE},
               {"saturation", GG_PLOT_SATURATION}, {"hist", GG_PLOT_HIST}};
  *c = gg_plot_cfg_default;
  opterr = 0;
  int o;
  int64_t v;
  while ((o = getopt_long(argc, argv, ":o:w:s:t:vqh", opts, NULL)) != -1) {
    switch (o) {
    case 'o':
      if (!*optarg) return gg_plot_usage_error("-o/--out: empty file name");
      c->out = optarg;
      break;
    case 'w': {
      size_t k = 0, nw = sizeof whats / sizeof whats[0];
      while (k < nw && strcmp(whats[k].name, optarg)) k++;
      if (k == nw)
        return gg_plot_usage_error("--what: '%s' is not overview, layers, update, saturation, "
                                   "hist or all", optarg);
      c->what = whats[k].bits;
      c->what_name = whats[k].name;
      break;
    }
    case 's':
      if (gg_plot_parse_steps(optarg, &c->step_lo, &c->step_hi))
        return gg_plot_usage_error("--steps: '%s' is not A:B, A: or :B with 0 <= A <= B", optarg);
      break;
    case OPT_HIST_STEP:
      if (gg_plot_parse_i64(optarg, 0, INT64_MAX, &c->hist_step))
        return gg_plot_usage_error("--hist-step: '%s' is not a step (integer >= 0)", optarg);
      break;
    case OPT_WIDTH:
    case OPT_HEIGHT:
      if (gg_plot_parse_i64(optarg, 200, 10000, &v))
        return gg_plot_usage_error("--%s: '%s' is not a whole number of pixels in 200..10000",
                                   o == OPT_WIDTH ? "width" : "height", optarg);
      *(o == OPT_WIDTH ? &c->width : &c->height) = (int)v;
      break;
    case 't':
      c->title = optarg;
      break;
    case OPT_LOSS_SCALE:
      if (!strcmp(optarg, "auto"))
        c->loss_scale = GG_PLOT_SCALE_AUTO;
      else if (!strcmp(optarg, "linear"))
        c->loss_scale = GG_PLOT_SCALE_LINEAR;
      else if (!strcmp(optarg, "log"))
        c->loss_scale = GG_PLOT_SCALE_LOG;
      else
        return gg_plot_usage_error("--loss-scale: '%s' is not auto, linear or log", optarg);
      break;
    case 'v':
      c->verbose = 1;
      break;
    case 'q':
      c->verbose = -1;
      break;
    case 'h':
      gg_plot_usage(stdout);
      return -1;
    case OPT_VERSION:
      printf("gg-plot %s (gradguard)\n", GG_VERSION);
      return -1;
    case ':':
      return gg_plot_usage_error("%s needs a value", argv[optind - 1]);
    default:
      if (optopt)
        return gg_plot_usage_error("unknown option -%c", optopt);
      return gg_plot_usage_error("unknown option %s", argv[optind - 1]);
    }
  }
  if (optind >= argc) return gg_plot_usage_error("missing PATH (a run folder or a stats.h5)");
  if (optind + 1 < argc) return gg_plot_usage_error("one PATH only, got also '%s'", argv[optind + 1]);
  c->path = argv[optind];
  if (!*c->path) return gg_plot_usage_error("PATH is empty");
  if (c->hist_step >= 0 && !(c->what & GG_PLOT_HIST))
    return gg_plot_usage_error("--hist-step needs --what hist or all");
  if (!c->width) c->width = 1600;
  if (!c->height)
    c->height = c->what == GG_PLOT_ALL ? 1800 : c->what == GG_PLOT_OVERVIEW ? 800 : 700;
  int panels = 0;
  for (unsigned b = c->what; b; b >>= 1) panels += (int)(b & 1);
  if (c->height < 150 * panels + 60 || c->width < 500)
    return gg_plot_usage_error("--width %d --height %d: too small for %d panel%s (at least 500 x "
                               "%d)", c->width, c->height, panels, panels > 1 ? "s" : "",
                               150 * panels + 60);
  return 0;
}

/* The default output: the stats file with .h5 replaced by .png, or by
 * -WHAT.png when only one panel is drawn. */
static int gg_plot_default_out(const gg_plot_cfg_t *c, const char *file, char *buf, size_t sz) {
  size_t n = strlen(file);
  if (n >= 3 && !strcmp(file + n - 3, ".h5")) n -= 3;
  int w = c->what == GG_PLOT_ALL
              ? snprintf(buf, sz, "%.*s.png", (int)n, file)
              : snprintf(buf, sz, "%.*s-%s.png", (int)n, file, c->what_name);
  return w < 0 || (size_t)w >= sz ? -1 : 0;
}

int main(int argc, char **argv) {
  gg_plot_cfg_t c;
  int rc = gg_plot_parse(argc, argv, &c);
  if (rc) return rc < 0 ? 0 : rc;
  /* HDF5 prints its error stack by default; errors here are one line */
  if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0) {
    fprintf(stderr, "gg-plot: %s: cannot silence the HDF5 error stack\n", c.path);
    return 70;
  }
  gg_plot_data_t d;
  memset(&d, 0, sizeof d);
  rc = gg_plot_load(&c, &d);
  char outbuf[4200];
  const char *out = c.out;
  if (!rc && !out) {
    if (gg_plot_default_out(&c, d.file, outbuf, sizeof outbuf))
      rc = gg_err_set(GG_ECANTCREAT, "%s: output path too long", d.file);
    out = outbuf;
  }
  cairo_surface_t *s = NULL;
  cairo_t *cr = NULL;
  if (!rc) {
    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, c.width, c.height);
    cr = cairo_create(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
      rc = gg_err_set(GG_ENOMEM, "%s: cannot make a %dx%d image: %s", c.path, c.width, c.height,
                      cairo_status_to_string(cairo_status(cr)));
  }
  if (!rc) {
    gg_plot_draw(cr, &c, &d, c.width, c.height);
    cairo_surface_flush(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
      rc = gg_err_set(GG_EINTERNAL, "%s: drawing failed: %s", c.path,
                      cairo_status_to_string(cairo_status(cr)));
  }
  if (!rc) rc = gg_plot_write(s, out);
  if (!rc && c.verbose >= 0 && strcmp(out, "-"))
    printf("gg-plot: wrote %s (%dx%d, %" PRId64 " rows, steps %" PRId64 "..%" PRId64 ")\n", out,
           c.width, c.height, d.n, d.step[0], d.step[d.n - 1]);
  if (cr) cairo_destroy(cr);
  if (s) cairo_surface_destroy(s);
  gg_plot_data_free(&d);
  if (rc) {
    /* messages name the file; usage errors found while reading name the flag */
    fprintf(stderr, "gg-plot: %s\n", gg_err_msg(rc));
    return gg_exit_code(rc);
  }
  return 0;
}
