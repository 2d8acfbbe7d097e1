//! `train`'s files: every input and output, checked together before any
//! work ([`files`]), and the outputs, staged and committed together at the
//! end ([`write_outputs`]).

use super::load::TrainData;
use crate::args::TrainArgs;
use crate::data::preprocess::Standardize;
use crate::output::{Files, Outputs};
use crate::report::{self, json, svg};
use crate::CliError;
use arcface::{
    optimizer_path, save_optimizer, ArcFaceHead, Checkpoint, EvalMetrics, Real, TrainReport,
    Trainer,
};

/// The run's inputs and outputs, by flag.
pub fn files(a: &TrainArgs) -> Files {
    let (t, o) = (&a.training, &a.output);
    let mut f = Files::new();
    f.input("--features", a.data.features.as_ref())
        .input("--labels", a.labels.labels.as_ref())
        .input("--val-features", a.held_out.val_features.as_ref())
        .input("--val-labels", a.held_out.val_labels.as_ref())
        .input("--init", t.init.as_ref())
        .input("--resume", t.resume.as_ref())
        .input(
            "--resume (its optimiser state)",
            t.resume.as_ref().map(optimizer_path),
        )
        .input("--margins", a.shape.margins.as_ref().and_then(|m| m.file()))
        .input("--class-weight", a.loss.class_weight.as_ref())
        .output("--out", o.out.as_ref())
        .output(
            "--save-optimizer",
            o.out
                .as_ref()
                .filter(|_| o.save_optimizer)
                .map(optimizer_path),
        )
        .output("--metrics", o.metrics.as_ref())
        .output("--curves", o.curves.as_ref());
    f
}

/// Stages the checkpoint, the optimiser state, the metrics and the curves,
/// then commits them together. Returns the peak memory (as the metrics say).
pub fn write_outputs<T: Real>(
    a: &TrainArgs,
    trainer: &Trainer<T>,
    data: &TrainData<T>,
    standardize: Option<&Standardize>,
    report: &TrainReport,
    head_desc: &str,
    (train_m, val_m): (&EvalMetrics, Option<&EvalMetrics>),
) -> Result<Option<u64>, CliError> {
    let o = &a.output;
    let head = trainer.head();
    let mut outputs = Outputs::new();
    if let Some(out) = &o.out {
        let mut ck = Checkpoint::from_head(head, o.weight_dtype.unwrap_or_default())?;
        ck.set_extra("data", data.source.tag());
        ck.set_extra("program", format!("arcface {}", env!("CARGO_PKG_VERSION")));
        if let Some(s) = standardize {
            s.store(&mut ck);
        }
        outputs.stage(out, &ck.to_bytes()?)?;
    }
    let peak = report::peak_memory();
    if let (Some(out), true) = (&o.out, o.save_optimizer) {
        outputs.stage_with(optimizer_path(out), |tmp| {
            Ok(save_optimizer(trainer.optimizer(), head, tmp)?)
        })?;
    }
    if let Some(p) = &o.metrics {
        let mut s = String::new();
        for e in &report.history {
            s.push_str(&json::epoch_line(e));
            s.push('\n');
        }
        s.push_str(&json::summary_line(
            &data.source.tag(),
            report,
            train_m,
            val_m,
            peak,
        ));
        s.push('\n');
        outputs.stage(p, s.as_bytes())?;
    }
    if let Some(p) = &o.curves {
        let title = format!("arcface train: {} ({head_desc})", data.source.describe());
        outputs.stage(p, svg::curves(&title, &report.history).as_bytes())?;
    }
    outputs.commit()?;
    Ok(peak)
}

/// The summary's checkpoint line: path, dtype, tensor and shape.
pub fn checkpoint_line<T: Real>(a: &TrainArgs, head: &ArcFaceHead<T>) -> Option<String> {
    let o = &a.output;
    let out = o.out.as_ref()?;
    let cfg = head.config();
    let optim = if o.save_optimizer {
        format!(", optimiser state in {}", optimizer_path(out).display())
    } else {
        String::new()
    };
    Some(format!(
        "{out} ({} `{}` ({}, {}){optim})",
        o.weight_dtype.unwrap_or_default().name(),
        arcface::WEIGHT_KEY,
        cfg.num_classes * cfg.num_subcenters,
        cfg.in_channels,
    ))
}
