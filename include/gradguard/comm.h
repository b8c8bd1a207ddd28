/* comm.h — the MPI side of gradguard: who we are, agreeing on errors, and
 * summing the flat gradient buffer.
 *
 * Every function here is COLLECTIVE over comm->comm unless it says
 * otherwise: all ranks must call it in the same order.
 */
#ifndef GRADGUARD_COMM_H
#define GRADGUARD_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  MPI_Comm comm;      /* duplicate of the communicator given to init */
  int rank, size;
  MPI_Comm node;      /* ranks sharing this node (MPI_COMM_TYPE_SHARED) */
  int local_rank, local_size;
  char host[MPI_MAX_PROCESSOR_NAME];
} gg_comm_t;

/* Collective. Duplicates `comm` (so library traffic never mixes with the
 * caller's) and finds the node-local ranks. */
int gg_comm_init(gg_comm_t *c, MPI_Comm comm);
/* Collective. Safe on a zeroed struct. */
void gg_comm_free(gg_comm_t *c);

/* Collective agreement on a status: every rank passes its own code (0 or
 * GG_E*); all ranks return the code of the LOWEST failing rank (0 if none)
 * and, if failed_rank != NULL, that rank's number (-1 if none). Use it at
 * the end of every fallible step so all ranks take the same branch. */
int gg_comm_agree(const gg_comm_t *c, int status, int *failed_rank);

/* Collective. In-place sum of n floats over all ranks (the gradient
 * allreduce). Returns 0 or GG_ECOMM. */
int gg_comm_allreduce_sum(const gg_comm_t *c, float *buf, size_t n);

/* Collective. In-place sum of n floats whose pairing is a fixed binary
 * tree over the ranks: recursive doubling on MPI_Sendrecv, where stage k
 * adds the buffers of ranks r and r ^ 2^k. With rank r holding the tree sum
 * of an aligned block of micro-shards, the result is the same bits for any
 * power-of-two rank count (float addition is commutative, so a + b and
 * b + a agree; only the pairing matters). size must be a power of two.
 * scratch has n floats. Returns 0 or GG_ECOMM. */
int gg_comm_tree_sum(const gg_comm_t *c, float *buf, float *scratch, size_t n);

/* Collective. Reduce-scatter of the sum of buf over ranks: rank r's block
 * is buf[displs[r] .. + counts[r]) (the blocks tile the buffer in rank
 * order). On return the block holds the sum of every rank's block EXCEPT
 * one last addend, left in scratch (counts[r] floats) with *pending =
 * scratch, so that the caller can add it in a pass it makes anyway (NULL
 * on one rank: nothing to add). Other blocks of buf are left as they were.
 * Returns 0 or GG_ECOMM. */
int gg_comm_reduce_scatter_sum(const gg_comm_t *c, float *buf, const int *counts, const int *displs,
                               float *scratch, float **pending);

/* Collective. In-place all-gather: rank r contributes buf's block r (as
 * above) and receives all the others. */
int gg_comm_allgather(const gg_comm_t *c, float *buf, const int *counts, const int *displs);

/* Collective. Gather every rank's block of buf into rank 0's buf (the other
 * ranks' buffers are unchanged). */
int gg_comm_gather0(const gg_comm_t *c, float *buf, const int *counts, const int *displs);

/* Collective. In-place sum of n uint32 (histograms). */
int gg_comm_allreduce_sum_u32(const gg_comm_t *c, uint32_t *buf, size_t n);

/* Collective. In-place sum of n doubles. */
int gg_comm_allreduce_sum_d(const gg_comm_t *c, double *buf, size_t n);

/* Collective. The largest v over the ranks into *max, and the lowest rank
 * holding it into *rank (MPI_MAXLOC). */
int gg_comm_max_loc(const gg_comm_t *c, double v, double *max, int *rank);

/* Collective. 1 if buf (n bytes) is bitwise identical on every rank. */
int gg_comm_identical(const gg_comm_t *c, const void *buf, size_t n);

/* Collective. On rank 0, buf gets where the ranks run: "HOST" when they
 * share one node, else "N hosts (h1 xR1, h2 xR2, ...)" (the first 4 in
 * rank order). Other ranks' buf is untouched, and so is rank 0's if it
 * has no memory for the names. */
int gg_comm_hosts(const gg_comm_t *c, char *buf, size_t len);

/* Default BLAS threads of this rank: the CPUs this process may use on its
 * node divided by the ranks on the node, at least 1. Not collective. */
int gg_comm_default_threads(const gg_comm_t *c);

/* Node-shared buffers (MPI-3 shared memory), for a sharded update whose
 * ranks all run on one node: ONE parameter buffer for the node, which every
 * rank reads and each rank updates in its own rows, and one gradient buffer
 * per rank that the other ranks of the node read directly. The step then
 * moves no gradient or parameter bytes through MPI: a rank sums its rows of
 * the gradient from the others' buffers in the pass that measures them, and
 * the all-gather of the weights becomes a barrier. */
typedef struct {
  MPI_Win win;
  int active;           /* 1 once gg_comm_shm_init succeeded */
  float *params;        /* (n_params) the node's parameters */
  float **grads;        /* (size) rank r's gradient buffer, n_grads floats each */
} gg_shm_t;
/* Collective. Allocates the window when every rank of c is on one node,
 * every rank passes enable = 1 and /dev/shm has room (else returns 0 with
 * s->active = 0: the caller keeps its MPI path); the buffers are zeroed.
 * Every rank returns the same code (a failure on one rank is agreed). */
int gg_comm_shm_init(const gg_comm_t *c, gg_shm_t *s, size_t n_params, size_t n_grads, int enable);
/* Collective over the node. A barrier that also orders memory: what any
 * rank wrote to the window before it is visible to every rank after it. */
int gg_comm_shm_sync(const gg_comm_t *c, gg_shm_t *s);
/* Not collective. A memory fence for the window (MPI_Win_sync), for when
 * another collective is the ordering point: fence, collective, fence. No-op
 * when s is not active. */
void gg_comm_shm_fence(gg_shm_t *s);
/* Collective. Frees the window; safe on a zeroed struct. */
void gg_comm_shm_free(gg_shm_t *s);
#endif
