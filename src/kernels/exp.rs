//! The exponential kernels of the softmax: a row shifted by its maximum
//! ([`ExpShiftSum`], row-major) and every sample's logits of one class
//! shifted by that sample's maximum ([`ExpSumInto`], class-major).
//!
//! Both evaluate `exp` through `T::vexp`, the same arithmetic on every
//! instruction set and width: a Cody–Waite reduction $x = k \ln 2 + r$,
//! $\lvert r\rvert \le \ln 2 / 2$ (`ln 2` split into a high and a low part),
//! a Taylor polynomial in $r$ by Horner's rule (degree 6 in f32, 13 in f64)
//! and $2^k$ added into the exponent bits.
//!
//! # Error bound
//!
//! On the softmax domain $x \le 0$ (every argument is a logit minus its
//! maximum), from the clamp (−87 in f32, −708 in f64) up to 0, the relative
//! error against the exact $e^x$ is below **3e-7 in f32** and **5e-16 in
//! f64**: the polynomial's truncation (1.2e-7 in f32, below 1e-17 in f64)
//! plus a few roundings. The largest error on the tests' dense sweep of the
//! domain is 2.2e-7 (f32) and 2.2e-16 (f64), the same at every width. Below
//! the clamp the result is about $e^{-87} \approx 1.6 \cdot 10^{-38}$ (f32)
//! or $e^{-708} \approx 3.3 \cdot 10^{-308}$ (f64) instead of something
//! smaller: negligible against the maximum's own term $e^0 = 1$ in a sum of
//! exponentials. The kernel tests check both statements at every width.

use crate::real::Real;
use pulp::{Simd, WithSimd};

/// `x[j] = exp(x[j] − shift)`, returning $\sum_j$ of the new values; each
/// exponential within the [error bound](self#error-bound) (`x[j] ≤ shift`).
pub(crate) struct ExpShiftSum<'a, T> {
    pub x: &'a mut [T],
    pub shift: T,
}
impl<T: Real> WithSimd for ExpShiftSum<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let (head, tail) = T::split_mut::<S>(self.x);
        let sh = T::splat(s, self.shift);
        let mut acc = [T::splat(s, T::ZERO); 2];
        let (pairs, rest) = pulp::as_arrays_mut::<2, _>(head);
        for [a, b] in pairs {
            *a = T::vexp(s, T::vsub(s, *a, sh));
            *b = T::vexp(s, T::vsub(s, *b, sh));
            acc[0] = T::vadd(s, acc[0], *a);
            acc[1] = T::vadd(s, acc[1], *b);
        }
        for a in rest {
            *a = T::vexp(s, T::vsub(s, *a, sh));
            acc[0] = T::vadd(s, acc[0], *a);
        }
        let mut sum = T::vsum(s, T::vadd(s, acc[0], acc[1]));
        if !tail.is_empty() {
            let v = T::vexp(s, T::vsub(s, T::load_tail(s, tail), sh));
            T::store_tail(s, tail, v);
            for &e in tail.iter() {
                sum += e;
            }
        }
        sum
    }
}

/// `z = exp(z − m)` and `sum += z`, lane-wise; each exponential within the
/// [error bound](self#error-bound) (`z ≤ m`).
pub(crate) struct ExpSumInto<'a, T> {
    pub z: &'a mut [T],
    pub m: &'a [T],
    pub sum: &'a mut [T],
}
impl<T: Real> WithSimd for ExpSumInto<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let len = self.z.len();
        let (zh, zt) = T::split_mut::<S>(self.z);
        let (mh, mt) = T::split::<S>(&self.m[..len]);
        let (sh, st) = T::split_mut::<S>(&mut self.sum[..len]);
        for ((z, m), sm) in zh.iter_mut().zip(mh).zip(sh.iter_mut()) {
            *z = T::vexp(s, T::vsub(s, *z, *m));
            *sm = T::vadd(s, *sm, *z);
        }
        if !zt.is_empty() {
            let e = T::vexp(s, T::vsub(s, T::load_tail(s, zt), T::load_tail(s, mt)));
            T::store_tail(s, zt, e);
            let v = T::vadd(s, T::load_tail(s, st), e);
            T::store_tail(s, st, v);
        }
    }
}
