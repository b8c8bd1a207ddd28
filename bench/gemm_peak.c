/* gemm_peak.c — OpenBLAS's best cblas_sgemm speed on exactly the GEMM shapes
 * of one gradguard training step, the "peak" that bench/run_bench.sh divides
 * gradguard's achieved GEMM FLOP/s by.
 *
 * For a network D,H1,...,K and a per-rank batch n, gradguard's step calls
 * (row-major, src/nn.c), for every layer l with widths in -> out:
 *   forward  Z  (n, out)  = A (n, in) W^T        NoTrans/Trans   M=n   N=out K=in
 *   dW       dW (out, in) = dZ^T (out, n) A      Trans/NoTrans   M=out N=in  K=n
 *   dX       dA (n, in)   = dZ (n, out) W        NoTrans/NoTrans M=n   N=in  K=out
 * with dX skipped for the first layer (nobody needs the input's gradient).
 * Each GEMM costs 2*M*N*K FLOPs. Every shape is timed alone, alpha 1, beta 0,
 * with warm operands, and the best of its repeats is kept; the peak of the
 * whole step is sum(FLOPs) / sum(best times), i.e. the step's GEMMs run back
 * to back at their best. The BLAS runs on one thread (openblas_set_num_threads).
 *
 * Output: human-readable lines, then one machine-readable line
 *   GEMM_PEAK flops=F seconds=S gflops=G
 * that run_bench.sh parses.
 *
 * usage: gemm_peak [--layers 784,1024,1024,10] [--batch 256] [--reps 20]
 *                  [--min-time 0.2] [--threads 1]
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WIDTHS 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 64-byte aligned buffer of n floats, uniform in [-1, 1) from a fixed LCG. */
static float *rand_buf(size_t n, uint64_t *state) {
  float *p = NULL;
  if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof *p)) return NULL;
  for (size_t i = 0; i < n; i++) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = (float)((double)(*state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
  }
  return p;
}

typedef struct {
  const char *kind; /* "fwd", "dW", "dX" */
  enum CBLAS_TRANSPOSE ta, tb;
  int M, N, K, lda, ldb, ldc;
} shape_t;

/* Best wall time of one GEMM over at least `reps` repeats and `min_time` s. */
static double best_time(const shape_t *s, const float *A, const float *B, float *C, int reps,
                        double min_time) {
  double best = 1e30, start = now();
  /* one untimed call: page faults, OpenBLAS buffers, caches */
  cblas_sgemm(CblasRowMajor, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->lda, B, s->ldb, 0.0f, C,
              s->ldc);
  for (int r = 0; r < reps || now() - start < min_time; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->lda, B, s->ldb, 0.0f,
                C, s->ldc);
    double dt = now() - t0;
    if (dt < best) best = dt;
    if (r > 100000) break;
  }
  return best;
}

static int parse_widths(const char *s, int *w, int max) {
  int n = 0;
  const char *p = s;
  while (*p) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0 || v > 1000000 || n == max) return -1;
    w[n++] = (int)v;
    if (*end == ',') end++;
    else if (*end) return -1;
    p = end;
  }
  return n >= 2 ? n : -1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: gemm_peak [--layers D,H1,...,K] [--batch N] [--reps R] [--min-time S] "
          "[--threads T]\n"
          "  Best-of-R cblas_sgemm time of each GEMM of one gradguard step (forward\n"
          "  NoTrans/Trans, dW Trans/NoTrans, dX NoTrans/NoTrans; no dX for layer 0)\n"
          "  at per-rank batch N. Defaults: --layers 784,1024,1024,10 --batch 256\n"
          "  --reps 20 --min-time 0.2 --threads 1.\n");
}

