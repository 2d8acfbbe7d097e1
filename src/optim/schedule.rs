//! Learning-rate schedules: mmengine's `LinearLR` warm-up, then constant,
//! `StepLR` or `CosineAnnealingLR`.

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
