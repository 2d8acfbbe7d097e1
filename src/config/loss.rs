//! The loss's configuration: `CrossEntropyLoss` or `LabelSmoothLoss`, with
//! mmpretrain's names, defaults and checks.

use super::invalid;
use crate::error::Result;

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
