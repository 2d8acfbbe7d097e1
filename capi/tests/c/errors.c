/*
 * Tests of the C API from C: every error path (NULL pointers, short
 * buffers, bad labels, bad files, bad configurations, non-finite input,
 * divergence), class enrolment and retirement, that a failed call changes nothing, and the numbers of a
 * successful step against a double-precision reference written here in C
 * (the loss by its formula, the gradients by central differences of it).
 * Built with -fsanitize=address by scripts/test-c.sh; every handle is freed.
 *
 *   cc -g -fsanitize=address -Iinclude capi/tests/c/errors.c libarcface_c.a -lpthread -ldl -lm
 *   ./a.out WRITABLE_DIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arcface.h"

static int failures = 0, checks = 0;
static const char *dir = ".";

/* `got` must be `want`, and for an error the message must contain `needle`. */
static void expect(const char *what, ArcfaceStatus got, ArcfaceStatus want, const char *needle) {
  checks++;
  const char *msg = arcface_last_error();
  if (got != want || (want != ARCFACE_OK && needle && !strstr(msg, needle))) {
    failures++;
    fprintf(stderr, "FAIL %s: status %d (want %d), message \"%s\" (want \"%s\")\n", what,
            (int)got, (int)want, msg, needle ? needle : "");
  }
}

static void expect_true(const char *what, int ok) {
  checks++;
  if (!ok) {
    failures++;
    fprintf(stderr, "FAIL %s\n", what);
  }
}

enum { C = 3, D = 4, N = 2 };
static const float W[C * D] = {1, 0, 0, 0.5f, 0, 1, 0.2f, 0, -0.3f, 0.1f, 1, 0};
static const float X[N * D] = {0.6f, 0.8f, 0.1f, -0.2f, -0.5f, 0.3f, 0.9f, 0.4f};
static const int64_t Y[N] = {0, 2};
static const double S = 8.0, M = 0.5;

/* The mean training loss of the head (W, S, M, K = 1, cross-entropy) on
 * (x, Y), in double, from its definition. */
static double reference_loss(const double *w, const double *x) {
  double total = 0.0;
  for (int i = 0; i < N; i++) {
    double z[C], xn = 0.0, zmax = -INFINITY, sum = 0.0;
    for (int j = 0; j < D; j++) xn += x[i * D + j] * x[i * D + j];
    for (int c = 0; c < C; c++) {
      double wn = 0.0, dot = 0.0;
      for (int j = 0; j < D; j++) {
        wn += w[c * D + j] * w[c * D + j];
        dot += w[c * D + j] * x[i * D + j];
      }
      double cosine = dot / sqrt(wn * xn);
      if (c == Y[i]) cosine = cos(acos(cosine) + M); /* cos > -cos(m) for this data */
      z[c] = S * cosine;
      if (z[c] > zmax) zmax = z[c];
    }
    for (int c = 0; c < C; c++) sum += exp(z[c] - zmax);
    total += zmax + log(sum) - z[Y[i]];
  }
  return total / N;
}

static ArcfaceHead *small_head(void) {
  ArcfaceHeadConfig cfg = arcface_head_config_default(C, D);
  cfg.scale = S;
  cfg.margin = M;
  ArcfaceHead *h = NULL;
  expect("small head", arcface_head_from_weight(&cfg, W, C * D, &h), ARCFACE_OK, NULL);
  return h;
}

