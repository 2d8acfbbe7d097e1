//! Per-class flags of the head: which classes are retired (masked out of
//! inference and training) and which are frozen (their rows take no update).
//!
//! # The one rule for rows that training may change
//!
//! A class's K weight rows are *trainable* when the class is neither retired
//! nor frozen. Everything that writes weights from a gradient asks
//! [`ArcFaceHead::trainable_spans`] for the element ranges of the trainable
//! rows: the step zeroes the rest of ∂W ([`ArcFaceHead::clear_untrainable`]),
//! and [`crate::Optimizer::step`] and [`ArcFaceHead::sgd_step`] update (decay,
//! momentum, moments) only inside those ranges. So a frozen or retired row
//! stays bit-identical through any number of steps.

use super::ArcFaceHead;
use crate::error::{Error, Result};
use crate::memory::out_of_memory;
use crate::real::Real;
use core::ops::Range;

/// One flag per class, with the number set (so that "none set" costs one
/// comparison in the step).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ClassMask {
    flags: Vec<bool>,
    count: usize,
}

impl ClassMask {
    /// `c` classes, none set.
    pub(super) fn try_new(c: usize) -> Result<Self> {
        let mut flags = Vec::new();
        flags
            .try_reserve_exact(c)
            .map_err(|_| out_of_memory::<bool>("class flags", c as u128))?;
        flags.resize(c, false);
        Ok(Self { flags, count: 0 })
    }

    /// Whether class `c` is set.
    #[inline]
    pub(super) fn get(&self, c: usize) -> bool {
        self.count > 0 && self.flags[c]
    }

    /// How many classes are set.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// The flags when any is set (`None` keeps the unmasked fast paths).
    #[inline]
    pub(super) fn active(&self) -> Option<&[bool]> {
        (self.count > 0).then_some(&self.flags[..])
    }

    /// Sets class `c`.
    pub(super) fn set(&mut self, c: usize) {
        if !self.flags[c] {
            self.flags[c] = true;
            self.count += 1;
        }
    }

    /// Clears every flag.
    pub(super) fn clear(&mut self) {
        self.flags.fill(false);
        self.count = 0;
    }

    /// The set classes, ascending.
    pub(super) fn list(&self) -> Vec<usize> {
        if self.count == 0 {
            return Vec::new();
        }
        (0..self.flags.len()).filter(|&c| self.flags[c]).collect()
    }

    /// Room for `extra` more classes.
    pub(super) fn try_reserve(&mut self, extra: usize) -> Result<()> {
        self.flags
            .try_reserve_exact(extra)
            .map_err(|_| out_of_memory::<bool>("class flags", extra as u128))
    }

    /// Appends `extra` unset classes (room reserved beforehand).
    pub(super) fn push_unset(&mut self, extra: usize) {
        self.flags.resize(self.flags.len() + extra, false);
    }

    /// Keeps the classes whose `keep` entry is true, in order.
    pub(super) fn retain(&mut self, keep: &[bool]) {
        let mut i = 0;
        self.flags.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.count = self.flags.iter().filter(|&&f| f).count();
    }
}

/// Checks a list of classes of a head with `c` classes: each in `0..c`, none
/// twice. `what` names the argument in the error.
pub(crate) fn check_class_list(what: &'static str, classes: &[usize], c: usize) -> Result<()> {
    for (i, &cl) in classes.iter().enumerate() {
        if cl >= c {
            return Err(Error::UnknownClass {
                what,
                class: cl,
                num_classes: c,
            });
        }
        if classes[..i].contains(&cl) {
            return Err(Error::DuplicateClass { what, class: cl });
        }
    }
    Ok(())
}

