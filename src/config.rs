//! Every configuration's defaults and validation rules, in one place.
//!
//! The head's and the loss's configurations are defined here, with
//! mmpretrain's names. The optimiser's, the schedule's, the adaptive
//! margins' and the trainer's are defined beside their algorithms, but their
//! `Default` impls, default constants and `validate` methods are written
//! here too, so that this file is the one home of every default and every
//! configuration check (the `arcface` program takes its defaults from these).

use crate::error::{check_len, Error, Result};
use crate::margin::AdaptiveMargins;
use crate::optim::{AdamW, LrSchedule, LrScheduler, OptimizerConfig, Sgd};
use crate::train::TrainConfig;

/// How the loss of a batch is reduced (mmpretrain's `reduction`).
///
/// The head always passes `avg_factor = N` upstream, so `Mean` divides by the
/// batch size `N` even when class weights are set (not by the sum of weights).
///
/// ```
/// use arcface::Reduction;
/// assert_eq!(Reduction::default(), Reduction::Mean);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// $L = w_{loss} \sum_i \ell_i / N$.
    #[default]
    Mean,
    /// $L = w_{loss} \sum_i \ell_i$ (upstream raises here; deviation D3).
    Sum,
    /// One value per sample, $L_i = w_{loss} \ell_i$; gradients are those of $\sum_i L_i$.
    None,
}

/// Label-smoothing mode (`LabelSmoothLoss.mode`).
///
/// ```
/// use arcface::SmoothMode;
/// assert_ne!(SmoothMode::Original, SmoothMode::ClassyVision);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmoothMode {
    /// $t = y (1-\varepsilon) + \varepsilon / C$.
    #[default]
    Original,
    /// As `Original` with $\varepsilon' = \varepsilon / (1 + \varepsilon)$.
    ClassyVision,
}

/// `LabelSmoothLoss` parameters.
///
/// ```
/// use arcface::{LabelSmooth, SmoothMode};
/// let ls = LabelSmooth { label_smooth_val: 0.1, mode: SmoothMode::Original, num_classes: None };
/// assert_eq!(ls.effective_eps(), 0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSmooth {
    /// $\varepsilon \in [0, 1)$.
    pub label_smooth_val: f64,
    /// The smoothing rule.
    pub mode: SmoothMode,
    /// If set, must equal the head's `num_classes` (upstream asserts the same).
    pub num_classes: Option<usize>,
}

impl LabelSmooth {
    /// The $\varepsilon$ actually mixed in: $\varepsilon$ or $\varepsilon/(1+\varepsilon)$.
    ///
    /// ```
    /// use arcface::{LabelSmooth, SmoothMode};
    /// let ls = LabelSmooth { label_smooth_val: 0.25, mode: SmoothMode::ClassyVision, num_classes: None };
    /// assert_eq!(ls.effective_eps(), 0.2);
    /// ```
    pub fn effective_eps(&self) -> f64 {
        match self.mode {
            SmoothMode::Original => self.label_smooth_val,
            SmoothMode::ClassyVision => self.label_smooth_val / (1.0 + self.label_smooth_val),
        }
    }
}

/// The classification loss: `CrossEntropyLoss` or `LabelSmoothLoss`.
///
/// Per sample, with $\log p = \operatorname{log\_softmax}(z)$, class weights
/// $w_c$ (ones when unset) and target row $t$ (one-hot, soft, or smoothed):
/// $$\ell_i = -\sum_c w_c\, t_{ic} \log p_{ic}$$
///
/// ```
/// use arcface::{LossConfig, Reduction};
/// let loss = LossConfig::cross_entropy().with_loss_weight(2.0).with_reduction(Reduction::Sum);
/// assert_eq!(loss.loss_weight, 2.0);
/// let ls = LossConfig::label_smooth(0.1);
/// assert!(ls.label_smooth.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LossConfig {
    /// `loss_weight` (default 1).
    pub loss_weight: f64,
    /// `class_weight`: one weight per class, or `None` for ones.
    pub class_weight: Option<Vec<f64>>,
    /// `reduction` (default `Mean`).
    pub reduction: Reduction,
    /// `use_soft` of `CrossEntropyLoss`: the batch must carry soft targets (D4).
    pub use_soft: bool,
    /// `Some` for `LabelSmoothLoss`.
    pub label_smooth: Option<LabelSmooth>,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self::cross_entropy()
    }
}

