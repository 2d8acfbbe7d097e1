//! A training loop over an in-memory embedding matrix: seeded shuffled
//! mini-batches, an optimiser and a learning-rate schedule, evaluation on a
//! held-out split, adaptive margins, progress callbacks, and an early stop
//! with a clear error when the loss stops being finite.
//!
//! [`Dataset`] is the borrowed data, [`Trainer`] runs the epochs, [`evaluate`]
//! measures a head, and the events report progress. [`TrainConfig`]'s
//! defaults and checks live in `crate::config` with every other default.

mod dataset;
mod eval;
mod events;
mod run;
mod trainer;

pub use dataset::Dataset;
pub use eval::{evaluate, EvalMetrics};
pub use events::{EpochInfo, Event, StepInfo, TrainReport};
pub use run::RunRecord;
pub use trainer::Trainer;

use crate::margin::AdaptiveMargins;
use crate::optim::{LrSchedule, LrScheduler, OptimizerConfig};

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
    /// Passes over the training set (≥ 1), counting those before
    /// `start_epoch`.
    pub epochs: usize,
    /// Epochs already run (0 for a new run, less than `epochs`): a resumed
    /// run trains epochs `start_epoch + 1 ..= epochs`, its schedule starts at
    /// step `start_epoch × steps per epoch`, and a new trainer first draws
    /// the `start_epoch` shuffles it skips, so that with the weights and
    /// optimiser state saved after epoch `start_epoch` it continues exactly
    /// as the uninterrupted run would have.
    pub start_epoch: usize,
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
    /// about a third more work). Not measured when `sample_rate < 1`
    /// ([`TrainConfig::measures_train_accuracy`]).
    pub train_accuracy: bool,
    /// PartialFC's sample rate r in (0, 1]: each step keeps the batch's
    /// classes and samples the others to ⌈r·C⌉, and updates only the kept
    /// rows, exactly as the dense SGD update would (AdamW: `LazyAdam`); see
    /// [`crate::PartialFc`]. 1 (the default) is the full head. With r < 1
    /// the training accuracy is not measured (it needs every class's
    /// logits), and every row is brought up to date at each epoch's end.
    pub sample_rate: f64,
    /// Train only these classes' rows (`None`: all). The others are frozen
    /// for the run ([`crate::ArcFaceHead::set_trainable_classes`]): no
    /// gradient written or applied, their rows bit-identical afterwards;
    /// they still take part in the softmax. Not empty, no duplicates, each a
    /// class of the head that is not retired (checked by [`Trainer::fit`]).
    pub train_classes: Option<Vec<usize>>,
}

impl TrainConfig {
    /// The held-out evaluation during [`Trainer::fit`] runs in batches of
    /// at least this many samples (more per dispatch is faster, and the
    /// evaluation keeps no gradient).
    pub const MIN_EVAL_BATCH: usize = 256;

    /// The batch size of the held-out evaluation during [`Trainer::fit`]
    /// over `n_val` samples: the training batch size, at least
    /// [`Self::MIN_EVAL_BATCH`], at most `n_val`.
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { batch_size: 64, ..Default::default() };
    /// assert_eq!(cfg.eval_batch(10_000), 256);
    /// assert_eq!(cfg.eval_batch(100), 100);
    /// ```
    pub fn eval_batch(&self, n_val: usize) -> usize {
        self.batch_size.max(Self::MIN_EVAL_BATCH).min(n_val)
    }

    /// Steps in an epoch over `n` samples (the last batch of an epoch is
    /// smaller, or dropped with `drop_last`).
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { batch_size: 128, ..Default::default() };
    /// assert_eq!(cfg.steps_per_epoch(1438), 12);
    /// assert_eq!(arcface::TrainConfig { drop_last: true, ..cfg }.steps_per_epoch(1438), 11);
    /// ```
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether the held-out split is evaluated after 1-based epoch `epoch`:
    /// every `eval_every` epochs, and after the last.
    fn evaluates_after(&self, epoch: usize) -> bool {
        epoch == self.epochs || (self.eval_every > 0 && epoch.is_multiple_of(self.eval_every))
    }

    /// The per-step schedule: epoch counts converted to steps.
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
