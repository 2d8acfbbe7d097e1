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

use crate::config::invalid;
use crate::error::{Error, Result};
use crate::head::ArcFaceHead;
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

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd(Sgd::default())
    }
}

fn check_nonneg(field: &'static str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(field, format!("is {v}, must be finite and >= 0")));
    }
    Ok(())
}

fn check_beta(field: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(invalid(field, format!("is {v}, must be in [0, 1)")));
    }
    Ok(())
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
                check_beta("beta1", a.beta1)?;
                check_beta("beta2", a.beta2)?;
                check_nonneg("eps", a.eps)?;
                check_nonneg("weight_decay", a.weight_decay)?;
            }
        }
        Ok(())
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
            OptimizerConfig::Sgd(s) if s.momentum != 0.0 => &["momentum_buffer"],
            OptimizerConfig::Sgd(_) => &[],
            OptimizerConfig::AdamW(_) => &["exp_avg", "exp_avg_sq"],
        }
    }
}

/// Per-step scalars, converted to `T` once per step.
#[derive(Clone, Copy)]
enum Rule<T> {
    Sgd {
        lr: T,
        wd: T,
        mu: T,
        damp: T,
        nesterov: bool,
        first: bool,
        momentum: bool,
    },
    AdamW {
        decay: T,
        b1: T,
        b2: T,
        one_b1: T,
        one_b2: T,
        step_size: T,
        inv_bc2_sqrt: T,
        eps: T,
    },
}

impl<T: Real> Rule<T> {
    /// The new (weight, state 1, state 2) of one element; both passes of
    /// [`Optimizer::step`] call this, so they agree bit for bit.
    #[inline(always)]
    fn apply(&self, w: T, g: T, s1: T, s2: T) -> (T, T, T) {
        match *self {
            Rule::Sgd {
                lr,
                wd,
                mu,
                damp,
                nesterov,
                first,
                momentum,
            } => {
                let g = g + wd * w;
                if !momentum {
                    return (w - lr * g, s1, s2);
                }
                let b = if first {
                    g
                } else {
                    mu * s1 + (T::ONE - damp) * g
                };
                let d = if nesterov { g + mu * b } else { b };
                (w - lr * d, b, s2)
            }
            Rule::AdamW {
                decay,
                b1,
                b2,
                one_b1,
                one_b2,
                step_size,
                inv_bc2_sqrt,
                eps,
            } => {
                let w = w * decay;
                let m = b1 * s1 + one_b1 * g;
                let v = b2 * s2 + one_b2 * g * g;
                let denom = v.sqrt_() * inv_bc2_sqrt + eps;
                (w - step_size * (m / denom), m, v)
            }
        }
    }
}

/// An optimiser and its state for one head: momentum buffer (SGD) or first
/// and second moments (AdamW), each as long as the weights, allocated here
/// once. [`Optimizer::step`] allocates nothing.
///
/// ```
/// use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, Workspace};
/// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
/// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
/// let mut ws = Workspace::new(&head, 2);
/// let (x, y) = ([1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [1, 2]);
/// let first = head.loss(&Batch::new(&x, &y), &mut ws).unwrap();
/// for _ in 0..20 {
///     head.forward_backward(&Batch::new(&x, &y), &mut ws).unwrap();
///     opt.step(&mut head, ws.grad_weight(), 0.05).unwrap();
/// }
/// assert!(head.loss(&Batch::new(&x, &y), &mut ws).unwrap() < first);
/// assert_eq!(opt.steps(), 20);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer<T> {
    config: OptimizerConfig,
    len: usize,
    state1: Vec<T>,
    state2: Vec<T>,
    steps: u64,
}

impl<T: Real> Optimizer<T> {
    /// A fresh optimiser (zero state, step 0) for `head`'s weights.
    ///
    /// ```
    /// use arcface::{AdamW, ArcFaceHead, HeadConfig, Optimizer, OptimizerConfig};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(10, 16).with_subcenters(3), 0).unwrap();
    /// let opt = Optimizer::new(OptimizerConfig::AdamW(AdamW::default()), &head).unwrap();
    /// assert_eq!(opt.len(), 10 * 3 * 16);
    /// ```
    pub fn new(config: OptimizerConfig, head: &ArcFaceHead<T>) -> Result<Self> {
        Self::with_len(config, head.weight().len())
    }

    /// A fresh optimiser for `len` parameters.
    ///
    /// ```
    /// let opt = arcface::Optimizer::<f64>::with_len(Default::default(), 12).unwrap();
    /// assert_eq!(opt.len(), 12);
    /// ```
    pub fn with_len(config: OptimizerConfig, len: usize) -> Result<Self> {
        config.validate()?;
        let n = config.state_names().len();
        Ok(Self {
            config,
            len,
            state1: if n >= 1 {
                vec![T::ZERO; len]
            } else {
                Vec::new()
            },
            state2: if n >= 2 {
                vec![T::ZERO; len]
            } else {
                Vec::new()
            },
            steps: 0,
        })
    }