impl LossConfig {
    /// `dict(type='CrossEntropyLoss', loss_weight=1.0)`, upstream's default.
    ///
    /// ```
    /// let l = arcface::LossConfig::cross_entropy();
    /// assert_eq!(l.loss_weight, 1.0);
    /// ```
    pub fn cross_entropy() -> Self {
        Self {
            loss_weight: 1.0,
            class_weight: None,
            reduction: Reduction::default(),
            use_soft: false,
            label_smooth: None,
        }
    }

    /// `dict(type='LabelSmoothLoss', label_smooth_val=eps, mode='original')`.
    ///
    /// ```
    /// let l = arcface::LossConfig::label_smooth(0.1).with_smooth_mode(arcface::SmoothMode::ClassyVision);
    /// assert_eq!(l.label_smooth.unwrap().mode, arcface::SmoothMode::ClassyVision);
    /// ```
    pub fn label_smooth(eps: f64) -> Self {
        Self {
            label_smooth: Some(LabelSmooth {
                label_smooth_val: eps,
                mode: SmoothMode::default(),
                num_classes: None,
            }),
            ..Self::cross_entropy()
        }
    }

    /// Sets `loss_weight`.
    ///
    /// ```
    /// assert_eq!(arcface::LossConfig::cross_entropy().with_loss_weight(0.5).loss_weight, 0.5);
    /// ```
    pub fn with_loss_weight(mut self, w: f64) -> Self {
        self.loss_weight = w;
        self
    }

    /// Sets `class_weight`.
    ///
    /// ```
    /// let l = arcface::LossConfig::cross_entropy().with_class_weight(vec![1.0, 2.0]);
    /// assert_eq!(l.class_weight.unwrap().len(), 2);
    /// ```
    pub fn with_class_weight(mut self, w: Vec<f64>) -> Self {
        self.class_weight = Some(w);
        self
    }

