//! A training loop over an in-memory embedding matrix: seeded shuffled
//! mini-batches, an optimiser and a learning-rate schedule, evaluation on a
//! held-out split, adaptive margins, progress callbacks, and an early stop
//! with a clear error when the loss stops being finite.

use crate::config::invalid;
use crate::error::{Error, Result};
use crate::head::{ArcFaceHead, Batch, Workspace};
use crate::margin::AdaptiveMargins;
use crate::optim::{LrSchedule, LrScheduler, Optimizer, OptimizerConfig};
use crate::real::Real;
use crate::rng::SplitMix64;
use core::ops::ControlFlow;
use std::time::Instant;

/// Embeddings (N×D, row-major) and their labels (N), borrowed.
///
/// ```
/// let x = [0.0f32, 1.0, 1.0, 0.0];
/// let data = arcface::Dataset::new(&x, &[1, 0]);
/// assert_eq!(data.len(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a, T> {
    /// N×D features, row-major.
    pub features: &'a [T],
    /// N labels in `0..num_classes`.
    pub labels: &'a [i64],
}

impl<'a, T: Real> Dataset<'a, T> {
    /// Pairs features with labels (checked when used).
    ///
    /// ```
    /// let d = arcface::Dataset::new(&[0.5f64, 0.5], &[0]);
    /// assert_eq!(d.features.len(), 2);
    /// ```
    pub fn new(features: &'a [T], labels: &'a [i64]) -> Self {
        Self { features, labels }
    }

    /// N, the number of samples.
    ///
    /// ```
    /// assert_eq!(arcface::Dataset::new(&[1.0f32; 6], &[0, 1, 0]).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` without samples.
    ///
    /// ```
    /// assert!(arcface::Dataset::<f32>::new(&[], &[]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks shapes, labels (`0..C`) and finiteness against `head`; errors
    /// name the sample (its index in the data set).
    fn validate(&self, head: &ArcFaceHead<T>, what: &'static str) -> Result<()> {
        let cfg = head.config();
        let (d, c) = (cfg.in_channels, cfg.num_classes);
        let n = self.labels.len();
        if n == 0 {
            return Err(Error::EmptyBatch);
        }
        if self.features.len() != n * d {
            return Err(Error::Shape {
                what,
                expected: n * d,
                got: self.features.len(),
            });
        }
        crate::error::check_labels(self.labels, c)?;
        if let Some(p) = self.features.iter().position(|v| !v.is_finite_()) {
            return Err(Error::NonFinite {
                what,
                row: p / d,
                col: p % d,
            });
        }
        Ok(())
    }
}

/// Loss and accuracy of a head on a labelled set.
///
/// `loss` is the mean per-sample training loss (margins applied, as in the
/// training objective; see [`crate::Workspace::sample_losses`]) whatever the
/// reduction; `top1` and `top5` are fractions in [0, 1] from the inference
/// logits (no margin), ties broken towards the lower class as in
/// [`crate::Prediction::topk`].
///
/// ```
/// use arcface::{evaluate, ArcFaceHead, Dataset, HeadConfig};
/// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(2, 2), &[1.0, 0.0, 0.0, 1.0]).unwrap();
/// let m = evaluate(&head, Dataset::new(&[0.9, 0.1, 0.2, 0.8, 1.0, 0.0], &[0, 1, 1]), 2).unwrap();
/// assert!((m.top1 - 2.0 / 3.0).abs() < 1e-12);
/// assert_eq!(m.top5, 1.0);
/// assert_eq!(m.samples, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalMetrics {
    /// Mean per-sample loss.
    pub loss: f64,
    /// Top-1 accuracy in [0, 1].
    pub top1: f64,
    /// Top-5 accuracy in [0, 1] (1 when C ≤ 5).
    pub top5: f64,
    /// Number of samples.
    pub samples: usize,
}

/// 0-based rank of class `y` in a logit row: classes with a larger logit, and
/// lower classes with an equal one, come first.
#[inline]
fn rank_of(row: &[impl PartialOrd + Copy], y: usize) -> usize {
    let zy = row[y];
    let mut r = 0;
    for (c, &z) in row.iter().enumerate() {
        if z > zy || (c < y && z == zy) {
            r += 1;
        }
    }
    r
}

/// Reusable evaluation buffers.
struct Evaluator<T> {
    ws: Workspace<T>,
    logits: Vec<T>,
    batch: usize,
}

