//! Every configuration's defaults and validation rules, in one place.
//!
//! The head's and the loss's configurations are defined here, with
//! mmpretrain's names. The optimiser's, the schedule's, the adaptive
//! margins' and the trainer's are defined beside their algorithms, but their
//! `Default` impls, default constants and `validate` methods are written
//! here too, so that this file is the one home of every default and every
//! configuration check (the `arcface` program takes its defaults from these).

mod checks;
mod clean;
mod lifecycle;
mod loss;
mod training;

pub(crate) use checks::{
    check_nonneg, check_positive, check_sample_rate, check_unit_interval, invalid,
};
pub use loss::{LabelSmooth, LossConfig, Reduction, SmoothMode};

use crate::error::{check_len, Error, Result};

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
            Margins::Uniform(m) => crate::memory::try_filled(num_classes, *m, "margins")?,
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