    /// Sets `reduction`.
    ///
    /// ```
    /// use arcface::{LossConfig, Reduction};
    /// assert_eq!(LossConfig::cross_entropy().with_reduction(Reduction::None).reduction, Reduction::None);
    /// ```
    pub fn with_reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }

    /// Sets `use_soft` (cross-entropy against soft targets only).
    ///
    /// ```
    /// assert!(arcface::LossConfig::cross_entropy().with_use_soft(true).use_soft);
    /// ```
    pub fn with_use_soft(mut self, on: bool) -> Self {
        self.use_soft = on;
        self
    }

    /// Sets the label-smoothing mode (no effect without label smoothing).
    ///
    /// ```
    /// let l = arcface::LossConfig::label_smooth(0.2).with_smooth_mode(arcface::SmoothMode::Original);
    /// assert_eq!(l.label_smooth.unwrap().label_smooth_val, 0.2);
    /// ```
    pub fn with_smooth_mode(mut self, mode: SmoothMode) -> Self {
        if let Some(ls) = &mut self.label_smooth {
            ls.mode = mode;
        }
        self
    }

    pub(crate) fn validate(&self, num_classes: usize) -> Result<()> {
        if !self.loss_weight.is_finite() {
            return Err(invalid(
                "loss_weight",
                format!("is {}, must be finite", self.loss_weight),
            ));
        }
        if let Some(cw) = &self.class_weight {
            if cw.len() != num_classes {
                return Err(invalid(
                    "class_weight",
                    format!(
                        "has {} entries, expected num_classes = {num_classes}",
                        cw.len()
                    ),
                ));
            }
            if let Some((c, v)) = cw.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(invalid(
                    "class_weight",
                    format!("entry {c} is {v}, must be finite"),
                ));
            }
        }
        if let Some(ls) = &self.label_smooth {
            let e = ls.label_smooth_val;
            if !(0.0..1.0).contains(&e) {
                return Err(invalid(
                    "label_smooth_val",
                    format!("is {e}, must be in [0, 1)"),
                ));
            }
            if let Some(c) = ls.num_classes {
                if c != num_classes {
                    return Err(invalid(
                        "num_classes",
                        format!("of the loss is {c} but the head has {num_classes} classes"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Which derivative the margin passes back (deviation D2).
///
/// ```
/// assert_eq!(arcface::MarginGrad::default(), arcface::MarginGrad::Exact);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarginGrad {
    /// The true derivative $\frac{d}{dc}\cos(\arccos c + m) = \sin(\theta+m)/\sin\theta$,
    /// with $\sin\theta$ floored at [`crate::SIN_THETA_FLOOR`] so that it stays finite.
    #[default]
    Exact,
    /// Derivative 1 through the margin (insightface's straight-through rule).
    StraightThrough,
}

/// Margins given to the constructor (upstream's `margins=`): one number for
/// every class, or one per class. A margins file goes through
/// [`crate::parse_margins_file`] and gives `PerClass`.
///
/// ```
/// use arcface::Margins;
/// assert_eq!(Margins::Uniform(0.5).expand(3).unwrap(), vec![0.5; 3]);
/// assert!(Margins::PerClass(vec![0.1]).expand(3).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Margins {
    /// `margins=0.5`.
    Uniform(f64),
    /// `margins=[m_0, …, m_{C-1}]`.
    PerClass(Vec<f64>),
}

impl Margins {
    /// The per-class list for `num_classes` classes, validated (length, D7).
    ///
    /// ```
    /// use arcface::Margins;
    /// assert_eq!(Margins::PerClass(vec![0.1, 0.2]).expand(2).unwrap(), vec![0.1, 0.2]);
    /// assert!(Margins::Uniform(f64::NAN).expand(2).is_err()); // D7
    /// ```
    pub fn expand(&self, num_classes: usize) -> Result<Vec<f64>> {
        let v = match self {
            Margins::Uniform(m) => vec![*m; num_classes],
            Margins::PerClass(v) => v.clone(),
        };
        validate_margins(&v, num_classes)?;
        Ok(v)
    }
}

pub(crate) fn validate_margins(m: &[f64], num_classes: usize) -> Result<()> {
    check_len("margins", m.len(), num_classes)?;
    if let Some((class, &value)) = m.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFiniteMargin { class, value });
    }
    Ok(())
}

/// The head's configuration: `ArcFaceClsHead(num_classes, in_channels,
/// num_subcenters=1, scale=64.0, margins=0.5, easy_margin=False, loss=CE)`.
///
/// ```
/// use arcface::{HeadConfig, Margins};
/// let cfg = HeadConfig::new(10, 128).with_subcenters(3).with_scale(30.0).with_margins(Margins::Uniform(0.3));
/// assert_eq!((cfg.num_classes, cfg.in_channels, cfg.num_subcenters), (10, 128, 3));
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HeadConfig {
    /// `num_classes` C (≥ 1; deviation D11).
    pub num_classes: usize,
    /// `in_channels` D (≥ 1; deviation D11).
    pub in_channels: usize,
    /// `num_subcenters` K (≥ 1).
    pub num_subcenters: usize,
    /// `scale` S (any finite number).
    pub scale: f64,
    /// `margins` (finite, any sign and size).
    pub margins: Margins,
    /// `easy_margin`.
    pub easy_margin: bool,
    /// `loss`.
    pub loss: LossConfig,
    /// Margin derivative policy (D2).
    pub margin_grad: MarginGrad,
}

impl HeadConfig {
    /// Upstream's default scale $S$ (`scale=64.0`).
    ///
    /// ```
    /// assert_eq!(arcface::HeadConfig::DEFAULT_SCALE, 64.0);
    /// ```
    pub const DEFAULT_SCALE: f64 = 64.0;
    /// Upstream's default additive angular margin $m$ in radians (`margins=0.5`).
    ///
    /// ```
    /// assert_eq!(arcface::HeadConfig::DEFAULT_MARGIN, 0.5);
    /// ```
    pub const DEFAULT_MARGIN: f64 = 0.5;
    /// Upstream's default number of sub-centres $K$ (`num_subcenters=1`:
    /// plain ArcFace).
    ///
    /// ```
    /// assert_eq!(arcface::HeadConfig::DEFAULT_SUBCENTERS, 1);
    /// ```
    pub const DEFAULT_SUBCENTERS: usize = 1;

    /// Upstream's defaults for the given shape: K = 1, S = 64, m = 0.5,
    /// `easy_margin = false`, cross-entropy.
    ///
    /// ```
    /// let cfg = arcface::HeadConfig::new(5, 16);
    /// assert_eq!(cfg.scale, 64.0);
    /// ```
    pub fn new(num_classes: usize, in_channels: usize) -> Self {
        Self {
            num_classes,
            in_channels,
            num_subcenters: Self::DEFAULT_SUBCENTERS,
            scale: Self::DEFAULT_SCALE,
            margins: Margins::Uniform(Self::DEFAULT_MARGIN),
            easy_margin: false,
            loss: LossConfig::cross_entropy(),
            margin_grad: MarginGrad::default(),
        }
    }

    /// Sets `num_subcenters`.
    ///
    /// ```
    /// assert_eq!(arcface::HeadConfig::new(5, 16).with_subcenters(3).num_subcenters, 3);
    /// ```
    pub fn with_subcenters(mut self, k: usize) -> Self {
        self.num_subcenters = k;
        self
    }

    /// Sets `scale`.
    ///
    /// ```
    /// assert_eq!(arcface::HeadConfig::new(5, 16).with_scale(30.0).scale, 30.0);
    /// ```
    pub fn with_scale(mut self, s: f64) -> Self {
        self.scale = s;
        self
    }

    /// Sets `margins`.
    ///
    /// ```
    /// use arcface::{HeadConfig, Margins};
    /// let cfg = HeadConfig::new(2, 4).with_margins(Margins::PerClass(vec![0.2, 0.4]));
    /// assert!(cfg.validate().is_ok());
    /// ```
    pub fn with_margins(mut self, m: Margins) -> Self {
        self.margins = m;
        self
    }

    /// Sets `easy_margin`.
    ///
    /// ```
    /// assert!(arcface::HeadConfig::new(5, 16).with_easy_margin(true).easy_margin);
    /// ```
    pub fn with_easy_margin(mut self, on: bool) -> Self {
        self.easy_margin = on;
        self
    }

    /// Sets the loss.
    ///
    /// ```
    /// use arcface::{HeadConfig, LossConfig};
    /// let cfg = HeadConfig::new(5, 16).with_loss(LossConfig::label_smooth(0.1));
    /// assert!(cfg.loss.label_smooth.is_some());
    /// ```
    pub fn with_loss(mut self, l: LossConfig) -> Self {
        self.loss = l;
        self
    }

    /// Sets the margin-gradient policy.
    ///
    /// ```
    /// use arcface::{HeadConfig, MarginGrad};
    /// let cfg = HeadConfig::new(5, 16).with_margin_grad(MarginGrad::StraightThrough);
    /// assert_eq!(cfg.margin_grad, MarginGrad::StraightThrough);
    /// ```
    pub fn with_margin_grad(mut self, g: MarginGrad) -> Self {
        self.margin_grad = g;
        self
    }

    /// The weight's shape (C·K, D): rows `c·K + k` for class `c`, sub-centre `k`.
    pub(crate) fn weight_shape(&self) -> (usize, usize) {
        (self.num_classes * self.num_subcenters, self.in_channels)
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// ```
    /// let bad = arcface::HeadConfig::new(5, 16).with_scale(f64::NAN);
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_positive("num_classes", self.num_classes)?;
        check_positive("in_channels", self.in_channels)?;
        check_positive("num_subcenters", self.num_subcenters)?;
        if self
            .num_classes
            .checked_mul(self.num_subcenters)
            .and_then(|r| r.checked_mul(self.in_channels))
            .is_none_or(|n| n > isize::MAX as usize / 8)
        {
            return Err(invalid(
                "num_classes",
                "times num_subcenters times in_channels overflows".into(),
            ));
        }
        if !self.scale.is_finite() {
            return Err(invalid(
                "scale",
                format!("is {}, must be finite", self.scale),
            ));
        }
        // no Vec of num_classes margins just to validate them
        match &self.margins {
            Margins::Uniform(m) if !m.is_finite() => {
                return Err(Error::NonFiniteMargin {
                    class: 0,
                    value: *m,
                })
            }
            Margins::Uniform(_) => {}
            Margins::PerClass(v) => validate_margins(v, self.num_classes)?,
        }
        self.loss.validate(self.num_classes)
    }
}

// ------------------------------------------------------------- training

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
        check_positive("epochs", self.epochs)?;
        check_positive("batch_size", self.batch_size)?;
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
}

// ------------------------------------------------------------- the checks

/// An [`Error::InvalidConfig`] naming `field`.
pub(crate) fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

/// A count that must be at least 1.
fn check_positive(field: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(invalid(field, "is 0, must be at least 1".into()));
    }
    Ok(())
}

/// A finite number ≥ 0 (rates, decays, factors).
pub(crate) fn check_nonneg(field: &'static str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(field, format!("is {v}, must be finite and >= 0")));
    }
    Ok(())
}

/// A number in [0, 1) (Adam's betas).
fn check_unit_interval(field: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(invalid(field, format!("is {v}, must be in [0, 1)")));
    }
    Ok(())
}
