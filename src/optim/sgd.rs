//! `torch.optim.SGD`: momentum, dampening, Nesterov and L2 weight decay.

use crate::real::Real;

/// `torch.optim.SGD` hyper-parameters, with the defaults of mmpretrain's
/// recipes (`optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001)`).
///
/// Per element, with gradient $g$, weight $w$ and momentum buffer $b$:
/// $$g \leftarrow g + \lambda w,\quad b \leftarrow \mu b + (1-\tau) g
/// \;(b = g \text{ on the first step}),\quad
/// w \leftarrow w - \eta\,(\text{nesterov} ? g + \mu b : b)$$
///
/// ```
/// use arcface::Sgd;
/// let sgd = Sgd::default();
/// assert_eq!((sgd.momentum, sgd.weight_decay, sgd.nesterov), (0.9, 1e-4, false));
/// let plain = Sgd { momentum: 0.0, weight_decay: 0.0, ..Sgd::default() };
/// assert_eq!(plain.dampening, 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// `momentum` μ ≥ 0 (0 turns the buffer off).
    pub momentum: f64,
    /// `dampening` τ ≥ 0.
    pub dampening: f64,
    /// `nesterov`: needs `momentum > 0` and `dampening == 0`, as in PyTorch.
    pub nesterov: bool,
    /// `weight_decay` λ ≥ 0 (L2, added to the gradient).
    pub weight_decay: f64,
}

impl Sgd {
    /// Whether the update keeps a momentum buffer (`momentum != 0`).
    pub(super) fn has_momentum(&self) -> bool {
        self.momentum != 0.0
    }
}

/// One SGD step's scalars in the working precision.
#[derive(Clone, Copy)]
pub(super) struct SgdRule<T> {
    lr: T,
    wd: T,
    mu: T,
    damp: T,
    nesterov: bool,
    /// The first step, which sets the buffer to the gradient.
    first: bool,
    momentum: bool,
}

impl<T: Real> SgdRule<T> {
    /// The scalars of step `steps + 1` at learning rate `lr`.
    pub(super) fn new(s: &Sgd, lr: f64, steps: u64) -> Self {
        Self {
            lr: T::from_f64(lr),
            wd: T::from_f64(s.weight_decay),
            mu: T::from_f64(s.momentum),
            damp: T::from_f64(s.dampening),
            nesterov: s.nesterov,
            first: steps == 0,
            momentum: s.has_momentum(),
        }
    }

    /// The new weight and momentum buffer of one element with weight `w`,
    /// gradient `g` and buffer `b` (returned unchanged without momentum).
    #[inline(always)]
    pub(super) fn apply(&self, w: T, g: T, b: T) -> (T, T) {
        let g = g + self.wd * w;
        if !self.momentum {
            return (w - self.lr * g, b);
        }
        let b = if self.first {
            g
        } else {
            self.mu * b + (T::ONE - self.damp) * g
        };
        let d = if self.nesterov { g + self.mu * b } else { b };
        (w - self.lr * d, b)
    }
}
