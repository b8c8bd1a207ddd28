/* comm.c — MPI helpers (see comm.h). */
#define _GNU_SOURCE /* sched_getaffinity */
#include "gradguard/comm.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gradguard/error.h"

int gg_comm_init(gg_comm_t *c, MPI_Comm comm) {
  memset(c, 0, sizeof *c);
  c->comm = MPI_COMM_NULL;
  c->node = MPI_COMM_NULL;
  if (MPI_Comm_dup(comm, &c->comm) != MPI_SUCCESS) return gg_err_set(GG_ECOMM, "MPI_Comm_dup failed");
  MPI_Comm_rank(c->comm, &c->rank);
  MPI_Comm_size(c->comm, &c->size);
  if (MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->node) !=
      MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Comm_split_type failed");
  MPI_Comm_rank(c->node, &c->local_rank);
  MPI_Comm_size(c->node, &c->local_size);
  int len = 0;
  MPI_Get_processor_name(c->host, &len);
  return 0;
}

void gg_comm_free(gg_comm_t *c) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) {
    if (c->node != MPI_COMM_NULL && c->node != 0) MPI_Comm_free(&c->node);
    if (c->comm != MPI_COMM_NULL && c->comm != 0) MPI_Comm_free(&c->comm);
  }
  c->node = c->comm = MPI_COMM_NULL;
}

int gg_comm_agree(const gg_comm_t *c, int status, int *failed_rank) {
  /* MINLOC over (failing rank or INT_MAX, code): the lowest failing rank
   * wins and carries its code along. */
  struct { int val, loc; } in = {status ? c->rank : INT_MAX, status}, out;
  if (MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MINLOC, c->comm) != MPI_SUCCESS) {
    if (failed_rank) *failed_rank = c->rank;
    return gg_err_set(GG_ECOMM, "MPI_Allreduce failed while agreeing on a status");
  }
  if (failed_rank) *failed_rank = out.val == INT_MAX ? -1 : out.val;
  return out.val == INT_MAX ? 0 : out.loc;
}

int gg_comm_allreduce_sum(const gg_comm_t *c, float *buf, size_t n) {
  /* MPI counts are int: sum in pieces for buffers beyond 2^31 elements. */
  while (n > 0) {
    int cnt = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    if (MPI_Allreduce(MPI_IN_PLACE, buf, cnt, MPI_FLOAT, MPI_SUM, c->comm) != MPI_SUCCESS)
      return gg_err_set(GG_ECOMM, "MPI_Allreduce of the gradient failed");
    buf += cnt;
    n -= (size_t)cnt;
  }
  return 0;
}

int gg_comm_tree_sum(const gg_comm_t *c, float *buf, float *scratch, size_t n) {
  for (int bit = 1; bit < c->size; bit <<= 1) {
    int peer = c->rank ^ bit;
    for (size_t off = 0; off < n; off += INT_MAX) {
      int cnt = n - off > (size_t)INT_MAX ? INT_MAX : (int)(n - off);
      if (MPI_Sendrecv(buf + off, cnt, MPI_FLOAT, peer, 77, scratch + off, cnt, MPI_FLOAT, peer,
                       77, c->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return gg_err_set(GG_ECOMM, "MPI_Sendrecv with rank %d failed in the tree sum", peer);
    }
    for (size_t i = 0; i < n; i++) buf[i] += scratch[i];
  }
  return 0;
}

int gg_comm_reduce_scatter_sum(const gg_comm_t *c, float *buf, const int *counts, const int *displs,
                               float *scratch, float **pending) {
  const int P = c->size, r = c->rank;
  *pending = NULL;
  /* Pairwise exchange: in round k, send the block of rank r+k, receive
   * rank r-k's part of ours (a permutation: no two ranks wait on each
   * other). Each rank moves (P-1)/P of the buffer, as in a ring. */
  for (int k = 1; k < P; k++) {
    int dst = (r + k) % P, src = (r - k + P) % P;
    if (MPI_Sendrecv(buf + displs[dst], counts[dst], MPI_FLOAT, dst, 78, scratch, counts[r],
                     MPI_FLOAT, src, 78, c->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return gg_err_set(GG_ECOMM, "MPI_Sendrecv with ranks %d/%d failed in the reduce-scatter",
                        dst, src);
    if (k < P - 1) {
      float *own = buf + displs[r];
      for (int i = 0; i < counts[r]; i++) own[i] += scratch[i];
    } else {
      *pending = scratch;
    }
  }
  return 0;
}

int gg_comm_allgather(const gg_comm_t *c, float *buf, const int *counts, const int *displs) {
  if (c->size == 1) return 0;
  if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, c->comm) !=
      MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Allgatherv of the parameters failed");
  return 0;
}

int gg_comm_gather0(const gg_comm_t *c, float *buf, const int *counts, const int *displs) {
  if (c->size == 1) return 0;
  int rc = c->rank == 0
               ? MPI_Gatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, 0,
                             c->comm)
               : MPI_Gatherv(buf + displs[c->rank], counts[c->rank], MPI_FLOAT, NULL, NULL, NULL,
                             MPI_FLOAT, 0, c->comm);
  return rc == MPI_SUCCESS ? 0 : gg_err_set(GG_ECOMM, "MPI_Gatherv to rank 0 failed");
}

int gg_comm_allreduce_sum_u32(const gg_comm_t *c, uint32_t *buf, size_t n) {
  if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_UINT32_T, MPI_SUM, c->comm) != MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Allreduce failed");
  return 0;
}

int gg_comm_allreduce_sum_d(const gg_comm_t *c, double *buf, size_t n) {
  if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, c->comm) != MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Allreduce failed");
  return 0;
}

