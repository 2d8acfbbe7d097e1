//! PartialFC sampling (An et al., "Partial FC: Training 10 Million
//! Identities on a Single Machine"): each step keeps every class with a
//! positive in the batch and a uniform sample of the others, computes the
//! loss and gradients of the head restricted to the kept classes, and
//! updates only the kept rows, exactly as the dense SGD update would
//! (`docs/partial-fc.md` has the design and the maths).
//!
//! [`PartialFc`] owns the sampler, a sub-head holding the kept rows, its
//! workspace (sized by the kept count: no N×C buffer, no C×D gradient), and
//! the state of the lazy optimiser update; [`SampledStep`] reports a step.

mod classes;
mod footprint;
mod lazy;
mod sampler;

pub(crate) use lazy::{Map2, IDENTITY};

use crate::config::{check_nonneg, invalid};
use crate::error::{check_len, Result};
use crate::head::{ArcFaceHead, Batch, Workspace};
use crate::optim::Optimizer;
use crate::real::Real;
use classes::ClassFlags;
use lazy::LazyRows;
use sampler::Sampler;

/// The report of one sampled step.
///
/// ```
/// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
/// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 4), 0).unwrap();
/// let mut pfc = PartialFc::new(&head, 0.2, 4, 1).unwrap();
/// let x = [1.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.2, 0.3, 0.3, 0.3, 0.3];
/// let s = pfc.forward_backward(&head, &Batch::new(&x, &[7, 7, 2]), 0).unwrap();
/// assert_eq!((s.kept, s.positives, s.positives_exceeded), (2, 2, false));
/// let s = pfc.forward_backward(&head, &Batch::new(&x, &[1, 5, 9]), 1).unwrap();
/// assert_eq!((s.kept, s.positives, s.positives_exceeded), (3, 3, true));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampledStep<T> {
    /// The loss of the head restricted to the kept classes.
    pub loss: T,
    /// Classes kept: max(⌈r·C_live⌉, positives), C_live the classes not
    /// retired.
    pub kept: usize,
    /// Distinct labels of the batch (all kept).
    pub positives: usize,
    /// The positives alone exceeded ⌈r·C_live⌉: all were kept, and no other
    /// class.
    pub positives_exceeded: bool,
}

/// PartialFC's sampled step for one head: the sampler, the kept rows, and
/// the lazy state that lets [`PartialFc::step`] update only the kept rows
/// of the head and its optimiser.
///
/// With SGD (momentum, Nesterov, dampening, weight decay, any schedule) the
/// weights after [`PartialFc::flush`] equal those of the dense update in
/// which the rows not kept get a zero gradient, to rounding: a row not kept
/// is caught up, when next kept or at the flush, with the product of the
/// steps' zero-gradient maps on its (weight, momentum) pair. With AdamW the
/// update is TensorFlow's `LazyAdam`: rows not kept do not move (no moment
/// decay, no weight decay), the bias corrections follow the global step.
///
/// Between steps, the stored weights of rows not kept recently lack their
/// pending decay and momentum: call [`PartialFc::flush`] before reading,
/// evaluating or saving the head (or its optimiser state).
///
/// ```
/// use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, PartialFc};
/// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(1000, 8), 0).unwrap();
/// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
/// let mut pfc = PartialFc::new(&head, 0.1, 2, 7).unwrap();
/// let x = [0.5f32; 16];
/// for _ in 0..3 {
///     let s = pfc.step(&mut head, &mut opt, &Batch::new(&x, &[3, 999]), 0.1).unwrap();
///     assert_eq!(s.kept, 100);
///     assert_eq!(pfc.grad_weight().len(), 100 * 8);
/// }
/// pfc.flush(&mut head, &mut opt).unwrap();
/// assert_eq!(opt.steps(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct PartialFc<T: Real> {
    rate: f64,
    /// ⌈r·C_live⌉ of the last step (⌈r·C⌉ before the first).
    target: usize,
    /// Samples per step, at most.
    capacity: usize,
    /// (C, K, D) of the head this was made for.
    dims: (usize, usize, usize),
    sampler: Sampler,
    sub: ArcFaceHead<T>,
    ws: Workspace<T>,
    labels: Vec<i64>,
    /// The kept columns of the soft targets (only with `loss.use_soft`).
    soft: Vec<T>,
    lazy: LazyRows,
    /// The retired and frozen classes of the pending window's steps.
    flags: ClassFlags,
}

