//! The C configuration structs, their defaults (read from the library's, the
//! one home of defaults) and their conversion to the library's types.
//!
//! Choices that C could set to an out-of-range value are plain integers
//! checked here (a C enum field holding an unknown value would be undefined
//! behaviour on the Rust side); flags are `uint8_t`, nonzero meaning true.

use crate::status::{Fail, Res};
use arcface::{
    AdamW, AdaptiveMargins, Enrolment, HeadConfig, LossConfig, LrSchedule, Margins,
    OptimizerConfig, Reduction, Sgd, TrainConfig,
};

/// `ArcfaceHeadConfig::loss`: `CrossEntropyLoss`.
pub const ARCFACE_LOSS_CROSS_ENTROPY: u32 = 0;
/// `ArcfaceHeadConfig::loss`: `LabelSmoothLoss` (mode `original`).
pub const ARCFACE_LOSS_LABEL_SMOOTH: u32 = 1;
/// `ArcfaceHeadConfig::reduction`: the mean over the batch.
pub const ARCFACE_REDUCTION_MEAN: u32 = 0;
/// `ArcfaceHeadConfig::reduction`: the sum over the batch.
pub const ARCFACE_REDUCTION_SUM: u32 = 1;
/// `ArcfaceHeadConfig::reduction`: none (the step returns the sum).
pub const ARCFACE_REDUCTION_NONE: u32 = 2;
/// `ArcfaceOptimizerConfig::kind`: `torch.optim.SGD`.
pub const ARCFACE_OPTIMIZER_SGD: u32 = 0;
/// `ArcfaceOptimizerConfig::kind`: `torch.optim.AdamW`.
pub const ARCFACE_OPTIMIZER_ADAMW: u32 = 1;
/// `ArcfaceTrainConfig::schedule`: constant learning rate.
pub const ARCFACE_SCHEDULE_CONSTANT: u32 = 0;
/// `ArcfaceTrainConfig::schedule`: multiply by `gamma` every `step_size` epochs.
pub const ARCFACE_SCHEDULE_STEP: u32 = 1;
/// `ArcfaceTrainConfig::schedule`: cosine annealing down to `eta_min`.
pub const ARCFACE_SCHEDULE_COSINE: u32 = 2;

/// mmpretrain's `ArcFaceClsHead(num_classes, in_channels, num_subcenters,
/// scale, margins, easy_margin, loss)`. Start from
/// `arcface_head_config_default()`, which holds upstream's defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceHeadConfig {
    /// C, at least 1.
    pub num_classes: usize,
    /// D, at least 1.
    pub in_channels: usize,
    /// K, at least 1 (default 1).
    pub num_subcenters: usize,
    /// S (default 64).
    pub scale: f64,
    /// The margin of every class in radians (default 0.5), unless a margins
    /// array is given to `arcface_head_new`.
    pub margin: f64,
    /// `easy_margin` (default 0).
    pub easy_margin: u8,
    /// `ARCFACE_LOSS_CROSS_ENTROPY` (default) or `ARCFACE_LOSS_LABEL_SMOOTH`.
    pub loss: u32,
    /// `label_smooth_val` in [0, 1) for `ARCFACE_LOSS_LABEL_SMOOTH`.
    pub label_smooth_val: f64,
    /// `loss_weight` (default 1).
    pub loss_weight: f64,
    /// `ARCFACE_REDUCTION_MEAN` (default), `_SUM` or `_NONE`.
    pub reduction: u32,
}

impl ArcfaceHeadConfig {
    pub fn defaults(num_classes: usize, in_channels: usize) -> Self {
        let cfg = HeadConfig::new(num_classes, in_channels);
        let margin = match cfg.margins {
            Margins::Uniform(m) => m,
            Margins::PerClass(_) => HeadConfig::DEFAULT_MARGIN,
        };
        Self {
            num_classes,
            in_channels,
            num_subcenters: cfg.num_subcenters,
            scale: cfg.scale,
            margin,
            easy_margin: cfg.easy_margin as u8,
            loss: ARCFACE_LOSS_CROSS_ENTROPY,
            label_smooth_val: 0.0,
            loss_weight: cfg.loss.loss_weight,
            reduction: ARCFACE_REDUCTION_MEAN,
        }
    }