    /// The configuration.
    ///
    /// ```
    /// let opt = arcface::Optimizer::<f32>::with_len(Default::default(), 4).unwrap();
    /// assert_eq!(opt.config().name(), "SGD");
    /// ```
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Steps taken so far (PyTorch's `state['step']`).
    ///
    /// ```
    /// assert_eq!(arcface::Optimizer::<f32>::with_len(Default::default(), 4).unwrap().steps(), 0);
    /// ```
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The number of parameters this optimiser updates.
    ///
    /// ```
    /// assert_eq!(arcface::Optimizer::<f32>::with_len(Default::default(), 4).unwrap().len(), 4);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when it updates no parameter.
    ///
    /// ```
    /// assert!(!arcface::Optimizer::<f32>::with_len(Default::default(), 4).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The state tensors, named as in [`OptimizerConfig::state_names`], each
    /// laid out like the weights ((C·K)×D row-major).
    ///
    /// ```
    /// use arcface::{AdamW, Optimizer, OptimizerConfig};
    /// let opt = Optimizer::<f32>::with_len(OptimizerConfig::AdamW(AdamW::default()), 6).unwrap();
    /// let st = opt.state();
    /// assert_eq!(st.len(), 2);
    /// assert_eq!((st[0].0, st[0].1.len()), ("exp_avg", 6));
    /// ```
    pub fn state(&self) -> Vec<(&'static str, &[T])> {
        let names = self.config.state_names();
        let bufs: [&[T]; 2] = [&self.state1, &self.state2];
        names.iter().zip(bufs).map(|(n, b)| (*n, b)).collect()
    }

    /// Restores a saved state: the step count and one buffer per name of
    /// [`OptimizerConfig::state_names`], in that order. Wrong count, length or
    /// a non-finite value is an error and changes nothing.
    ///
    /// ```
    /// use arcface::{Optimizer, OptimizerConfig};
    /// let mut opt = Optimizer::<f32>::with_len(OptimizerConfig::default(), 2).unwrap();
    /// opt.set_state(7, &[&[0.5, -0.5]]).unwrap();
    /// assert_eq!(opt.steps(), 7);
    /// assert!(opt.set_state(7, &[&[0.5]]).is_err());
    /// ```
    pub fn set_state(&mut self, steps: u64, buffers: &[&[T]]) -> Result<()> {
        let names = self.config.state_names();
        if buffers.len() != names.len() {
            return Err(Error::Shape {
                what: "optimizer state",
                expected: names.len(),
                got: buffers.len(),
            });
        }
        for b in buffers {
            if b.len() != self.len {
                return Err(Error::Shape {
                    what: "optimizer state",
                    expected: self.len,
                    got: b.len(),
                });
            }
            if let Some(p) = b.iter().position(|v| !v.is_finite_()) {
                return Err(Error::NonFinite {
                    what: "optimizer state",
                    row: p,
                    col: 0,
                });
            }
        }
        if let Some(b) = buffers.first() {
            self.state1.copy_from_slice(b);
        }
        if let Some(b) = buffers.get(1) {
            self.state2.copy_from_slice(b);
        }
        self.steps = steps;
        Ok(())
    }

    /// Clears the state (zero buffers, step 0), keeping the allocation.
    ///
    /// ```
    /// let mut opt = arcface::Optimizer::<f32>::with_len(Default::default(), 2).unwrap();
    /// opt.set_state(3, &[&[1.0, 1.0]]).unwrap();
    /// opt.reset();
    /// assert_eq!(opt.steps(), 0);
    /// ```
    pub fn reset(&mut self) {
        self.state1.fill(T::ZERO);
        self.state2.fill(T::ZERO);
        self.steps = 0;
    }

    fn rule(&self, lr: f64) -> Rule<T> {
        match self.config {
            OptimizerConfig::Sgd(s) => Rule::Sgd {
                lr: T::from_f64(lr),
                wd: T::from_f64(s.weight_decay),
                mu: T::from_f64(s.momentum),
                damp: T::from_f64(s.dampening),
                nesterov: s.nesterov,
                first: self.steps == 0,
                momentum: s.momentum != 0.0,
            },
            OptimizerConfig::AdamW(a) => {
                let t = (self.steps + 1).min(i32::MAX as u64) as i32;
                let bc1 = 1.0 - a.beta1.powi(t);
                let bc2 = 1.0 - a.beta2.powi(t);
                Rule::AdamW {
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
        }
    }

    /// The value element `i` of the weights would take in a step at `lr`
    /// (for error messages).
    pub(crate) fn updated_value(
        &self,
        head: &ArcFaceHead<T>,
        grad: &[T],
        lr: f64,
        i: usize,
    ) -> f64 {
        let (Some(&w), Some(&g)) = (head.weight().get(i), grad.get(i)) else {
            return f64::NAN;
        };
        let s1 = self.state1.get(i).copied().unwrap_or(T::ZERO);
        let s2 = self.state2.get(i).copied().unwrap_or(T::ZERO);
        self.rule(lr).apply(w, g, s1, s2).0.to_f64()
    }

    /// One update of `head`'s weights from the gradient `grad` ((C·K)×D, for
    /// example [`crate::Workspace::grad_weight`]) at learning rate `lr`.
    ///
    /// All or nothing: if the new weights or state would not be finite (or
    /// `lr` is negative or not finite, or `grad` has the wrong length), the
    /// error says so and the weights, the state and the step count are left
    /// as they were. Allocates nothing.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, Optimizer, OptimizerConfig, Sgd};
    /// let mut head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(1, 2), &[1.0, 2.0]).unwrap();
    /// let plain = OptimizerConfig::Sgd(Sgd { momentum: 0.0, weight_decay: 0.0, ..Sgd::default() });
    /// let mut opt = Optimizer::new(plain, &head).unwrap();
    /// opt.step(&mut head, &[0.5, -1.0], 0.1).unwrap();
    /// assert_eq!(head.weight(), &[0.95, 2.1]);
    /// assert!(opt.step(&mut head, &[f64::MAX, 0.0], 10.0).is_err());
    /// assert_eq!(head.weight(), &[0.95, 2.1]);
    /// ```
    pub fn step(&mut self, head: &mut ArcFaceHead<T>, grad: &[T], lr: f64) -> Result<()> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(invalid("lr", format!("is {lr}, must be finite and >= 0")));
        }
        let n = self.len;
        if head.weight().len() != n {
            return Err(Error::Shape {
                what: "weight",
                expected: n,
                got: head.weight().len(),
            });
        }
        if grad.len() != n {
            return Err(Error::Shape {
                what: "grad",
                expected: n,
                got: grad.len(),
            });
        }
        let rule = self.rule(lr);
        let d = head.config().in_channels.max(1);
        let zero = T::ZERO;
        // Pass 1: check that everything stays finite, writing nothing.
        {
            let w = head.weight();
            for i in 0..n {
                let s1 = self.state1.get(i).copied().unwrap_or(zero);
                let s2 = self.state2.get(i).copied().unwrap_or(zero);
                let (nw, n1, n2) = rule.apply(w[i], grad[i], s1, s2);
                if !(nw.is_finite_() && n1.is_finite_() && n2.is_finite_()) {
                    return Err(Error::NonFinite {
                        what: "updated weight",
                        row: i / d,
                        col: i % d,
                    });
                }
            }
        }
        // Pass 2: the same arithmetic, committed.
        let (s1, s2) = (&mut self.state1, &mut self.state2);
        head.update_weight(|w| match (s1.is_empty(), s2.is_empty()) {
            (true, _) => {
                for (wi, &gi) in w.iter_mut().zip(grad) {
                    *wi = rule.apply(*wi, gi, zero, zero).0;
                }
            }
            (false, true) => {
                for ((wi, &gi), a) in w.iter_mut().zip(grad).zip(s1.iter_mut()) {
                    let (nw, n1, _) = rule.apply(*wi, gi, *a, zero);
                    *wi = nw;
                    *a = n1;
                }
            }
            (false, false) => {
                for (((wi, &gi), a), b) in
                    w.iter_mut().zip(grad).zip(s1.iter_mut()).zip(s2.iter_mut())
                {
                    let (nw, n1, n2) = rule.apply(*wi, gi, *a, *b);
                    *wi = nw;
                    *a = n1;
                    *b = n2;
                }
            }
        })?;
        self.steps += 1;
        Ok(())
    }
}

/// The shape of the learning rate after the warm-up (see [`LrScheduler`]).
///
/// ```
/// use arcface::LrSchedule;
/// assert_eq!(LrSchedule::default(), LrSchedule::Cosine { eta_min: 0.0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// mmengine's `StepLR`: multiply by `gamma` every `step_size` steps
    /// (epochs in [`crate::TrainConfig`]).
    Step {
        /// Period of the decay (≥ 1).
        step_size: usize,
        /// Factor per period (finite, ≥ 0).
        gamma: f64,
    },
    /// mmengine's `CosineAnnealingLR` from the base rate down to `eta_min`
    /// at the last step.
    Cosine {
        /// The final learning rate (finite, ≥ 0).
        eta_min: f64,
    },
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule::Cosine { eta_min: 0.0 }
    }
}

