//! Row kernels, each written once over [`pulp::Simd`] and [`Real`].
//!
//! Every kernel is a struct implementing [`pulp::WithSimd`]; production code
//! runs it through the head's cached [`pulp::Arch`] (AVX-512, AVX2+FMA, NEON
//! or scalar, detected once), and the tests run the very same code at every
//! emulated width (`Scalar`, `Scalar128b`, `Scalar256b`, `Scalar512b`)
//! against the plain loops in [`reference`].
//!
//! `exp` is a Cody–Waite reduction with a Taylor polynomial (degree 6 in f32,
//! 13 in f64): relative error below 3e-7 (f32) and 5e-16 (f64) on the
//! softmax domain $x \le 0$, identical arithmetic on every instruction set.

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
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        if self.d == 0 {
            return;
        }
        for (i, (g, v)) in self
            .g
            .chunks_exact_mut(self.d)
            .zip(self.v.chunks_exact(self.d))
            .enumerate()
        {
            let a = self.a.map_or(T::ONE, |a| a[i]);
            ProjectOut {
                g,
                v,
                a,
                c: self.c[i],
            }
            .with_simd(s);
        }
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
            *x = *x / self.k;
        }
    }
}

/// `x[j] = (x[j] / y[j]) * k`, returning the new $\max_j x_j$: products to
/// scaled cosines and their maximum in one pass.
///
/// The quotient is formed without a division instruction: with $r = 1/y$
/// (`rcp`, precomputed), $q_0 = x r$, $e = \operatorname{fma}(-q_0, y, x)$ (exact),
/// $q = \operatorname{fma}(e, r, q_0)$ — Markstein's refinement, which gives
/// the correctly rounded $x / y$ (so a vector along an axis still comes out
/// exactly ±1, as upstream's division does) at the cost of a multiply and two
/// FMAs.
pub(crate) struct DivScaleMax<'a, T> {
    pub x: &'a mut [T],
    pub y: &'a [T],
    pub rcp: &'a [T],
    pub k: T,
}
impl<T: Real> WithSimd for DivScaleMax<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let n = self.x.len().min(self.y.len()).min(self.rcp.len());
        let (xh, xt) = T::split_mut::<S>(&mut self.x[..n]);
        let (yh, yt) = T::split::<S>(&self.y[..n]);
        let (rh, rt) = T::split::<S>(&self.rcp[..n]);
        let k = T::splat(s, self.k);
        let ninf = T::from_f64(f64::NEG_INFINITY);
        let mut m = T::splat(s, ninf);
        for ((x, y), r) in xh.iter_mut().zip(yh).zip(rh) {
            let q0 = T::vmul(s, *x, *r);
            let e = T::vfma_exact(s, T::vsub(s, T::splat(s, T::ZERO), q0), *y, *x);
            let q = T::vfma_exact(s, e, *r, q0);
            *x = T::vmul(s, q, k);
            m = T::vmax(s, m, *x);
        }
        let mut best = T::vhmax(s, m);
        for ((x, y), _) in xt.iter_mut().zip(yt).zip(rt) {
            *x = (*x / *y) * self.k;
            if *x > best {
                best = *x;
            }
        }
        best
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
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
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
        for (g, v) in gh.iter_mut().zip(vh) {
            *g = T::vmul(s, a, T::vfma(s, nc, *v, *g));
        }
        for (g, v) in gt.iter_mut().zip(vt) {
            *g = self.a * (*g - coef * *v);
        }
    }
}

/// `y[j] += a · x[j]`.
pub(crate) struct Axpy<'a, T> {
    pub y: &'a mut [T],
    pub x: &'a [T],
    pub a: T,
}
impl<T: Real> WithSimd for Axpy<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let n = self.y.len().min(self.x.len());
        let (yh, yt) = T::split_mut::<S>(&mut self.y[..n]);
        let (xh, xt) = T::split::<S>(&self.x[..n]);
        let a = T::splat(s, self.a);
        for (y, x) in yh.iter_mut().zip(xh) {
            *y = T::vfma(s, a, *x, *y);
        }
        for (y, x) in yt.iter_mut().zip(xt) {
            *y += self.a * *x;
        }
    }
}

