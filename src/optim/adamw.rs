//! `torch.optim.AdamW`: Adam with decoupled weight decay.

use crate::real::Real;

/// `torch.optim.AdamW` hyper-parameters, with PyTorch's defaults
/// (`betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01`).
///
/// Per element at step $t$ (1-based): $w \leftarrow w(1 - \eta\lambda)$,
/// $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
/// $$w \leftarrow w - \frac{\eta}{1-\beta_1^t}\,
/// \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}$$
///
/// ```
/// let a = arcface::AdamW::default();
/// assert_eq!((a.beta1, a.beta2, a.eps, a.weight_decay), (0.9, 0.999, 1e-8, 0.01));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    /// `betas[0]` in [0, 1).
    pub beta1: f64,
    /// `betas[1]` in [0, 1).
    pub beta2: f64,
    /// `eps` ≥ 0.
    pub eps: f64,
    /// `weight_decay` λ ≥ 0 (decoupled: the weights shrink by $\eta\lambda$).
    pub weight_decay: f64,
}

/// One AdamW step's scalars in the working precision, bias corrections
/// included (computed in f64, rounded once).
#[derive(Clone, Copy)]
pub(super) struct AdamWRule<T> {
    decay: T,
    b1: T,
    b2: T,
    one_b1: T,
    one_b2: T,
    step_size: T,
    inv_bc2_sqrt: T,
    eps: T,
}

impl<T: Real> AdamWRule<T> {
    /// The scalars of step $t$ = `steps + 1` at learning rate `lr`.
    pub(super) fn new(a: &AdamW, lr: f64, steps: u64) -> Self {
        let t = (steps + 1).min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - a.beta1.powi(t);
        let bc2 = 1.0 - a.beta2.powi(t);
        Self {
            decay: T::from_f64(1.0 - lr * a.weight_decay),
            b1: T::from_f64(a.beta1),
            b2: T::from_f64(a.beta2),
            one_b1: T::from_f64(1.0 - a.beta1),
            one_b2: T::from_f64(1.0 - a.beta2),
            step_size: T::from_f64(lr / bc1),
            inv_bc2_sqrt: T::from_f64(1.0 / bc2.sqrt()),
            eps: T::from_f64(a.eps),
        }
    }

    /// The new weight, first and second moments of one element with weight
    /// `w`, gradient `g` and moments `m`, `v`.
    #[inline(always)]
    pub(super) fn apply(&self, w: T, g: T, m: T, v: T) -> (T, T, T) {
        let w = w * self.decay;
        let m = self.b1 * m + self.one_b1 * g;
        let v = self.b2 * v + self.one_b2 * g * g;
        let denom = v.sqrt_() * self.inv_bc2_sqrt + self.eps;
        (w - self.step_size * (m / denom), m, v)
    }
}
