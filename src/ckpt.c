/* ckpt.c — atomic, checksummed HDF5 checkpoints (see ckpt.h). */
#include "gradguard/ckpt.h"
#include "gradguard/config.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradguard/error.h"
#include "internal.h"
#include "gradguard/stats.h"

#define GG_CKPT_FORMAT "gradguard.checkpoint"
#define GG_CKPT_VERSION 1

void gg_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- writing helpers: each returns 0 or -1; the caller names the file ---- */

static int gg__attr_i64(hid_t obj, const char *name, int64_t v) {
  return gg__h5_attr_write(obj, name, H5T_NATIVE_INT64, 0, NULL, &v);
}
static int gg__attr_i32(hid_t obj, const char *name, int32_t v) {
  return gg__h5_attr_write(obj, name, H5T_NATIVE_INT32, 0, NULL, &v);
}

/* Variable-length UTF-8 string: what h5py reads back as str. */
static int gg__attr_str(hid_t obj, const char *name, const char *s) {
  return gg__h5_attr_strs(obj, name, &s, 0);
}

/* A dataset of rank 1 or 2 written in one go, chunked (at most ~1 Mi
 * elements a chunk) with the Fletcher32 checksum: every dataset of a
 * checkpoint carries one. ftype is the file type, mtype the memory type. */
static int gg__write_dset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                          const hsize_t *dims, const void *data) {
  int rc = -1;
  hsize_t chunk[2] = {dims[0], rank > 1 ? dims[1] : 1};
  size_t row = rank > 1 ? (size_t)dims[1] : 1;
  hsize_t max_rows = (hsize_t)((1u << 20) / (row ? row : 1));
  if (max_rows < 1) max_rows = 1;
  if (chunk[0] > max_rows) chunk[0] = max_rows;
  if (chunk[0] < 1) chunk[0] = 1;
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  if (sp < 0) return -1;
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0) goto out_sp;
  if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0) goto out_dcpl;
  hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d < 0) goto out_dcpl;
  if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) rc = 0;
  if (H5Dclose(d) < 0) rc = -1;
out_dcpl:
  H5Pclose(dcpl);
out_sp:
  H5Sclose(sp);
  return rc;
}

static int gg__write_f32(hid_t loc, const char *name, int rank, const hsize_t *dims,
                         const float *data) {
  return gg__write_dset(loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, data);
}

