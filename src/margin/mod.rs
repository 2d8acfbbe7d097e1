//! The additive angular margin, evaluated in the target column only.
//!
//! For the target class with cosine $c$ (clamped to $[-1, 1]$, deviation D1),
//! margin $m$, $\theta = \arccos c$, $t = -\cos m$ and $s = m \sin m$:
//!
//! $$\phi' = \begin{cases}\cos(\theta + m) & c > t \text{ (normal) or } c > 0 \text{ (easy)}\\
//! c - s & \text{otherwise, normal}\\ c & \text{otherwise, easy}\end{cases}$$
//!
//! Comparisons are strict, as upstream. The derivative in the first branch is
//! $\sin(\theta+m)/\sin\theta$ with $\sin\theta = \sqrt{(1-c)(1+c)}$ floored at
//! [`SIN_THETA_FLOOR`] (deviation D2); in the fallback branches it is 1.
//!
//! No arccosine is taken: with $\sin\theta$ as above (exact for
//! $\theta \in [0, \pi]$),
//! $\cos(\theta+m) = c\cos m - \sin\theta \sin m$ and
//! $\sin(\theta+m) = \sin\theta\cos m + c \sin m$, with $\cos m$ and $\sin m$
//! evaluated once per class in f64 (D8). The value is the same function as
//! upstream's `cos(acos(c) + m)`, without its three library calls per
//! sample, and better conditioned near $c = \pm 1$, where `acos` loses
//! digits.
//!
//! Where the margins come from: the configuration ([`crate::Margins`]), a
//! margins file ([`load_margins_file`]), or the class counts ([`AdaptiveMargins`]).

mod adaptive;
mod file;

pub use adaptive::AdaptiveMargins;
pub use file::{load_margins_file, parse_margins_file};

use crate::config::MarginGrad;
use crate::real::Real;

/// Lower bound on $\sin\theta$ in the margin derivative (deviation D2).
///
/// Above it the derivative is exact. It only bites for cosines within about
/// $5\cdot10^{-13}$ of ±1, which in f32 means exactly ±1.
///
/// ```
/// assert_eq!(arcface::SIN_THETA_FLOOR, 1e-6);
/// ```
pub const SIN_THETA_FLOOR: f64 = 1e-6;

/// Constants derived from one class margin (deviation D8: one formula,
/// evaluated in f64 and rounded once).
///
/// ```
/// let k = arcface::MarginConstants::new(0.5);
/// assert_eq!(k.threshold, -(0.5f64).cos());
/// assert_eq!(k.sinm_m, 0.5 * (0.5f64).sin());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarginConstants {
    /// $m$.
    pub margin: f64,
    /// $t = \cos(\pi - m) = -\cos m$.
    pub threshold: f64,
    /// $s = \sin(\pi - m)\, m = m \sin m$.
    pub sinm_m: f64,
}

impl MarginConstants {
    /// Derives the constants of margin `m` in f64.
    ///
    /// ```
    /// let k = arcface::MarginConstants::new(0.0);
    /// assert_eq!((k.threshold, k.sinm_m), (-1.0, 0.0));
    /// ```
    pub fn new(m: f64) -> Self {
        Self {
            margin: m,
            threshold: -m.cos(),
            sinm_m: m * m.sin(),
        }
    }
}

/// The margin constants rounded to the working precision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarginT<T> {
    pub threshold: T,
    pub sinm_m: T,
    /// $\cos m$, $\sin m$.
    pub cos_m: T,
    pub sin_m: T,
}

impl<T: Real> MarginT<T> {
    pub fn from_f64(k: &MarginConstants) -> Self {
        // a margin beyond T's range only enters through cos/sin(θ + m):
        // reduce it modulo 2π so that it stays finite; s = m sin m saturates
        let lim = T::MAX.to_f64();
        let m = if k.margin.abs() > lim {
            k.margin.rem_euclid(core::f64::consts::TAU)
        } else {
            k.margin
        };
        Self {
            threshold: T::from_f64(k.threshold),
            sinm_m: T::from_f64(k.sinm_m.clamp(-lim, lim)),
            cos_m: T::from_f64(m.cos()),
            sin_m: T::from_f64(m.sin()),
        }
    }
}

/// Which formula produced a target logit.
///
/// ```
/// use arcface::{margin_target, Branch, MarginConstants, MarginGrad};
/// let (_, _, b) = margin_target(-0.99f64, &MarginConstants::new(0.5), false, MarginGrad::Exact);
/// assert_eq!(b, Branch::Fallback);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Branch {
    /// $\cos(\theta + m)$.
    Phi,
    /// $c - m \sin m$ (normal mode, $c \le t$).
    Fallback,
    /// $c$ unchanged (easy mode, $c \le 0$).
    EasyCos,
}

/// The margin applied to one target cosine: returns $(\phi', d\phi'/dc, \text{branch})$.
///
/// The cosine is clamped to $[-1, 1]$ first (D1), so any finite input gives a
/// finite value and derivative.
///
/// ```
/// use arcface::{margin_target, Branch, MarginConstants, MarginGrad};
/// let k = MarginConstants::new(0.5);
/// let (v, d, b) = margin_target(0.6f64, &k, false, MarginGrad::Exact);
/// assert_eq!(b, Branch::Phi);
/// assert!((v - (0.6f64.acos() + 0.5).cos()).abs() < 1e-15);
/// assert!(d > 0.0);
/// // exactly parallel: finite thanks to the floor on sin(theta)
/// let (v, d, _) = margin_target(1.0f64, &k, false, MarginGrad::Exact);
/// assert!(v.is_finite() && d.is_finite());
/// ```
pub fn margin_target<T: Real>(
    c: T,
    k: &MarginConstants,
    easy_margin: bool,
    grad: MarginGrad,
) -> (T, T, Branch) {
    apply(c, &MarginT::from_f64(k), easy_margin, grad)
}

#[inline]
pub(crate) fn apply<T: Real>(c: T, k: &MarginT<T>, easy: bool, grad: MarginGrad) -> (T, T, Branch) {
    let one = T::ONE;
    let c = if c > one {
        one
    } else if c < -one {
        -one
    } else {
        c
    };
    let take_phi = if easy { c > T::ZERO } else { c > k.threshold };
    if take_phi {
        let sin_t = ((one - c) * (one + c)).sqrt_();
        let phi = c * k.cos_m - sin_t * k.sin_m;
        let d = match grad {
            MarginGrad::StraightThrough => one,
            MarginGrad::Exact => {
                let floor = T::from_f64(SIN_THETA_FLOOR);
                let sin_sum = sin_t * k.cos_m + c * k.sin_m;
                sin_sum / if sin_t < floor { floor } else { sin_t }
            }
        };
        (phi, d, Branch::Phi)
    } else if easy {
        (c, one, Branch::EasyCos)
    } else {
        (c - k.sinm_m, one, Branch::Fallback)
    }
}