static void test_numbers(void) {
  ArcfaceHead *h = small_head();
  ArcfaceWorkspace *ws = NULL;
  expect("workspace", arcface_workspace_new(h, N, &ws), ARCFACE_OK, NULL);
  float loss = 0.0f, gx[N * D];
  expect("forward_backward", arcface_forward_backward(h, ws, X, N * D, Y, N, &loss, gx, N * D),
         ARCFACE_OK, NULL);
  double w[C * D], x[N * D];
  for (int i = 0; i < C * D; i++) w[i] = W[i];
  for (int i = 0; i < N * D; i++) x[i] = X[i];
  double ref = reference_loss(w, x);
  expect_true("loss matches the double reference", fabs(loss - ref) <= 1e-5 * (1.0 + fabs(ref)));

  const double h_ = 1e-6;
  double worst = 0.0;
  for (int i = 0; i < N * D; i++) { /* dL/dx by central differences */
    double keep = x[i];
    x[i] = keep + h_;
    double up = reference_loss(w, x);
    x[i] = keep - h_;
    double down = reference_loss(w, x);
    x[i] = keep;
    worst = fmax(worst, fabs((up - down) / (2 * h_) - gx[i]));
  }
  expect_true("grad_features matches finite differences", worst < 1e-4);

  const float *gw = NULL;
  size_t gw_len = 0;
  expect("grad_weight", arcface_workspace_grad_weight(ws, &gw, &gw_len), ARCFACE_OK, NULL);
  expect_true("grad_weight has C*D elements", gw_len == C * D);
  worst = 0.0;
  for (int i = 0; i < C * D && gw_len == C * D; i++) {
    double keep = w[i];
    w[i] = keep + h_;
    double up = reference_loss(w, x);
    w[i] = keep - h_;
    double down = reference_loss(w, x);
    w[i] = keep;
    worst = fmax(worst, fabs((up - down) / (2 * h_) - gw[i]));
  }
  expect_true("grad_weight matches finite differences", worst < 1e-4);

  /* plain SGD: w' = w - lr g */
  ArcfaceOptimizerConfig oc;
  expect("sgd defaults", arcface_optimizer_config_default(ARCFACE_OPTIMIZER_SGD, &oc), ARCFACE_OK,
         NULL);
  oc.momentum = 0.0;
  oc.weight_decay = 0.0;
  ArcfaceOptimizer *opt = NULL;
  expect("optimizer", arcface_optimizer_new(&oc, h, &opt), ARCFACE_OK, NULL);
  float g_copy[C * D], after[C * D];
  memcpy(g_copy, gw, sizeof g_copy);
  expect("step", arcface_optimizer_step(opt, h, ws, 0.5), ARCFACE_OK, NULL);
  expect("weight", arcface_head_weight(h, after, C * D), ARCFACE_OK, NULL);
  worst = 0.0;
  for (int i = 0; i < C * D; i++) worst = fmax(worst, fabs(after[i] - (W[i] - 0.5 * g_copy[i])));
  expect_true("the SGD step is w - lr g", worst < 1e-6);

  /* logits and top-k: S cos without margin, best first */
  float z[N * C], score[N * 2];
  int64_t cls[N * 2];
  expect("logits", arcface_logits(h, ws, X, N * D, z, N * C), ARCFACE_OK, NULL);
  expect("predict", arcface_predict_topk(h, X, N * D, 2, cls, score, N * 2), ARCFACE_OK, NULL);
  for (int i = 0; i < N; i++) {
    int best = 0;
    for (int c = 1; c < C; c++)
      if (z[i * C + c] > z[i * C + best]) best = c;
    expect_true("top-1 is the arg-max logit", cls[i * 2] == best);
    expect_true("scores are sorted", score[i * 2] >= score[i * 2 + 1]);
  }
  arcface_optimizer_free(opt);
  arcface_workspace_free(ws);
  arcface_head_free(h);
}

