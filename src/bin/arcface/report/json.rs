//! JSON for programs: `--metrics` (one line per epoch, then a summary line)
//! and `eval --format json`. Fields keep their order; a number that is not
//! finite is `null`.

use arcface::{EpochInfo, EvalMetrics, TrainReport};
use serde::Serialize;

/// One `--metrics` line per epoch.
#[derive(Serialize)]
struct EpochLine {
    event: &'static str,
    epoch: usize,
    epochs: usize,
    lr: f64,
    train_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    train_top1: Option<f64>,
    #[serde(flatten)]
    val: Option<ValMetrics>,
    samples: usize,
    seconds: f64,
    embeddings_per_s: f64,
}

/// The held-out metrics of an epoch.
#[derive(Serialize)]
struct ValMetrics {
    val_loss: f64,
    val_top1: f64,
    val_top5: f64,
}

/// One epoch's `--metrics` line.
pub fn epoch_line(e: &EpochInfo) -> String {
    to_line(&EpochLine {
        event: "epoch",
        epoch: e.epoch,
        epochs: e.epochs,
        lr: e.lr,
        train_loss: e.train_loss,
        train_top1: e.train_top1,
        val: e.val.map(|v| ValMetrics {
            val_loss: v.loss,
            val_top1: v.top1,
            val_top5: v.top5,
        }),
        samples: e.samples,
        seconds: e.seconds,
        embeddings_per_s: super::rate(e.samples, e.train_seconds),
    })
}

/// Final metrics on the training split (`train_*`) and held-out split (`test_*`).
#[derive(Serialize)]
struct Summary<'a> {
    event: &'static str,
    data: &'a str,
    epochs: usize,
    steps: usize,
    train_loss: f64,
    train_top1: f64,
    train_top5: f64,
    train_samples: usize,
    #[serde(flatten)]
    test: Option<TestMetrics>,
    train_seconds: f64,
    embeddings_per_s: f64,
    peak_memory_bytes: Option<u64>,
}

#[derive(Serialize)]
struct TestMetrics {
    test_loss: f64,
    test_top1: f64,
    test_top5: f64,
    test_samples: usize,
}

/// The last `--metrics` line.
pub fn summary_line(
    data: &str,
    report: &TrainReport,
    train: &EvalMetrics,
    test: Option<&EvalMetrics>,
    peak_memory_bytes: Option<u64>,
) -> String {
    to_line(&Summary {
        event: "summary",
        data,
        epochs: report.history.len(),
        steps: report.steps,
        train_loss: train.loss,
        train_top1: train.top1,
        train_top5: train.top5,
        train_samples: train.samples,
        test: test.map(|m| TestMetrics {
            test_loss: m.loss,
            test_top1: m.top1,
            test_top5: m.top5,
            test_samples: m.samples,
        }),
        train_seconds: report.train_seconds,
        embeddings_per_s: super::rate(report.samples, report.train_seconds),
        peak_memory_bytes,
    })
}

/// `eval --format json`.
#[derive(Serialize)]
struct Eval<'a> {
    checkpoint: &'a str,
    samples: usize,
    loss: f64,
    top1: f64,
    top5: f64,
    seconds: f64,
}

/// The line `eval --format json` prints.
pub fn eval_line(checkpoint: &str, m: &EvalMetrics, seconds: f64) -> String {
    to_line(&Eval {
        checkpoint,
        samples: m.samples,
        loss: m.loss,
        top1: m.top1,
        top5: m.top5,
        seconds,
    })
}

/// One JSON object on one line. Serialising these plain structs cannot fail.
fn to_line(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| unreachable!("JSON of a plain struct: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_lines_keep_field_order_and_write_null_for_non_finite() {
        let e = EpochInfo {
            epoch: 2,
            epochs: 3,
            lr: 0.05,
            train_loss: f64::NAN,
            train_top1: None,
            val: Some(EvalMetrics {
                loss: 1.5,
                top1: 0.25,
                top5: 1.0,
                samples: 4,
            }),
            samples: 10,
            seconds: 0.5,
            train_seconds: 0.25,
        };
        assert_eq!(
            epoch_line(&e),
            "{\"event\":\"epoch\",\"epoch\":2,\"epochs\":3,\"lr\":0.05,\"train_loss\":null,\
             \"val_loss\":1.5,\"val_top1\":0.25,\"val_top5\":1.0,\"samples\":10,\"seconds\":0.5,\
             \"embeddings_per_s\":40.0}"
        );
    }
}
