//! Row-major kernels over rows of D: squared norms, dot products, divisions
//! and the normalisation Jacobian, for one row and for a block of rows (one
//! dispatch for the block, each row computed exactly as the one-row kernel
//! computes it).
//!
//! The sums keep four independent accumulator registers (four FMA chains
//! in flight) and fold the scalar tail in through a zero-filled partial load.

use crate::real::Real;
use pulp::{Simd, WithSimd};

/// $\sum_j x_j^2$.
pub(crate) struct SumSq<'a, T> {
    pub x: &'a [T],
}
impl<T: Real> WithSimd for SumSq<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let (head, tail) = T::split::<S>(self.x);
        let (quads, rest) = pulp::as_arrays::<4, _>(head);
        let z = T::splat(s, T::ZERO);
        let mut acc = [z; 4];
        for [a, b, c, d] in quads {
            acc[0] = T::vfma(s, *a, *a, acc[0]);
            acc[1] = T::vfma(s, *b, *b, acc[1]);
            acc[2] = T::vfma(s, *c, *c, acc[2]);
            acc[3] = T::vfma(s, *d, *d, acc[3]);
        }
        for a in rest {
            acc[0] = T::vfma(s, *a, *a, acc[0]);
        }
        let t = T::load_tail(s, tail);
        acc[1] = T::vfma(s, t, t, acc[1]);
        let a = T::vadd(s, T::vadd(s, acc[0], acc[1]), T::vadd(s, acc[2], acc[3]));
        T::vsum(s, a)
    }
}

/// $\sum_j a_j b_j$.
pub(crate) struct Dot<'a, T> {
    pub a: &'a [T],
    pub b: &'a [T],
}
impl<T: Real> WithSimd for Dot<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let n = self.a.len().min(self.b.len());
        let (ah, at) = T::split::<S>(&self.a[..n]);
        let (bh, bt) = T::split::<S>(&self.b[..n]);
        let z = T::splat(s, T::ZERO);
        let mut acc = [z; 4];
        let (aq, ar) = pulp::as_arrays::<4, _>(ah);
        let (bq, br) = pulp::as_arrays::<4, _>(bh);
        for (a, b) in aq.iter().zip(bq) {
            for j in 0..4 {
                acc[j] = T::vfma(s, a[j], b[j], acc[j]);
            }
        }
        for (a, b) in ar.iter().zip(br) {
            acc[0] = T::vfma(s, *a, *b, acc[0]);
        }
        acc[1] = T::vfma(s, T::load_tail(s, at), T::load_tail(s, bt), acc[1]);
        let a = T::vadd(s, T::vadd(s, acc[0], acc[1]), T::vadd(s, acc[2], acc[3]));
        T::vsum(s, a)
    }
}

/// `dst[j] = src[j] / k` (a division, as `F.normalize` does: a vector along
/// one axis comes out exactly ±1).
pub(crate) struct DivInto<'a, T> {
    pub src: &'a [T],
    pub dst: &'a mut [T],
    pub k: T,
}
impl<T: Real> WithSimd for DivInto<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let n = self.src.len().min(self.dst.len());
        let (sh, st) = T::split::<S>(&self.src[..n]);
        let (dh, dt) = T::split_mut::<S>(&mut self.dst[..n]);
        let k = T::splat(s, self.k);
        for (d, x) in dh.iter_mut().zip(sh) {
            *d = T::vdiv(s, *x, k);
        }
        for (d, x) in dt.iter_mut().zip(st) {
            *d = *x / self.k;
        }
    }
}

/// `x[j] /= k` in place.
pub(crate) struct DivInPlace<'a, T> {
    pub x: &'a mut [T],
    pub k: T,
}
impl<T: Real> WithSimd for DivInPlace<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (xh, xt) = T::split_mut::<S>(self.x);
        let k = T::splat(s, self.k);
        for x in xh.iter_mut() {
            *x = T::vdiv(s, *x, k);
        }
        for x in xt.iter_mut() {
            *x /= self.k;
        }
    }
}

