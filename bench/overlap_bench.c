/* overlap_bench.c — does reducing the gradient in per-layer buckets,
 * overlapped with the backward pass, beat one allreduce after it here?
 *
 * Issue #4 allows either "one allreduce per step" or "buckets overlapped
 * with the backward pass, if that measures faster here". This program runs
 * the GEMMs of gradguard's training step (the calls of src/nn.c: forward
 * Z = A W^T, then per layer from the top dW = dZ^T A and dA = dZ W) on
 * every rank over one flat parameter and one flat gradient buffer, and
 * times, interleaved step by step:
 *   none     the step's GEMMs alone (what a reduction adds to)
 *   one      backward, then ONE MPI_Allreduce of the whole flat gradient
 *            (what gradguard does on its unsharded path)
 *   buckets  as each layer's dW is done, MPI_Iallreduce of that layer's
 *            block (the top layer first, as the backward finishes them);
 *            MPI_Test on the open requests after every GEMM (Open MPI
 *            progresses non-blocking collectives only inside MPI calls),
 *            MPI_Waitall after the last GEMM
 *   thread   the same buckets handed to a communication thread of the rank
 *            that runs a blocking MPI_Allreduce on each (MPI_THREAD_MULTIPLE,
 *            as PyTorch DDP reduces from a thread of its own)
 * and prints the median ms/step of each on rank 0. Activations are random:
 * only the time matters. Run it like the trainer, e.g.
 *   mpirun -n 2 --bind-to core build/bench/overlap_bench
 *   (and across hosts: tools/netns-cluster.sh, tests/multihost_test.sh)
 *
 * usage: overlap_bench [--layers 784,1024,1024,10] [--batch 256 (global)] [--steps 40]
 */
#include <cblas.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 64

enum { M_NONE, M_ONE, M_BUCKETS, M_THREAD, M_N };
static const char *mode_name[M_N] = {"none", "one", "buckets", "thread"};

typedef struct {
  int L, w[MAX_LAYERS + 1], m; /* layers, widths, local batch */
  size_t off[MAX_LAYERS + 1];  /* layer l's weights and bias at off[l] */
  float *W, *G, **A, **D[2];   /* params, grads, activations, delta buffers */
  MPI_Request req[MAX_LAYERS];
  int n_req;
  /* M_THREAD: a queue of layer blocks for the communication thread */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int queue[MAX_LAYERS], n_queued, n_done, quit;
  MPI_Comm comm; /* the thread's own communicator */
} net_t;

/* M_THREAD: blocking MPI_Allreduce of each queued layer block, in order */
static void *comm_thread(void *arg) {
  net_t *t = arg;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    while (t->n_done == t->n_queued && !t->quit) pthread_cond_wait(&t->cv, &t->mu);
    if (t->quit) break;
    int l = t->queue[t->n_done];
    pthread_mutex_unlock(&t->mu);
    MPI_Allreduce(MPI_IN_PLACE, t->G + t->off[l], (int)(t->off[l + 1] - t->off[l]), MPI_FLOAT,
                  MPI_SUM, t->comm);
    pthread_mutex_lock(&t->mu);
    t->n_done++;
    pthread_cond_broadcast(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

static float *filled(size_t n, unsigned seed) {
  float *p = malloc(n * sizeof *p);
  if (!p) MPI_Abort(MPI_COMM_WORLD, 1);
  for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u + seed) % 2001) * 1e-3f - 1.0f;
  return p;
}

static void progress(net_t *t) {
  for (int i = 0; i < t->n_req; i++) {
    int done;
    MPI_Test(&t->req[i], &done, MPI_STATUS_IGNORE);
  }
}

/* one step of the given mode; the gradient is written (beta 0), as a step
 * that does not accumulate does */