static int gg__fsync_path(const char *path, int dir) {
  int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* The model and optimizer groups: /model/layer_NN/{weight,bias} and
 * /optimizer/layer_NN/{weight,bias}/SLOT. */
static int gg__write_tensors(hid_t f, const gg_arch_t *arch, const float *params,
                             const gg_optim_t *opt) {
  hid_t gm = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (gm < 0) return -1;
  hid_t go = -1;
  int rc = -1;
  if (opt) {
    go = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (go < 0) goto out;
    if (gg__attr_str(go, "kind", gg_opt_name(opt->kind)) || gg__attr_i64(go, "t", opt->t))
      goto out;
  }
  for (int l = 0; l < arch->n_layers; l++) {
    char name[32];
    snprintf(name, sizeof name, "layer_%02d", l);
    hsize_t wd[2] = {(hsize_t)arch->widths[l + 1], (hsize_t)arch->widths[l]};
    size_t woff = arch->off[l], boff = woff + (size_t)wd[0] * (size_t)wd[1];
    hid_t gl = H5Gcreate2(gm, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (gl < 0) goto out;
    int bad = gg__write_f32(gl, "weight", 2, wd, params + woff) ||
              gg__write_f32(gl, "bias", 1, wd, params + boff);
    H5Gclose(gl);
    if (bad) goto out;
    if (!opt || opt->n_slots == 0) continue;
    hid_t ol = H5Gcreate2(go, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ol < 0) goto out;
    hid_t ow = H5Gcreate2(ol, "weight", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ob = H5Gcreate2(ol, "bias", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad = ow < 0 || ob < 0;
    for (int s = 0; !bad && s < opt->n_slots; s++) {
      const float *st = gg_optim_slot(opt, s);
      bad = gg__write_f32(ow, gg_optim_slot_name(opt, s), 2, wd, st + woff) ||
            gg__write_f32(ob, gg_optim_slot_name(opt, s), 1, wd, st + boff);
    }
    if (ow >= 0) H5Gclose(ow);
    if (ob >= 0) H5Gclose(ob);
    H5Gclose(ol);
    if (bad) goto out;
  }
  rc = 0;
out:
  if (go >= 0) H5Gclose(go);
  H5Gclose(gm);
  return rc;
}

/* The newest statistics row as /stats/NAME [1] and /stats/layers/NAME [1, L],
 * checksummed like every other dataset. */
static int gg__write_stats(hid_t f, const gg_stats_t *s) {
  size_t i = s->n ? s->n - 1 : 0, L = (size_t)s->n_layers;
  hid_t g = H5Gcreate2(f, "stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  hid_t gl = H5Gcreate2(g, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int bad = gl < 0;
  hsize_t one[1] = {1}, row[2] = {1, L};
  struct { const char *name; const float *col; } cols[] = {
      {"loss", s->loss}, {"lr", s->lr}, {"grad_norm", s->grad_norm},
      {"grad_norm_clipped", s->grad_norm_clipped}, {"clip_coef", s->clip_coef},
      {"clipped_fraction", s->clipped_fraction}};
  if (!bad) bad |= gg__write_dset(g, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, one, &s->step[i]);
  for (size_t k = 0; !bad && k < sizeof cols / sizeof *cols; k++)
    bad |= gg__write_dset(g, cols[k].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, one, &cols[k].col[i]);
  if (!bad) bad |= gg__write_dset(g, "nonfinite", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, one, &s->nonfinite[i]);
  for (int k = 0; !bad && k < GG_STAT__COUNT; k++)
    bad |= gg__write_dset(gl, gg_stat_names[k], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, row,
                           s->layer[k] + i * L);
  if (gl >= 0) H5Gclose(gl);
  H5Gclose(g);
  return bad ? -1 : 0;
}

int gg_ckpt_write(const char *path, const gg_arch_t *arch, const float *params,
                  const gg_optim_t *opt, const gg_ckpt_meta_t *meta) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return gg_err_set(GG_ECANTCREAT, "%s: cannot create checkpoint: %s", tmp, strerror(errno));
  int bad = 0;
  /* n_layers + 1 <= GG_MAX_WIDTHS (config.h) */
  int32_t widths[GG_MAX_WIDTHS];
  int n_w = arch->n_layers + 1 < GG_MAX_WIDTHS ? arch->n_layers + 1 : GG_MAX_WIDTHS;
  for (int l = 0; l < n_w; l++) widths[l] = arch->widths[l];
  hsize_t nw = (hsize_t)n_w;
  bad |= gg__attr_str(f, "format", GG_CKPT_FORMAT);
  bad |= gg__attr_i32(f, "format_version", GG_CKPT_VERSION);
  bad |= gg__attr_i64(f, "step", meta->step);
  bad |= gg__attr_i64(f, "epoch", meta->epoch);
  bad |= gg__attr_i64(f, "samples_seen", meta->samples_seen);
  bad |= gg__attr_i32(f, "world_size", meta->world_size);
  bad |= gg__attr_i64(f, "seed", (int64_t)meta->seed);
  bad |= gg__h5_attr_write(f, "layers", H5T_NATIVE_INT32, 1, &nw, widths);
  bad |= gg__attr_str(f, "activation", gg_act_name(arch->act));
  bad |= gg__attr_str(f, "loss", gg_loss_name(arch->loss));
  bad |= gg__attr_str(f, "config", meta->config ? meta->config : "");
  if (!bad) {
    hid_t gs = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad = gs < 0;
    if (!bad) {
      bad |= gg__attr_i64(gs, "batch_in_epoch", meta->batch_in_epoch);
      bad |= gg__attr_i64(gs, "batch", meta->batch);
      bad |= gg__attr_i64(gs, "n_samples", meta->n_samples);
      bad |= gg__attr_i64(gs, "n_skipped", meta->n_skipped);
      hsize_t nh[1] = {meta->n_autoclip};
      if (meta->n_autoclip)
        bad |= gg__write_dset(gs, "autoclip_history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, nh,
                              meta->autoclip);
      H5Gclose(gs);
    }
  }
  if (!bad && meta->stats && meta->stats->last_step >= 0) bad = gg__write_stats(f, meta->stats);
  if (!bad) bad = gg__write_tensors(f, arch, params, opt);
  if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) bad = 1;
  if (H5Fclose(f) < 0) bad = 1;
  if (bad) {
    unlink(tmp);
    return gg_err_set(GG_EIO, "%s: cannot write checkpoint", path);
  }
  /* Test hook: GG_INJECT_FAULT=ckpt-kill:STEP dies by SIGKILL with the
   * file of STEP complete under its temporary name, before the rename. */
  const char *inject = getenv("GG_INJECT_FAULT");
  if (inject && strncmp(inject, "ckpt-kill:", 10) == 0 && atol(inject + 10) == meta->step)
    raise(SIGKILL);
  /* Durable before visible: data on disk, then the name, then the folder. */
  if (gg__fsync_path(tmp, 0) || rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    return gg_err_set(GG_EIO, "%s: cannot commit checkpoint: %s", path, strerror(e));
  }
  char dir[4200];
  snprintf(dir, sizeof dir, "%s", path);
  if (gg__fsync_path(dirname(dir), 1))
    return gg_err_set(GG_EIO, "%s: cannot sync its folder: %s", path, strerror(errno));
  return 0;
}

/* ---- reading ---- */

static hid_t gg__open_ckpt(const char *path) {
  if (access(path, R_OK) != 0) {
    gg_err_set(GG_ENOINPUT, "%s: cannot open checkpoint: %s", path, strerror(errno));
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    gg_err_set(GG_EDATA, "%s: not an HDF5 checkpoint", path);
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) gg_err_set(GG_EDATA, "%s: cannot open checkpoint (damaged file?)", path);
  return f;
}


int gg_ckpt_read_arch(const char *path, int *widths, int *n_widths, int max_widths,
                      gg_act_t *act, gg_loss_t *loss) {
  hid_t f = gg__open_ckpt(path);
  if (f < 0) return access(path, R_OK) ? GG_ENOINPUT : GG_EDATA;
  int rc = GG_EDATA;
  char s[256];
  if (gg__h5_attr_read_str(f, "format", s, sizeof s) || strcmp(s, GG_CKPT_FORMAT)) {
    gg_err_set(GG_EDATA, "%s: not a gradguard checkpoint (no format attribute)", path);
    goto out;
  }
  hid_t a = H5Aopen(f, "layers", H5P_DEFAULT);
  if (a < 0) {
    gg_err_set(GG_EDATA, "%s: no layers attribute", path);
    goto out;
  }
  hid_t sp = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  int ok = n >= 2 && n <= max_widths && H5Aread(a, H5T_NATIVE_INT, widths) >= 0;
  H5Sclose(sp);
  H5Aclose(a);
  if (!ok) {
    gg_err_set(GG_EDATA, "%s: bad layers attribute", path);
    goto out;
  }
  *n_widths = (int)n;
  int k;
  if (gg__h5_attr_read_str(f, "activation", s, sizeof s) || (k = gg_act_parse(s)) < 0) {
    gg_err_set(GG_EDATA, "%s: bad activation attribute", path);
    goto out;
  }
  *act = (gg_act_t)k;
  if (gg__h5_attr_read_str(f, "loss", s, sizeof s) || (k = gg_loss_parse(s)) < 0) {
    gg_err_set(GG_EDATA, "%s: bad loss attribute", path);
    goto out;
  }
  *loss = (gg_loss_t)k;
  rc = 0;
out:
  H5Fclose(f);
  return rc;
}

/* Read a float dataset whose shape must be exactly dims (rank 1 or 2). */
static int gg__read_f32(hid_t loc, const char *path, const char *name, int rank,
                        const hsize_t *dims, float *out) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
    return gg_err_set(GG_EDATA, "%s: %s is missing", path, name);
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return gg_err_set(GG_EDATA, "%s: cannot open %s", path, name);
  int rc = 0;
  hid_t sp = H5Dget_space(d);
  hsize_t got[2] = {0, 0};
  int r = H5Sget_simple_extent_ndims(sp);
  if (r >= 1 && r <= 2) H5Sget_simple_extent_dims(sp, got, NULL);
  if (r != rank || got[0] != dims[0] || (rank == 2 && got[1] != dims[1])) {
    if (rank == 2)
      rc = gg_err_set(GG_EDATA, "%s: %s is [%llu, %llu] but the model needs [%llu, %llu]", path,
                      name, (unsigned long long)got[0], (unsigned long long)got[1],
                      (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else
      rc = gg_err_set(GG_EDATA, "%s: %s is [%llu] but the model needs [%llu]", path, name,
                      (unsigned long long)got[0], (unsigned long long)dims[0]);
  } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    rc = gg_err_set(GG_EDATA, "%s: cannot read %s (checksum mismatch: the file is corrupted)",
                    path, name);
  }
  H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

int gg_ckpt_read_params(const char *path, const gg_arch_t *arch, float *params) {
  hid_t f = gg__open_ckpt(path);
  if (f < 0) return access(path, R_OK) ? GG_ENOINPUT : GG_EDATA;
  int rc = 0;
  for (int l = 0; l < arch->n_layers && !rc; l++) {
    char name[64];
    hsize_t wd[2] = {(hsize_t)arch->widths[l + 1], (hsize_t)arch->widths[l]};
    size_t woff = arch->off[l], boff = woff + (size_t)wd[0] * (size_t)wd[1];
    snprintf(name, sizeof name, "/model/layer_%02d/weight", l);
    rc = gg__read_f32(f, path, name, 2, wd, params + woff);
    if (rc) break;
    snprintf(name, sizeof name, "/model/layer_%02d/bias", l);
    rc = gg__read_f32(f, path, name, 1, wd, params + boff);
  }
  if (!rc) {
    char name[64];
    snprintf(name, sizeof name, "/model/layer_%02d", arch->n_layers);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0)
      rc = gg_err_set(GG_EDATA, "%s: has more than the %d layers of --layers", path, arch->n_layers);
  }
  H5Fclose(f);
  return rc;
}

int gg_ckpt_read_state(const char *path, const gg_arch_t *arch, gg_optim_t *opt,
                       gg_ckpt_meta_t *meta) {
  hid_t f = gg__open_ckpt(path);
  if (f < 0) return access(path, R_OK) ? GG_ENOINPUT : GG_EDATA;
  int rc = 0;
  int64_t v = 0;
  memset(meta, 0, sizeof *meta);
  if (gg__h5_attr_read_i64(f, "step", &v)) rc = gg_err_set(GG_EDATA, "%s: no step attribute", path);
  else meta->step = v;
  if (!rc && gg__h5_attr_read_i64(f, "epoch", &v) == 0) meta->epoch = v;
  if (!rc && gg__h5_attr_read_i64(f, "samples_seen", &v) == 0) meta->samples_seen = v;
  if (!rc && gg__h5_attr_read_i64(f, "world_size", &v) == 0) meta->world_size = (int)v;
  if (!rc && gg__h5_attr_read_i64(f, "seed", &v) == 0) meta->seed = (uint64_t)v;
  if (!rc && H5Lexists(f, "state", H5P_DEFAULT) > 0) {
    hid_t gs = H5Gopen2(f, "state", H5P_DEFAULT);
    if (gs >= 0) {
      if (gg__h5_attr_read_i64(gs, "batch_in_epoch", &v) == 0) meta->batch_in_epoch = v;
      if (gg__h5_attr_read_i64(gs, "batch", &v) == 0) meta->batch = v;
      if (gg__h5_attr_read_i64(gs, "n_samples", &v) == 0) meta->n_samples = v;
      if (gg__h5_attr_read_i64(gs, "n_skipped", &v) == 0) meta->n_skipped = v;
      if (H5Lexists(gs, "autoclip_history", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(gs, "autoclip_history", H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        meta->autoclip = n > 0 ? malloc((size_t)n * sizeof(double)) : NULL;
        if (n <= 0 || !meta->autoclip ||
            H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, meta->autoclip) < 0) {
          rc = gg_err_set(GG_EDATA, "%s: cannot read /state/autoclip_history (corrupted?)", path);
          free(meta->autoclip);
          meta->autoclip = NULL;
        } else {
          meta->n_autoclip = (size_t)n;
        }
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
      }
      H5Gclose(gs);
    }
  }
  if (!rc && opt && opt->n_slots > 0) {
    char kind[64] = "";
    hid_t go = H5Lexists(f, "optimizer", H5P_DEFAULT) > 0 ? H5Gopen2(f, "optimizer", H5P_DEFAULT) : -1;
    if (go < 0 || gg__h5_attr_read_str(go, "kind", kind, sizeof kind) || strcmp(kind, gg_opt_name(opt->kind))) {
      rc = gg_err_set(GG_EDATA, "%s: optimizer state is for '%s', not --optimizer %s", path,
                      kind[0] ? kind : "none", gg_opt_name(opt->kind));
    } else if (gg__h5_attr_read_i64(go, "t", &v)) {
      rc = gg_err_set(GG_EDATA, "%s: optimizer step count missing", path);
    } else {
      opt->t = v;
    }
    for (int l = 0; !rc && l < arch->n_layers; l++) {
      hsize_t wd[2] = {(hsize_t)arch->widths[l + 1], (hsize_t)arch->widths[l]};
      size_t woff = arch->off[l], boff = woff + (size_t)wd[0] * (size_t)wd[1];
      for (int s = 0; !rc && s < opt->n_slots; s++) {
        char name[128];
        float *st = gg_optim_slot(opt, s);
        snprintf(name, sizeof name, "/optimizer/layer_%02d/weight/%s", l, gg_optim_slot_name(opt, s));
        rc = gg__read_f32(f, path, name, 2, wd, st + woff);
        snprintf(name, sizeof name, "/optimizer/layer_%02d/bias/%s", l, gg_optim_slot_name(opt, s));
        if (!rc) rc = gg__read_f32(f, path, name, 1, wd, st + boff);
      }
    }
    if (go >= 0) H5Gclose(go);
  } else if (!rc && opt) {
    hid_t go = H5Lexists(f, "optimizer", H5P_DEFAULT) > 0 ? H5Gopen2(f, "optimizer", H5P_DEFAULT) : -1;
    if (go >= 0) {
      if (gg__h5_attr_read_i64(go, "t", &v) == 0) opt->t = v;
      H5Gclose(go);
    }
  }
  H5Fclose(f);
  return rc;
}
