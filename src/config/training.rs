//! The defaults and checks of the training-side configurations. The types
//! (optimisers, schedules, adaptive margins, the trainer's configuration) are
//! defined beside their algorithms; their `Default` impls, default constants
//! and `validate` methods live here, so that `crate::config` is the one home
//! of every default and every configuration check.

use super::{check_nonneg, check_positive, check_unit_interval, invalid};
use crate::error::{Error, Result};
use crate::margin::AdaptiveMargins;
use crate::optim::{AdamW, LrSchedule, LrScheduler, OptimizerConfig, Sgd};
use crate::train::TrainConfig;

impl Sgd {
    /// The base learning rate of mmpretrain's SGD recipes (`lr=0.1`).
    ///
    /// ```
    /// assert_eq!(arcface::Sgd::DEFAULT_LR, 0.1);
    /// ```
    pub const DEFAULT_LR: f64 = 0.1;
}

/// mmpretrain's recipe: `momentum=0.9, weight_decay=0.0001`, no dampening,
/// no Nesterov.
impl Default for Sgd {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 1e-4,
        }
    }
}

impl AdamW {
    /// PyTorch's default learning rate of `torch.optim.AdamW` (`lr=1e-3`).
    ///
    /// ```
    /// assert_eq!(arcface::AdamW::DEFAULT_LR, 1e-3);
    /// ```
    pub const DEFAULT_LR: f64 = 1e-3;
}

/// PyTorch's defaults: `betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01`.
impl Default for AdamW {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// SGD with its defaults.
impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd(Sgd::default())
    }
}

impl OptimizerConfig {
    /// The default base learning rate of this optimiser:
    /// [`Sgd::DEFAULT_LR`] or [`AdamW::DEFAULT_LR`].
    ///
    /// ```
    /// use arcface::{AdamW, OptimizerConfig};
    /// assert_eq!(OptimizerConfig::default().default_lr(), 0.1);
    /// assert_eq!(OptimizerConfig::AdamW(AdamW::default()).default_lr(), 1e-3);
    /// ```
    pub fn default_lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(_) => Sgd::DEFAULT_LR,
            OptimizerConfig::AdamW(_) => AdamW::DEFAULT_LR,
        }
    }

    /// Checks the hyper-parameters against PyTorch's rules; the error names
    /// the first bad one.
    ///
    /// ```
    /// use arcface::{OptimizerConfig, Sgd};
    /// let bad = OptimizerConfig::Sgd(Sgd { momentum: 0.0, nesterov: true, ..Sgd::default() });
    /// assert!(bad.validate().unwrap_err().to_string().contains("nesterov"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(s) => {
                check_nonneg("momentum", s.momentum)?;
                check_nonneg("dampening", s.dampening)?;
                check_nonneg("weight_decay", s.weight_decay)?;
                if s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0) {
                    return Err(invalid(
                        "nesterov",
                        "requires momentum > 0 and dampening = 0".into(),
                    ));
                }
            }
            OptimizerConfig::AdamW(a) => {
                check_unit_interval("beta1", a.beta1)?;
                check_unit_interval("beta2", a.beta2)?;
                check_nonneg("eps", a.eps)?;
                check_nonneg("weight_decay", a.weight_decay)?;
            }
        }
        Ok(())
    }
}

/// Cosine annealing down to 0.
impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule::Cosine { eta_min: 0.0 }
    }
}

impl LrSchedule {
    /// The decay factor of a step schedule by default (`StepLR(gamma=0.1)`).
    ///
    /// ```
    /// assert_eq!(arcface::LrSchedule::DEFAULT_STEP_GAMMA, 0.1);
    /// ```
    pub const DEFAULT_STEP_GAMMA: f64 = 0.1;

    /// The default step schedule of a run of `epochs` epochs: decay by
    /// [`Self::DEFAULT_STEP_GAMMA`] every third of the run (at least every
    /// epoch).
    ///
    /// ```
    /// use arcface::LrSchedule;
    /// assert_eq!(LrSchedule::default_step(30), LrSchedule::Step { step_size: 10, gamma: 0.1 });
    /// assert_eq!(LrSchedule::default_step(2), LrSchedule::Step { step_size: 1, gamma: 0.1 });
    /// ```
    pub fn default_step(epochs: usize) -> Self {
        LrSchedule::Step {
            step_size: (epochs / 3).max(1),
            gamma: Self::DEFAULT_STEP_GAMMA,
        }
    }
}

