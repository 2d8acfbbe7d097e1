//! The softmax cross-entropy's kernels apart from the exponential (see
//! [`super::exp`]): the row maximum, the cosine logits scaled and maximised
//! in one sweep, and the loss and gradient terms of one class.
//!
//! All but [`RowMax`] are class-major: a row of Pᵀ holds one class (or
//! sub-centre) for every sample of the batch, and per-sample state (row
//! maximum, sum of exponentials, …) is a vector of the same length. Tails go
//! through the same vector arithmetic (zero-filled partial loads, partial
//! stores), so every sample sees identical operations whatever its position.

use crate::real::Real;
use pulp::{Simd, WithSimd};

/// $\max_j x_j$ (−∞ for an empty row).
pub(crate) struct RowMax<'a, T> {
    pub x: &'a [T],
}
impl<T: Real> WithSimd for RowMax<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let (head, tail) = T::split::<S>(self.x);
        let m = T::from_f64(f64::NEG_INFINITY);
        let mut acc = [T::splat(s, m); 2];
        let (pairs, rest) = pulp::as_arrays::<2, _>(head);
        for [a, b] in pairs {
            acc[0] = T::vmax(s, acc[0], *a);
            acc[1] = T::vmax(s, acc[1], *b);
        }
        for a in rest {
            acc[0] = T::vmax(s, acc[0], *a);
        }
        let mut best = T::vhmax(s, T::vmax(s, acc[0], acc[1]));
        for &x in tail {
            if x > best {
                best = x;
            }
        }
        best
    }
}

/// `x = (x / n) · k` for a whole row with one norm `n` (Markstein's
/// division refinement with `rcp = 1/n`: correctly rounded, as upstream's
/// division), and with `m`, `m = max(m, x)` in the same sweep.
pub(crate) struct ScaleDiv<'a, T> {
    pub x: &'a mut [T],
    pub n: T,
    pub rcp: T,
    pub k: T,
    pub m: Option<&'a mut [T]>,
}
impl<T: Real> WithSimd for ScaleDiv<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (n, r, k) = (
            T::splat(s, self.n),
            T::splat(s, self.rcp),
            T::splat(s, self.k),
        );
        let zero = T::splat(s, T::ZERO);
        let f = |x: T::V<S>| {
            let q0 = T::vmul(s, x, r);
            let e = T::vfma_exact(s, T::vsub(s, zero, q0), n, x);
            T::vmul(s, T::vfma_exact(s, e, r, q0), k)
        };
        let len = self.x.len();
        let (h, t) = T::split_mut::<S>(self.x);
        match self.m {
            None => {
                for x in h.iter_mut() {
                    *x = f(*x);
                }
                if !t.is_empty() {
                    let v = f(T::load_tail(s, t));
                    T::store_tail(s, t, v);
                }
            }
            Some(m) => {
                let (mh, mt) = T::split_mut::<S>(&mut m[..len]);
                for (x, m) in h.iter_mut().zip(mh.iter_mut()) {
                    *x = f(*x);
                    *m = T::vmax(s, *m, *x);
                }
                if !t.is_empty() {
                    let v = f(T::load_tail(s, t));
                    T::store_tail(s, t, v);
                    let mv = T::vmax(s, T::load_tail(s, mt), v);
                    T::store_tail(s, mt, mv);
                }
            }
        }
    }
}

/// `m = max(m, x)` lane-wise.
pub(crate) struct MaxInto<'a, T> {
    pub m: &'a mut [T],
    pub x: &'a [T],
}
impl<T: Real> WithSimd for MaxInto<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.m.len().min(self.x.len());
        let (mh, mt) = T::split_mut::<S>(&mut self.m[..len]);
        let (xh, xt) = T::split::<S>(&self.x[..len]);
        for (m, x) in mh.iter_mut().zip(xh) {
            *m = T::vmax(s, *m, *x);
        }
        if !mt.is_empty() {
            let v = T::vmax(s, T::load_tail(s, mt), T::load_tail(s, xt));
            T::store_tail(s, mt, v);
        }
    }
}