static void test_null_pointers(void) {
  ArcfaceHeadConfig cfg = arcface_head_config_default(C, D);
  ArcfaceHead *h = NULL;
  expect("head_new NULL config", arcface_head_new(NULL, NULL, 0, 0, &h), ARCFACE_NULL_POINTER,
         "config");
  expect("head_new NULL out", arcface_head_new(&cfg, NULL, 0, 0, NULL), ARCFACE_NULL_POINTER,
         "out");
  expect("from_weight NULL weight", arcface_head_from_weight(&cfg, NULL, C * D, &h),
         ARCFACE_NULL_POINTER, "weight");
  h = small_head();
  ArcfaceWorkspace *ws = NULL;
  expect("workspace NULL head", arcface_workspace_new(NULL, 2, &ws), ARCFACE_NULL_POINTER, "head");
  expect("workspace", arcface_workspace_new(h, N, &ws), ARCFACE_OK, NULL);
  float loss = -1.0f;
  expect("fb NULL head", arcface_forward_backward(NULL, ws, X, N * D, Y, N, &loss, NULL, 0),
         ARCFACE_NULL_POINTER, "head");
  expect("fb NULL ws", arcface_forward_backward(h, NULL, X, N * D, Y, N, &loss, NULL, 0),
         ARCFACE_NULL_POINTER, "ws");
  expect("fb NULL features", arcface_forward_backward(h, ws, NULL, N * D, Y, N, &loss, NULL, 0),
         ARCFACE_NULL_POINTER, "features");
  expect("fb NULL labels", arcface_forward_backward(h, ws, X, N * D, NULL, N, &loss, NULL, 0),
         ARCFACE_NULL_POINTER, "labels");
  expect("fb NULL loss", arcface_forward_backward(h, ws, X, N * D, Y, N, NULL, NULL, 0),
         ARCFACE_NULL_POINTER, "loss");
  expect_true("no loss was written", loss == -1.0f);
  expect("loss NULL out", arcface_loss(h, ws, X, N * D, Y, N, NULL), ARCFACE_NULL_POINTER, "loss");
  expect("logits NULL out", arcface_logits(h, ws, X, N * D, NULL, N * C), ARCFACE_NULL_POINTER,
         "out");
  expect("predict NULL scores", arcface_predict_topk(h, X, N * D, 1, (int64_t[N]){0}, NULL, N),
         ARCFACE_NULL_POINTER, "scores");
  expect("set_margins NULL", arcface_head_set_margins(h, NULL, C), ARCFACE_NULL_POINTER,
         "margins");
  expect("save NULL path", arcface_head_save(h, NULL), ARCFACE_NULL_POINTER, "path");
  expect("load NULL out", arcface_head_load("x.safetensors", NULL), ARCFACE_NULL_POINTER, "out");
  expect("step NULL opt", arcface_optimizer_step(NULL, h, ws, 0.1), ARCFACE_NULL_POINTER, "opt");
  expect("optimizer NULL config", arcface_optimizer_config_default(0, NULL), ARCFACE_NULL_POINTER,
         "out");
  expect("trainer NULL config", arcface_trainer_new(h, NULL, &(ArcfaceTrainer *){NULL}),
         ARCFACE_NULL_POINTER, "config");
  expect("fit NULL trainer",
         arcface_trainer_fit(NULL, X, N * D, Y, N, NULL, 0, NULL, 0, NULL, NULL, NULL),
         ARCFACE_NULL_POINTER, "trainer");
  /* freeing NULL does nothing */
  arcface_head_free(NULL);
  arcface_workspace_free(NULL);
  arcface_optimizer_free(NULL);
  arcface_trainer_free(NULL);
  arcface_workspace_free(ws);
  arcface_head_free(h);
}