int gg_comm_max_loc(const gg_comm_t *c, double v, double *max, int *rank) {
  struct {
    double v;
    int rank;
  } in = {v, c->rank}, out;
  if (MPI_Allreduce(&in, &out, 1, MPI_DOUBLE_INT, MPI_MAXLOC, c->comm) != MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Allreduce (MAXLOC) failed");
  *max = out.v;
  *rank = out.rank;
  return 0;
}

/* FNV-1a over the bytes; collisions between differing replicas are
 * astronomically unlikely and the check is a diagnostic, not a proof. */
static uint64_t gg__fnv1a(const void *buf, size_t n) {
  const unsigned char *p = buf;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

int gg_comm_identical(const gg_comm_t *c, const void *buf, size_t n) {
  /* min of (h, ~h) over ranks gives min h and ~max h in one allreduce */
  uint64_t h = gg__fnv1a(buf, n), v[2] = {h, ~h};
  MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MIN, c->comm);
  return v[0] == ~v[1];
}

int gg_comm_hosts(const gg_comm_t *c, char *buf, size_t len) {
  const int P = c->size, W = MPI_MAX_PROCESSOR_NAME;
  char *all = c->rank == 0 ? malloc((size_t)P * (size_t)W) : NULL;
  /* rank 0 without room for the names: every rank skips the gather alike */
  int ok = c->rank != 0 || all != NULL;
  if (MPI_Bcast(&ok, 1, MPI_INT, 0, c->comm) != MPI_SUCCESS) {
    free(all);
    return gg_err_set(GG_ECOMM, "MPI_Bcast failed while naming the hosts");
  }
  if (!ok) return 0; /* buf keeps what the caller put there */
  char mine[MPI_MAX_PROCESSOR_NAME];
  memset(mine, 0, sizeof mine);
  snprintf(mine, sizeof mine, "%s", c->host);
  if (MPI_Gather(mine, W, MPI_CHAR, all, W, MPI_CHAR, 0, c->comm) != MPI_SUCCESS) {
    free(all);
    return gg_err_set(GG_ECOMM, "MPI_Gather of the host names failed");
  }
  if (c->rank != 0) return 0;
  /* distinct names in rank order, with their rank counts (name i is
   * all + first[i] * W) */
  int *first = malloc((size_t)P * sizeof *first), *count = calloc((size_t)P, sizeof *count);
  int n_hosts = 0;
  if (!first || !count) {
    free(first);
    free(count);
    free(all);
    snprintf(buf, len, "%s", c->host);
    return 0;
  }
  for (int r = 0; r < P; r++) {
    int h = 0;
    while (h < n_hosts && strcmp(all + (size_t)first[h] * (size_t)W, all + (size_t)r * (size_t)W) != 0) h++;
    if (h == n_hosts) first[n_hosts++] = r;
    count[h]++;
  }
  if (n_hosts == 1) {
    snprintf(buf, len, "%s", all);
  } else {
    size_t p = (size_t)snprintf(buf, len, "%d hosts (", n_hosts);
    for (int h = 0; h < n_hosts && h < 4 && p < len; h++)
      p += (size_t)snprintf(buf + p, len - p, "%s%s x%d", h ? ", " : "", all + (size_t)first[h] * (size_t)W,
                            count[h]);
    if (p < len) snprintf(buf + p, len - p, "%s)", n_hosts > 4 ? ", ..." : "");
  }
  free(first);
  free(count);
  free(all);
  return 0;
}

int gg_comm_default_threads(const gg_comm_t *c) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  int mine = (int)online;
  if (sched_getaffinity(0, sizeof set, &set) == 0) mine = CPU_COUNT(&set);
  int share = (int)(online / (c->local_size > 0 ? c->local_size : 1));
  int t = mine < share ? mine : share;
  return t < 1 ? 1 : t;
}