impl<T: Real> PartialFc<T> {
    /// Steps between two automatic flushes of every row: the lazy state
    /// holds one 2×2 map per step of this window, and a flush costs one
    /// pass over the weights and momentum (O(C·D) every this many steps).
    pub const FLUSH_WINDOW: usize = 1024;

    /// ⌈r·C⌉, the classes a step keeps when the positives are fewer;
    /// an error unless 0 < r ≤ 1.
    ///
    /// ```
    /// use arcface::PartialFc;
    /// assert_eq!(PartialFc::<f32>::kept_target(0.1, 1_000_001).unwrap(), 100_001);
    /// assert!(PartialFc::<f32>::kept_target(0.0, 10).is_err());
    /// assert!(PartialFc::<f32>::kept_target(f64::NAN, 10).is_err());
    /// assert!(PartialFc::<f32>::kept_target(1.5, 10).is_err());
    /// ```
    pub fn kept_target(sample_rate: f64, num_classes: usize) -> Result<usize> {
        crate::config::check_sample_rate(sample_rate)?;
        // r ≤ 1, so r·C ≤ C: the count cannot overflow; at least one class
        let t = (sample_rate * num_classes as f64).ceil();
        Ok((t as usize).clamp(1, num_classes.max(1)))
    }

    /// A sampler for `head` keeping a fraction `sample_rate` of its classes
    /// per step, for batches of up to `batch_capacity` samples, drawing
    /// from `seed` (the kept set of step t depends only on the seed, t and
    /// the batch's labels). Allocates everything a step needs: the kept
    /// rows, a workspace for them, and per class two `u32` of sampler
    /// tables and one of lazy-update state.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(100, 8), 0).unwrap();
    /// assert_eq!(PartialFc::new(&head, 0.25, 16, 0).unwrap().sample_rate(), 0.25);
    /// assert!(PartialFc::new(&head, -0.5, 16, 0).is_err());
    /// ```
    pub fn new(
        head: &ArcFaceHead<T>,
        sample_rate: f64,
        batch_capacity: usize,
        seed: u64,
    ) -> Result<Self> {
        let cfg = head.config();
        let (c, k, d) = (cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
        let target = Self::kept_target(sample_rate, c)?;
        if c > u32::MAX as usize {
            return Err(invalid(
                "num_classes",
                format!("is {c}; sampling needs fewer than 2^32"),
            ));
        }
        let capacity = batch_capacity.max(1);
        let kept_cap = footprint::kept_capacity(c, target, capacity);
        let sub = head.sub_head(kept_cap)?;
        let ws = Workspace::try_new(&sub, capacity)?;
        let soft_len = if cfg.loss.use_soft {
            kept_cap.checked_mul(capacity).ok_or_else(|| {
                invalid(
                    "sample_rate",
                    "soft targets of the kept classes overflow".into(),
                )
            })?
        } else {
            0
        };
        Ok(Self {
            rate: sample_rate,
            target,
            capacity,
            dims: (c, k, d),
            sampler: Sampler::new(c, kept_cap, capacity, seed)?,
            sub,
            ws,
            labels: crate::memory::try_filled(capacity, 0, "sampled labels")?,
            soft: crate::memory::try_filled(soft_len, T::ZERO, "sampled soft targets")?,
            lazy: LazyRows::new(c, Self::FLUSH_WINDOW)?,
            flags: ClassFlags::new(c)?,
        })
    }

    /// Flushes every row after at most `steps` ≥ 1 sampled steps instead
    /// of [`Self::FLUSH_WINDOW`] (the state holds `steps` + 1 maps).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(100, 8), 0).unwrap();
    /// assert!(PartialFc::new(&head, 0.5, 4, 0).unwrap().with_flush_window(16).is_ok());
    /// ```
    pub fn with_flush_window(mut self, steps: usize) -> Result<Self> {
        crate::config::check_positive("flush window", steps)?;
        self.lazy = LazyRows::new(self.dims.0, steps)?;
        Ok(self)
    }

    /// The largest batch a step takes.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(100, 8), 0).unwrap();
    /// assert_eq!(PartialFc::new(&head, 0.5, 4, 0).unwrap().capacity(), 4);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sample rate r.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(10, 2), 0).unwrap();
    /// assert_eq!(PartialFc::new(&head, 0.3, 1, 0).unwrap().sample_rate(), 0.3);
    /// ```
    pub fn sample_rate(&self) -> f64 {
        self.rate
    }

    /// The classes kept by the last step, in the order of the sub-head's
    /// rows: ascending (as PartialFC v2 sorts its kept indices).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(6, 2), 0).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.5, 1, 0).unwrap();
    /// pfc.forward_backward(&head, &Batch::new(&[1.0, 0.0], &[4]), 0).unwrap();
    /// assert_eq!(pfc.kept().len(), 3);
    /// assert!(pfc.kept().contains(&4) && pfc.kept().windows(2).all(|p| p[0] < p[1]));
    /// ```
    pub fn kept(&self) -> &[u32] {
        self.sampler.kept()
    }

    /// ∂L/∂W of the last step over the kept rows, (kept·K)×D: row j·K + k
    /// belongs to class `kept()[j]`, sub-centre k.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 2).with_subcenters(2), 0).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.5, 1, 0).unwrap();
    /// pfc.forward_backward(&head, &Batch::new(&[1.0, 0.0], &[3]), 0).unwrap();
    /// assert_eq!(pfc.grad_weight().len(), 5 * 2 * 2);
    /// ```
    pub fn grad_weight(&self) -> &[T] {
        self.ws.grad_weight()
    }

    /// ∂L/∂x of the last step, N×D.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 2), 0).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.5, 2, 0).unwrap();
    /// pfc.forward_backward(&head, &Batch::new(&[1.0, 0.0, 0.0, 1.0], &[3, 4]), 0).unwrap();
    /// assert_eq!(pfc.grad_features().len(), 2 * 2);
    /// ```
    pub fn grad_features(&self) -> &[T] {
        self.ws.grad_features()
    }

    /// Per-sample losses of the last step.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(10, 2), 0).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.5, 2, 0).unwrap();
    /// let s = pfc.forward_backward(&head, &Batch::new(&[1.0, 0.0, 0.0, 1.0], &[3, 4]), 0).unwrap();
    /// let l = pfc.sample_losses();
    /// assert!((s.loss - (l[0] + l[1]) / 2.0).abs() < 1e-12);
    /// ```
    pub fn sample_losses(&self) -> &[T] {
        self.ws.sample_losses()
    }

    /// Checks that `head` has the shape this sampler was made for.
    fn check_head(&self, head: &ArcFaceHead<T>) -> Result<()> {
        let cfg = head.config();
        let got = (cfg.num_classes, cfg.num_subcenters, cfg.in_channels);
        if got != self.dims {
            return Err(invalid(
                "sample_rate",
                format!(
                    "sampler made for (C, K, D) = {:?}, head has {got:?}",
                    self.dims
                ),
            ));
        }
        head.weight_error()
    }

    /// Loss and gradients of step number `step` (which seeds the draw) over
    /// the kept classes, reading `head`'s rows as stored (see
    /// [`Self::flush`]); the gradients are in [`Self::grad_weight`] and
    /// [`Self::grad_features`]. Soft targets, if any, are N×C and need
    /// `loss.use_soft`.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, PartialFc};
    /// let head = ArcFaceHead::<f64>::new(HeadConfig::new(100, 4), 0).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.05, 1, 9).unwrap();
    /// let x = [0.1, 0.2, 0.3, 0.4];
    /// let a = pfc.forward_backward(&head, &Batch::new(&x, &[42]), 7).unwrap();
    /// let kept = pfc.kept().to_vec();
    /// // the same seed and step draw the same classes
    /// let b = pfc.forward_backward(&head, &Batch::new(&x, &[42]), 7).unwrap();
    /// assert_eq!((a.loss, &kept[..]), (b.loss, pfc.kept()));
    /// assert_eq!(a.kept, 5);
    /// assert!(kept.contains(&42));
    /// ```
    pub fn forward_backward(
        &mut self,
        head: &ArcFaceHead<T>,
        batch: &Batch<'_, T>,
        step: u64,
    ) -> Result<SampledStep<T>> {
        self.check_head(head)?;
        self.check_batch(batch)?;
        self.draw(head, batch, step)?;
        self.sub_step(head, batch)
    }

    /// Draws the kept set of step `step` among the live (not retired)
    /// classes, after the label checks of `head`'s own step (a label or
    /// soft-target mass naming a retired class is an error).
    fn draw(&mut self, head: &ArcFaceHead<T>, batch: &Batch<'_, T>, step: u64) -> Result<()> {
        head.check_live_labels(batch.labels, batch.soft_targets)?;
        self.target = Self::kept_target(self.rate, head.live_classes())?;
        let (retired, _) = head.class_flags();
        self.sampler
            .sample(batch.labels, self.target, step, retired)
    }

    /// The checks a batch needs before the sampler sees it.
    fn check_batch(&self, batch: &Batch<'_, T>) -> Result<()> {
        let n = batch.labels.len();
        if n > self.capacity {
            return Err(invalid(
                "batch",
                format!(
                    "has {n} samples; this sampler was made for at most {}",
                    self.capacity
                ),
            ));
        }
        if let Some(t) = batch.soft_targets {
            if self.soft.is_empty() && n > 0 {
                return Err(invalid(
                    "soft_targets",
                    "a sampled step reads them only with loss.use_soft".into(),
                ));
            }
            check_len("soft_targets", t.len(), n * self.dims.0)?;
        }
        Ok(())
    }

    /// Loads the kept classes into the sub-head and runs the step there.
    fn sub_step(&mut self, head: &ArcFaceHead<T>, batch: &Batch<'_, T>) -> Result<SampledStep<T>> {
        self.sub.load_classes(head, self.sampler.kept());
        self.run_sub(batch)
    }

    /// The step over the loaded sub-head: labels remapped, soft targets
    /// gathered.
    fn run_sub(&mut self, batch: &Batch<'_, T>) -> Result<SampledStep<T>> {
        let kept = self.sampler.kept();
        let (n, m, c) = (batch.labels.len(), kept.len(), self.dims.0);
        self.sub.fit_workspace(&mut self.ws);
        self.sampler.remap(batch.labels, &mut self.labels[..n]);
        let mut sub_batch = Batch {
            labels: &self.labels[..n],
            ..*batch
        };
        if let Some(t) = batch.soft_targets {
            let soft = &mut self.soft[..n * m];
            for (dst, src) in soft.chunks_exact_mut(m).zip(t.chunks_exact(c)) {
                for (o, &k) in dst.iter_mut().zip(kept) {
                    *o = src[k as usize];
                }
            }
            sub_batch.soft_targets = Some(soft);
        }
        let loss = self.sub.forward_backward(&sub_batch, &mut self.ws)?;
        let positives = self.sampler.positives();
        Ok(SampledStep {
            loss,
            kept: m,
            positives,
            positives_exceeded: positives > self.target,
        })
    }

    /// One training step at learning rate `lr`: sample (seeded by the
    /// optimiser's step count), catch the kept rows up, compute the loss
    /// and gradients over them, and update them with `opt`'s rule. All or
    /// nothing as [`Optimizer::step`]: on an error the head and optimiser
    /// hold the same dense state as before (the catch-up alone does not
    /// change it). Allocates nothing.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, PartialFc};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(40, 4), 0).unwrap();
    /// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.25, 2, 0).unwrap();
    /// let batch = Batch::new(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[5, 6]);
    /// let first = pfc.step(&mut head, &mut opt, &batch, 0.1).unwrap().loss;
    /// for _ in 0..20 {
    ///     pfc.step(&mut head, &mut opt, &batch, 0.1).unwrap();
    /// }
    /// assert!(pfc.step(&mut head, &mut opt, &batch, 0.1).unwrap().loss < first);
    /// assert!(pfc.step(&mut head, &mut opt, &batch, f64::NAN).is_err());
    /// ```
    pub fn step(
        &mut self,
        head: &mut ArcFaceHead<T>,
        opt: &mut Optimizer<T>,
        batch: &Batch<'_, T>,
        lr: f64,
    ) -> Result<SampledStep<T>> {
        check_nonneg("lr", lr)?;
        self.check_head(head)?;
        opt.check_fits(head)?;
        self.check_window(opt)?;
        self.sync_classes(head, opt)?;
        self.check_batch(batch)?;
        self.draw(head, batch, opt.steps())?;
        self.load_caught_up(head, opt)?;
        let report = self.run_sub(batch)?;
        self.update_kept(head, opt, lr)?;
        if self.lazy.is_full() {
            self.flush(head, opt)?;
        }
        head.weight_error()?;
        Ok(report)
    }

    /// The optimiser must be the one this sampler's lazy state follows.
    fn check_window(&mut self, opt: &Optimizer<T>) -> Result<()> {
        if self.lazy.len() == 0 {
            self.lazy.rebase(opt.steps());
        } else if opt.steps() != self.lazy.base() + self.lazy.len() as u64 {
            return Err(invalid(
                "optimizer",
                format!(
                    "is at step {}, the sampler's pending updates at step {}: flush before stepping it elsewhere",
                    opt.steps(),
                    self.lazy.base() + self.lazy.len() as u64
                ),
            ));
        }
        Ok(())
    }

    /// Takes `head`'s retired and frozen classes for the next steps: if they
    /// changed since the pending window's steps, that window is first
    /// flushed under the classes its steps were taken with.
    fn sync_classes(&mut self, head: &mut ArcFaceHead<T>, opt: &mut Optimizer<T>) -> Result<()> {
        if self.flags.matches(head) {
            return Ok(());
        }
        if self.lazy.len() > 0 {
            self.flush_rows(head, opt)?;
        }
        self.flags.take(head);
        Ok(())
    }

    /// Loads the kept rows into the sub-head as they are after their
    /// pending catch-up (a row lagging behind is mapped on its way into the
    /// sub-head; each mapped row is checked for finiteness). The head and
    /// optimiser are only read: the update applies the same catch-up when it
    /// writes the rows, so each row is read and written once a step.
    fn load_caught_up(&mut self, head: &ArcFaceHead<T>, opt: &Optimizer<T>) -> Result<()> {
        let (_, k, d) = self.dims;
        let kd = k * d;
        let (lazy, flags) = (&self.lazy, &self.flags);
        self.sub
            .load_mapped_classes(head, self.sampler.kept(), |c, rows, into| {
                // a frozen class's rows never move (nor its momentum)
                let pending = flags.trainable(c).then(|| lazy.pending(c)).flatten();
                let Some(m) = pending else {
                    return Ok(false);
                };
                let r0 = c as usize * kd;
                opt.map_weights(rows, r0..r0 + kd, m, into, d)?;
                Ok(true)
            })
    }

    /// The optimiser's update of the kept rows with the sub-head's gradient.
    fn update_kept(
        &mut self,
        head: &mut ArcFaceHead<T>,
        opt: &mut Optimizer<T>,
        lr: f64,
    ) -> Result<()> {
        let (_, k, d) = self.dims;
        let kd = k * d;
        let kept = self.sampler.kept();
        let grad = self.ws.grad_weight();
        let map = opt.zero_grad_map(lr);
        let (flags, lazy) = (&self.flags, &self.lazy);
        // every row checked before any is written: all or nothing; a frozen
        // class takes no update (no decay, no momentum, no moments); a row
        // lagging behind first takes its pending catch-up
        for (&c, g) in kept.iter().zip(grad.chunks_exact(kd)) {
            if !flags.trainable(c) {
                continue;
            }
            let r0 = c as usize * kd;
            let pre = lazy.pending(c);
            opt.update_rows(
                head.weight_mut_for_rows(),
                r0..r0 + kd,
                g,
                lr,
                d,
                pre,
                false,
            )?;
        }
        // then written, each class's norms refreshed while it is in cache
        for (c, g) in kept.iter().zip(grad.chunks_exact(kd)) {
            if !flags.trainable(*c) {
                continue;
            }
            let r0 = *c as usize * kd;
            let pre = lazy.pending(*c);
            opt.update_rows(head.weight_mut_for_rows(), r0..r0 + kd, g, lr, d, pre, true)?;
            head.refresh_classes(core::slice::from_ref(c));
        }
        opt.count_sparse_step();
        if let Some(m) = map {
            self.lazy.push(&m);
            for &c in kept {
                self.lazy.mark_current(c);
            }
        }
        Ok(())
    }

    /// Brings every row of `head` and `opt` up to date: afterwards they
    /// hold exactly what the dense update would (SGD), and the next step
    /// starts a new window. Call it before reading, evaluating or saving
    /// the head or the optimiser state. Nothing to do with AdamW.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, PartialFc};
    /// let mut head = ArcFaceHead::<f64>::new(HeadConfig::new(50, 4), 0).unwrap();
    /// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    /// let mut pfc = PartialFc::new(&head, 0.1, 1, 0).unwrap();
    /// let before = head.weight()[4 * 49];
    /// pfc.step(&mut head, &mut opt, &Batch::new(&[1.0, 0.0, 0.0, 0.0], &[0]), 0.1).unwrap();
    /// pfc.flush(&mut head, &mut opt).unwrap();
    /// // every row took the weight decay of the step (first step: b = λw)
    /// assert_ne!(head.weight()[4 * 49], before);
    /// ```
    pub fn flush(&mut self, head: &mut ArcFaceHead<T>, opt: &mut Optimizer<T>) -> Result<()> {
        if self.lazy.len() == 0 {
            return Ok(());
        }
        self.check_head(head)?;
        opt.check_fits(head)?;
        self.check_window(opt)?;
        self.flush_rows(head, opt)
    }

    /// The flush after the checks: the rows of every class trainable during
    /// the window (the retired and frozen rows never move) catch up.
    fn flush_rows(&mut self, head: &mut ArcFaceHead<T>, opt: &mut Optimizer<T>) -> Result<()> {
        let (c, k, d) = self.dims;
        let kd = k * d;
        let w = head.weight_mut_for_rows();
        for commit in [false, true] {
            for class in (0..c as u32).filter(|&cl| self.flags.trainable(cl)) {
                if let Some(m) = self.lazy.pending(class) {
                    let r0 = class as usize * kd;
                    opt.map_rows(w, r0..r0 + kd, m, d, commit)?;
                }
            }
        }
        self.lazy.restart(opt.steps());
        head.refresh_all()
    }
}