static void test_short_buffers(void) {
  ArcfaceHead *h = small_head();
  ArcfaceWorkspace *ws = NULL;
  expect("workspace", arcface_workspace_new(h, N, &ws), ARCFACE_OK, NULL);
  float loss, gx[N * D], z[N * C], w[C * D], s[N];
  for (int i = 0; i < N * D; i++) gx[i] = 42.0f;
  expect("features short", arcface_forward_backward(h, ws, X, N * D - 1, Y, N, &loss, NULL, 0),
         ARCFACE_BAD_LENGTH, "features");
  expect("grad_features short", arcface_forward_backward(h, ws, X, N * D, Y, N, &loss, gx, 3),
         ARCFACE_BAD_LENGTH, "grad_features");
  expect_true("grad_features untouched", gx[0] == 42.0f && gx[2] == 42.0f);
  expect("empty batch", arcface_loss(h, ws, X, 0, Y, 0, &loss), ARCFACE_BAD_LENGTH, NULL);
  expect("logits short", arcface_logits(h, ws, X, N * D, z, N * C - 1), ARCFACE_BAD_LENGTH,
         "logits");
  expect("logits ragged features", arcface_logits(h, ws, X, N * D - 2, z, N * C),
         ARCFACE_BAD_LENGTH, "in_channels");
  expect("weight short", arcface_head_weight(h, w, C * D - 1), ARCFACE_BAD_LENGTH, "weight");
  expect("predict short", arcface_predict_topk(h, X, N * D, 1, (int64_t[N]){0}, s, N - 1),
         ARCFACE_BAD_LENGTH, "classes");
  expect("margins short", arcface_head_set_margins(h, (double[2]){0.1, 0.2}, 2),
         ARCFACE_BAD_LENGTH, "margins");
  expect("from_weight short",
         arcface_head_from_weight(&(ArcfaceHeadConfig){0}, W, 1, &(ArcfaceHead *){NULL}),
         ARCFACE_BAD_CONFIG, "num_classes");
  ArcfaceOptimizerConfig oc;
  ArcfaceOptimizer *opt = NULL;
  arcface_optimizer_config_default(ARCFACE_OPTIMIZER_ADAMW, &oc);
  expect("optimizer", arcface_optimizer_new(&oc, h, &opt), ARCFACE_OK, NULL);
  ArcfaceHeadConfig other = arcface_head_config_default(C + 1, D);
  ArcfaceHead *h2 = NULL;
  ArcfaceWorkspace *ws2 = NULL;
  expect("other head", arcface_head_new(&other, NULL, 0, 1, &h2), ARCFACE_OK, NULL);
  expect("other workspace", arcface_workspace_new(h2, 1, &ws2), ARCFACE_OK, NULL);
  expect("step with another shape's workspace", arcface_optimizer_step(opt, h, ws2, 0.1),
         ARCFACE_BAD_LENGTH, "gradient");
  arcface_workspace_free(ws2);
  arcface_head_free(h2);
  expect("step_grad short", arcface_optimizer_step_grad(opt, h, W, C * D - 1, 0.1),
         ARCFACE_BAD_LENGTH, "grad");
  arcface_optimizer_free(opt);
  arcface_workspace_free(ws);
  arcface_head_free(h);
}

static void test_bad_labels_and_values(void) {
  ArcfaceHead *h = small_head();
  ArcfaceWorkspace *ws = NULL;
  expect("workspace", arcface_workspace_new(h, N, &ws), ARCFACE_OK, NULL);
  float loss = -1.0f, gx[N * D];
  for (int i = 0; i < N * D; i++) gx[i] = 42.0f;
  expect("label C", arcface_forward_backward(h, ws, X, N * D, (int64_t[N]){0, C}, N, &loss, gx,
                                             N * D),
         ARCFACE_BAD_LABEL, "sample 1");
  expect("label -1", arcface_loss(h, ws, X, N * D, (int64_t[N]){-1, 0}, N, &loss),
         ARCFACE_BAD_LABEL, "sample 0");
  expect_true("nothing written on a bad label", loss == -1.0f && gx[0] == 42.0f);
  expect("adaptive margins bad label",
         arcface_head_set_adaptive_margins(h, (int64_t[2]){0, 7}, 2,
                                           &(ArcfaceAdaptiveMargins){0.05, 0.5, -0.25}),
         ARCFACE_BAD_LABEL, "sample 1");
  float bad[N * D];
  memcpy(bad, X, sizeof bad);
  bad[5] = NAN;
  expect("NaN feature", arcface_loss(h, ws, bad, N * D, Y, N, &loss), ARCFACE_NON_FINITE,
         "features");
  expect("NaN margin", arcface_head_set_margins(h, (double[C]){0.1, NAN, 0.2}, C),
         ARCFACE_BAD_CONFIG, "class 1");
  arcface_workspace_free(ws);
  arcface_head_free(h);
}

