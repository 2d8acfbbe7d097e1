//! The head's side of a sampled (PartialFC) step: a sub-head holding the
//! kept classes' rows, refilled in place every step, and the refresh of the
//! cached norms of a few rows after a sparse update.
//!
//! The sub-head is an ordinary [`ArcFaceHead`] whose buffers were sized once
//! for the largest kept set; [`ArcFaceHead::load_classes`] shrinks or grows
//! it within that capacity (no allocation) and copies the kept rows, norms,
//! margins and class weights, so that the existing step machinery runs on
//! the kept classes unchanged.

use super::norm::clamped_norm;
use super::{ArcFaceHead, Workspace};
use crate::error::Result;
use crate::kernels::RowSumSq;
use crate::real::Real;
use crate::Margins;

impl<T: Real> ArcFaceHead<T> {
    /// A head of `cap` ≤ C classes with this head's settings (scale, loss,
    /// margin policy, sub-centres, threads), to be filled by
    /// [`Self::load_classes`]. Label smoothing's `num_classes` check is
    /// dropped: the sub-head smooths over the kept classes.
    pub(crate) fn sub_head(&self, cap: usize) -> Result<Self> {
        let (c, k, _, d) = self.dims();
        let cap = cap.clamp(1, c);
        let mut cfg = self.cfg.clone();
        cfg.num_classes = cap;
        cfg.margins = Margins::PerClass(self.margins()[..cap].to_vec());
        if let Some(cw) = &mut cfg.loss.class_weight {
            cw.truncate(cap);
        }
        if let Some(ls) = &mut cfg.loss.label_smooth {
            ls.num_classes = None;
        }
        let mut sub = Self::build(cfg, |w| w.copy_from_slice(&self.weight[..cap * k * d]))?;
        sub.threads = self.threads;
        Ok(sub)
    }

    /// Makes this sub-head the head restricted to the classes `kept` of
    /// `full` (in that order): rows, cached norms, margins and class
    /// weights. `kept.len()` must not exceed the capacity given to
    /// [`Self::sub_head`] (so nothing is allocated) and `full`'s norms must
    /// be fresh.
    pub(crate) fn load_classes(&mut self, full: &Self, kept: &[u32]) {
        self.resize_classes(full, kept);
        for (j, &c) in kept.iter().enumerate() {
            self.copy_class(j, full, c);
        }
    }

    /// [`Self::load_classes`] where some kept rows are loaded through a
    /// map: `map(c, rows, into)` may write class `c`'s rows as they should
    /// be (from `rows`, the stored ones) into `into` and return `true`, in
    /// which case their norms are computed here; `false` copies the stored
    /// rows and norms. `full` is only read: its rows are brought up to date
    /// later (by the update that writes them anyway).
    pub(crate) fn load_mapped_classes(
        &mut self,
        full: &Self,
        kept: &[u32],
        mut map: impl FnMut(u32, &[T], &mut [T]) -> Result<bool>,
    ) -> Result<()> {
        self.resize_classes(full, kept);
        let (_, k, _, d) = full.dims();
        let kd = k * d;
        for (j, &c) in kept.iter().enumerate() {
            let src = &full.weight[c as usize * kd..][..kd];
            if map(c, src, &mut self.weight[j * kd..][..kd])? {
                self.refresh_classes(&[j as u32]);
            } else {
                self.copy_class(j, full, c);
            }
        }
        Ok(())
    }

    /// Sets the class count to `kept.len()` (within capacity) and copies the
    /// per-class settings of `kept` from `full`.
    fn resize_classes(&mut self, full: &Self, kept: &[u32]) {
        let (_, k, _, d) = full.dims();
        let m = kept.len();
        self.cfg.num_classes = m;
        self.weight.resize(m * k * d, T::ZERO);
        for v in [
            &mut self.norms.norm,
            &mut self.norms.inv,
            &mut self.norms.proj,
        ] {
            v.resize(m * k, T::ONE);
        }
        if let Margins::PerClass(list) = &mut self.cfg.margins {
            let all = full.margins();
            list.clear();
            list.extend(kept.iter().map(|&c| all[c as usize]));
        }
        self.margin_consts.clear();
        self.margin_consts
            .extend(kept.iter().map(|&c| full.margin_consts[c as usize]));
        if let (Some(to), Some(from)) = (&mut self.class_weight, &full.class_weight) {
            to.clear();
            to.extend(kept.iter().map(|&c| from[c as usize]));
        }
        if let (Some(to), Some(from)) =
            (&mut self.cfg.loss.class_weight, &full.cfg.loss.class_weight)
        {
            to.clear();
            to.extend(kept.iter().map(|&c| from[c as usize]));
        }
        if self.frozen.count() > 0 {
            self.frozen.clear();
        }
        if full.frozen.count() > 0 {
            for (j, &c) in kept.iter().enumerate() {
                if full.frozen.get(c as usize) {
                    self.frozen.set(j);
                }
            }
        }
        self.bad_row = None;
    }

