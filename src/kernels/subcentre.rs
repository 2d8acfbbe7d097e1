//! Sub-centre ArcFace: each class has K sub-centres; a sample's cosine to the
//! class is its largest cosine to them, and the class's gradient flows to
//! that arg-max sub-centre alone.
//!
//! Class-major, like [`super::softmax`]: rows hold one (sub-)class for every
//! sample, and tails go through the same vector arithmetic as whole
//! registers.

use crate::real::Real;
use pulp::{Simd, WithSimd};

/// The sub-centre maximum of one class for every sample: with `rows` the K
/// rows (each `len` long, back to back) and `n_j = norms[j]`,
/// `out = k · max_j rows_j / n_j` and `kidx` the first arg-max `j` (as a
/// number), ties to the lowest `j`. Each quotient is the correctly rounded
/// division that [`ScaleDiv`](super::softmax::ScaleDiv) computes, with
/// `rcps[j] = 1 / n_j`.
pub(crate) struct SubcentreMax<'a, T> {
    pub rows: &'a [T],
    pub norms: &'a [T],
    pub rcps: &'a [T],
    pub k: T,
    pub out: &'a mut [T],
    pub kidx: &'a mut [T],
}
impl<T: Real> WithSimd for SubcentreMax<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.out.len();
        let kk = self.norms.len();
        let zero = T::splat(s, T::ZERO);
        let scale = T::splat(s, self.k);
        let div = |x: T::V<S>, j: usize| {
            let (n, r) = (T::splat(s, self.norms[j]), T::splat(s, self.rcps[j]));
            let q0 = T::vmul(s, x, r);
            let e = T::vfma_exact(s, T::vsub(s, zero, q0), n, x);
            T::vfma_exact(s, e, r, q0)
        };
        let (oh, ot) = T::split_mut::<S>(self.out);
        let (kh, kt) = T::split_mut::<S>(self.kidx);
        let nv = oh.len();
        let row = |j: usize| &self.rows[j * len..(j + 1) * len];
        for v in 0..nv {
            let mut best = div(T::split::<S>(row(0)).0[v], 0);
            let mut arg = zero;
            for j in 1..kk {
                let c = div(T::split::<S>(row(j)).0[v], j);
                // strict: a tie keeps the lower sub-centre
                let up = T::vgt(s, c, best);
                best = T::vselect(s, up, c, best);
                arg = T::vselect(s, up, T::splat(s, T::from_f64(j as f64)), arg);
            }
            oh[v] = T::vmul(s, best, scale);
            kh[v] = arg;
        }
        if !ot.is_empty() {
            let t0 = len - ot.len();
            let mut best = div(T::load_tail(s, &row(0)[t0..]), 0);
            let mut arg = zero;
            for j in 1..kk {
                let c = div(T::load_tail(s, &row(j)[t0..]), j);
                let up = T::vgt(s, c, best);
                best = T::vselect(s, up, c, best);
                arg = T::vselect(s, up, T::splat(s, T::from_f64(j as f64)), arg);
            }
            T::store_tail(s, ot, T::vmul(s, best, scale));
            T::store_tail(s, kt, arg);
        }
    }
}

/// Gives one class's gradient to its arg-max sub-centre only:
/// `out = (kidx == j) ? g · w : 0`.
pub(crate) struct Expand<'a, T> {
    pub out: &'a mut [T],
    pub g: &'a [T],
    pub kidx: &'a [T],
    pub j: T,
    pub w: T,
}
impl<T: Real> WithSimd for Expand<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.out.len();
        let (w, j, zero) = (
            T::splat(s, self.w),
            T::splat(s, self.j),
            T::splat(s, T::ZERO),
        );
        let (oh, ot) = T::split_mut::<S>(self.out);
        let (gh, gt) = T::split::<S>(&self.g[..len]);
        let (kh, kt) = T::split::<S>(&self.kidx[..len]);
        for ((o, g), k) in oh.iter_mut().zip(gh).zip(kh) {
            *o = T::vselect(s, T::veq(s, *k, j), T::vmul(s, *g, w), zero);
        }
        if !ot.is_empty() {
            let v = T::vselect(
                s,
                T::veq(s, T::load_tail(s, kt), j),
                T::vmul(s, T::load_tail(s, gt), w),
                zero,
            );
            T::store_tail(s, ot, v);
        }
    }
}