static void test_bad_configs(void) {
  ArcfaceHead *h = NULL;
  ArcfaceHeadConfig cfg = arcface_head_config_default(0, D);
  expect("num_classes 0", arcface_head_new(&cfg, NULL, 0, 0, &h), ARCFACE_BAD_CONFIG,
         "num_classes");
  cfg = arcface_head_config_default(C, D);
  cfg.reduction = 9;
  expect("unknown reduction", arcface_head_new(&cfg, NULL, 0, 0, &h), ARCFACE_BAD_CONFIG,
         "reduction");
  cfg = arcface_head_config_default(C, D);
  cfg.loss = ARCFACE_LOSS_LABEL_SMOOTH;
  cfg.label_smooth_val = 1.5;
  expect("label smoothing 1.5", arcface_head_new(&cfg, NULL, 0, 0, &h), ARCFACE_BAD_CONFIG,
         "label_smooth_val");
  cfg = arcface_head_config_default(C, D);
  cfg.margin = INFINITY;
  expect("infinite margin", arcface_head_new(&cfg, NULL, 0, 0, &h), ARCFACE_BAD_CONFIG, "margin");
  expect("margins array short", arcface_head_new(&cfg, (double[1]){0.3}, 1, 0, &h),
         ARCFACE_BAD_LENGTH, "margins");
  expect_true("no head was made", h == NULL);
  ArcfaceOptimizerConfig oc;
  expect("unknown optimizer", arcface_optimizer_config_default(7, &oc), ARCFACE_BAD_CONFIG,
         "optimizer kind");

  h = small_head();
  ArcfaceWorkspace *ws = NULL;
  expect("capacity 0", arcface_workspace_new(h, 0, &ws), ARCFACE_BAD_CONFIG, "capacity");
  expect("top-k 0", arcface_predict_topk(h, X, N * D, 0, (int64_t[1]){0}, (float[1]){0}, 0),
         ARCFACE_BAD_CONFIG, "k is 0");
  arcface_optimizer_config_default(ARCFACE_OPTIMIZER_SGD, &oc);
  oc.nesterov = 1;
  oc.momentum = 0.0;
  ArcfaceOptimizer *opt = NULL;
  expect("nesterov without momentum", arcface_optimizer_new(&oc, h, &opt), ARCFACE_BAD_CONFIG,
         "nesterov");
  ArcfaceTrainConfig tc = arcface_train_config_default();
  tc.batch_size = 0;
  ArcfaceTrainer *t = NULL;
  expect("batch_size 0", arcface_trainer_new(h, &tc, &t), ARCFACE_BAD_CONFIG, "batch_size");
  tc = arcface_train_config_default();
  tc.schedule = 99;
  expect("unknown schedule", arcface_trainer_new(h, &tc, &t), ARCFACE_BAD_CONFIG, "schedule");

  /* divergence: a learning rate beyond f32's range makes the first update infinite */
  tc = arcface_train_config_default();
  tc.lr = 1e300;
  tc.schedule = ARCFACE_SCHEDULE_CONSTANT;
  expect("trainer", arcface_trainer_new(h, &tc, &t), ARCFACE_OK, NULL);
  expect("diverges", arcface_trainer_fit(t, X, N * D, Y, N, NULL, 0, NULL, 0, NULL, NULL, NULL),
         ARCFACE_DIVERGED, "epoch 1");
  ArcfaceHead *after = NULL;
  float w[C * D];
  expect("trainer head", arcface_trainer_head(t, &after), ARCFACE_OK, NULL);
  expect("weight", arcface_head_weight(after, w, C * D), ARCFACE_OK, NULL);
  expect_true("weights as before the diverging step", memcmp(w, W, sizeof w) == 0);
  arcface_head_free(after);
  arcface_trainer_free(t);
  arcface_head_free(h);
}