    /// The library's configuration, with `margins` (one per class) in place
    /// of `margin` when given; validated.
    pub fn to_config(self, margins: Option<&[f64]>) -> Res<HeadConfig> {
        let reduction = match self.reduction {
            ARCFACE_REDUCTION_MEAN => Reduction::Mean,
            ARCFACE_REDUCTION_SUM => Reduction::Sum,
            ARCFACE_REDUCTION_NONE => Reduction::None,
            r => return Err(Fail::config(format!("reduction: unknown value {r}"))),
        };
        let loss = match self.loss {
            ARCFACE_LOSS_CROSS_ENTROPY => LossConfig::cross_entropy(),
            ARCFACE_LOSS_LABEL_SMOOTH => LossConfig::label_smooth(self.label_smooth_val),
            l => return Err(Fail::config(format!("loss: unknown value {l}"))),
        };
        let margins = match margins {
            Some(m) => Margins::PerClass(m.to_vec()),
            None => Margins::Uniform(self.margin),
        };
        let cfg = HeadConfig::new(self.num_classes, self.in_channels)
            .with_subcenters(self.num_subcenters)
            .with_scale(self.scale)
            .with_margins(margins)
            .with_easy_margin(self.easy_margin != 0)
            .with_loss(
                loss.with_loss_weight(self.loss_weight)
                    .with_reduction(reduction),
            );
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `SetAdaptiveMarginsHook(margin_min, margin_max, power)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceAdaptiveMargins {
    /// Margin of the most frequent class (default 0.05).
    pub margin_min: f64,
    /// Margin of the rarest class (default 0.5).
    pub margin_max: f64,
    /// Exponent on the counts (default -0.25).
    pub power: f64,
}

impl From<AdaptiveMargins> for ArcfaceAdaptiveMargins {
    fn from(a: AdaptiveMargins) -> Self {
        Self {
            margin_min: a.margin_min,
            margin_max: a.margin_max,
            power: a.power,
        }
    }
}

impl From<ArcfaceAdaptiveMargins> for AdaptiveMargins {
    fn from(a: ArcfaceAdaptiveMargins) -> Self {
        Self {
            margin_min: a.margin_min,
            margin_max: a.margin_max,
            power: a.power,
        }
    }
}

/// An optimiser and its hyper-parameters (the learning rate is given to
/// each step). `momentum`, `dampening` and `nesterov` are SGD's; `beta1`,
/// `beta2` and `eps` AdamW's; `weight_decay` both's.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceOptimizerConfig {
    /// `ARCFACE_OPTIMIZER_SGD` or `ARCFACE_OPTIMIZER_ADAMW`.
    pub kind: u32,
    /// SGD momentum (default 0.9).
    pub momentum: f64,
    /// SGD dampening (default 0).
    pub dampening: f64,
    /// SGD Nesterov (default 0).
    pub nesterov: u8,
    /// Decoupled (AdamW, default 0.01) or L2 (SGD, default 1e-4) weight decay.
    pub weight_decay: f64,
    /// AdamW beta1 (default 0.9).
    pub beta1: f64,
    /// AdamW beta2 (default 0.999).
    pub beta2: f64,
    /// AdamW eps (default 1e-8).
    pub eps: f64,
}

impl ArcfaceOptimizerConfig {
    pub fn from_config(c: OptimizerConfig) -> Self {
        let (kind, s, a, weight_decay) = match c {
            OptimizerConfig::Sgd(s) => (ARCFACE_OPTIMIZER_SGD, s, AdamW::default(), s.weight_decay),
            OptimizerConfig::AdamW(a) => {
                (ARCFACE_OPTIMIZER_ADAMW, Sgd::default(), a, a.weight_decay)
            }
        };
        Self {
            kind,
            momentum: s.momentum,
            dampening: s.dampening,
            nesterov: s.nesterov as u8,
            weight_decay,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
        }
    }

    /// The defaults of optimiser `kind`.
    pub fn defaults(kind: u32) -> Res<Self> {
        match kind {
            ARCFACE_OPTIMIZER_SGD => Ok(Self::from_config(OptimizerConfig::Sgd(Sgd::default()))),
            ARCFACE_OPTIMIZER_ADAMW => {
                Ok(Self::from_config(OptimizerConfig::AdamW(AdamW::default())))
            }
            k => Err(Fail::config(format!("optimizer kind: unknown value {k}"))),
        }
    }

    pub fn to_config(self) -> Res<OptimizerConfig> {
        let cfg = match self.kind {
            ARCFACE_OPTIMIZER_SGD => OptimizerConfig::Sgd(Sgd {
                momentum: self.momentum,
                dampening: self.dampening,
                nesterov: self.nesterov != 0,
                weight_decay: self.weight_decay,
            }),
            ARCFACE_OPTIMIZER_ADAMW => OptimizerConfig::AdamW(AdamW {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
            }),
            k => return Err(Fail::config(format!("optimizer kind: unknown value {k}"))),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The trainer's settings (mmpretrain's usual recipe by default: SGD at
/// lr 0.1, cosine schedule, 20 epochs of batches of 128).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceTrainConfig {
    /// Passes over the training set (default 20).
    pub epochs: usize,
    /// Samples per step (default 128).
    pub batch_size: usize,
    /// Base learning rate (default 0.1).
    pub lr: f64,
    /// The optimiser (default SGD with its defaults).
    pub optimizer: ArcfaceOptimizerConfig,
    /// `ARCFACE_SCHEDULE_CONSTANT`, `_STEP` or `_COSINE` (default).
    pub schedule: u32,
    /// Step schedule: epochs between decays.
    pub step_size: usize,
    /// Step schedule: the decay factor (default 0.1).
    pub gamma: f64,
    /// Cosine schedule: the final learning rate (default 0).
    pub eta_min: f64,
    /// Linear warm-up length in epochs (default 0).
    pub warmup_epochs: usize,
    /// The warm-up's first factor in (0, 1] (default 0.001).
    pub warmup_start_factor: f64,
    /// Seed of the shuffling (default 0).
    pub seed: u64,
    /// Drop the last, smaller batch of each epoch (default 0).
    pub drop_last: u8,
    /// Nonzero: set adaptive margins from the training labels first.
    pub use_adaptive_margins: u8,
    /// Their parameters (upstream's hook defaults).
    pub adaptive_margins: ArcfaceAdaptiveMargins,
    /// Evaluate the held-out data every this many epochs and after the last
    /// (0: only after the last; default 1).
    pub eval_every: usize,
    /// Also measure training top-1 (default 1).
    pub train_accuracy: u8,
    /// PartialFC's sample rate in (0, 1]: each step keeps the batch's classes
    /// and samples the others up to ⌈r·C⌉ (default 1: the full head).
    pub sample_rate: f64,
}

impl ArcfaceTrainConfig {
    pub fn defaults() -> Self {
        let t = TrainConfig::default();
        let (step_size, gamma) = match LrSchedule::default_step(t.epochs) {
            LrSchedule::Step { step_size, gamma } => (step_size, gamma),
            _ => (1, LrSchedule::DEFAULT_STEP_GAMMA),
        };
        let eta_min = match t.schedule {
            LrSchedule::Cosine { eta_min } => eta_min,
            _ => 0.0,
        };
        let schedule = match t.schedule {
            LrSchedule::Constant => ARCFACE_SCHEDULE_CONSTANT,
            LrSchedule::Step { .. } => ARCFACE_SCHEDULE_STEP,
            LrSchedule::Cosine { .. } => ARCFACE_SCHEDULE_COSINE,
        };
        Self {
            epochs: t.epochs,
            batch_size: t.batch_size,
            lr: t.lr,
            optimizer: ArcfaceOptimizerConfig::from_config(t.optimizer),
            schedule,
            step_size,
            gamma,
            eta_min,
            warmup_epochs: t.warmup_epochs,
            warmup_start_factor: t.warmup_start_factor,
            seed: t.seed,
            drop_last: t.drop_last as u8,
            use_adaptive_margins: t.adaptive_margins.is_some() as u8,
            adaptive_margins: t.adaptive_margins.unwrap_or_default().into(),
            eval_every: t.eval_every,
            train_accuracy: t.train_accuracy as u8,
            sample_rate: t.sample_rate,
        }
    }

    pub fn to_config(self) -> Res<TrainConfig> {
        let schedule = match self.schedule {
            ARCFACE_SCHEDULE_CONSTANT => LrSchedule::Constant,
            ARCFACE_SCHEDULE_STEP => LrSchedule::Step {
                step_size: self.step_size,
                gamma: self.gamma,
            },
            ARCFACE_SCHEDULE_COSINE => LrSchedule::Cosine {
                eta_min: self.eta_min,
            },
            s => return Err(Fail::config(format!("schedule: unknown value {s}"))),
        };
        let cfg = TrainConfig {
            epochs: self.epochs,
            start_epoch: 0,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer.to_config()?,
            schedule,
            warmup_epochs: self.warmup_epochs,
            warmup_start_factor: self.warmup_start_factor,
            seed: self.seed,
            drop_last: self.drop_last != 0,
            adaptive_margins: (self.use_adaptive_margins != 0)
                .then(|| self.adaptive_margins.into()),
            eval_every: self.eval_every,
            train_accuracy: self.train_accuracy != 0,
            train_classes: None,
            sample_rate: self.sample_rate,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// How `arcface_head_enrol` builds a new class by weight imprinting
/// (`arcface_enrolment_default()` holds the defaults).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ArcfaceEnrolment {
    /// Seed of the spherical k-means' initialisation (K > 1; default 0).
    pub seed: u64,
    /// Lloyd iterations at most (default 50).
    pub kmeans_iters: usize,
    /// Nonzero: the new class gets `margin`; 0 (default): the margin the
    /// head's classes share (an error when their margins differ).
    pub use_margin: u8,
    /// The new class's margin when `use_margin` is nonzero.
    pub margin: f64,
    /// The new class's loss weight, used when the loss has class weights
    /// (default 1).
    pub class_weight: f64,
}

impl ArcfaceEnrolment {
    pub fn defaults() -> Self {
        let e = Enrolment::default();
        Self {
            seed: e.seed,
            kmeans_iters: e.kmeans_iters,
            use_margin: e.margin.is_some() as u8,
            margin: e.margin.unwrap_or(0.0),
            class_weight: e.class_weight,
        }
    }

    pub fn to_enrolment(self) -> Res<Enrolment> {
        let e = Enrolment {
            seed: self.seed,
            kmeans_iters: self.kmeans_iters,
            margin: (self.use_margin != 0).then_some(self.margin),
            class_weight: self.class_weight,
        };
        e.validate()?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_to_the_library_defaults() {
        let h = ArcfaceHeadConfig::defaults(7, 3).to_config(None).unwrap();
        assert_eq!(h, HeadConfig::new(7, 3));
        let t = ArcfaceTrainConfig::defaults().to_config().unwrap();
        assert_eq!(t, TrainConfig::default());
        let a = ArcfaceOptimizerConfig::defaults(ARCFACE_OPTIMIZER_ADAMW).unwrap();
        assert_eq!(
            a.to_config().unwrap(),
            OptimizerConfig::AdamW(AdamW::default())
        );
    }

    #[test]
    fn unknown_codes_and_bad_values_are_config_errors() {
        let mut h = ArcfaceHeadConfig::defaults(2, 2);
        h.reduction = 9;
        assert!(h.to_config(None).unwrap_err().message.contains("reduction"));
        let h = ArcfaceHeadConfig::defaults(0, 2);
        assert!(h
            .to_config(None)
            .unwrap_err()
            .message
            .contains("num_classes"));
        assert!(ArcfaceOptimizerConfig::defaults(5).is_err());
        let mut t = ArcfaceTrainConfig::defaults();
        t.schedule = 3;
        assert!(t.to_config().is_err());
    }
}
