//! The weights W ((C·K)×D, row `c·K + k`), their cached row norms, and the
//! ways to change them (replace, update in place, plain SGD step).

use super::norm::clamped_norm;
use super::ArcFaceHead;
use crate::error::{Error, Result};
use crate::kernels::{RowSumSq, SumSq};
use crate::memory::try_filled;
use crate::real::Real;

/// Per weight row, what the step needs of its norm (refreshed with every
/// change of the weights).
#[derive(Debug, Clone)]
pub(super) struct RowNorms<T> {
    /// max(‖w_r‖, eps): cosines are products divided by it.
    pub(super) norm: Vec<T>,
    /// 1 / max(‖w_r‖, eps): the gradient's column scaling.
    pub(super) inv: Vec<T>,
    /// 1 / ‖w_r‖ where ‖w_r‖ > eps, else 0: the projection factor.
    pub(super) proj: Vec<T>,
}

impl<T: Real> RowNorms<T> {
    /// Norms of `rows` unit rows (overwritten by the first refresh).
    pub(super) fn try_new(rows: usize) -> Result<Self> {
        Ok(Self {
            norm: try_filled(rows, T::ONE, "weight norms")?,
            inv: try_filled(rows, T::ONE, "weight norms")?,
            proj: try_filled(rows, T::ZERO, "weight norms")?,
        })
    }
}

impl<T: Real> ArcFaceHead<T> {
    /// The weights, (C·K)×D row-major.
    ///
    /// ```
    /// let h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(4, 8).with_subcenters(2), 0).unwrap();
    /// assert_eq!(h.weight().len(), 4 * 2 * 8);
    /// ```
    pub fn weight(&self) -> &[T] {
        &self.weight
    }

    /// The cached max(‖w_r‖, ε) of every weight row: a cosine is a
    /// product with x̂ divided by it.
    pub(crate) fn weight_norms(&self) -> &[T] {
        &self.norms.norm
    }

    /// Replaces the weights. Non-finite values or a wrong length are errors
    /// and leave the head unchanged.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(1, 2), 0).unwrap();
    /// assert!(h.set_weight(&[f32::NAN, 0.0]).is_err());
    /// h.set_weight(&[0.0, 2.0]).unwrap();
    /// ```
    pub fn set_weight(&mut self, w: &[T]) -> Result<()> {
        let (_, _, rows, d) = self.dims();
        if w.len() != rows * d {
            return Err(Error::Shape {
                what: "weight",
                expected: rows * d,
                got: w.len(),
            });
        }
        Self::check_rows(w, d, self.arch)?;
        self.weight.assign(w);
        self.refresh_norms();
        Ok(())
    }

    /// Checks that every row of `w` (rows of `d`) is finite with a norm
    /// that T can hold; the error names the first row that is not.
    pub(super) fn check_rows(w: &[T], d: usize, arch: pulp::Arch) -> Result<()> {
        for (r, row) in w.chunks_exact(d).enumerate() {
            let ss = arch.dispatch(SumSq { x: row });
            clamped_norm(ss, row).map_err(|e| e.into_error("weight", r))?;
        }
        Ok(())
    }

    /// Changes the weights in place (an optimiser step, say) and refreshes
    /// the cached norms. If `f` leaves a NaN or infinity, the error names it
    /// and every later call fails with it until the weights are set again.
    ///
    /// ```
    /// let mut h = arcface::ArcFaceHead::<f32>::new(arcface::HeadConfig::new(1, 2), 0).unwrap();
    /// h.update_weight(|w| w.iter_mut().for_each(|v| *v *= 2.0)).unwrap();
    /// ```
    pub fn update_weight(&mut self, f: impl FnOnce(&mut [T])) -> Result<()> {
        f(&mut self.weight);
        self.refresh_norms();
        self.check_weight()
    }

    /// One plain SGD step, `W ← W − lr · ∂L/∂W` on the trainable rows (all
    /// but those of frozen and retired classes), refusing (and changing
    /// nothing) if the result would not be finite.
    ///
    /// ```
    /// # use arcface::*;
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4), 0).unwrap();
    /// let mut ws = Workspace::new(&head, 1);
    /// head.forward_backward(&Batch::new(&[1.0, 0.5, 0.0, 0.0], &[2]), &mut ws).unwrap();
    /// head.sgd_step(ws.grad_weight(), 0.1).unwrap();
    /// ```
    pub fn sgd_step(&mut self, grad: &[T], lr: T) -> Result<()> {
        let d = self.cfg.in_channels;
        if grad.len() != self.weight.len() {
            return Err(Error::Shape {
                what: "grad",
                expected: self.weight.len(),
                got: grad.len(),
            });
        }
        // check every updated row (values and norm) before changing anything;
        // rows of frozen and retired classes are not updated
        for span in self.trainable_spans() {
            let (w, g) = (&self.weight[span.clone()], &grad[span.clone()]);
            for (r, (w, g)) in w.chunks_exact(d).zip(g.chunks_exact(d)).enumerate() {
                sgd_row_fits(w, g, lr, span.start / d + r)?;
            }
        }
        self.update_trainable(|w, span| {
            for (w, g) in w.iter_mut().zip(&grad[span]) {
                *w -= lr * *g;
            }
        })
    }

    /// The error left by the last change of the weights, if any.
    pub(crate) fn check_weight(&self) -> Result<()> {
        match &self.bad_row {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Recomputes the cached row norms and notes the first unusable row.
    pub(super) fn refresh_norms(&mut self) {
        self.bad_row = None;
        self.refresh_norms_from(0);
    }

    /// Recomputes the cached norms of rows `r0..` (rows appended to a head
    /// whose other norms are current), noting the first unusable row among
    /// them unless one is already noted.
    pub(super) fn refresh_norms_from(&mut self, r0: usize) {
        let d = self.cfg.in_channels;
        let nr = &mut self.norms;
        // sums of squares first (one dispatch), into the norm slots
        self.arch.dispatch(RowSumSq {
            x: &self.weight[r0 * d..],
            d,
            out: &mut nr.norm[r0..],
        });
        for (r, row) in self.weight.chunks_exact(d).enumerate().skip(r0) {
            match clamped_norm(nr.norm[r], row) {
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

/// Whether row `r` of the weights, `w − lr·g`, is finite with a finite norm.
fn sgd_row_fits<T: Real>(w: &[T], g: &[T], lr: T, r: usize) -> Result<()> {
    let mut ss = T::ZERO;
    for (col, (w, g)) in w.iter().zip(g).enumerate() {
        let v = *w - lr * *g;
        if !v.is_finite_() {
            return Err(Error::NonFinite {
                what: "weight",
                row: r,
                col,
            });
        }
        ss += v * v;
    }
    if ss.is_finite_() {
        return Ok(());
    }
    // the squares overflow: measure the norm with scaling
    let amax = w.iter().zip(g).fold(T::ZERO, |m, (w, g)| {
        let v = (*w - lr * *g).abs_();
        if v > m {
            v
        } else {
            m
        }
    });
    let s = w.iter().zip(g).fold(T::ZERO, |a, (w, g)| {
        let y = (*w - lr * *g) / amax;
        a + y * y
    });
    if (amax * s.sqrt_()).is_finite_() {
        Ok(())
    } else {
        Err(Error::Overflow {
            what: "weight",
            row: r,
        })
    }
}