impl<T: Real> Evaluator<T> {
    fn new(head: &ArcFaceHead<T>, batch: usize) -> Self {
        let batch = batch.max(1);
        Self {
            ws: Workspace::new(head, batch),
            logits: vec![T::ZERO; batch * head.config().num_classes],
            batch,
        }
    }

    fn run(&mut self, head: &ArcFaceHead<T>, data: Dataset<'_, T>) -> Result<EvalMetrics> {
        let (d, c) = (head.config().in_channels, head.config().num_classes);
        let n = data.len();
        let (mut loss, mut top1, mut top5) = (0.0f64, 0usize, 0usize);
        let mut start = 0;
        while start < n {
            let end = (start + self.batch).min(n);
            let m = end - start;
            let x = &data.features[start * d..end * d];
            let y = &data.labels[start..end];
            head.loss(&Batch::new(x, y), &mut self.ws)?;
            loss += self
                .ws
                .sample_losses()
                .iter()
                .map(|v| v.to_f64())
                .sum::<f64>();
            head.logits_into(x, &mut self.ws, &mut self.logits[..m * c])?;
            for (row, &label) in self.logits[..m * c].chunks_exact(c).zip(y) {
                let r = rank_of(row, label as usize);
                top1 += (r < 1) as usize;
                top5 += (r < 5) as usize;
            }
            start = end;
        }
        let nf = n as f64;
        Ok(EvalMetrics {
            loss: loss / nf,
            top1: top1 as f64 / nf,
            top5: top5 as f64 / nf,
            samples: n,
        })
    }
}

/// Evaluates `head` on `data` in chunks of `batch_size` samples (see
/// [`EvalMetrics`]). Bad data (shapes, labels, NaN) is an error naming the
/// sample.
///
/// ```
/// use arcface::{evaluate, ArcFaceHead, Dataset, Error, HeadConfig};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 0).unwrap();
/// let m = evaluate(&head, Dataset::new(&[1.0, 0.0, 0.0, 1.0], &[0, 2]), 64).unwrap();
/// assert_eq!(m.top5, 1.0); // three classes: always in the top 5
/// let err = evaluate(&head, Dataset::new(&[1.0, 0.0], &[3]), 64).unwrap_err();
/// assert!(matches!(err, Error::LabelOutOfRange { sample: 0, label: 3, .. }));
/// ```
pub fn evaluate<T: Real>(
    head: &ArcFaceHead<T>,
    data: Dataset<'_, T>,
    batch_size: usize,
) -> Result<EvalMetrics> {
    data.validate(head, "features")?;
    Evaluator::new(head, batch_size.min(data.len())).run(head, data)
}

/// Settings of [`Trainer`]; the defaults are mmpretrain's usual recipe
/// scaled to a head: SGD (momentum 0.9, weight decay 1e-4) at lr 0.1 with a
/// cosine schedule, 20 epochs of batches of 128.
///
/// `schedule`'s `Step::step_size` and `warmup_epochs` count epochs; the
/// trainer converts them to steps (the warm-up and the cosine move every
/// step, mmengine's `convert_to_iter_based=True`).
///
/// ```
/// use arcface::{AdaptiveMargins, TrainConfig};
/// let cfg = TrainConfig { epochs: 5, adaptive_margins: Some(AdaptiveMargins::default()), ..TrainConfig::default() };
/// assert!(cfg.validate().is_ok());
/// assert!(TrainConfig { batch_size: 0, ..cfg }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set (≥ 1).
    pub epochs: usize,
    /// Samples per step (≥ 1).
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// The optimiser (ignored by [`Trainer::with_optimizer`], which brings its own).
    pub optimizer: OptimizerConfig,
    /// The schedule after the warm-up.
    pub schedule: LrSchedule,
    /// Linear warm-up length in epochs (0: none).
    pub warmup_epochs: usize,
    /// The warm-up's first factor in (0, 1] (mmengine `LinearLR.start_factor`).
    pub warmup_start_factor: f64,
    /// Seed of the shuffling: the same seed, data, settings and thread
    /// count give bit-identical weights.
    pub seed: u64,
    /// Drop the last, smaller batch of each epoch.
    pub drop_last: bool,
    /// Upstream's `SetAdaptiveMarginsHook`: margins from the training labels,
    /// set once before the first step.
    pub adaptive_margins: Option<AdaptiveMargins>,
    /// Evaluate the held-out split every this many epochs, and after the
    /// last (0: only after the last).
    pub eval_every: usize,
    /// Also measure training top-1 on each batch (one more product per step,
    /// about a third more work).
    pub train_accuracy: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 128,
            lr: 0.1,
            optimizer: OptimizerConfig::default(),
            schedule: LrSchedule::default(),
            warmup_epochs: 0,
            warmup_start_factor: 0.001,
            seed: 0,
            drop_last: false,
            adaptive_margins: None,
            eval_every: 1,
            train_accuracy: true,
        }
    }
}

