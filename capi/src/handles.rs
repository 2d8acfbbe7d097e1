//! The opaque handles and what each exported function does, in safe Rust
//! over slices and references (`ffi.rs` turns the C pointers into these).
//!
//! Every function checks all its lengths before it writes anything, so a
//! failed call leaves the caller's buffers as they were (the library's own
//! calls are all-or-nothing too).

use crate::config::{
    ArcfaceAdaptiveMargins, ArcfaceEnrolment, ArcfaceOptimizerConfig, ArcfaceTrainConfig,
};
use crate::status::{Fail, Res};
use arcface::{ArcFaceHead, Batch, Dataset, EpochInfo, Event, Optimizer, Trainer, Workspace};
use std::ops::ControlFlow;

/// A head: weights, margins, scale and loss (f32).
pub struct ArcfaceHead(pub(crate) ArcFaceHead<f32>);

/// The buffers of training steps for one head shape and batches of up to a
/// capacity; holds the last step's gradients.
pub struct ArcfaceWorkspace(pub(crate) Workspace<f32>);

/// SGD or AdamW state (momentum, moments, step count) for one head shape.
pub struct ArcfaceOptimizer(pub(crate) Optimizer<f32>);

/// A training loop: its own copy of the head, an optimiser, a schedule, a
/// workspace and the shuffling generator.
pub struct ArcfaceTrainer(pub(crate) Trainer<f32>);

/// One finished epoch, passed to the trainer's callback and kept in the
/// report. Values not measured are NaN.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceEpochInfo {
    /// 1-based epoch.
    pub epoch: usize,
    /// Epochs in the run.
    pub epochs: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Training top-1 in [0, 1] (NaN when not measured).
    pub train_top1: f64,
    /// Held-out mean loss (NaN without held-out data or evaluation).
    pub val_loss: f64,
    /// Held-out top-1 in [0, 1] (NaN likewise).
    pub val_top1: f64,
    /// Held-out top-5 in [0, 1] (NaN likewise).
    pub val_top5: f64,
    /// Seconds of the epoch, evaluation included.
    pub seconds: f64,
}

impl From<&EpochInfo> for ArcfaceEpochInfo {
    fn from(e: &EpochInfo) -> Self {
        let val = |f: fn(&arcface::EvalMetrics) -> f64| e.val.as_ref().map_or(f64::NAN, f);
        Self {
            epoch: e.epoch,
            epochs: e.epochs,
            lr: e.lr,
            train_loss: e.train_loss,
            train_top1: e.train_top1.unwrap_or(f64::NAN),
            val_loss: val(|m| m.loss),
            val_top1: val(|m| m.top1),
            val_top5: val(|m| m.top5),
            seconds: e.seconds,
        }
    }
}

/// What `arcface_trainer_fit` did.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceTrainReport {
    /// Epochs completed.
    pub epochs_run: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// 1 if the callback stopped the run before its last epoch.
    pub stopped_early: u8,
    /// The last completed epoch (all NaN and 0 when none completed).
    pub last: ArcfaceEpochInfo,
}

/// Checks that `out` holds exactly `expected` elements.
pub fn check_out(what: &str, out: usize, expected: usize) -> Res {
    if out == expected {
        Ok(())
    } else {
        Err(Fail::length(what, expected, out))
    }
}

impl ArcfaceHead {
    /// (C, K, D).
    pub fn shape(&self) -> (usize, usize, usize) {
        let c = self.0.config();
        (c.num_classes, c.num_subcenters, c.in_channels)
    }

    pub fn copy_weight(&self, out: &mut [f32]) -> Res {
        check_out("weight", out.len(), self.0.weight().len())?;
        out.copy_from_slice(self.0.weight());
        Ok(())
    }

    /// Loss and gradients into `ws`; ∂X copied to `grad_features` if given.
    pub fn forward_backward(
        &self,
        ws: &mut ArcfaceWorkspace,
        features: &[f32],
        labels: &[i64],
        grad_features: Option<&mut [f32]>,
    ) -> Res<f32> {
        let d = self.0.config().in_channels;
        if let Some(g) = &grad_features {
            check_out("grad_features", g.len(), labels.len().saturating_mul(d))?;
        }
        let loss = self
            .0
            .forward_backward(&Batch::new(features, labels), &mut ws.0)?;
        if let Some(g) = grad_features {
            g.copy_from_slice(ws.0.grad_features());
        }
        Ok(loss)
    }

    pub fn loss(&self, ws: &mut ArcfaceWorkspace, features: &[f32], labels: &[i64]) -> Res<f32> {
        Ok(self.0.loss(&Batch::new(features, labels), &mut ws.0)?)
    }

    /// The batch size of `features`, or a length error.
    fn samples(&self, features: &[f32]) -> Res<usize> {
        let d = self.0.config().in_channels;
        if features.is_empty() || !features.len().is_multiple_of(d) {
            return Err(Fail::new(
                crate::status::ArcfaceStatus::ArcfaceBadLength,
                format!(
                    "features has length {}, not a positive multiple of in_channels = {d}",
                    features.len()
                ),
            ));
        }
        Ok(features.len() / d)
    }

    pub fn logits(&self, ws: &mut ArcfaceWorkspace, features: &[f32], out: &mut [f32]) -> Res {
        let n = self.samples(features)?;
        check_out("logits", out.len(), n * self.0.config().num_classes)?;
        Ok(self.0.logits_into(features, &mut ws.0, out)?)
    }

