//! The optimiser's side of a sampled step: the update of a few rows (the
//! kept classes') with the dense rule, and the linear map that a step with
//! a zero gradient applies to a row's (weight, momentum) pair under SGD.
//!
//! See `docs/partial-fc.md` for why the catch-up is exact: with a zero data
//! gradient, one SGD step maps (w, b) linearly, the same map for every row.

use super::Optimizer;
use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;
use crate::partial_fc::{Map2, IDENTITY};
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
    /// the results are finite (writing nothing), with `commit == true`
    /// writes them without checking. `d` names the error's row and column.
    pub(crate) fn map_rows(
        &mut self,
        w: &mut [T],
        range: core::ops::Range<usize>,
        m: &Map2,
        d: usize,
        commit: bool,
    ) -> Result<()> {
        let [a, b, c, e] = m.map(T::from_f64);
        let start = range.start;
        let w = &mut w[range.clone()];
        if self.state1.is_empty() {
            if commit {
                w.iter_mut().for_each(|wi| *wi = a * *wi);
                return Ok(());
            }
            return match w.iter().position(|&wi| !(a * wi).is_finite_()) {
                Some(j) => non_finite(start + j, d),
                None => Ok(()),
            };
        }
        let s1 = &mut self.state1[range];
        if commit {
            for (wi, bi) in w.iter_mut().zip(s1.iter_mut()) {
                let (nw, nb) = (a * *wi + b * *bi, c * *wi + e * *bi);
                *wi = nw;
                *bi = nb;
            }
            return Ok(());
        }
        // x·0 is 0 for a finite x and NaN otherwise: one branch-free sum
        // says whether all are finite; only then is the first bad one sought
        let zero = T::ZERO;
        let probe = w.iter().zip(s1.iter()).fold(zero, |acc, (&wi, &bi)| {
            let (nw, nb) = (a * wi + b * bi, c * wi + e * bi);
            acc + nw * zero + nb * zero
        });
        if probe.is_finite_() {
            return Ok(());
        }
        let bad = w.iter().zip(s1.iter()).position(|(&wi, &bi)| {
            !((a * wi + b * bi).is_finite_() && (c * wi + e * bi).is_finite_())
        });
        non_finite(start + bad.unwrap_or(0), d)
    }

    /// The weights of `w` (the elements `range` of the head's weights) after
    /// the map `m`, written into `into`; an error naming the first that is
    /// not finite. Nothing of the optimiser's is written: the momentum's
    /// share of the map is applied when the rows are updated
    /// ([`Self::update_rows`] with the same map).
    pub(crate) fn map_weights(
        &self,
        w: &[T],
        range: core::ops::Range<usize>,
        m: &Map2,
        into: &mut [T],
        d: usize,
    ) -> Result<()> {
        let [a, b, _, _] = m.map(T::from_f64);
        let zero = T::ZERO;
        let start = range.start;
        // x·0 is 0 for a finite x and NaN otherwise: a branch-free check
        let probe = if self.state1.is_empty() {
            into.iter_mut().zip(w).fold(zero, |acc, (o, &wi)| {
                *o = a * wi;
                acc + *o * zero
            })
        } else {
            let s1 = &self.state1[range];
            into.iter_mut()
                .zip(w)
                .zip(s1)
                .fold(zero, |acc, ((o, &wi), &bi)| {
                    *o = a * wi + b * bi;
                    acc + *o * zero
                })
        };
        if probe.is_finite_() {
            return Ok(());
        }
        let bad = into.iter().position(|v| !v.is_finite_()).unwrap_or(0);
        non_finite(start + bad, d)
    }

    /// One step of the dense rule at `lr` on the rows `range` of `w`, whose
    /// gradient is `grad` (as long as the range): with `commit == false`
    /// only checks that the results are finite (writing nothing), with
    /// `commit == true` writes them (the same arithmetic) without checking.
    /// With `pre`, each (weight, momentum) pair first takes that map (the
    /// row's pending catch-up, SGD only), in the same arithmetic as
    /// [`Self::map_rows`]. Does not count the step
    /// ([`Self::count_sparse_step`] does, once all rows are done).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update_rows(
        &mut self,
        w: &mut [T],
        range: core::ops::Range<usize>,
        grad: &[T],
        lr: f64,
        d: usize,
        pre: Option<&Map2>,
        commit: bool,
    ) -> Result<()> {
        // one loop per case, so that the map's test leaves the inner loops
        match pre {
            Some(m) => self.update_rows_with::<true>(w, range, grad, lr, d, m, commit),
            None => self.update_rows_with::<false>(w, range, grad, lr, d, &IDENTITY, commit),
        }
    }

    /// [`Self::update_rows`] with the map `pre` when `PRE`.
    #[allow(clippy::too_many_arguments)]
    fn update_rows_with<const PRE: bool>(
        &mut self,
        w: &mut [T],
        range: core::ops::Range<usize>,
        grad: &[T],
        lr: f64,
        d: usize,
        pre: &Map2,
        commit: bool,
    ) -> Result<()> {
        let rule = self.rule(lr);
        let zero = T::ZERO;
        let [pa, pb, pc, pe] = pre.map(T::from_f64);
        let has_pre = PRE;
        // (w, b) after the pending map (without one: as they are, bit for bit)
        let caught = |wi: T, bi: T| {
            if has_pre {
                (pa * wi + pb * bi, pc * wi + pe * bi)
            } else {
                (wi, bi)
            }
        };
        let caught_w = |wi: T| if has_pre { pa * wi } else { wi };
        let start = range.start;
        let w = &mut w[range.clone()];
        let grad = &grad[..w.len()];
        // x·0 is 0 for a finite x and NaN otherwise (a branch-free check)
        let ok = |(nw, n1, n2): (T, T, T)| (nw * zero + n1 * zero + n2 * zero).is_finite_();
        let bad = match (self.state1.is_empty(), self.state2.is_empty(), commit) {
            (true, _, false) => {
                let probe = w.iter().zip(grad).fold(zero, |acc, (&wi, &g)| {
                    acc + nan_if_bad(rule.apply(caught_w(wi), g, zero, zero))
                });
                (!probe.is_finite_()).then(|| {
                    w.iter()
                        .zip(grad)
                        .position(|(&wi, &g)| !ok(rule.apply(caught_w(wi), g, zero, zero)))
                        .unwrap_or(0)
                })
            }
            (true, _, true) => {
                for (wi, &g) in w.iter_mut().zip(grad) {
                    *wi = rule.apply(caught_w(*wi), g, zero, zero).0;
                }
                None
            }
            (false, true, false) => {
                let s1 = &self.state1[range];
                let probe = w
                    .iter()
                    .zip(grad)
                    .zip(s1)
                    .fold(zero, |acc, ((&wi, &g), &a)| {
                        let (wi, a) = caught(wi, a);
                        acc + nan_if_bad(rule.apply(wi, g, a, zero)) + a * zero
                    });
                (!probe.is_finite_()).then(|| {
                    w.iter()
                        .zip(grad)
                        .zip(s1)
                        .position(|((&wi, &g), &a)| {
                            let (wi, a) = caught(wi, a);
                            !(a.is_finite_() && ok(rule.apply(wi, g, a, zero)))
                        })
                        .unwrap_or(0)
                })
            }
            (false, true, true) => {
                for ((wi, &g), a) in w.iter_mut().zip(grad).zip(&mut self.state1[range]) {
                    let (cw, ca) = caught(*wi, *a);
                    let (nw, n1, _) = rule.apply(cw, g, ca, zero);
                    *wi = nw;
                    *a = n1;
                }
                None
            }
            (false, false, false) => {
                debug_assert!(!has_pre, "AdamW rows take no catch-up");
                let states = self.state1[range.clone()].iter().zip(&self.state2[range]);
                let probe = w
                    .iter()
                    .zip(grad)
                    .zip(states.clone())
                    .fold(zero, |acc, ((&wi, &g), (&a, &b))| {
                        acc + nan_if_bad(rule.apply(wi, g, a, b))
                    });
                (!probe.is_finite_()).then(|| {
                    w.iter()
                        .zip(grad)
                        .zip(states)
                        .position(|((&wi, &g), (&a, &b))| !ok(rule.apply(wi, g, a, b)))
                        .unwrap_or(0)
                })
            }
            (false, false, true) => {
                let s2 = &mut self.state2[range.clone()];
                for (((wi, &g), a), b) in
                    w.iter_mut().zip(grad).zip(&mut self.state1[range]).zip(s2)
                {
                    let (nw, n1, n2) = rule.apply(*wi, g, *a, *b);
                    *wi = nw;
                    *a = n1;
                    *b = n2;
                }
                None
            }
        };
        match bad {
            Some(j) => non_finite(start + j, d),
            None => Ok(()),
        }
    }

    /// Counts one sampled step (PyTorch's `state['step']`).
    pub(crate) fn count_sparse_step(&mut self) {
        self.steps += 1;
    }
}

/// 0 when all three are finite, NaN otherwise (x·0 is NaN exactly for a
/// non-finite x): summed over a row, a branch-free finiteness check.
#[inline(always)]
fn nan_if_bad<T: Real>((w, a, b): (T, T, T)) -> T {
    w * T::ZERO + a * T::ZERO + b * T::ZERO
}

/// The error naming element `i` of the weights (rows of `d`).
fn non_finite(i: usize, d: usize) -> Result<()> {
    let d = d.max(1);
    Err(Error::NonFinite {
        what: "updated weight",
        row: i / d,
        col: i % d,
    })
}
