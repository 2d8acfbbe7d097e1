//! Changing the number of classes: appending classes (enrolment) and
//! removing them (compaction).
//!
//! # Growth rule
//!
//! Every class-sized buffer of the head (the weights, their cached norms,
//! the margins and their constants, the class weights, the class flags)
//! grows geometrically, as `Vec` does: when an append does not fit, the new
//! allocation holds at least twice the old capacity. Appending m classes one
//! at a time therefore copies each existing element O(1) times on average
//! (O(total rows) over all appends), never the whole matrix per class.
//! [`ArcFaceHead::class_capacity`] reports how many classes fit without a
//! reallocation and [`ArcFaceHead::reserve_classes`] makes room ahead of time.
//! Removal compacts in place and keeps the capacity. [`Workspace::fit`]
//! resizes a workspace's class-sized buffers to a changed head (geometric
//! growth too, through `Vec::try_reserve` and [`AVec`]'s doubling).

use super::classes::{check_class_list, ClassMask};
use super::{ArcFaceHead, Workspace};
use crate::aligned::AVec;
use crate::error::Result;
use crate::memory::out_of_memory;
use crate::real::Real;
use crate::Margins;
use std::collections::TryReserveError;

/// What [`ArcFaceHead::append_classes`] adds: K·D weights, a margin and
/// (with class weights) a loss weight per new class.
pub(crate) struct NewClasses<'a, T> {
    /// m·K rows of D, row `j·K + k` sub-centre k of new class j.
    pub(crate) weight: &'a [T],
    /// m margins.
    pub(crate) margins: &'a [f64],
    /// The loss weight of each new class (used when the loss has class weights).
    pub(crate) class_weight: f64,
}

impl<T: Real> ArcFaceHead<T> {
    /// How many classes the head holds without reallocating its buffers
    /// (at least `num_classes`). Enrolment that does not fit reallocates
    /// every class-sized buffer, all in step, to hold
    /// `max(C + m, 2 × class_capacity)` classes, as `Vec` grows: enrolling
    /// classes one at a time copies each weight O(1) times on average.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 8), 0).unwrap();
    /// assert!(h.class_capacity() >= 4);
    /// h.reserve_classes(100).unwrap();
    /// assert!(h.class_capacity() >= 104);
    /// ```
    pub fn class_capacity(&self) -> usize {
        let (_, k, _, d) = self.dims();
        let rows = self.weight.capacity() / (k * d).max(1);
        rows.min(self.norms.norm.capacity() / k.max(1))
            .min(self.margin_consts.capacity())
    }

    /// Makes room for exactly `extra` more classes (as `Vec::reserve_exact`),
    /// so that enrolling them reallocates nothing; for a head that must not
    /// double its memory on the next enrolment. Out of memory is an error
    /// and changes nothing visible.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(2, 4), 0).unwrap();
    /// h.reserve_classes(10).unwrap();
    /// assert_eq!(h.class_capacity(), 12);
    /// h.reserve_classes(1).unwrap(); // fits: nothing to do
    /// assert_eq!(h.class_capacity(), 12);
    /// ```
    pub fn reserve_classes(&mut self, extra: usize) -> Result<()> {
        let need = self.cfg.num_classes.checked_add(extra);
        self.reserve_total(need, extra)
    }

    /// Room for `extra` more classes by the growth rule: when they do
    /// not fit, room for `max(C + extra, 2 × class_capacity)`.
    fn grow_for(&mut self, extra: usize) -> Result<()> {
        let need = self.cfg.num_classes.checked_add(extra);
        if need.is_some_and(|n| n <= self.class_capacity()) {
            return Ok(());
        }
        let doubled = self.class_capacity().saturating_mul(2);
        self.reserve_total(need.map(|n| n.max(doubled)), extra)
    }