impl TrainConfig {
    /// Checks every field; the error names the first bad one.
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { warmup_epochs: 30, ..Default::default() };
    /// assert!(cfg.validate().unwrap_err().to_string().contains("warmup_epochs"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", "is 0, must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "is 0, must be at least 1".into()));
        }
        if self.warmup_epochs > self.epochs {
            return Err(invalid(
                "warmup_epochs",
                format!(
                    "is {}, more than the {} epochs",
                    self.warmup_epochs, self.epochs
                ),
            ));
        }
        self.optimizer.validate()?;
        LrScheduler::new(self.lr, self.schedule, 1)
            .with_warmup(self.warmup_epochs, self.warmup_start_factor)
            .validate()
    }

    fn steps_per_epoch(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    fn scheduler(&self, steps_per_epoch: usize) -> LrScheduler {
        let schedule = match self.schedule {
            LrSchedule::Step { step_size, gamma } => LrSchedule::Step {
                step_size: step_size.saturating_mul(steps_per_epoch),
                gamma,
            },
            s => s,
        };
        LrScheduler::new(self.lr, schedule, self.epochs * steps_per_epoch).with_warmup(
            self.warmup_epochs * steps_per_epoch,
            self.warmup_start_factor,
        )
    }
}

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

/// A progress report passed to the callback of [`Trainer::fit`].
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

/// The outcome of [`Trainer::fit`].
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

/// Trains a head: owns it, its optimiser, and every buffer a step needs
/// (sized at the start of [`Trainer::fit`]), so that a step allocates nothing.
///
/// ```
/// use arcface::{ArcFaceHead, Dataset, HeadConfig, TrainConfig, Trainer};
/// use std::ops::ControlFlow;
/// // two classes on the plane
/// let x: Vec<f32> = (0..40).flat_map(|i| if i % 2 == 0 { [1.0, 0.1 * (i % 5) as f32] } else { [-0.2, 1.0] }).collect();
/// let y: Vec<i64> = (0..40).map(|i| i % 2).collect();
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2).with_scale(16.0).with_margins(arcface::Margins::Uniform(0.2)), 0).unwrap();
/// let cfg = TrainConfig { epochs: 5, batch_size: 8, ..TrainConfig::default() };
/// let mut trainer = Trainer::new(head, cfg).unwrap();
/// let mut steps = 0;
/// let report = trainer
///     .fit(Dataset::new(&x, &y), Some(Dataset::new(&x, &y)), |e| {
///         if let arcface::Event::Step(_) = e { steps += 1; }
///         ControlFlow::Continue(())
///     })
///     .unwrap();
/// assert_eq!(steps, 25);
/// assert_eq!(report.history.last().unwrap().val.unwrap().top1, 1.0);
/// ```
#[derive(Debug)]
pub struct Trainer<T: Real> {
    head: ArcFaceHead<T>,
    opt: Optimizer<T>,
    cfg: TrainConfig,
    ws: Workspace<T>,
    xb: Vec<T>,
    yb: Vec<i64>,
    logits: Vec<T>,
    perm: Vec<usize>,
    rng: SplitMix64,
}

impl<T: Real> Trainer<T> {
    /// A trainer with a fresh optimiser (`cfg.optimizer`).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let t = Trainer::new(head, TrainConfig::default()).unwrap();
    /// assert_eq!(t.optimizer().steps(), 0);
    /// ```
    pub fn new(head: ArcFaceHead<T>, cfg: TrainConfig) -> Result<Self> {
        let opt = Optimizer::new(cfg.optimizer, &head)?;
        Self::with_optimizer(head, cfg, opt)
    }

