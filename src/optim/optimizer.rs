//! The optimiser state beside the weights, and the all-or-nothing step.

use super::{OptimizerConfig, Rule};
use crate::config::check_nonneg;
use crate::error::{check_finite, check_len, Error, Result};
use crate::head::ArcFaceHead;
use crate::memory::{bytes_of, try_filled};
use crate::real::Real;
use crate::train::RunRecord;

mod sparse;

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
    /// The run that stepped it, when a trainer did.
    run: Option<RunRecord>,
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
            state1: try_filled(if n >= 1 { len } else { 0 }, T::ZERO, "optimiser state")?,
            state2: try_filled(if n >= 2 { len } else { 0 }, T::ZERO, "optimiser state")?,
            steps: 0,
            run: None,
        })
    }

    /// The run this optimiser's state comes from (its sample rate and
    /// schedule), when a [`crate::Trainer`] recorded it; saved and loaded
    /// with the state. `None` for an optimiser stepped by hand.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, TrainConfig, Trainer};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let cfg = TrainConfig { sample_rate: 0.5, ..TrainConfig::default() };
    /// let t = Trainer::new(head, cfg.clone()).unwrap();
    /// assert_eq!(t.optimizer().run(), Some(&cfg.run_record()));
    /// ```
    pub fn run(&self) -> Option<&RunRecord> {
        self.run.as_ref()
    }

    /// Records (or clears) the run this state belongs to.
    ///
    /// ```
    /// let mut opt = arcface::Optimizer::<f64>::with_len(Default::default(), 4).unwrap();
    /// opt.set_run(Some(arcface::TrainConfig::default().run_record()));
    /// assert!(opt.run().is_some());
    /// ```
    pub fn set_run(&mut self, run: Option<RunRecord>) {
        self.run = run;
    }

    /// The bytes of state an optimiser of `config` keeps for `len`
    /// parameters: SGD with momentum one buffer, AdamW two, plain SGD none.
    ///
    /// ```
    /// use arcface::{AdamW, Optimizer, OptimizerConfig};
    /// let adamw = OptimizerConfig::AdamW(AdamW::default());
    /// assert_eq!(Optimizer::<f32>::bytes_needed(&adamw, 1000), 2 * 1000 * 4);
    /// ```
    pub fn bytes_needed(config: &OptimizerConfig, len: usize) -> u128 {
        bytes_of::<T>(config.state_names().len() as u128 * len as u128)
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
        check_len("optimizer state", buffers.len(), names.len())?;
        for b in buffers {
            check_len("optimizer state", b.len(), self.len)?;
            check_finite("optimizer state", b, 1)?;
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

    /// Grows the state to `head`'s weights after an enrolment: the new rows
    /// (at the end) start with zero momentum / zero moments, the existing
    /// state and the step count are kept. PyTorch's rules then treat the new
    /// rows as parameters whose buffers are zero: SGD's momentum buffer
    /// becomes $(1-\tau) g$ on their first step (not $g$), and AdamW's bias
    /// correction uses the shared step count. Growth is geometric (as
    /// `Vec`). A no-op when the lengths match; a head with fewer weights
    /// (after [`ArcFaceHead::remove_classes`]) is an error: use
    /// [`Self::remap_classes`]. Changes nothing on error.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Enrolment, HeadConfig, Optimizer, OptimizerConfig};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 3), 0).unwrap();
    /// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    /// opt.set_state(5, &[&[0.5; 6]]).unwrap();
    /// head.enrol(&[1.0, 2.0, 3.0], &Enrolment::default()).unwrap();
    /// opt.fit(&head).unwrap();
    /// assert_eq!(opt.len(), 9);
    /// assert_eq!(opt.state()[0].1, &[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]);
    /// assert_eq!(opt.steps(), 5);
    /// ```
    pub fn fit(&mut self, head: &ArcFaceHead<T>) -> Result<()> {
        let len = head.weight().len();
        if len < self.len {
            return Err(crate::config::invalid(
                "optimizer state",
                format!(
                    "holds {} values but the head has {len} weights; after removing classes \
                     use Optimizer::remap_classes",
                    self.len
                ),
            ));
        }
        let extra = len - self.len;
        let oom = || crate::memory::out_of_memory::<T>("optimiser state", extra as u128);
        let n = self.config.state_names().len();
        if n >= 1 {
            self.state1.try_reserve(extra).map_err(|_| oom())?;
        }
        if n >= 2 {
            self.state2.try_reserve(extra).map_err(|_| oom())?;
        }
        if n >= 1 {
            self.state1.resize(len, T::ZERO);
        }
        if n >= 2 {
            self.state2.resize(len, T::ZERO);
        }
        self.len = len;
        Ok(())
    }

    /// Follows [`ArcFaceHead::remove_classes`]: keeps the state rows of the
    /// classes `map` keeps, moved to their new indices (`map` is the
    /// returned old → new map, `head` the head after the removal). Errors
    /// (nothing changed) if `map` or the state does not fit `head`.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, Optimizer, OptimizerConfig};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 1), 0).unwrap();
    /// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    /// opt.set_state(1, &[&[1.0, 2.0, 3.0]]).unwrap();
    /// let map = head.remove_classes(&[1]).unwrap();
    /// opt.remap_classes(&map, &head).unwrap();
    /// assert_eq!(opt.state()[0].1, &[1.0, 3.0]);
    /// ```
    pub fn remap_classes(&mut self, map: &[Option<usize>], head: &ArcFaceHead<T>) -> Result<()> {
        let cfg = head.config();
        let row = cfg.num_subcenters * cfg.in_channels;
        check_len("class map", map.len() * row, self.len)?;
        let kept = map.iter().flatten().count();
        check_len("weight", head.weight().len(), kept * row)?;
        // new indices must be 0, 1, 2, … in old order (what remove_classes returns)
        if map.iter().flatten().enumerate().any(|(i, &j)| i != j) {
            return Err(crate::config::invalid(
                "class map",
                "is not the compacting map remove_classes returns".into(),
            ));
        }
        for buf in [&mut self.state1, &mut self.state2] {
            if buf.is_empty() {
                continue;
            }
            for (old, new) in map.iter().enumerate() {
                if let Some(new) = *new {
                    buf.copy_within(old * row..(old + 1) * row, new * row);
                }
            }
            buf.truncate(kept * row);
        }
        self.len = kept * row;
        Ok(())
    }

    /// Checks that this optimiser's state is as long as `head`'s weights.
    pub(crate) fn check_fits(&self, head: &ArcFaceHead<T>) -> Result<()> {
        check_len("optimizer state", self.len, head.weight().len())
    }

    fn rule(&self, lr: f64) -> Rule<T> {
        Rule::new(&self.config, lr, self.steps)
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
        check_nonneg("lr", lr)?;
        let n = self.len;
        check_len("weight", head.weight().len(), n)?;
        check_len("grad", grad.len(), n)?;
        let rule = self.rule(lr);
        let d = head.config().in_channels.max(1);
        let zero = T::ZERO;
        // Pass 1: check that everything stays finite, writing nothing. Only
        // the trainable rows are visited (frozen and retired classes keep
        // their weights and state bit for bit).
        {
            let w = head.weight();
            for span in head.trainable_spans() {
                for i in span {
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
        }
        // Pass 2: the same arithmetic, committed.
        let (s1, s2) = (&mut self.state1, &mut self.state2);
        head.update_trainable(|w, span| {
            let grad = &grad[span.clone()];
            match (s1.is_empty(), s2.is_empty()) {
                (true, _) => {
                    for (wi, &gi) in w.iter_mut().zip(grad) {
                        *wi = rule.apply(*wi, gi, zero, zero).0;
                    }
                }
                (false, true) => {
                    for ((wi, &gi), a) in w.iter_mut().zip(grad).zip(s1[span].iter_mut()) {
                        let (nw, n1, _) = rule.apply(*wi, gi, *a, zero);
                        *wi = nw;
                        *a = n1;
                    }
                }
                (false, false) => {
                    for (((wi, &gi), a), b) in w
                        .iter_mut()
                        .zip(grad)
                        .zip(s1[span.clone()].iter_mut())
                        .zip(s2[span].iter_mut())
                    {
                        let (nw, n1, n2) = rule.apply(*wi, gi, *a, *b);
                        *wi = nw;
                        *a = n1;
                        *b = n2;
                    }
                }
            }
        })?;
        self.steps += 1;
        Ok(())
    }
}