    /// Reallocates every class-sized buffer, all in step, to hold `total`
    /// classes (`None`: more than the address space); nothing to do when
    /// they fit. `extra` sizes the error message.
    fn reserve_total(&mut self, total: Option<usize>, extra: usize) -> Result<()> {
        let (c, k, _, d) = self.dims();
        let cap = self.class_capacity();
        if total.is_some_and(|n| n <= cap) {
            return Ok(());
        }
        let oom = |what| out_of_memory::<T>(what, (extra as u128) * (k * d) as u128);
        let target = total
            .filter(|t| {
                t.checked_mul(k * d)
                    .is_some_and(|len| len <= isize::MAX as usize / 8)
            })
            .ok_or_else(|| oom("weights"))?;
        let exact =
            |v: &mut Vec<_>, total: usize| v.try_reserve_exact(total.saturating_sub(v.len()));
        self.weight
            .try_reserve_total(target * k * d, T::ZERO)
            .map_err(|_| oom("weights"))?;
        let nr = &mut self.norms;
        for v in [&mut nr.norm, &mut nr.inv, &mut nr.proj] {
            exact(v, target * k).map_err(|_| oom("weight norms"))?;
        }
        let consts = &mut self.margin_consts;
        consts
            .try_reserve_exact(target - consts.len())
            .map_err(|_| oom("margin constants"))?;
        if let Margins::PerClass(m) = &mut self.cfg.margins {
            m.try_reserve_exact(target - m.len())
                .map_err(|_| oom("margins"))?;
        }
        if let Some(cw) = &mut self.class_weight {
            exact(cw, target).map_err(|_| oom("class weights"))?;
        }
        if let Some(cw) = &mut self.cfg.loss.class_weight {
            cw.try_reserve_exact(target - cw.len())
                .map_err(|_| oom("class weights"))?;
        }
        self.retired.try_reserve(target - c)?;
        self.frozen.try_reserve(target - c)?;
        Ok(())
    }

    /// Appends classes after the last one; returns the index of the first.
    /// The caller has checked that the rows are finite with usable norms and
    /// that the margins are finite. All or nothing: room is reserved (and
    /// the margins checked against T) before anything changes.
    pub(crate) fn append_classes(&mut self, new: &NewClasses<'_, T>) -> Result<usize> {
        let (c, k, ck, d) = self.dims();
        let m = new.margins.len();
        debug_assert_eq!(new.weight.len(), m * k * d);
        self.check_margins_fit(new.margins)?;
        self.grow_for(m)?;
        // from here on everything fits the reserved room: nothing fails
        self.weight.resize((ck + m * k) * d, T::ZERO);
        self.weight[ck * d..].copy_from_slice(new.weight);
        let nr = &mut self.norms;
        nr.norm.resize(ck + m * k, T::ONE);
        nr.inv.resize(ck + m * k, T::ONE);
        nr.proj.resize(ck + m * k, T::ZERO);
        let mut margins = match core::mem::replace(&mut self.cfg.margins, Margins::Uniform(0.0)) {
            Margins::PerClass(v) => v,
            Margins::Uniform(u) => vec![u; c],
        };
        margins.extend_from_slice(new.margins);
        self.margin_consts.extend(
            new.margins
                .iter()
                .map(|&mg| crate::margin::MarginT::from_f64(&crate::MarginConstants::new(mg))),
        );
        self.cfg.margins = Margins::PerClass(margins);
        if let Some(cw) = &mut self.class_weight {
            cw.extend((0..m).map(|_| T::from_f64(new.class_weight)));
        }
        if let Some(cw) = &mut self.cfg.loss.class_weight {
            cw.extend((0..m).map(|_| new.class_weight));
        }
        if let Some(ls) = &mut self.cfg.loss.label_smooth {
            if ls.num_classes.is_some() {
                ls.num_classes = Some(c + m);
            }
        }
        self.retired.push_unset(m);
        self.frozen.push_unset(m);
        self.cfg.num_classes = c + m;
        self.refresh_norms_from(ck);
        Ok(c)
    }

