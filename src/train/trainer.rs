//! The trainer: owns the head, its optimiser and every step buffer, and runs
//! the epochs (shuffle, gather, forward and backward, update, report).

use super::eval::{loss_sum, rank_of, Evaluator};
use super::{Dataset, EpochInfo, Event, StepInfo, TrainConfig, TrainReport};
use crate::config::invalid;
use crate::error::{Error, Result};
use crate::head::{ArcFaceHead, Batch, Workspace};
use crate::memory::{Allocate, Sizer};
use crate::optim::{LrScheduler, Optimizer};
use crate::real::Real;
use crate::rng::SplitMix64;
use core::ops::ControlFlow;
use std::time::Instant;

mod sampled;

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
    /// The head's scratch, for batches of up to `min(batch_size, N)`.
    ws: Workspace<T>,
    /// The gathered batch: features (m×D) and labels (m).
    batch_x: Vec<T>,
    batch_y: Vec<i64>,
    /// Inference logits of the batch (m×C), for the training accuracy.
    logits: Vec<T>,
    /// This epoch's order of the samples.
    order: Vec<usize>,
    /// The shuffling stream, seeded once per trainer.
    rng: SplitMix64,
    /// Shuffles drawn from `rng` so far: one per epoch run.
    epochs_shuffled: usize,
    /// PartialFC's sampled step, when `cfg.sample_rate < 1` (made by `fit`).
    pfc: Option<crate::PartialFc<T>>,
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
    /// [`crate::load_optimizer`]); `cfg.optimizer` is ignored. When `opt`
    /// records the run that saved it ([`Optimizer::run`]), `cfg` must
    /// continue that run: the same sample rate and schedule
    /// ([`crate::RunRecord::check_resume`]), else
    /// [`crate::Error::ResumeMismatch`]. The trainer then records `cfg`'s
    /// run in the optimiser.
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
        opt.check_fits(&head)?;
        let run = cfg.run_record();
        if let Some(saved) = opt.run() {
            saved.check_resume(&run)?;
        }
        let mut opt = opt;
        opt.set_run(Some(run));
        let mut cfg = cfg;
        cfg.optimizer = *opt.config();
        // sampled steps run in the sampler's own workspace: the head's needs
        // no C×D gradient
        let ws = if cfg.is_sampled() {
            Workspace::try_inference(&head, 1)?
        } else {
            Workspace::try_new(&head, 1)?
        };
        Ok(Self {
            ws,
            batch_x: Vec::new(),
            batch_y: Vec::new(),
            logits: Vec::new(),
            order: Vec::new(),
            rng: SplitMix64::new(cfg.seed),
            epochs_shuffled: 0,
            pfc: None,
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
        on_event: F,
    ) -> Result<TrainReport>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        // `train_classes` restricts this run only: the head's own setting
        // is restored afterwards, whatever the outcome
        let saved = self.head.trainable_classes();
        if let Some(list) = &self.cfg.train_classes {
            self.head.set_trainable_classes(Some(list))?;
        }
        let result = self.fit_all(train, val, on_event);
        self.head.set_trainable_classes(saved.as_deref())?;
        result
    }

    /// [`Self::fit`] once the trainable classes are set.
    fn fit_all<F>(
        &mut self,
        train: Dataset<'_, T>,
        val: Option<Dataset<'_, T>>,
        mut on_event: F,
    ) -> Result<TrainReport>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let steps_per_epoch = self.prepare(&train, val.as_ref())?;
        let mut held_out = match val {
            Some(v) => {
                let batch = self.cfg.eval_batch(v.len());
                Some((Evaluator::new(&self.head, batch)?, v))
            }
            None => None,
        };
        let epochs = self.cfg.epochs;
        let mut run = Run {
            sched: self.cfg.scheduler(steps_per_epoch),
            steps_per_epoch,
            start: Instant::now(),
            global_step: self.cfg.start_epoch * steps_per_epoch,
        };
        let mut report = TrainReport {
            // grown per epoch: `epochs` comes from the caller
            history: Vec::new(),
            steps: 0,
            samples: 0,
            seconds: 0.0,
            train_seconds: 0.0,
            stopped_early: false,
        };
        // a resumed run draws the shuffles of the epochs it skips, as the
        // uninterrupted run did (a trainer that already ran them has them)
        for _ in self.epochs_shuffled..self.cfg.start_epoch {
            self.reshuffle();
        }
        let mut epochs_run = || -> Result<()> {
            for epoch in self.cfg.start_epoch + 1..=epochs {
                let epoch_start = Instant::now();
                self.reshuffle();
                let tally = self.train_epoch(train, epoch, &mut run, &mut on_event)?;
                report.steps = run.global_step;
                report.samples += tally.seen;
                if tally.stopped {
                    report.stopped_early = true;
                    break;
                }
                // the head is read (evaluation, callbacks) with every row current
                self.flush_sampled()?;
                let info = self.end_epoch(epoch, &tally, held_out.as_mut(), epoch_start)?;
                report.train_seconds += info.train_seconds;
                report.history.push(info);
                if on_event(Event::Epoch(&info)).is_break() {
                    report.stopped_early = epoch < epochs;
                    break;
                }
            }
            Ok(())
        };
        let outcome = epochs_run();
        // whatever happened, leave every row current (an error left the
        // dense state as it was: flushing it is exact)
        let flushed = self.flush_sampled();
        outcome.and(flushed)?;
        report.seconds = run.start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Checks the data, sets the adaptive margins and sizes the step
    /// buffers for batches of up to `min(batch_size, N)` samples; returns the
    /// steps per epoch.
    fn prepare(&mut self, train: &Dataset<'_, T>, val: Option<&Dataset<'_, T>>) -> Result<usize> {
        train.validate(&self.head, "features")?;
        // training labels may not name a retired class
        self.head.check_labels(train.labels)?;
        if let Some(v) = val {
            v.validate(&self.head, "val features")?;
        }
        let n = train.len();
        let steps_per_epoch = self.cfg.steps_per_epoch(n);
        if steps_per_epoch == 0 {
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
        let (d, c) = (
            self.head.config().in_channels,
            self.head.config().num_classes,
        );
        let cap = self.cfg.batch_size.min(n);
        if self.ws.capacity() < cap && !self.cfg.is_sampled() {
            self.ws = Workspace::try_new(&self.head, cap)?;
        }
        let wide = |a: usize, b: usize| a as u128 * b as u128;
        Allocate.grow(&mut self.batch_x, wide(cap, d), "batch features")?;
        Allocate.grow(&mut self.batch_y, cap as u128, "batch labels")?;
        if self.cfg.measures_train_accuracy() {
            Allocate.grow(&mut self.logits, wide(cap, c), "batch logits")?;
        }
        self.prepare_sampling(cap)?;
        self.order.clear();
        self.order.extend(0..n);
        Ok(steps_per_epoch)
    }

    /// A fresh order of the samples: a Fisher–Yates shuffle of the identity,
    /// so that the order depends only on the seed and on how many epochs
    /// this trainer has run before.
    fn reshuffle(&mut self) {
        for (i, p) in self.order.iter_mut().enumerate() {
            *p = i;
        }
        self.rng.shuffle(&mut self.order);
        self.epochs_shuffled += 1;
    }

    /// The steps of epoch `epoch`, each followed by an [`Event::Step`];
    /// stops early when the callback breaks.
    fn train_epoch<F>(
        &mut self,
        train: Dataset<'_, T>,
        epoch: usize,
        run: &mut Run,
        on_event: &mut F,
    ) -> Result<EpochTally>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let n = train.len();
        let cap = self.cfg.batch_size.min(n);
        let mut tally = EpochTally {
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            lr: run.sched.lr_at(run.global_step),
            stopped: false,
        };
        for step in 1..=run.steps_per_epoch {
            let start = (step - 1) * cap;
            let m = cap.min(n - start);
            self.gather(train, start, m);
            let lr = run.sched.lr_at(run.global_step);
            let (loss, batch_correct, sampled) = if self.pfc.is_some() {
                let (loss, s) = self.sampled_step(m, lr, epoch, step)?;
                (loss, None, Some(s))
            } else {
                let batch_correct = self.batch_accuracy(m)?;
                let loss = self.forward_backward(m, epoch, step)?;
                self.update(lr, epoch, step)?;
                (loss, batch_correct, None)
            };
            run.global_step += 1;
            tally.lr = lr;
            tally.loss_sum += match &self.pfc {
                Some(p) => p.sample_losses().iter().map(|v| v.to_f64()).sum::<f64>(),
                None => loss_sum(&self.ws),
            };
            tally.correct += batch_correct.unwrap_or(0);
            tally.seen += m;
            let info = StepInfo {
                epoch,
                epochs: self.cfg.epochs,
                step,
                steps_per_epoch: run.steps_per_epoch,
                global_step: run.global_step,
                lr,
                loss,
                batch_len: m,
                batch_correct,
                kept_classes: sampled.map_or(self.head.config().num_classes, |s| s.kept),
                positives_exceeded: sampled.is_some_and(|s| s.positives_exceeded),
                elapsed: run.start.elapsed().as_secs_f64(),
            };
            if on_event(Event::Step(&info)).is_break() {
                tally.stopped = true;
                break;
            }
        }
        Ok(tally)
    }

    /// Copies the `m` samples at positions `start..start + m` of the current
    /// order into the batch buffers.
    fn gather(&mut self, train: Dataset<'_, T>, start: usize, m: usize) {
        let d = self.head.config().in_channels;
        for (k, &i) in self.order[start..start + m].iter().enumerate() {
            self.batch_x[k * d..(k + 1) * d].copy_from_slice(&train.features[i * d..(i + 1) * d]);
            self.batch_y[k] = train.labels[i];
        }
    }

    /// Top-1 hits of the current weights on the gathered batch of `m`
    /// samples, when measured ([`TrainConfig::train_accuracy`]).
    fn batch_accuracy(&mut self, m: usize) -> Result<Option<usize>> {
        if !self.cfg.measures_train_accuracy() {
            return Ok(None);
        }
        let (d, c) = (
            self.head.config().in_channels,
            self.head.config().num_classes,
        );
        let out = &mut self.logits[..m * c];
        self.head
            .logits_into(&self.batch_x[..m * d], &mut self.ws, out)?;
        let hits = out
            .chunks_exact(c)
            .zip(&self.batch_y[..m])
            .filter(|(row, &y)| rank_of(row, y as usize) == 0)
            .count();
        Ok(Some(hits))
    }

    /// The loss and gradient of the gathered batch of `m` samples; a loss
    /// that is not finite, or one the precision cannot hold, is
    /// [`Error::Diverged`] at (`epoch`, `step`).
    fn forward_backward(&mut self, m: usize, epoch: usize, step: usize) -> Result<f64> {
        let d = self.head.config().in_channels;
        let batch = Batch::new(&self.batch_x[..m * d], &self.batch_y[..m]);
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
        Ok(loss)
    }

    /// One optimiser step at `lr` from the gradient in the workspace; an
    /// update that is not finite is [`Error::Diverged`] at (`epoch`, `step`),
    /// with the weights left as they were.
    fn update(&mut self, lr: f64, epoch: usize, step: usize) -> Result<()> {
        let Err(e) = self.opt.step(&mut self.head, self.ws.grad_weight(), lr) else {
            return Ok(());
        };
        Err(match e {
            Error::NonFinite {
                what: "updated weight",
                row,
                col,
            } => {
                let d = self.head.config().in_channels;
                let i = row * d + col;
                let value = self
                    .opt
                    .updated_value(&self.head, self.ws.grad_weight(), lr, i);
                Error::Diverged {
                    epoch,
                    step,
                    what: "weight update",
                    value,
                }
            }
            other => other,
        })
    }

    /// The epoch's summary, with the held-out metrics when they are due
    /// ([`TrainConfig::eval_every`]).
    fn end_epoch(
        &self,
        epoch: usize,
        tally: &EpochTally,
        held_out: Option<&mut (Evaluator<T>, Dataset<'_, T>)>,
        epoch_start: Instant,
    ) -> Result<EpochInfo> {
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let val = match held_out {
            Some((ev, v)) if self.cfg.evaluates_after(epoch) => Some(ev.run(&self.head, *v)?),
            _ => None,
        };
        let seen = tally.seen.max(1) as f64;
        Ok(EpochInfo {
            epoch,
            epochs: self.cfg.epochs,
            lr: tally.lr,
            train_loss: tally.loss_sum / seen,
            train_top1: self
                .cfg
                .measures_train_accuracy()
                .then(|| tally.correct as f64 / seen),
            val,
            samples: tally.seen,
            seconds: epoch_start.elapsed().as_secs_f64(),
            train_seconds,
        })
    }
}

/// What the steps of one [`Trainer::fit`] call share.
struct Run {
    sched: LrScheduler,
    steps_per_epoch: usize,
    /// When `fit` began.
    start: Instant,
    /// Steps taken so far in this call.
    global_step: usize,
}

/// What one epoch's steps add up to.
struct EpochTally {
    /// Sum of the per-sample losses.
    loss_sum: f64,
    /// Training top-1 hits (0 when not measured).
    correct: usize,
    /// Samples trained on.
    seen: usize,
    /// The learning rate of the last step.
    lr: f64,
    /// The callback asked to stop.
    stopped: bool,
}