static void test_files(void) {
  char path[4096];
  ArcfaceHead *h = NULL, *back = NULL;
  snprintf(path, sizeof path, "%s/no-such-file.safetensors", dir);
  expect("missing file", arcface_head_load(path, &back), ARCFACE_IO, "no-such-file");
  snprintf(path, sizeof path, "%s/garbage.safetensors", dir);
  FILE *f = fopen(path, "wb");
  fputs("not a safetensors file", f);
  fclose(f);
  expect("garbage file", arcface_head_load(path, &back), ARCFACE_CHECKPOINT, "garbage");
  expect("invalid UTF-8 path", arcface_head_load("\xff\xfe.safetensors", &back), ARCFACE_IO,
         "UTF-8");
  expect_true("no head was made", back == NULL);
  h = small_head();
  snprintf(path, sizeof path, "%s/no-such-dir/head.safetensors", dir);
  expect("save into a missing directory", arcface_head_save(h, path), ARCFACE_IO, "no-such-dir");
  snprintf(path, sizeof path, "%s/head.safetensors", dir);
  expect("save", arcface_head_save(h, path), ARCFACE_OK, NULL);
  expect("load", arcface_head_load(path, &back), ARCFACE_OK, NULL);
  float a[C * D], b[C * D];
  arcface_head_weight(h, a, C * D);
  arcface_head_weight(back, b, C * D);
  expect_true("the saved head loads back bit for bit", memcmp(a, b, sizeof a) == 0);
  size_t c = 0, k = 0, d = 0;
  expect("shape", arcface_head_shape(back, &c, &k, &d), ARCFACE_OK, NULL);
  expect_true("shape C, 1, D", c == C && k == 1 && d == D);
  arcface_head_free(back);
  arcface_head_free(h);
}