/// `out[i] = w · xs[i]` for the rows `xs[i] = xs[i·d .. (i+1)·d]`, with `w`
/// loaded once per register (the small-batch forward product, one weight row
/// against every sample).
pub(crate) struct RowDots<'a, T> {
    pub w: &'a [T],
    pub xs: &'a [T],
    pub out: &'a mut [T],
}
impl<T: Real> WithSimd for RowDots<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let d = self.w.len();
        let n = if d == 0 {
            self.out.len()
        } else {
            self.out.len().min(self.xs.len() / d)
        };
        let (wh, wt) = T::split::<S>(self.w);
        let tail0 = d - wt.len();
        let mut i0 = 0;
        while i0 < n {
            let i1 = (i0 + 16).min(n);
            let m = i1 - i0;
            let rows: [&[T::V<S>]; 16] = core::array::from_fn(|b| {
                if b < m {
                    T::split::<S>(&self.xs[(i0 + b) * d..(i0 + b + 1) * d]).0
                } else {
                    &[]
                }
            });
            let mut acc = [T::splat(s, T::ZERO); 16];
            for (j, w) in wh.iter().enumerate() {
                for b in 0..m {
                    acc[b] = T::vfma(s, *w, rows[b][j], acc[b]);
                }
            }
            for b in 0..m {
                let mut v = T::vsum(s, acc[b]);
                let x = &self.xs[(i0 + b) * d + tail0..(i0 + b + 1) * d];
                for (a, c) in wt.iter().zip(x) {
                    v += *a * *c;
                }
                self.out[i0 + b] = v;
            }
            i0 = i1;
        }
    }
}

/// The small-batch forward over a block of weight rows: `pt[r·n + i] =
/// w_r · x̂_i` (Pᵀ), one dispatch for the block.
pub(crate) struct SmallForward<'a, T> {
    pub w: &'a [T],
    pub xs: &'a [T],
    pub d: usize,
    pub n: usize,
    pub pt: &'a mut [T],
}
impl<T: Real> WithSimd for SmallForward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        if self.d == 0 || self.n == 0 {
            self.pt.fill(T::ZERO);
            return;
        }
        for (w, out) in self
            .w
            .chunks_exact(self.d)
            .zip(self.pt.chunks_exact_mut(self.n))
        {
            RowDots {
                w,
                xs: self.xs,
                out,
            }
            .with_simd(s);
        }
    }
}

/// The small-batch backward over a block of weight rows `r0 ..`: for each
/// row, with $g_i = G'_{i r}$ read from `prod` (N×CK), `gw_r = Σ_i g_i x̂_i`
/// projected against `w_r` (factor `proj_r`), and `acc_i += g_i w_r`.
pub(crate) struct SmallBackward<'a, T> {
    pub w: &'a [T],
    pub proj: &'a [T],
    pub prod: &'a [T],
    pub ck: usize,
    pub r0: usize,
    pub xs: &'a [T],
    pub d: usize,
    pub n: usize,
    pub gw: &'a mut [T],
    pub acc: &'a mut [T],
}
impl<T: Real> WithSimd for SmallBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (d, n) = (self.d, self.n.min(16));
        if d == 0 {
            return;
        }
        let mut g = [T::ZERO; 16];
        for (j, (dw, w)) in self
            .gw
            .chunks_exact_mut(d)
            .zip(self.w.chunks_exact(d))
            .enumerate()
        {
            let r = self.r0 + j;
            let mut any = false;
            for (i, gi) in g.iter_mut().enumerate().take(n) {
                *gi = self.prod[i * self.ck + r];
                any |= *gi != T::ZERO;
            }
            if !any {
                dw.fill(T::ZERO);
                continue;
            }
            WeightedRowSum {
                out: dw,
                xs: self.xs,
                g: &g[..n],
            }
            .with_simd(s);
            ProjectOut {
                g: dw,
                v: w,
                a: T::ONE,
                c: self.proj[j],
            }
            .with_simd(s);
            for (i, &gi) in g.iter().enumerate().take(n) {
                if gi != T::ZERO {
                    Axpy {
                        y: &mut self.acc[i * d..(i + 1) * d],
                        x: w,
                        a: gi,
                    }
                    .with_simd(s);
                }
            }
        }
    }
}

