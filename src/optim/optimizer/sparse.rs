//! The optimiser's side of a sampled step: the update of a few rows (the
//! kept classes') with the dense rule, and the linear map that a step with
//! a zero gradient applies to a row's (weight, momentum) pair under SGD.
//!
//! See `docs/partial-fc.md` for why the catch-up is exact: with a zero data
//! gradient, one SGD step maps (w, b) linearly, the same map for every row.

use super::Optimizer;
use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;
use crate::partial_fc::Map2;
use crate::real::Real;

impl<T: Real> Optimizer<T> {
    /// The map on (w, b) of this optimiser's next step at `lr` for an
    /// element whose gradient is zero: `Some` for SGD (exact catch-up),
    /// `None` for AdamW (lazy: untouched rows do not move).
    ///
    /// With weight decay λ, momentum μ, dampening τ and g = λw:
    /// b' = μb + (1−τ)λw (b' = λw on the first step),
    /// w' = w − η(nesterov ? λw + μb' : b').
    pub(crate) fn zero_grad_map(&self, lr: f64) -> Option<Map2> {
        let OptimizerConfig::Sgd(s) = &self.config else {
            return None;
        };
        let (lam, mu, tau) = (s.weight_decay, s.momentum, s.dampening);
        if !s.has_momentum() {
            return Some([1.0 - lr * lam, 0.0, 0.0, 0.0]);
        }
        // b' = c·w + e·b
        let (c, e) = if self.steps == 0 {
            (lam, 0.0)
        } else {
            ((1.0 - tau) * lam, mu)
        };
        // w' = w − η·d with d = (nesterov ? λw : 0) + [μ or 1]·b'
        let (dw, db) = if s.nesterov {
            (lam + mu * c, mu * e)
        } else {
            (c, e)
        };
        Some([1.0 - lr * dw, -lr * db, c, e])
    }

    /// Applies `m` to the (weight, momentum) pairs of `w[range]` and the
    /// matching momentum elements; with `commit == false` only checks that
    /// the results are finite. `d` names the error's row and column.
    pub(crate) fn map_rows(
        &mut self,
        w: &mut [T],
        range: core::ops::Range<usize>,
        m: &Map2,
        d: usize,
        commit: bool,
    ) -> Result<()> {
        let [a, b, c, e] = m.map(T::from_f64);
        let s1 = if self.state1.is_empty() {
            None
        } else {
            Some(&mut self.state1[range.clone()])
        };
        let start = range.start;
        let w = &mut w[range];
        match s1 {
            None => {
                for (i, wi) in w.iter_mut().enumerate() {
                    let nw = a * *wi;
                    check(nw, T::ZERO, start + i, d)?;
                    if commit {
                        *wi = nw;
                    }
                }
            }
            Some(s1) => {
                for (i, (wi, bi)) in w.iter_mut().zip(s1.iter_mut()).enumerate() {
                    let (nw, nb) = (a * *wi + b * *bi, c * *wi + e * *bi);
                    check(nw, nb, start + i, d)?;
                    if commit {
                        *wi = nw;
                        *bi = nb;
                    }
                }
            }
        }
        Ok(())
    }

    /// One step of the dense rule at `lr` on the rows `range` of `w`, whose
    /// gradient is `grad` (as long as the range); with `commit == false`
    /// only checks that the results are finite. Does not count the step
    /// ([`Self::count_sparse_step`] does, once all rows are done).
    pub(crate) fn update_rows(
        &mut self,
        w: &mut [T],
        range: core::ops::Range<usize>,
        grad: &[T],
        lr: f64,
        d: usize,
        commit: bool,
    ) -> Result<()> {
        let rule = self.rule(lr);
        let zero = T::ZERO;
        let start = range.start;
        for (j, i) in range.enumerate() {
            let s1 = self.state1.get(i).copied().unwrap_or(zero);
            let s2 = self.state2.get(i).copied().unwrap_or(zero);
            let (nw, n1, n2) = rule.apply(w[i], grad[j], s1, s2);
            if !(nw.is_finite_() && n1.is_finite_() && n2.is_finite_()) {
                return Err(Error::NonFinite {
                    what: "updated weight",
                    row: (start + j) / d.max(1),
                    col: (start + j) % d.max(1),
                });
            }
            if commit {
                w[i] = nw;
                if let Some(v) = self.state1.get_mut(i) {
                    *v = n1;
                }
                if let Some(v) = self.state2.get_mut(i) {
                    *v = n2;
                }
            }
        }
        Ok(())
    }

    /// Counts one sampled step (PyTorch's `state['step']`).
    pub(crate) fn count_sparse_step(&mut self) {
        self.steps += 1;
    }
}

/// A finite (weight, momentum) pair, or the error naming element `i`.
fn check<T: Real>(w: T, b: T, i: usize, d: usize) -> Result<()> {
    if w.is_finite_() && b.is_finite_() {
        Ok(())
    } else {
        let d = d.max(1);
        Err(Error::NonFinite {
            what: "updated weight",
            row: i / d,
            col: i % d,
        })
    }
}
