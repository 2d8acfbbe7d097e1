//! Optimisers over the head's weights (SGD with momentum, Nesterov and weight
//! decay; AdamW) and learning-rate schedules (constant, step, cosine, each
//! with an optional linear warm-up).
//!
//! The update rules are PyTorch's (`torch.optim.SGD`, `torch.optim.AdamW`,
//! single-tensor code path), the schedules mmengine's (`LinearLR` warm-up
//! followed by `StepLR` or `CosineAnnealingLR`), so that a recipe carries over
//! from an mmpretrain config. The optimiser state (momentum buffer, Adam
//! moments) is allocated once, beside the weights, when the [`Optimizer`] is
//! made; a step allocates nothing.
//!
//! Each optimiser's file holds its hyper-parameters and its update rule;
//! their defaults and checks are in `crate::config` with every other default.

mod adamw;
mod optimizer;
mod schedule;
mod sgd;

pub use adamw::AdamW;
pub use optimizer::Optimizer;
pub use schedule::{LrSchedule, LrScheduler};
pub use sgd::Sgd;

use crate::real::Real;
use adamw::AdamWRule;
use sgd::SgdRule;

/// Which optimiser, with its hyper-parameters (the learning rate comes from
/// the schedule at each step).
///
/// ```
/// use arcface::{OptimizerConfig, Sgd};
/// let cfg = OptimizerConfig::Sgd(Sgd { nesterov: true, ..Sgd::default() });
/// assert!(cfg.validate().is_ok());
/// assert_eq!(cfg.name(), "SGD");
/// assert_eq!(OptimizerConfig::default(), OptimizerConfig::Sgd(Sgd::default()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.AdamW`.
    AdamW(AdamW),
}

impl OptimizerConfig {
    /// The PyTorch class name: `"SGD"` or `"AdamW"`.
    ///
    /// ```
    /// assert_eq!(arcface::OptimizerConfig::AdamW(Default::default()).name(), "AdamW");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "SGD",
            OptimizerConfig::AdamW(_) => "AdamW",
        }
    }

    /// Names of the state tensors, as in PyTorch's optimiser `state_dict`:
    /// `["momentum_buffer"]` (SGD with momentum), `[]` (SGD without), or
    /// `["exp_avg", "exp_avg_sq"]` (AdamW).
    ///
    /// ```
    /// use arcface::{AdamW, OptimizerConfig};
    /// assert_eq!(OptimizerConfig::AdamW(AdamW::default()).state_names(), &["exp_avg", "exp_avg_sq"]);
    /// ```
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerConfig::Sgd(s) if s.has_momentum() => &["momentum_buffer"],
            OptimizerConfig::Sgd(_) => &[],
            OptimizerConfig::AdamW(_) => &["exp_avg", "exp_avg_sq"],
        }
    }
}

/// One step's scalars, converted to `T` once per step.
#[derive(Clone, Copy)]
enum Rule<T> {
    Sgd(SgdRule<T>),
    AdamW(AdamWRule<T>),
}

impl<T: Real> Rule<T> {
    /// The scalars of `config`'s step number `steps + 1` at learning rate `lr`.
    fn new(config: &OptimizerConfig, lr: f64, steps: u64) -> Self {
        match config {
            OptimizerConfig::Sgd(s) => Rule::Sgd(SgdRule::new(s, lr, steps)),
            OptimizerConfig::AdamW(a) => Rule::AdamW(AdamWRule::new(a, lr, steps)),
        }
    }

    /// The new (weight, state 1, state 2) of one element; both passes of
    /// [`Optimizer::step`] call this, so they agree bit for bit.
    #[inline(always)]
    fn apply(&self, w: T, g: T, s1: T, s2: T) -> (T, T, T) {
        match self {
            Rule::Sgd(r) => {
                let (w, b) = r.apply(w, g, s1);
                (w, b, s2)
            }
            Rule::AdamW(r) => r.apply(w, g, s1, s2),
        }
    }
}
