/*
 * Fine-tunes an ArcFace head on the UCI optical digits shipped in data/
 * through the C API, then prints the test top-1.
 *
 *   gzip -dc data/digits.csv.gz > digits.csv
 *   cc -O2 -Iinclude examples/c/digits.c target/release/libarcface_c.a -lpthread -ldl -lm -o digits
 *   ./digits digits.csv [checkpoint.safetensors]
 *
 * The split is every fifth sample to the test set (1437 train / 360 test);
 * the pixels are standardised with the training mean and standard deviation
 * (constant columns only centred). The recipe is the `arcface` program's
 * digits recipe: K = 1, scale 64, margin 0.2, SGD lr 0.1 with a cosine
 * schedule, 20 epochs of batches of 128, seed 0. Exits 1 if the test top-1
 * is under 93 %.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arcface.h"

enum { D = 64, C = 10, MAX_ROWS = 2000 };

#define CHECK(call)                                                          \
  do {                                                                       \
    ArcfaceStatus s_ = (call);                                               \
    if (s_ != ARCFACE_OK) {                                                  \
      fprintf(stderr, "%s failed (%d): %s\n", #call, (int)s_,                \
              arcface_last_error());                                         \
      exit(2);                                                               \
    }                                                                        \
  } while (0)

/* Reads rows of 64 pixel counts and a label; returns the number of rows. */
static size_t read_digits(const char *path, float *x, int64_t *y) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    exit(2);
  }
  size_t n = 0;
  for (;;) {
    int v[D + 1], j;
    for (j = 0; j <= D; j++)
      if (fscanf(f, j ? ",%d" : "%d", &v[j]) != 1) break;
    if (j == 0) break;
    if (j <= D || n == MAX_ROWS || v[D] < 0 || v[D] >= C) {
      fprintf(stderr, "%s: bad row %zu\n", path, n + 1);
      exit(2);
    }
    for (j = 0; j < D; j++) x[n * D + j] = (float)v[j];
    y[n++] = v[D];
  }
  fclose(f);
  return n;
}

/* Standardises every column of a (n_a rows) and b (n_b rows) with a's
 * mean and standard deviation. */
static void standardise(float *a, size_t n_a, float *b, size_t n_b) {
  for (size_t j = 0; j < D; j++) {
    double mean = 0.0, var = 0.0;
    for (size_t i = 0; i < n_a; i++) mean += a[i * D + j];
    mean /= (double)n_a;
    for (size_t i = 0; i < n_a; i++) var += pow(a[i * D + j] - mean, 2);
    double sd = sqrt(var / (double)n_a);
    double scale = sd > 0.0 ? 1.0 / sd : 1.0;
    for (size_t i = 0; i < n_a; i++) a[i * D + j] = (float)((a[i * D + j] - mean) * scale);
    for (size_t i = 0; i < n_b; i++) b[i * D + j] = (float)((b[i * D + j] - mean) * scale);
  }
}

static int32_t on_epoch(const ArcfaceEpochInfo *e, void *user_data) {
  (void)user_data;
  fprintf(stderr, "epoch %2zu/%zu  loss %.4f  train top-1 %5.1f%%  test top-1 %5.1f%%\n",
          e->epoch, e->epochs, e->train_loss, 100.0 * e->train_top1, 100.0 * e->val_top1);
  return 0; /* go on */
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s digits.csv [checkpoint.safetensors]\n", argv[0]);
    return 2;
  }
  static float all_x[MAX_ROWS * D], train_x[MAX_ROWS * D], test_x[MAX_ROWS * D];
  static int64_t all_y[MAX_ROWS], train_y[MAX_ROWS], test_y[MAX_ROWS];
  size_t n = read_digits(argv[1], all_x, all_y), n_train = 0, n_test = 0;
  for (size_t i = 0; i < n; i++) {
    int test = i % 5 == 0;
    float *dst = test ? &test_x[n_test * D] : &train_x[n_train * D];
    for (size_t j = 0; j < D; j++) dst[j] = all_x[i * D + j];
    if (test) test_y[n_test++] = all_y[i];
    else train_y[n_train++] = all_y[i];
  }
  standardise(train_x, n_train, test_x, n_test);

  ArcfaceHeadConfig cfg = arcface_head_config_default(C, D);
  cfg.margin = 0.2;
  ArcfaceHead *head = NULL;
  CHECK(arcface_head_new(&cfg, NULL, 0, /*seed=*/0, &head));

  ArcfaceTrainConfig tc = arcface_train_config_default(); /* 20 epochs, SGD 0.1, cosine */
  ArcfaceTrainer *trainer = NULL;
  CHECK(arcface_trainer_new(head, &tc, &trainer));
  ArcfaceTrainReport report;
  CHECK(arcface_trainer_fit(trainer, train_x, n_train * D, train_y, n_train, test_x, n_test * D,
                            test_y, n_test, on_epoch, NULL, &report));
  ArcfaceHead *trained = NULL;
  CHECK(arcface_trainer_head(trainer, &trained));

  /* top-1 on the test split through predict, independent of the trainer's evaluation */
  static int64_t best[MAX_ROWS];
  static float score[MAX_ROWS];
  CHECK(arcface_predict_topk(trained, test_x, n_test * D, 1, best, score, n_test));
  size_t correct = 0;
  for (size_t i = 0; i < n_test; i++) correct += best[i] == test_y[i];
  double top1 = (double)correct / (double)n_test;

  if (argc > 2) { /* save, reload, and predict the same */
    ArcfaceHead *back = NULL;
    static int64_t again[MAX_ROWS];
    CHECK(arcface_head_save(trained, argv[2]));
    CHECK(arcface_head_load(argv[2], &back));
    CHECK(arcface_predict_topk(back, test_x, n_test * D, 1, again, score, n_test));
    for (size_t i = 0; i < n_test; i++)
      if (again[i] != best[i]) {
        fprintf(stderr, "the reloaded head predicts differently at sample %zu\n", i);
        return 1;
      }
    arcface_head_free(back);
  }
  printf("arcface %s · digits from C · %zu train / %zu test · %zu steps in %.2f s\n",
         arcface_version(), n_train, n_test, report.steps, report.seconds);
  printf("test top-1 %.2f %%\n", 100.0 * top1);

  arcface_head_free(trained);
  arcface_trainer_free(trainer);
  arcface_head_free(head);
  return top1 >= 0.93 ? 0 : 1;
}