    /// A trainer that continues with `opt` (for example one restored with
    /// [`crate::load_optimizer`]); `cfg.optimizer` is ignored.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, Optimizer, TrainConfig, Trainer};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let opt = Optimizer::with_len(Default::default(), 5).unwrap();
    /// assert!(Trainer::with_optimizer(head, TrainConfig::default(), opt).is_err()); // 5 ≠ 3·4
    /// ```
    pub fn with_optimizer(
        head: ArcFaceHead<T>,
        cfg: TrainConfig,
        opt: Optimizer<T>,
    ) -> Result<Self> {
        cfg.validate()?;
        if opt.len() != head.weight().len() {
            return Err(Error::Shape {
                what: "optimizer state",
                expected: head.weight().len(),
                got: opt.len(),
            });
        }
        let mut cfg = cfg;
        cfg.optimizer = *opt.config();
        Ok(Self {
            ws: Workspace::new(&head, 1),
            xb: Vec::new(),
            yb: Vec::new(),
            logits: Vec::new(),
            perm: Vec::new(),
            rng: SplitMix64::new(cfg.seed),
            head,
            opt,
            cfg,
        })
    }

    /// The head being trained.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let t = Trainer::new(ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap(), TrainConfig::default()).unwrap();
    /// assert_eq!(t.head().config().num_classes, 3);
    /// ```
    pub fn head(&self) -> &ArcFaceHead<T> {
        &self.head
    }

    /// The optimiser and its state.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let t = Trainer::new(ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap(), TrainConfig::default()).unwrap();
    /// assert_eq!(t.optimizer().config().name(), "SGD");
    /// ```
    pub fn optimizer(&self) -> &Optimizer<T> {
        &self.opt
    }

    /// The settings (with the optimiser actually used).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let t = Trainer::new(ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap(), TrainConfig::default()).unwrap();
    /// assert_eq!(t.config().epochs, 20);
    /// ```
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The trained head and the optimiser.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let t = Trainer::new(ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap(), TrainConfig::default()).unwrap();
    /// let (head, opt) = t.into_parts();
    /// assert_eq!(opt.len(), head.weight().len());
    /// ```
    pub fn into_parts(self) -> (ArcFaceHead<T>, Optimizer<T>) {
        (self.head, self.opt)
    }

    /// Trains for `cfg.epochs` epochs on `train`, evaluating on `val` (see
    /// [`TrainConfig::eval_every`]), calling `on_event` after every step and
    /// every epoch; returning `ControlFlow::Break(())` stops after the
    /// current step or epoch.
    ///
    /// Everything is checked first: shapes, every label (`0..C`, the error
    /// names the sample) and every feature (finite). If a step's loss or
    /// updated weights are not finite, training stops with
    /// [`Error::Diverged`] and the head and optimiser are as they were
    /// before that step. Each epoch visits the samples in a fresh seeded
    /// permutation.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Dataset, Error, HeadConfig, LrSchedule, TrainConfig, Trainer};
    /// // a learning rate so large that the first update overflows f32
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// let before = head.weight().to_vec();
    /// let cfg = TrainConfig { lr: 1e38, schedule: LrSchedule::Constant, ..TrainConfig::default() };
    /// let mut t = Trainer::new(head, cfg).unwrap();
    /// let err = t.fit(Dataset::new(&[1.0, 0.0, 0.0, 1.0], &[1, 0]), None, |_| std::ops::ControlFlow::Continue(()));
    /// assert!(matches!(err, Err(Error::Diverged { epoch: 1, step: 1, .. })));
    /// assert_eq!(t.head().weight(), &before[..]);
    /// ```
    pub fn fit<F>(
        &mut self,
        train: Dataset<'_, T>,
        val: Option<Dataset<'_, T>>,
        mut on_event: F,
    ) -> Result<TrainReport>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        train.validate(&self.head, "features")?;
        if let Some(v) = &val {
            v.validate(&self.head, "val features")?;
        }
        let n = train.len();
        let spe = self.cfg.steps_per_epoch(n);
        if spe == 0 {
            return Err(invalid(
                "batch_size",
                format!(
                    "is {} with drop_last, more than the {n} training samples",
                    self.cfg.batch_size
                ),
            ));
        }
        if let Some(p) = self.cfg.adaptive_margins {
            self.head.set_adaptive_margins(train.labels, p)?;
        }
        let sched = self.cfg.scheduler(spe);
        // Step buffers, sized once per call for batches of up to `cap` samples.
        let (d, c) = (
            self.head.config().in_channels,
            self.head.config().num_classes,
        );
        let cap = self.cfg.batch_size.min(n);
        if self.ws.capacity() < cap {
            self.ws = Workspace::new(&self.head, cap);
        }
        self.xb.resize(cap * d, T::ZERO);
        self.yb.resize(cap, 0);
        if self.cfg.train_accuracy {
            self.logits.resize(cap * c, T::ZERO);
        }
        let mut evaluator = val
            .as_ref()
            .map(|v| Evaluator::new(&self.head, self.cfg.batch_size.max(256).min(v.len())));
        self.perm.clear();
        self.perm.extend(0..n);