/* The window's backing file lives in tmpfs; a full tmpfs would end the job
 * with SIGBUS on first touch, so ask first: 0 if `bytes` do not fit. */
static int gg__shm_room(size_t bytes) {
  struct statvfs st;
  if (statvfs("/dev/shm", &st) != 0) return 1; /* not there: Open MPI picks its own place */
  return (double)st.f_bavail * (double)st.f_frsize >= 1.25 * (double)bytes;
}

int gg_comm_shm_init(const gg_comm_t *c, gg_shm_t *s, size_t n_params, size_t n_grads, int enable) {
  memset(s, 0, sizeof *s);
  s->win = MPI_WIN_NULL;
  if (c->size < 2 || c->local_size != c->size) return 0;
  /* rank 0's segment: the parameters, then its gradient; the other ranks'
   * segments: their gradient. Each part starts on a 64-byte line of its own
   * and ends before the next segment begins, so no two ranks write one cache
   * line (alloc_shared_noncontig lets Open MPI place segments apart, too). */
  const size_t pad = (n_params + 15) / 16 * 16;
  /* + 16: Open MPI aligns a segment to 8 bytes only; we align to 64 */
  const size_t mine = n_grads + (c->rank == 0 ? pad : 0) + 16;
  const size_t node_bytes = (pad + (size_t)c->size * n_grads) * sizeof(float);
  int want = enable && gg__shm_room(node_bytes) && node_bytes / sizeof(float) < (size_t)INT_MAX;
  /* one rank's "no room" is every rank's: the same branch everywhere */
  int any_no = !want;
  if (MPI_Allreduce(MPI_IN_PLACE, &any_no, 1, MPI_INT, MPI_MAX, c->comm) != MPI_SUCCESS)
    return gg_err_set(GG_ECOMM, "MPI_Allreduce failed before the shared window");
  if (any_no) return 0;
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  float *base = NULL;
  /* a failed allocation returns (instead of ending the job) and is agreed */
  MPI_Comm_set_errhandler(c->node, MPI_ERRORS_RETURN);
  int st = MPI_Win_allocate_shared((MPI_Aint)(mine * sizeof(float)), (int)sizeof(float), info, c->node,
                                   &base, &s->win);
  MPI_Comm_set_errhandler(c->node, MPI_ERRORS_ARE_FATAL);
  MPI_Info_free(&info);
  int rc = st == MPI_SUCCESS ? 0 : gg_err_set(GG_ENOMEM, "MPI_Win_allocate_shared of %zu bytes failed", mine * sizeof(float));
  if (!rc && !(s->grads = calloc((size_t)c->size, sizeof *s->grads))) rc = gg_err_set(GG_ENOMEM, "out of memory");
  for (int r = 0; !rc && r < c->size; r++) {
    MPI_Aint bytes = 0;
    int unit = 0;
    float *p = NULL;
    if (MPI_Win_shared_query(s->win, r, &bytes, &unit, &p) != MPI_SUCCESS || !p)
      rc = gg_err_set(GG_ECOMM, "MPI_Win_shared_query of rank %d failed", r);
    else {
      p = (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
      if (r == 0) s->params = p, s->grads[0] = p + pad;
      else s->grads[r] = p;
    }
  }
  int agreed = gg_comm_agree(c, rc, NULL);
  if (agreed) {
    gg_comm_shm_free(s);
    return agreed;
  }
  MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win);
  memset(base, 0, mine * sizeof(float));
  s->active = 1;
  return gg_comm_shm_sync(c, s);
}

void gg_comm_shm_fence(gg_shm_t *s) {
  if (s->active) MPI_Win_sync(s->win);
}

int gg_comm_shm_sync(const gg_comm_t *c, gg_shm_t *s) {
  /* the passive-target pattern of MPI-3's unified model: sync (a memory
   * barrier for this process's stores), barrier, sync (for the loads) */
  gg_comm_shm_fence(s);
  if (MPI_Barrier(c->node) != MPI_SUCCESS) return gg_err_set(GG_ECOMM, "MPI_Barrier of the node failed");
  gg_comm_shm_fence(s);
  return 0;
}

void gg_comm_shm_free(gg_shm_t *s) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin && s->win != MPI_WIN_NULL && s->win != 0) {
    if (s->active) MPI_Win_unlock_all(s->win);
    MPI_Win_free(&s->win);
  }
  free(s->grads);
  memset(s, 0, sizeof *s);
  s->win = MPI_WIN_NULL;
}