/// One class's target weights for every sample: none (zero), one number
/// for all, or a row.
#[derive(Clone, Copy)]
pub(crate) enum VRow<'a, T> {
    Zero,
    Uniform(T),
    Row(&'a [T]),
}

/// `gap += v · (m − z)` lane-wise (the soft cross-entropy without its
/// log-sum part, as non-negative terms).
pub(crate) struct GapInto<'a, T> {
    pub gap: &'a mut [T],
    pub v: VRow<'a, T>,
    pub m: &'a [T],
    pub z: &'a [T],
}
impl<T: Real> WithSimd for GapInto<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.z.len();
        let (gh, gt) = T::split_mut::<S>(&mut self.gap[..len]);
        let (mh, mt) = T::split::<S>(&self.m[..len]);
        let (zh, zt) = T::split::<S>(self.z);
        match self.v {
            VRow::Zero => {}
            VRow::Uniform(u) => {
                let u = T::splat(s, u);
                for ((g, m), z) in gh.iter_mut().zip(mh).zip(zh) {
                    *g = T::vfma(s, u, T::vsub(s, *m, *z), *g);
                }
                if !gt.is_empty() {
                    let v = T::vfma(
                        s,
                        u,
                        T::vsub(s, T::load_tail(s, mt), T::load_tail(s, zt)),
                        T::load_tail(s, gt),
                    );
                    T::store_tail(s, gt, v);
                }
            }
            VRow::Row(vr) => {
                let (vh, vt) = T::split::<S>(&vr[..len]);
                for (((g, m), z), v) in gh.iter_mut().zip(mh).zip(zh).zip(vh) {
                    *g = T::vfma(s, *v, T::vsub(s, *m, *z), *g);
                }
                if !gt.is_empty() {
                    let d = T::vsub(s, T::load_tail(s, mt), T::load_tail(s, zt));
                    let v = T::vfma(s, T::load_tail(s, vt), d, T::load_tail(s, gt));
                    T::store_tail(s, gt, v);
                }
            }
        }
    }
}

/// The cross-entropy gradient of one class for every sample, scaled for the
/// products: `e = (pc · e − q · v) · w` with per-sample `pc`, `q`.
pub(crate) struct ColGrad<'a, T> {
    pub e: &'a mut [T],
    pub pc: &'a [T],
    pub q: &'a [T],
    pub v: VRow<'a, T>,
    pub w: T,
}
impl<T: Real> WithSimd for ColGrad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.e.len();
        let w = T::splat(s, self.w);
        let (eh, et) = T::split_mut::<S>(self.e);
        let (ph, pt) = T::split::<S>(&self.pc[..len]);
        let (qh, qt) = T::split::<S>(&self.q[..len]);
        type Parts<'r, V, T> = (&'r [V], &'r [T], V);
        let (vh, vt, uni): Parts<'_, T::V<S>, T> = match self.v {
            VRow::Zero => (&[], &[], T::splat(s, T::ZERO)),
            VRow::Uniform(u) => (&[], &[], T::splat(s, u)),
            VRow::Row(r) => {
                let (a, b) = T::split::<S>(&r[..len]);
                (a, b, T::splat(s, T::ZERO))
            }
        };
        let row = matches!(self.v, VRow::Row(_));
        for (j, (e, (p, q))) in eh.iter_mut().zip(ph.iter().zip(qh)).enumerate() {
            let v = if row { vh[j] } else { uni };
            *e = T::vmul(s, T::vsub(s, T::vmul(s, *p, *e), T::vmul(s, *q, v)), w);
        }
        if !et.is_empty() {
            let v = if row { T::load_tail(s, vt) } else { uni };
            let (p, q) = (T::load_tail(s, pt), T::load_tail(s, qt));
            let r = T::vmul(
                s,
                T::vsub(s, T::vmul(s, p, T::load_tail(s, et)), T::vmul(s, q, v)),
                w,
            );
            T::store_tail(s, et, r);
        }
    }
}