impl<T: Real> ArcFaceHead<T> {
    /// Retires classes by masking them: their rows stay where they are (no
    /// memory moves, indices of the other classes unchanged), and
    ///
    /// - their inference and training logits are $-\infty$ ([`Self::logits`]),
    ///   so their softmax probability is exactly 0, [`Self::predict`] never
    ///   returns them and [`crate::Prediction::topk`] skips them;
    /// - a training step gives them no softmax term (the normaliser
    ///   $\sum_c e^{z_c}$ runs over the active classes only, label smoothing
    ///   spreads $\varepsilon$ over the active classes), writes zero ∂W rows
    ///   for them, and no optimiser changes their rows;
    /// - a training label (or a non-zero soft target) naming one is an error.
    ///
    /// All or nothing: an unknown class, one already retired, one listed
    /// twice, or retiring every remaining class is an error and changes
    /// nothing. [`Self::remove_classes`] drops rows instead.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig};
    /// let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0];
    /// let mut head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(3, 2), &w).unwrap();
    /// assert_eq!(head.predict(&[1.0, 0.1]).unwrap().labels, vec![0]);
    /// head.retire(&[0]).unwrap();
    /// assert!(head.logits(&[1.0, 0.1]).unwrap()[0] == f32::NEG_INFINITY);
    /// assert_eq!(head.predict(&[1.0, 0.1]).unwrap().labels, vec![1]);
    /// assert!(head.retire(&[0]).is_err()); // already retired
    /// assert!(head.retire(&[7]).is_err()); // unknown
    /// assert_eq!(head.retired(), vec![0]);
    /// ```
    pub fn retire(&mut self, classes: &[usize]) -> Result<()> {
        let c = self.cfg.num_classes;
        check_class_list("retire", classes, c)?;
        if let Some(&cl) = classes.iter().find(|&&cl| self.retired.get(cl)) {
            return Err(Error::AlreadyRetired { class: cl });
        }
        if self.retired.count() + classes.len() >= c {
            return Err(crate::config::invalid(
                "retire",
                format!(
                    "would retire every class ({} retired of {c}); a head keeps at least one",
                    self.retired.count()
                ),
            ));
        }
        for &cl in classes {
            self.retired.set(cl);
        }
        Ok(())
    }