/* Enrolment by imprinting, retirement, and the handles that follow a grown head. */
static void test_lifecycle(void) {
  ArcfaceHead *h = small_head();
  ArcfaceWorkspace *ws = NULL;
  ArcfaceOptimizer *opt = NULL;
  ArcfaceOptimizerConfig oc;
  arcface_optimizer_config_default(ARCFACE_OPTIMIZER_SGD, &oc);
  expect("workspace", arcface_workspace_new(h, N, &ws), ARCFACE_OK, NULL);
  expect("optimizer", arcface_optimizer_new(&oc, h, &opt), ARCFACE_OK, NULL);

  const float ex[2 * D] = {0, 0, 0, 2, 0, 0.5f, 0, 1};
  ArcfaceEnrolment how = arcface_enrolment_default();
  size_t idx = 99, c = 0;
  expect("enrol", arcface_head_enrol(h, ex, 2 * D, &how, &idx), ARCFACE_OK, NULL);
  expect_true("the new class is class C", idx == C);
  expect("shape", arcface_head_shape(h, &c, NULL, NULL), ARCFACE_OK, NULL);
  expect_true("C grew by one", c == C + 1);
  /* the new row points along the mean of the normalised exemplars */
  float w[(C + 1) * D];
  expect("weight", arcface_head_weight(h, w, (C + 1) * D), ARCFACE_OK, NULL);
  double mean[D] = {0}, dot = 0, nm = 0, nw = 0;
  for (int i = 0; i < 2; i++) {
    double n2 = 0;
    for (int j = 0; j < D; j++) n2 += ex[i * D + j] * ex[i * D + j];
    for (int j = 0; j < D; j++) mean[j] += ex[i * D + j] / sqrt(n2);
  }
  for (int j = 0; j < D; j++) {
    dot += mean[j] * w[C * D + j];
    nm += mean[j] * mean[j];
    nw += (double)w[C * D + j] * w[C * D + j];
  }
  expect_true("imprinted row along the exemplars' mean direction",
              fabs(dot / sqrt(nm * nw) - 1.0) < 1e-6);
  int64_t top;
  float score;
  const float probe[D] = {0, 0.2f, 0, 1};
  expect("predict", arcface_predict_topk(h, probe, D, 1, &top, &score, 1), ARCFACE_OK, NULL);
  expect_true("the enrolled class is predicted", top == (int64_t)C);

  float loss;
  const int64_t y_new[N] = {C, 0};
  expect("step with a workspace for the old shape",
         arcface_forward_backward(h, ws, X, N * D, y_new, N, &loss, NULL, 0), ARCFACE_BAD_CONFIG,
         "workspace");
  expect("workspace fit", arcface_workspace_fit(ws, h), ARCFACE_OK, NULL);
  expect("step after fit", arcface_forward_backward(h, ws, X, N * D, y_new, N, &loss, NULL, 0),
         ARCFACE_OK, NULL);
  expect("optimizer for the old shape", arcface_optimizer_step(opt, h, ws, 0.1),
         ARCFACE_BAD_LENGTH, NULL);
  expect("optimizer fit", arcface_optimizer_fit(opt, h), ARCFACE_OK, NULL);
  expect("optimizer step after fit", arcface_optimizer_step(opt, h, ws, 0.1), ARCFACE_OK, NULL);

  const size_t retire[1] = {C};
  expect("retire", arcface_head_retire(h, retire, 1), ARCFACE_OK, NULL);
  expect("predict", arcface_predict_topk(h, probe, D, 1, &top, &score, 1), ARCFACE_OK, NULL);
  expect_true("a retired class is never predicted", top != (int64_t)C);
  expect("label of a retired class",
         arcface_forward_backward(h, ws, X, N * D, y_new, N, &loss, NULL, 0), ARCFACE_BAD_LABEL,
         "retired");
  expect("retire twice", arcface_head_retire(h, retire, 1), ARCFACE_BAD_CLASS, "retired");
  expect("retire an unknown class", arcface_head_retire(h, (size_t[1]){9}, 1), ARCFACE_BAD_CLASS,
         "9");
  expect("retire NULL", arcface_head_retire(h, NULL, 1), ARCFACE_NULL_POINTER, "classes");

  expect("enrol NULL", arcface_head_enrol(h, NULL, D, &how, &idx), ARCFACE_NULL_POINTER,
         "embeddings");
  expect("enrol NULL index", arcface_head_enrol(h, ex, D, &how, NULL), ARCFACE_NULL_POINTER,
         "class_index");
  expect("enrol ragged", arcface_head_enrol(h, ex, D + 1, &how, &idx), ARCFACE_BAD_LENGTH,
         "embeddings");
  expect("enrol a zero embedding", arcface_head_enrol(h, (float[D]){0}, D, &how, &idx),
         ARCFACE_BAD_EMBEDDING, "zero norm");
  how.kmeans_iters = 0;
  expect("enrol with 0 iterations", arcface_head_enrol(h, ex, D, &how, &idx), ARCFACE_BAD_CONFIG,
         "kmeans_iters");
  expect("shape", arcface_head_shape(h, &c, NULL, NULL), ARCFACE_OK, NULL);
  expect_true("failed enrolments added nothing", c == C + 1);
  arcface_optimizer_free(opt);
  arcface_workspace_free(ws);
  arcface_head_free(h);
}

int main(int argc, char **argv) {
  if (argc > 1) dir = argv[1];
  expect_true("last_error is never NULL", arcface_last_error() != NULL);
  test_numbers();
  test_null_pointers();
  test_short_buffers();
  test_bad_labels_and_values();
  test_bad_configs();
  test_files();
  test_lifecycle();
  printf("C API tests: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