impl LrScheduler {
    /// Checks every field; the error names the first bad one.
    ///
    /// ```
    /// use arcface::{LrSchedule, LrScheduler};
    /// assert!(LrScheduler::new(-1.0, LrSchedule::Constant, 10).validate().is_err());
    /// assert!(LrScheduler::new(0.1, LrSchedule::Step { step_size: 0, gamma: 0.1 }, 10).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_nonneg("lr", self.base_lr)?;
        if self.warmup_steps > 0
            && !(self.warmup_start_factor > 0.0 && self.warmup_start_factor <= 1.0)
        {
            return Err(invalid(
                "warmup_start_factor",
                format!("is {}, must be in (0, 1]", self.warmup_start_factor),
            ));
        }
        match self.schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { step_size, gamma } => {
                check_positive("step_size", step_size)?;
                check_nonneg("gamma", gamma)?;
            }
            LrSchedule::Cosine { eta_min } => check_nonneg("eta_min", eta_min)?,
        }
        Ok(())
    }
}

/// Upstream's `SetAdaptiveMarginsHook(margin_min=0.05, margin_max=0.5,
/// power=-0.25)`.
impl Default for AdaptiveMargins {
    fn default() -> Self {
        Self {
            margin_min: 0.05,
            margin_max: 0.5,
            power: -0.25,
        }
    }
}

impl AdaptiveMargins {
    /// Checks that every parameter is finite; the error names the first bad
    /// one.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("margin_min", self.margin_min),
            ("margin_max", self.margin_max),
            ("power", self.power),
        ] {
            if !v.is_finite() {
                return Err(Error::AdaptiveMargins {
                    reason: format!("{name} is {v}, must be finite"),
                });
            }
        }
        Ok(())
    }
}

/// mmpretrain's usual recipe scaled to a head: SGD with its defaults at
/// [`Sgd::DEFAULT_LR`], cosine schedule without warm-up, 20 epochs of
/// batches of 128, evaluation every epoch, training accuracy measured.
impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            start_epoch: 0,
            batch_size: 128,
            lr: Sgd::DEFAULT_LR,
            optimizer: OptimizerConfig::default(),
            schedule: LrSchedule::default(),
            warmup_epochs: 0,
            warmup_start_factor: 0.001,
            seed: 0,
            drop_last: false,
            adaptive_margins: None,
            eval_every: 1,
            train_accuracy: true,
            sample_rate: 1.0,
            train_classes: None,
        }
    }
}

impl TrainConfig {
    /// Whether the run takes PartialFC's sampled steps (`sample_rate < 1`).
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { sample_rate: 0.1, ..Default::default() };
    /// assert!(cfg.is_sampled() && !arcface::TrainConfig::default().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.sample_rate < 1.0
    }

    /// Whether the run measures the training top-1: asked for, and not
    /// sampled (a sampled step has no logits for every class).
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { sample_rate: 0.1, ..Default::default() };
    /// assert!(!cfg.measures_train_accuracy());
    /// assert!(arcface::TrainConfig::default().measures_train_accuracy());
    /// ```
    pub fn measures_train_accuracy(&self) -> bool {
        self.train_accuracy && !self.is_sampled()
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// ```
    /// let cfg = arcface::TrainConfig { warmup_epochs: 30, ..Default::default() };
    /// assert!(cfg.validate().unwrap_err().to_string().contains("warmup_epochs"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_positive("epochs", self.epochs)?;
        check_positive("batch_size", self.batch_size)?;
        if self.start_epoch >= self.epochs {
            return Err(invalid(
                "start_epoch",
                format!(
                    "is {}, but the run has only {} epochs: nothing is left to train",
                    self.start_epoch, self.epochs
                ),
            ));
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
        if let Some(list) = &self.train_classes {
            if list.is_empty() {
                return Err(invalid(
                    "train_classes",
                    "is empty: give at least one class, or none to train all".into(),
                ));
            }
            crate::head::check_class_list("train_classes", list, usize::MAX)?;
        }
        self.optimizer.validate()?;
        super::check_sample_rate(self.sample_rate)?;
        LrScheduler::new(self.lr, self.schedule, 1)
            .with_warmup(self.warmup_epochs, self.warmup_start_factor)
            .validate()
    }
}
