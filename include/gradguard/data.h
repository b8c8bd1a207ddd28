/* data.h — HDF5 dataset files (contract: /X float32 (N, D); /y int32 (N)
 * class indices or float32 (N) / (N, K)) and the sampler that deals out
 * global batches.
 *
 * The whole file is loaded and validated: ranks, types, matching N, finite
 * values, labels >= 0. Datasets stored contiguous and unfiltered as
 * little-endian float32 / int32 (gg-data writes them so) are mapped
 * read-only instead of read: the ranks of a node share one copy in the page
 * cache. Others (chunked, compressed, other types) are read into memory.
 * The arrays are read-only either way. Whether it fits a network is a
 * separate check (gg_data_check_fit) so that gg-data info can read any file.
 *
 * Batches: epoch e uses the permutation of stream GG_STREAM_SHUFFLE(e) of
 * --seed; global batch b of the epoch is perm[b*B .. (b+1)*B) and rank r of
 * P takes the slice [r*B/P, (r+1)*B/P) of it, so the samples of every global
 * batch depend on the seed and the epoch only. A last partial batch
 * (N mod B samples) is dropped, as with PyTorch's drop_last=True; every
 * epoch has floor(N / B) steps.
 */
#ifndef GRADGUARD_DATA_H
#define GRADGUARD_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "gradguard/nn.h"

typedef struct {
  size_t n;          /* samples N */
  int d;             /* input width D */
  int k;             /* label width: 1 for class indices or (N) floats, K for (N, K) */
  int int_labels;    /* 1: /y is int32 class indices */
  int max_label;     /* with int_labels: largest class index in the file */
  float *X;          /* (N, D) */
  float *y;          /* (N, k) when !int_labels, else NULL */
  int32_t *labels;   /* (N) when int_labels, else NULL */
  void *map_base[2]; /* mmap of X / of y or labels (NULL: malloc'ed) */
  size_t map_len[2];
} gg_data_t;

/* Read and validate. GG_ENOINPUT if the file is missing/unreadable or not
 * HDF5, GG_EDATA if malformed (message names the file and the dataset). */
int gg_data_load(gg_data_t *data, const char *path);

/* Does the data fit the network? D == widths[0]; softmax_ce needs int
 * labels < K; mse/bce need float targets with k == K (bce: in [0, 1]).
 * GG_EDATA with a message naming path, dataset and --layers. */
int gg_data_check_fit(const gg_data_t *data, const gg_arch_t *arch, const char *path);

/* Safe on a zeroed struct. */
void gg_data_free(gg_data_t *data);

/* Write a dataset file (gg-data, tests): X (n, d); labels (n) int32 if
 * labels != NULL, else y (n, k) float32 (stored as (n) when k == 1 and
 * y_1d). Overwrites path. GG_ECANTCREAT / GG_EIO on failure. */
int gg_data_write(const char *path, size_t n, int d, const float *X, int k,
                  const float *y, const int32_t *labels, int y_1d);
/* The same with a choice of layout: deflate 0 writes contiguous datasets
 * (gg_data_write), 1..9 chunks of about 1 MiB with shuffle + deflate at that
 * level. GG_EUSAGE for n < 1, d < 1 or a level outside 0..9. */
int gg_data_write_ex(const char *path, size_t n, int d, const float *X, int k,
                     const float *y, const int32_t *labels, int y_1d, int deflate);

typedef struct {
  size_t n;          /* samples in the dataset */
  long batch;        /* global batch B */
  long steps_per_epoch; /* floor(n / B) */
  uint64_t seed;
  long epoch;        /* epoch whose permutation is in perm, -1 none */
  uint32_t *perm;    /* (n) */
} gg_sampler_t;

/* GG_EUSAGE if batch > n or batch < 1. */
int gg_sampler_init(gg_sampler_t *s, size_t n, long batch, uint64_t seed);
void gg_sampler_free(gg_sampler_t *s);

/* Indices of rank `rank`'s slice of global batch `b` of epoch `epoch`
 * (the permutation is computed when the epoch changes): returns a pointer
 * into perm of length batch / n_ranks. n_ranks must divide batch. */
const uint32_t *gg_sampler_slice(gg_sampler_t *s, long epoch, long b, int rank,
                                 int n_ranks);

/* Gather rows idx[0..m) into X (m, D) and targets (m, k) or labels (m). */
void gg_data_gather(const gg_data_t *data, const uint32_t *idx, int m, float *X,
                    float *targets, int32_t *labels);

#endif
