//! The record of a training run that its optimiser state carries, so that a
//! resumed run can be refused when it would not continue the saved one.

use super::TrainConfig;
use crate::error::{Error, Result};
use crate::optim::LrSchedule;

/// What a resumed run must share with the run that saved the optimiser
/// state: the PartialFC sample rate and the learning-rate schedule. The
/// [`crate::Trainer`] writes it into its optimiser
/// ([`crate::Optimizer::run`]), [`crate::save_optimizer`] saves it, and
/// [`crate::Trainer::with_optimizer`] refuses a configuration that differs
/// ([`Error::ResumeMismatch`]).
///
/// The sample rate, the base learning rate, the schedule's kind and
/// parameters and the warm-up must be equal. The run's length (`epochs`)
/// is not part of the record: resuming is how a run is extended (the
/// program's `train --resume` counts `--epochs` over the whole run), and a
/// cosine schedule then anneals over the new length from the resumed step.
///
/// ```
/// use arcface::{LrSchedule, TrainConfig};
/// let saved = TrainConfig { sample_rate: 0.1, ..TrainConfig::default() }.run_record();
/// let longer = TrainConfig { epochs: 50, sample_rate: 0.1, ..TrainConfig::default() };
/// assert!(saved.check_resume(&longer.run_record()).is_ok());
/// let other = TrainConfig { sample_rate: 0.2, ..TrainConfig::default() };
/// assert!(saved.check_resume(&other.run_record()).is_err());
/// let step = TrainConfig {
///     schedule: LrSchedule::Step { step_size: 2, gamma: 0.5 },
///     sample_rate: 0.1,
///     ..TrainConfig::default()
/// };
/// assert!(saved.check_resume(&step.run_record()).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunRecord {
    /// [`TrainConfig::sample_rate`].
    pub sample_rate: f64,
    /// [`TrainConfig::lr`].
    pub lr: f64,
    /// [`TrainConfig::schedule`].
    pub schedule: LrSchedule,
    /// [`TrainConfig::warmup_epochs`].
    pub warmup_epochs: usize,
    /// [`TrainConfig::warmup_start_factor`].
    pub warmup_start_factor: f64,
}

impl TrainConfig {
    /// This configuration's [`RunRecord`].
    ///
    /// ```
    /// let r = arcface::TrainConfig::default().run_record();
    /// assert_eq!(r.sample_rate, 1.0);
    /// ```
    pub fn run_record(&self) -> RunRecord {
        RunRecord {
            sample_rate: self.sample_rate,
            lr: self.lr,
            schedule: self.schedule,
            warmup_epochs: self.warmup_epochs,
            warmup_start_factor: self.warmup_start_factor,
        }
    }
}

impl RunRecord {
    /// Whether a run configured as `requested` continues the run recorded
    /// in `self`: [`Error::ResumeMismatch`] naming the first setting that
    /// differs.
    ///
    /// ```
    /// use arcface::{Error, TrainConfig};
    /// let saved = TrainConfig::default().run_record();
    /// let faster = TrainConfig { lr: 0.5, ..TrainConfig::default() }.run_record();
    /// assert!(matches!(saved.check_resume(&faster), Err(Error::ResumeMismatch { field: "lr", .. })));
    /// assert!(saved.check_resume(&saved).is_ok());
    /// ```
    pub fn check_resume(&self, requested: &RunRecord) -> Result<()> {
        let differs = |field: &'static str, saved: String, requested: String| {
            Err(Error::ResumeMismatch {
                field,
                saved,
                requested,
            })
        };
        let (s, r) = (self, requested);
        if s.sample_rate != r.sample_rate {
            return differs(
                "sample_rate",
                s.sample_rate.to_string(),
                r.sample_rate.to_string(),
            );
        }
        if s.lr != r.lr {
            return differs("lr", s.lr.to_string(), r.lr.to_string());
        }
        if s.schedule != r.schedule {
            return differs(
                "schedule",
                format!("{:?}", s.schedule),
                format!("{:?}", r.schedule),
            );
        }
        if s.warmup_epochs != r.warmup_epochs {
            return differs(
                "warmup_epochs",
                s.warmup_epochs.to_string(),
                r.warmup_epochs.to_string(),
            );
        }
        if s.warmup_start_factor != r.warmup_start_factor {
            let (a, b) = (s.warmup_start_factor, r.warmup_start_factor);
            return differs("warmup_start_factor", a.to_string(), b.to_string());
        }
        Ok(())
    }
}
