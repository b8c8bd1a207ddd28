/* statsfile.h — RUN/stats.h5, the gradient statistics on disk (contract:
 * "Statistics file"). Rank 0 only; NOT collective.
 *
 * Datasets are chunked, extendible along the first axis, shuffle+deflate
 * compressed, each with `units`/`description` attributes; root attribute
 * `layer_names`. The file is written in SWMR mode (libver latest, then
 * H5Fstart_swmr_write), so h5py (swmr=True) can read it while the job
 * runs, and flushed at least every few seconds, so a crash loses only the
 * last interval. Plain readers (h5dump, h5ls, h5py without swmr) open it
 * only once it is closed, or after `h5clear -s` if the writer died. A
 * second writer on the same file is refused (file lock). Opening for a
 * resume drops every row (and histogram) whose step is past the resumed
 * step, so there is exactly one row per step.
 */
#ifndef GRADGUARD_STATSFILE_H
#define GRADGUARD_STATSFILE_H

#include <stdint.h>

#include "gradguard/stats.h"

typedef struct {
  int64_t file;     /* hid_t of the open file, -1 if closed */
  int n_layers;
  int64_t rows;     /* rows on disk */
  int64_t hists;    /* histograms on disk */
  int64_t last_step;      /* step of the last row on disk, -1 if none */
  int64_t last_hist_step; /* step of the last histogram on disk, -1 if none */
  int64_t d[32];    /* hid_t of each dataset (private order) */
  double last_flush;/* CLOCK_MONOTONIC seconds of the last flush (or the open) */
  int fd;           /* the file's descriptor (for fsync), -1 if not known */
  char path[4096];  /* for error messages */
} gg_statsfile_t;

/* Create path (resume_step < 0: a new file, replacing any old one) or open
 * it for appending after a resume at resume_step (rows with step >
 * resume_step are dropped; a missing file is created). layer_names has
 * n_layers entries. GG_ECANTCREAT / GG_EIO / GG_EDATA (an existing file
 * whose layer count differs). */
int gg_statsfile_open(gg_statsfile_t *f, const char *path, int n_layers,
                      const char *const *layer_names, int64_t resume_step);

/* Append the buffered rows and histograms of s (the caller then calls
 * gg_stats_clear). Steps must increase, past the last on disk (GG_EINTERNAL
 * otherwise: there is one row per step). GG_EIO on failure. */
int gg_statsfile_append(gg_statsfile_t *f, const gg_stats_t *s);

/* Make everything appended so far visible to readers and durable
 * (H5Fflush + fsync: milliseconds; meant for every ~2 s). */
int gg_statsfile_flush(gg_statsfile_t *f);

/* Flush and close; safe on a closed or zeroed-with-file=-1 struct. */
int gg_statsfile_close(gg_statsfile_t *f);

#endif
