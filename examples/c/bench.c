/*
 * Times one training step (forward, backward and an SGD update) and one
 * top-k prediction through the C API; scripts/bench-bindings.sh compares it
 * with the same calls from Rust (capi/examples/bench_bindings.rs), which
 * makes the same head (seed 0) and the same inputs.
 *
 *   ./bench N D C K ITERS   prints one JSON line per operation
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "arcface.h"

#define CHECK(call)                                                                   \
  do {                                                                                \
    if ((call) != ARCFACE_OK) {                                                       \
      fprintf(stderr, "%s: %s\n", #call, arcface_last_error());                       \
      exit(2);                                                                        \
    }                                                                                 \
  } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s N D C K ITERS\n", argv[0]);
    return 2;
  }
  size_t n = strtoul(argv[1], NULL, 10), d = strtoul(argv[2], NULL, 10);
  size_t c = strtoul(argv[3], NULL, 10), k = strtoul(argv[4], NULL, 10);
  int iters = atoi(argv[5]);
  float *x = malloc(n * d * sizeof *x);
  int64_t *y = malloc(n * sizeof *y), top;
  double *t = malloc((size_t)iters * sizeof *t);
  float loss = 0.0f, score;
  for (size_t i = 0; i < n * d; i++) x[i] = (float)sin(0.37 * (double)i);
  for (size_t i = 0; i < n; i++) y[i] = (int64_t)(i % c);

  ArcfaceHeadConfig cfg = arcface_head_config_default(c, d);
  cfg.num_subcenters = k;
  ArcfaceHead *head = NULL;
  ArcfaceWorkspace *ws = NULL;
  ArcfaceOptimizer *opt = NULL;
  ArcfaceOptimizerConfig oc;
  CHECK(arcface_head_new(&cfg, NULL, 0, 0, &head));
  CHECK(arcface_workspace_new(head, n, &ws));
  CHECK(arcface_optimizer_config_default(ARCFACE_OPTIMIZER_SGD, &oc));
  CHECK(arcface_optimizer_new(&oc, head, &opt));

  for (int i = -2; i < iters; i++) { /* two warm-up steps */
    double t0 = now();
    CHECK(arcface_forward_backward(head, ws, x, n * d, y, n, &loss, NULL, 0));
    CHECK(arcface_optimizer_step(opt, head, ws, 0.01));
    if (i >= 0) t[i] = now() - t0;
  }
  printf("{\"api\":\"c\",\"op\":\"step\",\"n\":%zu,\"median_ms\":%.4f,\"loss\":%.6f}\n", n,
         1e3 * median(t, iters), loss);
  for (int i = -2; i < iters; i++) { /* one sample */
    double t0 = now();
    CHECK(arcface_predict_topk(head, x, d, 1, &top, &score, 1));
    if (i >= 0) t[i] = now() - t0;
  }
  printf("{\"api\":\"c\",\"op\":\"predict\",\"n\":1,\"median_ms\":%.4f,\"top\":%lld}\n",
         1e3 * median(t, iters), (long long)top);
  arcface_optimizer_free(opt);
  arcface_workspace_free(ws);
  arcface_head_free(head);
  free(x);
  free(y);
  free(t);
  return 0;
}