static void step(net_t *t, int mode) {
  const int L = t->L, m = t->m;
  for (int l = 0; l < L; l++) {
    const int in = t->w[l], out = t->w[l + 1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, out, in, 1, t->A[l], in,
                t->W + t->off[l], in, 0, t->A[l + 1], out);
  }
  t->n_req = 0;
  const float *dZ = t->A[L]; /* stands in for dlogits */
  for (int l = L - 1; l >= 0; l--) {
    const int in = t->w[l], out = t->w[l + 1];
    float *dW = t->G + t->off[l], *db = dW + (size_t)out * (size_t)in;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, m, 1, dZ, out, t->A[l], in, 0,
                dW, in);
    memset(db, 0, (size_t)out * sizeof *db);
    for (int r = 0; r < m; r++)
      for (int j = 0; j < out; j++) db[j] += dZ[(size_t)r * (size_t)out + (size_t)j];
    if (mode == M_THREAD) {
      pthread_mutex_lock(&t->mu);
      t->queue[t->n_queued++] = l;
      pthread_cond_broadcast(&t->cv);
      pthread_mutex_unlock(&t->mu);
    }
    if (mode == M_BUCKETS) {
      MPI_Iallreduce(MPI_IN_PLACE, dW, (int)(t->off[l + 1] - t->off[l]), MPI_FLOAT, MPI_SUM,
                     MPI_COMM_WORLD, &t->req[t->n_req++]);
      progress(t);
    }
    if (l > 0) {
      float *dA = t->D[l & 1][l]; /* (m, in) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, in, out, 1, dZ, out,
                  t->W + t->off[l], in, 0, dA, in);
      if (mode == M_BUCKETS) progress(t);
      dZ = dA;
    }
  }
  if (mode == M_BUCKETS) MPI_Waitall(t->n_req, t->req, MPI_STATUSES_IGNORE);
  if (mode == M_THREAD) {
    pthread_mutex_lock(&t->mu);
    while (t->n_done < t->n_queued) pthread_cond_wait(&t->cv, &t->mu);
    t->n_done = t->n_queued = 0;
    pthread_mutex_unlock(&t->mu);
  }
  if (mode == M_ONE)
    MPI_Allreduce(MPI_IN_PLACE, t->G, (int)t->off[L], MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  openblas_set_num_threads(1);
  const char *layers = "784,1024,1024,10";
  int batch = 256, steps = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--layers")) layers = argv[i + 1];
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    else {
      if (!rank) fprintf(stderr, "overlap_bench: unknown flag %s\n", argv[i]);
      MPI_Abort(MPI_COMM_WORLD, 64);
    }
  }
  net_t t = {0};
  int nw = 0;
  for (char *p = (char *)layers, *e; nw <= MAX_LAYERS; p = e + 1) {
    t.w[nw++] = (int)strtol(p, &e, 10);
    if (*e != ',') break;
  }
  t.L = nw - 1;
  if (t.L < 1 || batch % size || steps < 3) {
    if (!rank) fprintf(stderr, "overlap_bench: bad --layers/--batch/--steps\n");
    MPI_Abort(MPI_COMM_WORLD, 64);
  }
  t.m = batch / size;
  for (int l = 0; l < t.L; l++)
    t.off[l + 1] = t.off[l] + (size_t)t.w[l + 1] * (size_t)(t.w[l] + 1);
  t.W = filled(t.off[t.L], 1);
  t.G = filled(t.off[t.L], 2);
  t.A = malloc((size_t)(t.L + 1) * sizeof *t.A);
  t.D[0] = malloc((size_t)t.L * sizeof *t.D[0]);
  t.D[1] = malloc((size_t)t.L * sizeof *t.D[1]);
  for (int l = 0; l <= t.L; l++) t.A[l] = filled((size_t)t.m * (size_t)t.w[l], 3 + (unsigned)l);
  for (int l = 0; l < t.L; l++) {
    t.D[0][l] = filled((size_t)t.m * (size_t)t.w[l], 7);
    t.D[1][l] = filled((size_t)t.m * (size_t)t.w[l], 11);
  }

  int n_modes = provided == MPI_THREAD_MULTIPLE ? M_N : M_THREAD;
  pthread_t th;
  pthread_mutex_init(&t.mu, NULL);
  pthread_cond_init(&t.cv, NULL);
  MPI_Comm_dup(MPI_COMM_WORLD, &t.comm);
  if (n_modes == M_N) pthread_create(&th, NULL, comm_thread, &t);
  else if (!rank) printf("note: no MPI_THREAD_MULTIPLE: the thread mode is left out\n");
  double *ms[M_N];
  for (int k = 0; k < M_N; k++) ms[k] = calloc((size_t)steps, sizeof *ms[k]);
  for (int k = 0; k < n_modes; k++) step(&t, k); /* warm up */
  for (int s = 0; s < steps; s++)
    for (int k = 0; k < n_modes; k++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      step(&t, k);
      double dt = MPI_Wtime() - t0, mx;
      MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* the slowest rank */
      ms[k][s] = 1e3 * mx;
    }
  if (!rank) {
    printf("overlap_bench: %s, global batch %d on %d ranks (%d each), %zu parameters, %d steps "
           "each, interleaved; median ms/step (slowest rank)\n",
           layers, batch, size, t.m, t.off[t.L], steps);
    double med[M_N] = {0};
    for (int k = 0; k < n_modes; k++) {
      qsort(ms[k], (size_t)steps, sizeof *ms[k], cmp_d);
      med[k] = ms[k][steps / 2];
    }
    for (int k = 0; k < n_modes; k++)
      printf("  %-8s %8.3f ms  (reduction %+.3f ms)\n", mode_name[k], med[k], med[k] - med[M_NONE]);
    printf("OVERLAP none=%.3f one=%.3f buckets=%.3f thread=%.3f\n", med[M_NONE], med[M_ONE],
           med[M_BUCKETS], med[M_THREAD]);
  }
  for (int l = 0; l <= t.L; l++) free(t.A[l]);
  for (int l = 0; l < t.L; l++) free(t.D[0][l]), free(t.D[1][l]);
  free(t.A), free(t.D[0]), free(t.D[1]), free(t.W), free(t.G);
  for (int k = 0; k < M_N; k++) free(ms[k]);
  if (n_modes == M_N) {
    pthread_mutex_lock(&t.mu);
    t.quit = 1;
    pthread_cond_broadcast(&t.cv);
    pthread_mutex_unlock(&t.mu);
    pthread_join(th, NULL);
  }
  MPI_Comm_free(&t.comm);
  MPI_Finalize();
  return 0;
}