        let epochs = self.cfg.epochs;
        let bs = cap;
        let t0 = Instant::now();
        let mut report = TrainReport {
            history: Vec::with_capacity(epochs),
            steps: 0,
            samples: 0,
            seconds: 0.0,
            train_seconds: 0.0,
            stopped_early: false,
        };
        let mut global = 0usize;
        'epochs: for epoch in 1..=epochs {
            let te = Instant::now();
            // Fisher–Yates from the identity: the order depends only on the seed and
            // on how many epochs this trainer has run before
            for (i, p) in self.perm.iter_mut().enumerate() {
                *p = i;
            }
            for i in (1..n).rev() {
                let j = self.rng.below(i + 1);
                self.perm.swap(i, j);
            }
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            let mut lr = sched.lr_at(global);
            for step in 1..=spe {
                let start = (step - 1) * bs;
                let m = bs.min(n - start);
                for (k, &i) in self.perm[start..start + m].iter().enumerate() {
                    self.xb[k * d..(k + 1) * d]
                        .copy_from_slice(&train.features[i * d..(i + 1) * d]);
                    self.yb[k] = train.labels[i];
                }
                let batch = Batch::new(&self.xb[..m * d], &self.yb[..m]);
                let batch_correct = if self.cfg.train_accuracy {
                    let out = &mut self.logits[..m * c];
                    self.head.logits_into(batch.features, &mut self.ws, out)?;
                    Some(
                        out.chunks_exact(c)
                            .zip(batch.labels)
                            .filter(|(row, &y)| rank_of(row, y as usize) == 0)
                            .count(),
                    )
                } else {
                    None
                };
                let loss = match self.head.forward_backward(&batch, &mut self.ws) {
                    Ok(l) => l.to_f64(),
                    // finite data whose loss or gradient f32 cannot hold
                    Err(Error::Overflow { what, .. }) => {
                        return Err(Error::Diverged {
                            epoch,
                            step,
                            what,
                            value: f64::INFINITY,
                        })
                    }
                    Err(e) => return Err(e),
                };
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step,
                        what: "loss",
                        value: loss,
                    });
                }
                lr = sched.lr_at(global);
                if let Err(e) = self.opt.step(&mut self.head, self.ws.grad_weight(), lr) {
                    return Err(match e {
                        Error::NonFinite {
                            what: "updated weight",
                            row,
                            col,
                        } => {
                            let value = self.opt.updated_value(
                                &self.head,
                                self.ws.grad_weight(),
                                lr,
                                row * d + col,
                            );
                            Error::Diverged {
                                epoch,
                                step,
                                what: "weight update",
                                value,
                            }
                        }
                        other => other,
                    });
                }
                global += 1;
                loss_sum += self
                    .ws
                    .sample_losses()
                    .iter()
                    .map(|v| v.to_f64())
                    .sum::<f64>();
                correct += batch_correct.unwrap_or(0);
                seen += m;
                let info = StepInfo {
                    epoch,
                    epochs,
                    step,
                    steps_per_epoch: spe,
                    global_step: global,
                    lr,
                    loss,
                    batch_len: m,
                    batch_correct,
                    elapsed: t0.elapsed().as_secs_f64(),
                };
                if on_event(Event::Step(&info)).is_break() {
                    report.stopped_early = true;
                    report.steps = global;
                    report.samples += seen;
                    break 'epochs;
                }
            }
            let train_seconds = te.elapsed().as_secs_f64();
            report.train_seconds += train_seconds;
            let due =
                epoch == epochs || (self.cfg.eval_every > 0 && epoch % self.cfg.eval_every == 0);
            let val_metrics = match (&mut evaluator, &val) {
                (Some(ev), Some(v)) if due => Some(ev.run(&self.head, *v)?),
                _ => None,
            };
            let info = EpochInfo {
                epoch,
                epochs,
                lr,
                train_loss: loss_sum / seen.max(1) as f64,
                train_top1: self
                    .cfg
                    .train_accuracy
                    .then(|| correct as f64 / seen.max(1) as f64),
                val: val_metrics,
                samples: seen,
                seconds: te.elapsed().as_secs_f64(),
                train_seconds,
            };
            report.history.push(info);
            report.steps = global;
            report.samples += seen;
            if on_event(Event::Epoch(&info)).is_break() {
                report.stopped_early = epoch < epochs;
                break;
            }
        }
        report.seconds = t0.elapsed().as_secs_f64();
        Ok(report)
    }
}