/// `out = Σ_i g[i] · xs[i]` over the rows `xs[i] = xs[i·d .. (i+1)·d]`,
/// register-blocked: every output register is stored once (the small-batch
/// weight gradient, $\sum_i G'_{ir} \hat x_i$).
pub(crate) struct WeightedRowSum<'a, T> {
    pub out: &'a mut [T],
    pub xs: &'a [T],
    pub g: &'a [T],
}
impl<T: Real> WithSimd for WeightedRowSum<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let d = self.out.len();
        let n = self.g.len().min(self.xs.len() / d.max(1));
        let (oh, ot) = T::split_mut::<S>(self.out);
        // rows in blocks of 16: their register views and factors are set up
        // once per block, outside the loop over the output registers
        let mut i0 = 0;
        while i0 < n {
            let i1 = (i0 + 16).min(n);
            let rows: [&[T::V<S>]; 16] = core::array::from_fn(|b| {
                if i0 + b < i1 {
                    T::split::<S>(&self.xs[(i0 + b) * d..(i0 + b + 1) * d]).0
                } else {
                    &[]
                }
            });
            let gs: [T::V<S>; 16] = core::array::from_fn(|b| {
                T::splat(s, if i0 + b < i1 { self.g[i0 + b] } else { T::ZERO })
            });
            let m = i1 - i0;
            for (j, o) in oh.iter_mut().enumerate() {
                let mut acc = if i0 == 0 { T::splat(s, T::ZERO) } else { *o };
                for b in 0..m {
                    acc = T::vfma(s, gs[b], rows[b][j], acc);
                }
                *o = acc;
            }
            i0 = i1;
        }
        let tail0 = d - ot.len();
        for (j, o) in ot.iter_mut().enumerate() {
            let mut acc = T::ZERO;
            for i in 0..n {
                acc += self.g[i] * self.xs[i * d + tail0 + j];
            }
            *o = acc;
        }
    }
}

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

/// `x[j] = exp(x[j] − shift)`, returning $\sum_j$ of the new values.
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

/// $\sum_j v_j (m - z_j)$: the soft cross-entropy without its $\ln\sum e$ part,
/// as a sum of non-negative terms (no cancellation).
pub(crate) struct WeightedGap<'a, T> {
    pub v: &'a [T],
    pub z: &'a [T],
    pub m: T,
}
impl<T: Real> WithSimd for WeightedGap<'_, T> {
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let n = self.v.len().min(self.z.len());
        let (vh, vt) = T::split::<S>(&self.v[..n]);
        let (zh, zt) = T::split::<S>(&self.z[..n]);
        let m = T::splat(s, self.m);
        let mut acc = [T::splat(s, T::ZERO); 2];
        for (k, (v, z)) in vh.iter().zip(zh).enumerate() {
            acc[k & 1] = T::vfma(s, *v, T::vsub(s, m, *z), acc[k & 1]);
        }
        let mut sum = T::vsum(s, T::vadd(s, acc[0], acc[1]));
        for (v, z) in vt.iter().zip(zt) {
            sum += *v * (self.m - *z);
        }
        sum
    }
}

/// The softmax cross-entropy gradient of one row, scaled for the products:
/// `e[j] = (pc · e[j] − q · v[j]) · w[j]`, where `e` holds $e^{z_j - \max}$,
/// `pc` $= S\lambda a / \sum e$, `q` $= S\lambda$, `v` the weighted target row
/// (absent: zero) and `w` the inverse weight norms (absent: one).
pub(crate) struct SoftmaxGrad<'a, T> {
    pub e: &'a mut [T],
    pub v: Option<&'a [T]>,
    pub w: Option<&'a [T]>,
    pub pc: T,
    pub q: T,
}
impl<T: Real> WithSimd for SoftmaxGrad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let n = self.e.len();
        let pc = T::splat(s, self.pc);
        let nq = T::splat(s, -self.q);
        let (eh, et) = T::split_mut::<S>(self.e);
        match (self.v, self.w) {
            (None, None) => {
                for e in eh.iter_mut() {
                    *e = T::vmul(s, pc, *e);
                }
                for e in et.iter_mut() {
                    *e = self.pc * *e;
                }
            }
            (None, Some(w)) => {
                let (wh, wt) = T::split::<S>(&w[..n]);
                for (e, w) in eh.iter_mut().zip(wh) {
                    *e = T::vmul(s, T::vmul(s, pc, *e), *w);
                }
                for (e, w) in et.iter_mut().zip(wt) {
                    *e = self.pc * *e * *w;
                }
            }
            (Some(v), None) => {
                let (vh, vt) = T::split::<S>(&v[..n]);
                for (e, v) in eh.iter_mut().zip(vh) {
                    *e = T::vfma(s, pc, *e, T::vmul(s, nq, *v));
                }
                for (e, v) in et.iter_mut().zip(vt) {
                    *e = self.pc * *e - self.q * *v;
                }
            }
            (Some(v), Some(w)) => {
                let (vh, vt) = T::split::<S>(&v[..n]);
                let (wh, wt) = T::split::<S>(&w[..n]);
                for ((e, v), w) in eh.iter_mut().zip(vh).zip(wh) {
                    *e = T::vmul(s, T::vfma(s, pc, *e, T::vmul(s, nq, *v)), *w);
                }
                for ((e, v), w) in et.iter_mut().zip(vt).zip(wt) {
                    *e = (self.pc * *e - self.q * *v) * *w;
                }
            }
        }
    }
}