    /// Whether class `class` is retired (false for an unknown class).
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(3, 2), 0).unwrap();
    /// h.retire(&[2]).unwrap();
    /// assert!(h.is_retired(2) && !h.is_retired(1) && !h.is_retired(9));
    /// ```
    pub fn is_retired(&self, class: usize) -> bool {
        class < self.cfg.num_classes && self.retired.get(class)
    }

    /// The retired classes, ascending.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 2), 0).unwrap();
    /// h.retire(&[3, 1]).unwrap();
    /// assert_eq!(h.retired(), vec![1, 3]);
    /// ```
    pub fn retired(&self) -> Vec<usize> {
        self.retired.list()
    }

    /// Restricts training to `classes` (`None`: every class trains). The
    /// other classes are frozen: a training step leaves their ∂W rows zero
    /// and no optimiser step changes their rows (no weight decay, no
    /// momentum, no moments), so they stay bit-identical; they still take
    /// part in the softmax and in ∂X. Classes enrolled later train.
    /// Errors (nothing changed): an empty list, an unknown class, a class
    /// listed twice, or a retired class.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, HeadConfig, Workspace};
    /// let mut head = ArcFaceHead::<f64>::new(HeadConfig::new(3, 2), 0).unwrap();
    /// head.set_trainable_classes(Some(&[2])).unwrap();
    /// let mut ws = Workspace::new(&head, 1);
    /// head.forward_backward(&Batch::new(&[1.0, 0.5], &[0]), &mut ws).unwrap();
    /// assert!(ws.grad_weight()[..4].iter().all(|&g| g == 0.0)); // classes 0, 1 frozen
    /// assert!(ws.grad_weight()[4..].iter().any(|&g| g != 0.0));
    /// assert_eq!(head.trainable_classes(), Some(vec![2]));
    /// assert!(head.set_trainable_classes(Some(&[])).is_err());
    /// ```
    pub fn set_trainable_classes(&mut self, classes: Option<&[usize]>) -> Result<()> {
        let c = self.cfg.num_classes;
        let Some(list) = classes else {
            self.frozen.clear();
            return Ok(());
        };
        if list.is_empty() {
            return Err(crate::config::invalid(
                "train_classes",
                "is empty: give at least one class, or none to train all".into(),
            ));
        }
        check_class_list("train_classes", list, c)?;
        if let Some(&cl) = list.iter().find(|&&cl| self.retired.get(cl)) {
            return Err(Error::AlreadyRetired { class: cl });
        }
        let mut frozen = ClassMask::try_new(c)?;
        for cl in 0..c {
            frozen.set(cl);
        }
        for &cl in list {
            frozen.flags[cl] = false;
            frozen.count -= 1;
        }
        self.frozen = frozen;
        Ok(())
    }

    /// The classes training may change when restricted by
    /// [`Self::set_trainable_classes`], ascending; `None` when unrestricted.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(3, 2), 0).unwrap();
    /// assert_eq!(h.trainable_classes(), None);
    /// ```
    pub fn trainable_classes(&self) -> Option<Vec<usize>> {
        self.frozen
            .active()
            .map(|f| (0..f.len()).filter(|&c| !f[c]).collect())
    }

    /// The element ranges of W ((C·K)×D row-major) that training may
    /// change, ascending and maximal: `0..C·K·D` when every class trains.
    pub(crate) fn trainable_spans(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let (c, k, _, d) = self.dims();
        spans(&self.retired, &self.frozen, c, k * d)
    }

    /// Changes the trainable elements of W in place, span by span
    /// (`f(values, range)` with the range in W's element indices), then
    /// refreshes the norms as [`Self::update_weight`] does.
    pub(crate) fn update_trainable(
        &mut self,
        mut f: impl FnMut(&mut [T], Range<usize>),
    ) -> Result<()> {
        let (c, k, _, d) = self.dims();
        for span in spans(&self.retired, &self.frozen, c, k * d) {
            f(&mut self.weight[span.clone()], span);
        }
        self.refresh_norms();
        self.check_weight()
    }

    /// Zeroes the rows of `grad` (laid out like W) that training may not
    /// change; nothing to do when every class trains.
    pub(super) fn clear_untrainable(&self, grad: &mut [T]) {
        if self.retired.count() == 0 && self.frozen.count() == 0 {
            return;
        }
        let (c, k, _, d) = self.dims();
        for cl in (0..c).filter(|&cl| !trainable(&self.retired, &self.frozen, cl)) {
            grad[cl * k * d..(cl + 1) * k * d].fill(T::ZERO);
        }
    }

    /// The retired flags, when any class is retired (for the class pass).
    pub(super) fn retired_mask(&self) -> Option<&[bool]> {
        self.retired.active()
    }

    /// Soft targets (N×C) with a non-zero entry for a retired class are an
    /// error.
    pub(super) fn check_soft_not_retired(&self, t: &[T]) -> Result<()> {
        let Some(r) = self.retired.active() else {
            return Ok(());
        };
        let c = r.len();
        for (sample, row) in t.chunks_exact(c).enumerate() {
            if let Some(class) = (0..c).find(|&cl| r[cl] && row[cl] != T::ZERO) {
                return Err(Error::RetiredLabel { sample, class });
            }
        }
        Ok(())
    }

    /// Labels naming a retired class are an error (the caller has checked
    /// the range).
    pub(super) fn check_not_retired(&self, labels: &[i64]) -> Result<()> {
        if self.retired.count() == 0 {
            return Ok(());
        }
        match labels.iter().position(|&l| self.retired.get(l as usize)) {
            Some(sample) => Err(Error::RetiredLabel {
                sample,
                class: labels[sample] as usize,
            }),
            None => Ok(()),
        }
    }
}

/// Whether the rows of class `c` may be changed by training: neither retired
/// nor frozen (the rule of this module).
#[inline]
fn trainable(retired: &ClassMask, frozen: &ClassMask, c: usize) -> bool {
    !retired.get(c) && !frozen.get(c)
}

/// The maximal runs of trainable classes of a head with `c` classes, as
/// element ranges of W with `row` elements (K·D) per class.
fn spans<'a>(
    retired: &'a ClassMask,
    frozen: &'a ClassMask,
    c: usize,
    row: usize,
) -> impl Iterator<Item = Range<usize>> + 'a {
    let mut cl = 0;
    core::iter::from_fn(move || {
        while cl < c && !trainable(retired, frozen, cl) {
            cl += 1;
        }
        if cl == c {
            return None;
        }
        let start = cl;
        while cl < c && trainable(retired, frozen, cl) {
            cl += 1;
        }
        Some(start * row..cl * row)
    })
}