/// The normalisation Jacobian applied to a row gradient:
/// `g = a · (g − c² · (v·g) · v)` (the factor applied as `c·(c·dot)` so that
/// it cannot underflow for huge rows).
///
/// With $v = \hat x$, $c = 1$, $a = 1/\lVert x\rVert$ this is
/// $(g - \hat x(\hat x \cdot g))/\lVert x \rVert$; with $v = w$, $c = 1/\lVert w\rVert$,
/// $a = 1$ it maps the column-scaled weight gradient to $\partial L/\partial w$.
/// `c = 0` gives the sub-epsilon rule $g \cdot a$.
pub(crate) struct ProjectOut<'a, T> {
    pub g: &'a mut [T],
    pub v: &'a [T],
    pub a: T,
    pub c: T,
}
impl<T: Real> WithSimd for ProjectOut<'_, T> {
    /// A finiteness probe: `Σ 0·g` over the results, 0 unless one of them
    /// is NaN or infinite.
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let n = self.g.len().min(self.v.len());
        let coef = if self.c == T::ZERO {
            T::ZERO
        } else {
            self.c
                * (self.c
                    * Dot {
                        a: &self.g[..n],
                        b: &self.v[..n],
                    }
                    .with_simd(s))
        };
        let (gh, gt) = T::split_mut::<S>(&mut self.g[..n]);
        let (vh, vt) = T::split::<S>(&self.v[..n]);
        let a = T::splat(s, self.a);
        let nc = T::splat(s, -coef);
        let zero = T::splat(s, T::ZERO);
        let mut probe = zero;
        for (g, v) in gh.iter_mut().zip(vh) {
            *g = T::vmul(s, a, T::vfma(s, nc, *v, *g));
            probe = T::vfma(s, *g, zero, probe);
        }
        let mut p = T::vsum(s, probe);
        for (g, v) in gt.iter_mut().zip(vt) {
            *g = self.a * (*g - coef * *v);
            p += *g * T::ZERO;
        }
        p
    }
}

/// $\sum_j x_j^2$ of every row of a row-major matrix with `d` columns, into
/// `out` (one dispatch for all rows).
pub(crate) struct RowSumSq<'a, T> {
    pub x: &'a [T],
    pub d: usize,
    pub out: &'a mut [T],
}
impl<T: Real> WithSimd for RowSumSq<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        if self.d == 0 {
            self.out.fill(T::ZERO);
            return;
        }
        for (row, o) in self.x.chunks_exact(self.d).zip(self.out.iter_mut()) {
            *o = SumSq { x: row }.with_simd(s);
        }
    }
}

/// `dst_i = src_i / k_i` for every row `i` (rows of `d` columns).
pub(crate) struct DivRows<'a, T> {
    pub src: &'a [T],
    pub dst: &'a mut [T],
    pub d: usize,
    pub k: &'a [T],
}
impl<T: Real> WithSimd for DivRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        if self.d == 0 {
            return;
        }
        for ((src, dst), &k) in self
            .src
            .chunks_exact(self.d)
            .zip(self.dst.chunks_exact_mut(self.d))
            .zip(self.k)
        {
            DivInto { src, dst, k }.with_simd(s);
        }
    }
}

/// [`ProjectOut`] on every row: `g_i = a_i (g_i − c_i² (v_i·g_i) v_i)`, with
/// `a_i = 1` when `a` is `None`.
pub(crate) struct ProjectRows<'a, T> {
    pub g: &'a mut [T],
    pub v: &'a [T],
    pub d: usize,
    pub a: Option<&'a [T]>,
    pub c: &'a [T],
}
impl<T: Real> WithSimd for ProjectRows<'_, T> {
    /// The finiteness probe of [`ProjectOut`], summed over the rows.
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let mut probe = T::ZERO;
        if self.d == 0 {
            return probe;
        }
        for (i, (g, v)) in self
            .g
            .chunks_exact_mut(self.d)
            .zip(self.v.chunks_exact(self.d))
            .enumerate()
        {
            let a = self.a.map_or(T::ONE, |a| a[i]);
            probe += ProjectOut {
                g,
                v,
                a,
                c: self.c[i],
            }
            .with_simd(s);
        }
        probe
    }
}