/// The learning rate at each step: an optional linear warm-up (mmengine's
/// `LinearLR(start_factor, end_factor=1)`, per step) over the first
/// `warmup_steps`, then [`LrSchedule`] over the remaining steps.
///
/// With base rate $\eta_0$, warm-up length $W$, total $T$ and $t' = t - W$,
/// $T' = \max(T - W, 1)$:
/// $$\eta_t = \begin{cases}\eta_0\,(f + (1-f)\,t/W) & t < W\\
/// \eta_0 & \text{constant}\\
/// \eta_0\,\gamma^{\lfloor t'/s\rfloor} & \text{step}\\
/// \eta_{min} + (\eta_0 - \eta_{min})\,\frac{1 + \cos(\pi \min(t', T')/T')}{2} & \text{cosine}\end{cases}$$
///
/// ```
/// use arcface::{LrSchedule, LrScheduler};
/// let s = LrScheduler::new(0.1, LrSchedule::Cosine { eta_min: 0.0 }, 110).with_warmup(10, 0.01);
/// assert!((s.lr_at(0) - 0.001).abs() < 1e-15);
/// assert_eq!(s.lr_at(10), 0.1);
/// assert!((s.lr_at(60) - 0.05).abs() < 1e-12);
/// assert!(s.lr_at(110).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrScheduler {
    /// The base learning rate $\eta_0$ (finite, ≥ 0).
    pub base_lr: f64,
    /// The schedule after the warm-up.
    pub schedule: LrSchedule,
    /// Total number of steps $T$ (the cosine reaches `eta_min` there).
    pub total_steps: usize,
    /// Warm-up length $W$ in steps (0: none).
    pub warmup_steps: usize,
    /// The warm-up's first factor $f$ in (0, 1].
    pub warmup_start_factor: f64,
}