    /// The `k` best classes and their softmax scores per sample, best first.
    pub fn predict_topk(
        &self,
        features: &[f32],
        k: usize,
        classes: &mut [i64],
        scores: &mut [f32],
    ) -> Res {
        let n = self.samples(features)?;
        let c = self.0.config().num_classes;
        if k == 0 || k > c {
            return Err(Fail::config(format!("k is {k}, must be in 1..={c}")));
        }
        check_out("classes", classes.len(), n * k)?;
        check_out("scores", scores.len(), n * k)?;
        let top = self.0.predict(features)?.topk(k);
        let flat = top.iter().flatten();
        for ((class, score), &(c, s)) in classes.iter_mut().zip(scores.iter_mut()).zip(flat) {
            *class = c as i64;
            *score = s;
        }
        Ok(())
    }

    pub fn set_margins(&mut self, margins: &[f64]) -> Res {
        Ok(self.0.set_margins(margins)?)
    }

    pub fn set_adaptive_margins(&mut self, labels: &[i64], p: ArcfaceAdaptiveMargins) -> Res {
        Ok(self.0.set_adaptive_margins(labels, p.into())?)
    }

    /// Adds one class imprinted from `embeddings` (n×D); returns its index.
    pub fn enrol(&mut self, embeddings: &[f32], how: ArcfaceEnrolment) -> Res<usize> {
        Ok(self.0.enrol(embeddings, &how.to_enrolment()?)?)
    }

    pub fn retire(&mut self, classes: &[usize]) -> Res {
        Ok(self.0.retire(classes)?)
    }
}

impl ArcfaceWorkspace {
    pub fn new(head: &ArcfaceHead, capacity: usize) -> Res<Self> {
        if capacity == 0 {
            return Err(Fail::config("workspace capacity is 0, must be at least 1"));
        }
        Ok(Self(Workspace::try_new(&head.0, capacity)?))
    }

    /// Grows the buffers to `head`'s shape after an enrolment.
    pub fn fit(&mut self, head: &ArcfaceHead) -> Res {
        Ok(self.0.fit(&head.0)?)
    }
}

impl ArcfaceOptimizer {
    /// Grows the state to `head`'s shape after an enrolment (zero for the
    /// new rows).
    pub fn fit(&mut self, head: &ArcfaceHead) -> Res {
        Ok(self.0.fit(&head.0)?)
    }

    pub fn new(cfg: ArcfaceOptimizerConfig, head: &ArcfaceHead) -> Res<Self> {
        Ok(Self(Optimizer::new(cfg.to_config()?, &head.0)?))
    }

    /// One update from the gradient of the workspace's last step.
    pub fn step(&mut self, head: &mut ArcfaceHead, ws: &ArcfaceWorkspace, lr: f64) -> Res {
        let grad = ws.0.grad_weight();
        if grad.len() != head.0.weight().len() {
            return Err(Fail::length(
                "workspace gradient (a workspace made for another head shape)",
                head.0.weight().len(),
                grad.len(),
            ));
        }
        Ok(self.0.step(&mut head.0, grad, lr)?)
    }

    pub fn step_grad(&mut self, head: &mut ArcfaceHead, grad: &[f32], lr: f64) -> Res {
        Ok(self.0.step(&mut head.0, grad, lr)?)
    }
}

/// The trainer's per-epoch callback: return 0 to go on, nonzero to stop
/// after this epoch. `info` is valid during the call only.
pub type ArcfaceEpochCallback =
    Option<extern "C" fn(info: *const ArcfaceEpochInfo, user_data: *mut std::ffi::c_void) -> i32>;

impl ArcfaceTrainer {
    pub fn new(head: &ArcfaceHead, cfg: ArcfaceTrainConfig) -> Res<Self> {
        Ok(Self(Trainer::new(head.0.clone(), cfg.to_config()?)?))
    }

    pub fn fit(
        &mut self,
        train: (&[f32], &[i64]),
        val: Option<(&[f32], &[i64])>,
        callback: ArcfaceEpochCallback,
        user_data: *mut std::ffi::c_void,
    ) -> Res<ArcfaceTrainReport> {
        let report = self.0.fit(
            Dataset::new(train.0, train.1),
            val.map(|(x, y)| Dataset::new(x, y)),
            |event| match (event, callback) {
                (Event::Epoch(e), Some(f)) => {
                    let info = ArcfaceEpochInfo::from(e);
                    // the callback only sees the pointer to `info` and the
                    // caller's own user_data, passed through untouched
                    if f(&info, user_data) == 0 {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                }
                _ => ControlFlow::Continue(()),
            },
        )?;
        let none = ArcfaceEpochInfo {
            epoch: 0,
            epochs: self.0.config().epochs,
            lr: f64::NAN,
            train_loss: f64::NAN,
            train_top1: f64::NAN,
            val_loss: f64::NAN,
            val_top1: f64::NAN,
            val_top5: f64::NAN,
            seconds: f64::NAN,
        };
        Ok(ArcfaceTrainReport {
            epochs_run: report.history.len(),
            steps: report.steps,
            seconds: report.seconds,
            stopped_early: report.stopped_early as u8,
            last: report.history.last().map_or(none, ArcfaceEpochInfo::from),
        })
    }

    /// A copy of the trained head, owned by the caller.
    pub fn head(&self) -> ArcfaceHead {
        ArcfaceHead(self.0.head().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header promises that a head may be read from several threads
    /// and that every handle may move between threads.
    #[test]
    fn handles_are_send_and_the_head_is_sync() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<ArcfaceHead>();
        sync::<ArcfaceHead>();
        send::<ArcfaceWorkspace>();
        send::<ArcfaceOptimizer>();
        send::<ArcfaceTrainer>();
    }
}