    /// Removes classes and compacts: the rows, margins, class weights and
    /// flags of the others move down in order, the capacity is kept.
    /// Returns the map from old to new class index (`None` for a removed
    /// class), to relabel data and optimiser state
    /// ([`crate::Optimizer::remap_classes`]). Errors (nothing changed): an
    /// unknown class, one listed twice, or removing every class.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, HeadConfig};
    /// let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0];
    /// let mut head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(3, 2), &w).unwrap();
    /// let map = head.remove_classes(&[1]).unwrap();
    /// assert_eq!(map, vec![Some(0), None, Some(1)]);
    /// assert_eq!(head.weight(), &[1.0, 0.0, -1.0, 0.0]);
    /// assert_eq!(head.config().num_classes, 2);
    /// assert!(head.remove_classes(&[0, 1]).is_err()); // would leave no class
    /// ```
    pub fn remove_classes(&mut self, classes: &[usize]) -> Result<Vec<Option<usize>>> {
        let (c, k, _, d) = self.dims();
        check_class_list("remove_classes", classes, c)?;
        if classes.len() >= c {
            return Err(crate::config::invalid(
                "remove_classes",
                format!("would remove all {c} classes; a head keeps at least one"),
            ));
        }
        let mut keep = crate::memory::try_filled(c, true, "class map")?;
        let mut map = crate::memory::try_filled(c, None, "class map")?;
        for &cl in classes {
            keep[cl] = false;
        }
        let mut next = 0;
        for cl in 0..c {
            if keep[cl] {
                map[cl] = Some(next);
                if next != cl {
                    // rows move down only: the source is never overwritten first
                    self.weight
                        .copy_within(cl * k * d..(cl + 1) * k * d, next * k * d);
                }
                next += 1;
            }
        }
        let kept = next;
        self.weight.resize(kept * k * d, T::ZERO);
        // the norms are recomputed below: only their length matters here
        self.norms.norm.truncate(kept * k);
        self.norms.inv.truncate(kept * k);
        self.norms.proj.truncate(kept * k);
        retain_by(&mut self.margin_consts, &keep);
        if let Margins::PerClass(m) = &mut self.cfg.margins {
            retain_by(m, &keep);
        }
        if let Some(cw) = &mut self.class_weight {
            retain_by(cw, &keep);
        }
        if let Some(cw) = &mut self.cfg.loss.class_weight {
            retain_by(cw, &keep);
        }
        if let Some(ls) = &mut self.cfg.loss.label_smooth {
            if ls.num_classes.is_some() {
                ls.num_classes = Some(kept);
            }
        }
        self.retired.retain(&keep);
        self.frozen.retain(&keep);
        self.cfg.num_classes = kept;
        // the first unusable row (if any) may have moved
        self.refresh_norms();
        Ok(map)
    }

    /// The mean of the cached weight-row norms $\max(\lVert w_r\rVert, \epsilon)$
    /// over the rows of classes not retired: the length enrolment gives new
    /// rows. 1 if that is not a usable number.
    pub(crate) fn mean_row_norm(&self) -> f64 {
        let (c, k, _, _) = self.dims();
        let (mut sum, mut rows) = (0.0, 0usize);
        for cl in (0..c).filter(|&cl| !self.retired.get(cl)) {
            for &v in &self.norms.norm[cl * k..(cl + 1) * k] {
                sum += v.to_f64();
                rows += 1;
            }
        }
        let mean = sum / rows.max(1) as f64;
        if mean.is_finite() && mean > super::NORM_EPS {
            mean
        } else {
            1.0
        }
    }

    /// Checks rows to be appended (rows of D): finite, with a norm T holds.
    pub(crate) fn check_new_rows(&self, w: &[T]) -> Result<()> {
        Self::check_rows(w, self.cfg.in_channels, self.arch)
    }

    /// Fresh class flags for a head of `c` classes (none set).
    pub(super) fn no_flags(c: usize) -> Result<ClassMask> {
        ClassMask::try_new(c)
    }
}