/// Plain loops that define what each kernel computes, in f64.
#[cfg(test)]
pub(crate) mod reference {
    pub fn sumsq(x: &[f64]) -> f64 {
        x.iter().map(|v| v * v).sum()
    }
    pub fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    pub fn project_out(g: &[f64], v: &[f64], a: f64, c: f64) -> Vec<f64> {
        let d = if c == 0.0 { 0.0 } else { c * c * dot(g, v) };
        g.iter().zip(v).map(|(g, v)| a * (g - d * v)).collect()
    }
    pub fn exp_shift(x: &[f64], shift: f64) -> (Vec<f64>, f64) {
        let e: Vec<f64> = x.iter().map(|v| (v - shift).exp()).collect();
        let s = e.iter().sum();
        (e, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulp::{Scalar, Scalar128b, Scalar256b, Scalar512b};

    #[derive(Clone, Copy, Debug)]
    enum Width {
        Scalar,
        W128,
        W256,
        W512,
        Arch,
    }
    const WIDTHS: [Width; 5] = [
        Width::Scalar,
        Width::W128,
        Width::W256,
        Width::W512,
        Width::Arch,
    ];

    fn run<K: WithSimd>(w: Width, k: K) -> K::Output {
        match w {
            Width::Scalar => k.with_simd(Scalar),
            Width::W128 => k.with_simd(Scalar128b),
            Width::W256 => k.with_simd(Scalar256b),
            Width::W512 => k.with_simd(Scalar512b),
            Width::Arch => pulp::Arch::new().dispatch(k),
        }
    }

    fn lengths() -> Vec<usize> {
        let mut v: Vec<usize> = (0..=67).collect();
        v.extend([511, 512, 513, 1000]);
        v
    }

    fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64, scale: f64) -> bool {
        (a - b).abs() <= tol * scale.max(b.abs()).max(1e-300)
    }

    macro_rules! per_type {
        ($name:ident, $t:ty, $tol:expr) => {
            mod $name {
                use super::*;
                type T = $t;
                const TOL: f64 = $tol;
                /// Rounding of an n-term sum: a few ulps per √n.
                fn sum_tol(n: usize) -> f64 {
                    TOL * (4.0 + 2.0 * (n as f64).sqrt())
                }
                fn cast(v: &[f64]) -> Vec<T> {
                    v.iter().map(|&x| x as T).collect()
                }
                fn back(v: &[T]) -> Vec<f64> {
                    v.iter().map(|&x| x as f64).collect()
                }

                #[test]
                fn sumsq_and_dot_match_reference() {
                    for w in WIDTHS {
                        for n in lengths() {
                            for scale in [1.0, 1e-3, 1e15] {
                                let a = cast(&data(n, n as u64, scale));
                                let b = cast(&data(n, n as u64 + 7, 1.0));
                                let (af, bf) = (back(&a), back(&b));
                                let got = run(w, SumSq { x: &a }) as f64;
                                let want = reference::sumsq(&af);
                                assert!(
                                    close(got, want, sum_tol(n), 0.0),
                                    "{w:?} n={n} sumsq {got} {want}"
                                );
                                let got = run(w, Dot { a: &a, b: &b }) as f64;
                                let want = reference::dot(&af, &bf);
                                let mag: f64 = af.iter().zip(&bf).map(|(x, y)| (x * y).abs()).sum();
                                assert!(
                                    close(got, want, sum_tol(n), mag),
                                    "{w:?} n={n} dot {got} {want}"
                                );
                            }
                        }
                    }
                }

                #[test]
                fn elementwise_kernels_match_reference() {
                    for w in WIDTHS {
                        for n in lengths() {
                            let x = cast(&data(n, 3 + n as u64, 2.0));
                            let y = cast(&data(n, 5 + n as u64, 3.0));
                            let mut d = vec![0.0 as T; n];
                            run(
                                w,
                                DivInto {
                                    src: &x,
                                    dst: &mut d,
                                    k: 3.0,
                                },
                            );
                            for j in 0..n {
                                assert_eq!(d[j], x[j] / 3.0);
                            }
                            let mut ip = x.clone();
                            run(w, DivInPlace { x: &mut ip, k: 3.0 });
                            assert_eq!(ip, d);
                            let mut m = x.clone();
                            let rcp: Vec<T> = y.iter().map(|v| 1.0 / v).collect();
                            let mx = run(
                                w,
                                DivScaleMax {
                                    x: &mut m,
                                    y: &y,
                                    rcp: &rcp,
                                    k: 64.0,
                                },
                            );
                            let mut want_max = T::NEG_INFINITY;
                            for j in 0..n {
                                assert_eq!(
                                    m[j],
                                    (x[j] / y[j]) * 64.0,
                                    "{w:?} n={n} j={j} division"
                                );
                                want_max = want_max.max(m[j]);
                            }
                            assert_eq!(mx, want_max);
                            // exactly parallel one-dimensional vectors stay exactly ±1
                            let mut p = [3.0 as T, -7.0, 0.1, 1e-30];
                            let nn = [3.0 as T, 7.0, 0.1, 1e-30];
                            let r: Vec<T> = nn.iter().map(|v| 1.0 / v).collect();
                            run(
                                w,
                                DivScaleMax {
                                    x: &mut p,
                                    y: &nn,
                                    rcp: &r,
                                    k: 1.0,
                                },
                            );
                            assert_eq!(p, [1.0, -1.0, 1.0, 1.0]);
                            for (a, c) in [(1.0, 1.0), (2.5, 0.3), (3.0, 0.0)] {
                                let mut g = y.clone();
                                run(
                                    w,
                                    ProjectOut {
                                        g: &mut g,
                                        v: &x,
                                        a: a as T,
                                        c: c as T,
                                    },
                                );
                                let want = reference::project_out(&back(&y), &back(&x), a, c);
                                let mag = 3.0 * a * (1.0 + c * c * 6.0 * n as f64);
                                for j in 0..n {
                                    assert!(
                                        close(g[j] as f64, want[j], TOL * 8.0, mag),
                                        "{w:?} n={n} project j={j}"
                                    );
                                }
                            }
                            let mut yy = y.clone();
                            run(
                                w,
                                Axpy {
                                    y: &mut yy,
                                    x: &x,
                                    a: 0.75,
                                },
                            );
                            for j in 0..n {
                                assert!(
                                    close(
                                        yy[j] as f64,
                                        y[j] as f64 + 0.75 * x[j] as f64,
                                        TOL * 4.0,
                                        8.0
                                    ),
                                    "{w:?} n={n} axpy"
                                );
                            }
                            for rows in [1usize, 3, 16, 21] {
                                let xs = cast(&data(rows * n, 29 + n as u64, 1.5));
                                let mut out = vec![7.0 as T; rows];
                                run(
                                    w,
                                    RowDots {
                                        w: &x,
                                        xs: &xs,
                                        out: &mut out,
                                    },
                                );
                                for i in 0..rows {
                                    let want =
                                        reference::dot(&back(&x), &back(&xs[i * n..(i + 1) * n]));
                                    assert!(
                                        close(out[i] as f64, want, sum_tol(n), 3.0 * n as f64),
                                        "{w:?} n={n} rowdots"
                                    );
                                }
                            }
                            for rows in [1usize, 3, 16, 21] {
                                let xs = cast(&data(rows * n, 19 + n as u64, 1.5));
                                let g = cast(&data(rows, 23, 2.0));
                                let mut out = vec![7.0 as T; n];
                                run(
                                    w,
                                    WeightedRowSum {
                                        out: &mut out,
                                        xs: &xs,
                                        g: &g,
                                    },
                                );
                                for j in 0..n {
                                    let want: f64 =
                                        (0..rows).map(|i| g[i] as f64 * xs[i * n + j] as f64).sum();
                                    assert!(
                                        close(
                                            out[j] as f64,
                                            want,
                                            sum_tol(rows),
                                            3.0 * rows as f64
                                        ),
                                        "{w:?} n={n} rowsum"
                                    );
                                }
                            }
                            let mx = run(w, RowMax { x: &x }) as f64;
                            let want = back(&x).into_iter().fold(f64::NEG_INFINITY, f64::max);
                            assert_eq!(mx, want, "{w:?} n={n} max");
                        }
                    }
                }

                #[test]
                fn multi_row_kernels_match_their_row_kernels() {
                    for w in WIDTHS {
                        for d in [1usize, 7, 16, 33, 67] {
                            let rows = 5;
                            let x = cast(&data(rows * d, d as u64, 2.0));
                            let v = cast(&data(rows * d, 3 + d as u64, 1.0));
                            let k = cast(&data(rows, 5, 3.0));
                            let mut ss = vec![0.0 as T; rows];
                            run(
                                w,
                                RowSumSq {
                                    x: &x,
                                    d,
                                    out: &mut ss,
                                },
                            );
                            let mut dv = vec![0.0 as T; rows * d];
                            run(
                                w,
                                DivRows {
                                    src: &x,
                                    dst: &mut dv,
                                    d,
                                    k: &k,
                                },
                            );
                            let mut pg = x.clone();
                            run(
                                w,
                                ProjectRows {
                                    g: &mut pg,
                                    v: &v,
                                    d,
                                    a: Some(&k),
                                    c: &k,
                                },
                            );
                            let mut pt = vec![0.0 as T; rows * 3];
                            run(
                                w,
                                SmallForward {
                                    w: &x,
                                    xs: &v[..3 * d],
                                    d,
                                    n: 3,
                                    pt: &mut pt,
                                },
                            );
                            for r in 0..rows {
                                let row = &x[r * d..(r + 1) * d];
                                assert_eq!(ss[r], run(w, SumSq { x: row }), "{w:?} d={d} rowsumsq");
                                let mut one = vec![0.0 as T; d];
                                run(
                                    w,
                                    DivInto {
                                        src: row,
                                        dst: &mut one,
                                        k: k[r],
                                    },
                                );
                                assert_eq!(
                                    &dv[r * d..(r + 1) * d],
                                    &one[..],
                                    "{w:?} d={d} divrows"
                                );
                                let mut g = row.to_vec();
                                run(
                                    w,
                                    ProjectOut {
                                        g: &mut g,
                                        v: &v[r * d..(r + 1) * d],
                                        a: k[r],
                                        c: k[r],
                                    },
                                );
                                assert_eq!(
                                    &pg[r * d..(r + 1) * d],
                                    &g[..],
                                    "{w:?} d={d} projectrows"
                                );
                                let mut dots = [0.0 as T; 3];
                                run(
                                    w,
                                    RowDots {
                                        w: row,
                                        xs: &v[..3 * d],
                                        out: &mut dots,
                                    },
                                );
                                assert_eq!(
                                    &pt[r * 3..(r + 1) * 3],
                                    &dots[..],
                                    "{w:?} d={d} smallforward"
                                );
                            }
                            // small backward: rows of W = x, samples = v[..3 rows], G' from a 3×rows matrix
                            let n = 3;
                            let prod = cast(&data(n * rows, 41, 1.0));
                            let proj = cast(&data(rows, 43, 1.0));
                            let mut gw = vec![9.0 as T; rows * d];
                            let mut acc = vec![0.0 as T; n * d];
                            run(
                                w,
                                SmallBackward {
                                    w: &x,
                                    proj: &proj,
                                    prod: &prod,
                                    ck: rows,
                                    r0: 0,
                                    xs: &v[..n * d],
                                    d,
                                    n,
                                    gw: &mut gw,
                                    acc: &mut acc,
                                },
                            );
                            for r in 0..rows {
                                let g: Vec<f64> =
                                    (0..n).map(|i| prod[i * rows + r] as f64).collect();
                                let q: Vec<f64> = (0..d)
                                    .map(|j| (0..n).map(|i| g[i] * v[i * d + j] as f64).sum())
                                    .collect();
                                let wr = back(&x[r * d..(r + 1) * d]);
                                let want = reference::project_out(&q, &wr, 1.0, proj[r] as f64);
                                let mag = 3.0
                                    * n as f64
                                    * (1.0 + (proj[r] as f64).powi(2) * 4.0 * d as f64);
                                for j in 0..d {
                                    assert!(
                                        close(gw[r * d + j] as f64, want[j], sum_tol(n * d), mag),
                                        "{w:?} d={d} smallbackward dW"
                                    );
                                }
                            }
                            for i in 0..n {
                                for j in 0..d {
                                    let want: f64 = (0..rows)
                                        .map(|r| prod[i * rows + r] as f64 * x[r * d + j] as f64)
                                        .sum();
                                    assert!(
                                        close(
                                            acc[i * d + j] as f64,
                                            want,
                                            sum_tol(rows),
                                            2.0 * rows as f64
                                        ),
                                        "{w:?} d={d} smallbackward dX"
                                    );
                                }
                            }
                        }
                    }
                }

                #[test]
                fn exp_and_softmax_grad_match_reference() {
                    for w in WIDTHS {
                        for n in lengths() {
                            let mut x = cast(&data(n, 11 + n as u64, 40.0));
                            if n > 3 {
                                x[1] = -1e30 as T;
                                x[2] = 0.0;
                                x[3] = -800.0;
                            }
                            let xf = back(&x);
                            let shift = 40.0;
                            // the reference sees the same rounded argument x − shift
                            let diffs: Vec<f64> =
                                x.iter().map(|&v| (v - shift as T) as f64).collect();
                            let (want, wsum) = reference::exp_shift(&diffs, 0.0);
                            let mut e = x.clone();
                            let sum = run(
                                w,
                                ExpShiftSum {
                                    x: &mut e,
                                    shift: shift as T,
                                },
                            ) as f64;
                            for j in 0..n {
                                assert!(
                                    close(e[j] as f64, want[j], TOL, 0.0)
                                        || (want[j] < 1e-36 && (e[j] as f64) < 1e-36),
                                    "{w:?} n={n} exp({}) = {} want {}",
                                    diffs[j],
                                    e[j],
                                    want[j]
                                );
                            }
                            assert!(close(sum, wsum, sum_tol(n), 0.0), "{w:?} n={n} sum");
                            let v = cast(&data(n, 13, 1.0));
                            let iw = cast(&data(n, 17, 2.0));
                            let (pc, q) = (0.7, 1.3);
                            for case in 0..4 {
                                let vo = if case & 1 == 1 { Some(&v[..]) } else { None };
                                let wo = if case & 2 == 2 { Some(&iw[..]) } else { None };
                                let mut g = e.clone();
                                run(
                                    w,
                                    SoftmaxGrad {
                                        e: &mut g,
                                        v: vo,
                                        w: wo,
                                        pc: pc as T,
                                        q: q as T,
                                    },
                                );
                                for j in 0..n {
                                    let vj = vo.map_or(0.0, |v| v[j] as f64);
                                    let wj = wo.map_or(1.0, |w| w[j] as f64);
                                    let want = (pc * e[j] as f64 - q * vj) * wj;
                                    assert!(
                                        close(g[j] as f64, want, TOL * 4.0, 4.0),
                                        "{w:?} n={n} grad"
                                    );
                                }
                            }
                            let gap = run(
                                w,
                                WeightedGap {
                                    v: &v,
                                    z: &x[..],
                                    m: 50.0,
                                },
                            ) as f64;
                            let want: f64 =
                                back(&v).iter().zip(&xf).map(|(v, z)| v * (50.0 - z)).sum();
                            let mag: f64 = back(&v)
                                .iter()
                                .zip(&xf)
                                .map(|(v, z)| (v * (50.0 - z)).abs())
                                .sum();
                            assert!(
                                close(gap, want, sum_tol(n), mag),
                                "{w:?} n={n} gap {gap} {want}"
                            );
                        }
                    }
                }
            }
        };
    }
    per_type!(f32_kernels, f32, 3e-7);
    per_type!(f64_kernels, f64, 5e-16);
}