int main(int argc, char **argv) {
  int widths[MAX_WIDTHS], nw = 4, batch = 256, reps = 20, threads = 1;
  double min_time = 0.2;
  widths[0] = 784, widths[1] = 1024, widths[2] = 1024, widths[3] = 10;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
    if (!v) return usage(stderr), 64;
    if (!strcmp(a, "--layers")) {
      if ((nw = parse_widths(v, widths, MAX_WIDTHS)) < 0)
        return fprintf(stderr, "gemm_peak: bad --layers '%s'\n", v), 64;
    } else if (!strcmp(a, "--batch")) batch = atoi(v);
    else if (!strcmp(a, "--reps")) reps = atoi(v);
    else if (!strcmp(a, "--min-time")) min_time = atof(v);
    else if (!strcmp(a, "--threads")) threads = atoi(v);
    else return usage(stderr), 64;
    i++;
  }
  if (batch <= 0 || reps <= 0 || threads <= 0 || min_time < 0)
    return fprintf(stderr, "gemm_peak: --batch, --reps, --threads must be > 0\n"), 64;

  openblas_set_num_threads(threads);
  const char *ct = getenv("OPENBLAS_CORETYPE");
  printf("openblas: config '%s', core '%s', OPENBLAS_CORETYPE=%s, threads %d\n",
         openblas_get_config(), openblas_get_corename(), ct ? ct : "(unset)", threads);

  /* Largest operand sizes, allocated once and reused by every shape. */
  size_t maxw = 0;
  for (int l = 0; l < nw; l++)
    if ((size_t)widths[l] > maxw) maxw = (size_t)widths[l];
  size_t nb = (size_t)batch;
  size_t big = maxw * maxw > nb * maxw ? maxw * maxw : nb * maxw;
  uint64_t st = 42;
  float *A = rand_buf(big, &st), *B = rand_buf(big, &st), *C = rand_buf(big, &st);
  if (!A || !B || !C) return fprintf(stderr, "gemm_peak: out of memory\n"), 70;

  printf("%-5s %-4s %-7s %6s %6s %6s %12s %11s %9s\n", "layer", "gemm", "trans", "M", "N", "K",
         "MFLOP", "best us", "GFLOP/s");
  double flops = 0, secs = 0;
  for (int l = 0; l < nw - 1; l++) {
    int in = widths[l], out = widths[l + 1];
    shape_t sh[3] = {
        {"fwd", CblasNoTrans, CblasTrans, batch, out, in, in, in, out},
        {"dW", CblasTrans, CblasNoTrans, out, in, batch, out, in, in},
        {"dX", CblasNoTrans, CblasNoTrans, batch, in, out, out, in, in},
    };
    for (int k = 0; k < 3; k++) {
      if (k == 2 && l == 0) continue; /* gradguard skips the input's gradient */
      const shape_t *s = &sh[k];
      double f = 2.0 * s->M * (double)s->N * s->K;
      double t = best_time(s, A, B, C, reps, min_time);
      flops += f;
      secs += t;
      printf("%-5d %-4s %-7s %6d %6d %6d %12.3f %11.1f %9.2f\n", l, s->kind,
             s->ta == CblasTrans ? (s->tb == CblasTrans ? "T/T" : "T/N")
                                 : (s->tb == CblasTrans ? "N/T" : "N/N"),
             s->M, s->N, s->K, f * 1e-6, t * 1e6, f / t * 1e-9);
    }
  }
  /* A large square GEMM for reference: the kernel's own best case. */
  {
    shape_t sq = {"ref", CblasNoTrans, CblasNoTrans, 1024, 1024, 1024, 1024, 1024, 1024};
    float *A2 = rand_buf(1 << 20, &st), *B2 = rand_buf(1 << 20, &st), *C2 = rand_buf(1 << 20, &st);
    if (A2 && B2 && C2) {
      double t = best_time(&sq, A2, B2, C2, 5, min_time);
      printf("reference: 1024x1024x1024 N/N sgemm %.2f GFLOP/s\n", 2.0 * 1024 * 1024 * 1024 / t * 1e-9);
    }
    free(A2), free(B2), free(C2);
  }
  printf("step GEMMs: %.4f GFLOP in %.3f ms at best -> %.2f GFLOP/s\n", flops * 1e-9, secs * 1e3,
         flops / secs * 1e-9);
  printf("GEMM_PEAK flops=%.0f seconds=%.9f gflops=%.4f core=%s\n", flops, secs, flops / secs * 1e-9,
         openblas_get_corename());
  free(A), free(B), free(C);
  return 0;
}