impl<T: Real> Workspace<T> {
    /// Resizes the class-sized buffers (the products, the weight gradient
    /// if this workspace has one, the arg-max sub-centres, the class index)
    /// to `head`'s number of classes after an enrolment or a removal;
    /// a no-op when they fit. Growth is geometric (as `Vec`), so enrolling
    /// classes one by one reallocates O(log C) times; shrinking keeps the
    /// capacity. The step itself never resizes: a workspace that does not
    /// fit the head is an error there. Errors (nothing changed): a head of
    /// another K or D, or memory that cannot be had.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Batch, Enrolment, HeadConfig, Workspace};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// let mut ws = Workspace::new(&head, 4);
    /// let new = head.enrol(&[0.3, -1.0], &Enrolment::default()).unwrap();
    /// assert!(head.forward_backward(&Batch::new(&[0.3, -1.0], &[new as i64]), &mut ws).is_err());
    /// ws.fit(&head).unwrap();
    /// head.forward_backward(&Batch::new(&[0.3, -1.0], &[new as i64]), &mut ws).unwrap();
    /// assert_eq!(ws.grad_weight().len(), 3 * 2);
    /// ```
    pub fn fit(&mut self, head: &ArcFaceHead<T>) -> Result<()> {
        let (c, k, _, d) = head.dims();
        let s = self.shape;
        if (s.k, s.d) != (k, d) {
            return Err(crate::config::invalid(
                "workspace",
                format!(
                    "was made for K = {}, D = {}; this head has K = {k}, D = {d}",
                    s.k, s.d
                ),
            ));
        }
        if s.c == c {
            return Ok(());
        }
        let grads = !self.results.grad_weight.is_empty();
        let oom = |what, len: usize| crate::memory::out_of_memory::<T>(what, len as u128);
        let lens = ClassSized {
            products: s
                .cap
                .checked_mul(c * k)
                .ok_or_else(|| oom("products", usize::MAX))?,
            grad_weight: if grads { c * k * d } else { 0 },
            subcentre: if k > 1 { c * s.cap } else { 0 },
            start: c + 1,
        };
        // room first, then lengths: an allocation failure changes nothing
        reserve_avec(&mut self.products, lens.products)
            .map_err(|_| oom("products", lens.products))?;
        reserve_avec(&mut self.results.grad_weight, lens.grad_weight)
            .map_err(|_| oom("weight gradient", lens.grad_weight))?;
        let cp = &mut self.class_pass;
        reserve_vec(&mut cp.subcentre, lens.subcentre)
            .and_then(|()| reserve_vec(&mut cp.by_class.start, lens.start))
            .and_then(|()| reserve_vec(&mut cp.by_class.cursor, c))
            .map_err(|_| oom("class index", lens.subcentre + 2 * c))?;
        self.products.resize(lens.products, T::ZERO);
        self.results.grad_weight.resize(lens.grad_weight, T::ZERO);
        cp.subcentre.resize(lens.subcentre, T::ZERO);
        cp.by_class.start.resize(lens.start, 0);
        cp.by_class.cursor.resize(c, 0);
        self.shape.c = c;
        Ok(())
    }
}

/// Keeps the entries of `v` whose `keep` flag is set, in order.
fn retain_by<E>(v: &mut Vec<E>, keep: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// The lengths of the class-sized buffers for a head of C classes.
struct ClassSized {
    products: usize,
    grad_weight: usize,
    subcentre: usize,
    start: usize,
}

/// Room for `len` elements in `v` (geometric growth), its length unchanged.
fn reserve_vec<E>(v: &mut Vec<E>, len: usize) -> core::result::Result<(), TryReserveError> {
    v.try_reserve(len.saturating_sub(v.len()))
}

/// Room for `len` elements in `v` (geometric growth), its length unchanged.
fn reserve_avec<E: Clone + Default>(
    v: &mut AVec<E>,
    len: usize,
) -> core::result::Result<(), TryReserveError> {
    if len > v.capacity() {
        let old = v.len();
        v.try_grow_amortised(len, E::default())?;
        v.resize(old, E::default());
    }
    Ok(())
}
