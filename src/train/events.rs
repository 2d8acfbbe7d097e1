//! What the trainer reports: per-step and per-epoch progress passed to the
//! callback of [`super::Trainer::fit`], and the final report.

use super::EvalMetrics;

/// What happened in one optimisation step (see [`Event::Step`]).
///
/// ```
/// use arcface::{ArcFaceHead, Dataset, Event, HeadConfig, TrainConfig, Trainer};
/// use std::ops::ControlFlow;
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
/// let cfg = TrainConfig { epochs: 1, batch_size: 2, ..TrainConfig::default() };
/// let mut lrs = Vec::new();
/// Trainer::new(head, cfg).unwrap()
///     .fit(Dataset::new(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.1], &[0, 1, 0]), None, |e| {
///         if let Event::Step(s) = e { lrs.push((s.step, s.batch_len, s.lr)); }
///         ControlFlow::Continue(())
///     })
///     .unwrap();
/// assert_eq!(lrs, vec![(1, 2, 0.1), (2, 1, 0.05)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// 1-based epoch.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps taken so far in this run, this one included.
    pub global_step: usize,
    /// The learning rate used.
    pub lr: f64,
    /// The batch loss (as the head's reduction gives it).
    pub loss: f64,
    /// Samples in the batch.
    pub batch_len: usize,
    /// Training top-1 hits in the batch (when measured).
    pub batch_correct: Option<usize>,
    /// Classes the step computed: C, or with PartialFC sampling
    /// ([`crate::TrainConfig::sample_rate`] < 1) the kept count.
    pub kept_classes: usize,
    /// With sampling: the batch's positives alone exceeded ⌈r·C⌉, so all of
    /// them (and no other class) were kept.
    pub positives_exceeded: bool,
    /// Seconds since `fit` began.
    pub elapsed: f64,
}

/// One finished epoch (see [`Event::Epoch`]); [`TrainReport::history`]
/// keeps them all.
///
/// ```
/// use arcface::{ArcFaceHead, Dataset, HeadConfig, TrainConfig, Trainer};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
/// let (x, y) = ([1.0, 0.0, 0.0, 1.0], [0, 1]);
/// let cfg = TrainConfig { epochs: 3, eval_every: 2, ..TrainConfig::default() };
/// let r = Trainer::new(head, cfg).unwrap()
///     .fit(Dataset::new(&x, &y), Some(Dataset::new(&x, &y)), |_| std::ops::ControlFlow::Continue(()))
///     .unwrap();
/// let evaluated: Vec<bool> = r.history.iter().map(|e| e.val.is_some()).collect();
/// assert_eq!(evaluated, vec![false, true, true]); // every 2nd epoch and the last
/// assert_eq!(r.history[0].samples, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochInfo {
    /// 1-based epoch.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean per-sample training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training top-1 over the epoch's batches (weights changing meanwhile).
    pub train_top1: Option<f64>,
    /// Held-out metrics, when evaluated this epoch.
    pub val: Option<EvalMetrics>,
    /// Samples trained on in this epoch.
    pub samples: usize,
    /// Seconds this epoch took (evaluation included).
    pub seconds: f64,
    /// Seconds this epoch spent in training steps only.
    pub train_seconds: f64,
}

/// A progress report passed to the callback of [`Trainer::fit`](super::Trainer::fit).
///
/// ```
/// use arcface::Event;
/// fn describe(e: &Event<'_>) -> String {
///     match e {
///         Event::Step(s) => format!("step {} loss {:.3}", s.global_step, s.loss),
///         Event::Epoch(e) => format!("epoch {} done", e.epoch),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// After each optimisation step.
    Step(&'a StepInfo),
    /// After each epoch (and its evaluation).
    Epoch(&'a EpochInfo),
}

/// The outcome of [`Trainer::fit`](super::Trainer::fit).
///
/// ```
/// use arcface::{ArcFaceHead, Dataset, HeadConfig, TrainConfig, Trainer};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
/// let cfg = TrainConfig { epochs: 2, batch_size: 1, ..TrainConfig::default() };
/// let r = Trainer::new(head, cfg).unwrap()
///     .fit(Dataset::new(&[1.0, 0.0, 0.0, 1.0], &[0, 1]), None, |_| std::ops::ControlFlow::Continue(()))
///     .unwrap();
/// assert_eq!((r.steps, r.samples, r.stopped_early), (4, 4, false));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// One entry per finished epoch.
    pub history: Vec<EpochInfo>,
    /// Steps taken.
    pub steps: usize,
    /// Samples trained on (summed over epochs).
    pub samples: usize,
    /// Seconds in `fit`.
    pub seconds: f64,
    /// Seconds in training steps only (no evaluation).
    pub train_seconds: f64,
    /// `true` when the callback asked to stop.
    pub stopped_early: bool,
}