impl LrScheduler {
    /// A schedule without warm-up.
    ///
    /// ```
    /// let s = arcface::LrScheduler::new(0.5, arcface::LrSchedule::Constant, 100);
    /// assert_eq!(s.lr_at(99), 0.5);
    /// ```
    pub fn new(base_lr: f64, schedule: LrSchedule, total_steps: usize) -> Self {
        Self {
            base_lr,
            schedule,
            total_steps,
            warmup_steps: 0,
            warmup_start_factor: 1.0,
        }
    }

    /// Adds a linear warm-up of `steps` steps starting at `start_factor`
    /// times the base rate.
    ///
    /// ```
    /// use arcface::{LrSchedule, LrScheduler};
    /// let s = LrScheduler::new(1.0, LrSchedule::Constant, 10).with_warmup(4, 0.2);
    /// assert!((s.lr_at(2) - 0.6).abs() < 1e-15);
    /// ```
    pub fn with_warmup(mut self, steps: usize, start_factor: f64) -> Self {
        self.warmup_steps = steps;
        self.warmup_start_factor = start_factor;
        self
    }

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
                if step_size == 0 {
                    return Err(invalid("step_size", "is 0, must be at least 1".into()));
                }
                check_nonneg("gamma", gamma)?;
            }
            LrSchedule::Cosine { eta_min } => check_nonneg("eta_min", eta_min)?,
        }
        Ok(())
    }

    /// The learning rate of step `step` (0-based).
    ///
    /// ```
    /// use arcface::{LrSchedule, LrScheduler};
    /// let s = LrScheduler::new(0.1, LrSchedule::Step { step_size: 10, gamma: 0.5 }, 40);
    /// assert_eq!([s.lr_at(0), s.lr_at(10), s.lr_at(25)], [0.1, 0.05, 0.025]);
    /// ```
    pub fn lr_at(&self, step: usize) -> f64 {
        let base = self.base_lr;
        if step < self.warmup_steps {
            let f = self.warmup_start_factor;
            return base * (f + (1.0 - f) * step as f64 / self.warmup_steps as f64);
        }
        let t = step - self.warmup_steps;
        match self.schedule {
            LrSchedule::Constant => base,
            LrSchedule::Step { step_size, gamma } => {
                let k = (t / step_size.max(1)).min(i32::MAX as usize) as i32;
                base * gamma.powi(k)
            }
            LrSchedule::Cosine { eta_min } => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let t = t.min(span) as f64 / span as f64;
                eta_min + (base - eta_min) * 0.5 * (1.0 + (core::f64::consts::PI * t).cos())
            }
        }
    }
}