    /// The retired flags (`None` when no class is retired) and the frozen
    /// flags (`None` when every class trains), one per class.
    pub(crate) fn class_flags(&self) -> (Option<&[bool]>, Option<&[bool]>) {
        (self.retired.active(), self.frozen.active())
    }

    /// Classes that are not retired.
    pub(crate) fn live_classes(&self) -> usize {
        self.cfg.num_classes - self.retired.count()
    }

    /// The label checks of a step on this head (each label in `0..C`, none
    /// retired; no soft-target mass on a retired class), made before a
    /// sampler sees the batch.
    pub(crate) fn check_live_labels(&self, labels: &[i64], soft: Option<&[T]>) -> Result<()> {
        crate::error::check_labels(labels, self.cfg.num_classes)?;
        self.check_not_retired(labels)?;
        match soft {
            Some(t) => self.check_soft_not_retired(t),
            None => Ok(()),
        }
    }

    /// Copies class `c`'s rows and cached norms of `full` into class `j`.
    fn copy_class(&mut self, j: usize, full: &Self, c: u32) {
        let (_, k, _, d) = full.dims();
        let (src, dst) = (c as usize * k, j * k);
        self.weight[dst * d..(dst + k) * d].copy_from_slice(&full.weight[src * d..(src + k) * d]);
        let (from, to) = (&full.norms, &mut self.norms);
        to.norm[dst..dst + k].copy_from_slice(&from.norm[src..src + k]);
        to.inv[dst..dst + k].copy_from_slice(&from.inv[src..src + k]);
        to.proj[dst..dst + k].copy_from_slice(&from.proj[src..src + k]);
    }

    /// Fits a workspace made for this sub-head at its capacity to its
    /// current class count (within the buffers' capacity: no allocation).
    pub(crate) fn fit_workspace(&self, ws: &mut Workspace<T>) {
        let (c, _, ck, d) = self.dims();
        ws.shape.c = c;
        ws.results.grad_weight.resize(ck * d, T::ZERO);
        ws.results.n = 0;
        ws.results.grad_n = 0;
    }

    /// The weights for a sparse update that `refresh_classes` follows: the
    /// caller changes only the rows of the classes it then refreshes.
    pub(crate) fn weight_mut_for_rows(&mut self) -> &mut [T] {
        &mut self.weight
    }

    /// Recomputes the cached norms of the rows of `classes`; a row that is
    /// no longer usable is noted as [`Self::update_weight`] does.
    pub(crate) fn refresh_classes(&mut self, classes: &[u32]) {
        let (_, k, _, d) = self.dims();
        for &c in classes {
            let r0 = c as usize * k;
            let nr = &mut self.norms;
            self.arch.dispatch(RowSumSq {
                x: &self.weight[r0 * d..(r0 + k) * d],
                d,
                out: &mut nr.norm[r0..r0 + k],
            });
            for r in r0..r0 + k {
                match clamped_norm(nr.norm[r], &self.weight[r * d..(r + 1) * d]) {
                    Ok((norm, above)) => {
                        let inv = T::ONE / norm;
                        nr.norm[r] = norm;
                        nr.inv[r] = inv;
                        nr.proj[r] = if above { inv } else { T::ZERO };
                    }
                    Err(e) => {
                        if self.bad_row.is_none() {
                            self.bad_row = Some(e.into_error("weight", r));
                        }
                    }
                }
            }
        }
    }

    /// Recomputes every cached norm after a change of all rows.
    pub(crate) fn refresh_all(&mut self) -> Result<()> {
        self.refresh_norms();
        self.check_weight()
    }

    /// The error of an unusable weight row, if any.
    pub(crate) fn weight_error(&self) -> Result<()> {
        self.check_weight()
    }
}
