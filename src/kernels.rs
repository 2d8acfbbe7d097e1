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

/// Software prefetch of cache lines (x86: `prefetcht2` through pulp's safe
/// SSE token; a no-op elsewhere). The small-batch forward sweeps each block
/// of weight rows once per group of samples: only the first sweep reads
/// memory, so the hardware prefetchers see the stream pause; fetching the
/// next block during the later sweeps cut the forward at N = 8 from 3.0 to
/// 2.1–2.3 ms in `bench_step` (10⁴ rows of 512, W not in cache), and
/// fetching the block two ahead spread over all the sweeps cut the
/// inference logits at N = 16 from 2.7–3.0 to 2.2–2.4 ms (at N = 1 it
/// was slower than the hardware prefetchers alone, so N = 1 does not). The
/// small-batch backward fetches the next block's lines of W and of ∂W (the
/// lines it will write: the store then finds them in cache instead of
/// waiting for ownership) spread evenly over the block's sweep, which cut
/// its time at N = 8 from 4.8 to 3.1–3.3 ms in `bench_step`; fetching only
/// W's lines did not help, only ∂W's 3.8 ms.
#[derive(Clone, Copy)]
pub(crate) struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    v1: Option<pulp::x86::V1>,
}
impl Prefetch {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            v1: pulp::x86::V1::try_new(),
        }
    }
    /// Lines `first .. first + count` (64 bytes each) of `x`, clipped to it.
    #[inline(always)]
    fn lines<T>(self, x: &[T], first: usize, count: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v1) = self.v1 {
            let base = x.as_ptr() as *const i8;
            let end = (first + count).min(core::mem::size_of_val(x).div_ceil(64));
            for l in first..end {
                v1.sse
                    ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T2 }>(base.wrapping_add(l * 64));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (x, first, count);
    }
}

/// Weight rows per register block in [`SmallForward`] at N = 1: eight
/// independent accumulator chains keep both FMA units busy.
const FWD_ROWS: usize = 8;
/// Weight rows per register block in [`SmallBackward`]: each ∂X̂ register is
/// loaded and stored once per four rows instead of once per row.
const BWD_ROWS: usize = 4;

/// The small-batch forward over a block of weight rows: `pt[r·n + i] =
/// w_r · x̂_i` (Pᵀ), one dispatch for the block.
///
/// A small product in register blocks, like a GEMM micro-kernel without
/// packing: at N = 1, eight rows against the sample (eight accumulator
/// chains); otherwise four rows against four samples at a time, 16
/// accumulators fed by eight loads per step (the rest of the samples one by
/// one). W is streamed once; a block's rows stay in L1 while they meet every
/// sample. Halved the forward's time at N = 8 and 16 with W in cache
/// (0.95 → 0.60 ms and 2.0 → 1.25 ms for 10⁴ rows of 512 on AVX-512).
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
        let d = self.d;
        let n = self.n.min(self.xs.len().checked_div(d).unwrap_or(0));
        if d == 0 || n == 0 {
            self.pt.fill(T::ZERO);
            return;
        }
        let rows = (self.w.len() / d).min(self.pt.len() / self.n);
        let (w, xs, pt) = (self.w, self.xs, &mut *self.pt);
        // one sample: eight rows at a time; more: four rows by four samples
        let rb = if n == 1 { FWD_ROWS } else { FWD_ROWS / 2 };
        let pf = Prefetch::new();
        let full = rows - rows % rb;
        for r0 in (0..full).step_by(rb) {
            // the block two ahead is fetched during this one's sweeps; a
            // single sample's one sweep is left to the hardware prefetchers
            let next: &[T] = if n == 1 {
                &[]
            } else {
                let at = w.len().min((r0 + 2 * rb) * d);
                &w[at..w.len().min(at + rb * d)]
            };
            let blk = FwdBlock {
                pf,
                next,
                w: &w[r0 * d..(r0 + rb) * d],
                xs,
                d,
                n,
            };
            let out = &mut pt[r0 * n..(r0 + rb) * n];
            if n == 1 {
                blk.run::<S, FWD_ROWS, 1>(s, out);
            } else {
                blk.run::<S, { FWD_ROWS / 2 }, 4>(s, out);
            }
        }
        for r0 in full..rows {
            FwdBlock {
                pf,
                next: &[],
                w: &w[r0 * d..(r0 + 1) * d],
                xs,
                d,
                n,
            }
            .run::<S, 1, 1>(s, &mut pt[r0 * n..(r0 + 1) * n]);
        }
    }
}

/// A block of weight rows against every sample (see [`SmallForward`]).
struct FwdBlock<'a, T> {
    pf: Prefetch,
    /// Rows further on (two blocks ahead), prefetched during this block's
    /// sweeps.
    next: &'a [T],
    w: &'a [T],
    xs: &'a [T],
    d: usize,
    n: usize,
}

impl<T: Real> FwdBlock<'_, T> {
    /// `pt[r·n + i] = w_r · x_i` for the `R` rows, samples in register
    /// blocks of `NS` (the rest one by one): each step of the sweep loads
    /// R + NS registers for R·NS FMAs.
    #[inline(always)]
    fn run<S: Simd, const R: usize, const NS: usize>(&self, s: S, pt: &mut [T]) {
        let (d, n) = (self.d, self.n);
        let jn = d / lanes::<T, S>(s);
        let tail0 = jn * lanes::<T, S>(s);
        let wr: [&[T::V<S>]; R] =
            core::array::from_fn(|r| &T::split::<S>(&self.w[r * d..(r + 1) * d]).0[..jn]);
        // the lines of `next` spread evenly over every step of every group
        // (whole groups of NS, then singles)
        let groups = n / NS + n % NS;
        let per = core::mem::size_of_val(self.next)
            .div_ceil(64)
            .div_ceil((groups * jn).max(1));
        let mut i0 = 0;
        let mut step = 0;
        while i0 < n {
            if i0 + NS <= n {
                self.group::<S, R, NS>(s, &wr, i0, jn, tail0, pt, step * per, per);
                i0 += NS;
            } else {
                self.group::<S, R, 1>(s, &wr, i0, jn, tail0, pt, step * per, per);
                i0 += 1;
            }
            step += jn;
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn group<S: Simd, const R: usize, const NS: usize>(
        &self,
        s: S,
        wr: &[&[T::V<S>]; R],
        i0: usize,
        jn: usize,
        tail0: usize,
        pt: &mut [T],
        first: usize,
        per: usize,
    ) {
        let (d, n) = (self.d, self.n);
        let xr: [&[T::V<S>]; NS] = core::array::from_fn(|b| {
            &T::split::<S>(&self.xs[(i0 + b) * d..(i0 + b + 1) * d]).0[..jn]
        });
        let mut acc = [[T::splat(s, T::ZERO); NS]; R];
        for j in 0..jn {
            if per > 0 {
                self.pf.lines(self.next, first + j * per, per);
            }
            let xv: [T::V<S>; NS] = core::array::from_fn(|b| xr[b][j]);
            for r in 0..R {
                let wv = wr[r][j];
                for b in 0..NS {
                    acc[r][b] = T::vfma(s, wv, xv[b], acc[r][b]);
                }
            }
        }
        for r in 0..R {
            let wt = &self.w[r * d + tail0..(r + 1) * d];
            for b in 0..NS {
                let x = &self.xs[(i0 + b) * d + tail0..(i0 + b + 1) * d];
                let mut v = T::vsum(s, acc[r][b]);
                for (a, c) in wt.iter().zip(x) {
                    v += *a * *c;
                }
                pt[r * n + i0 + b] = v;
            }
        }
    }
}

/// The small-batch backward over a block of weight rows `r0 ..`: for each
/// row, with $g_i = G'_{i r}$ read from `prod` (G'ᵀ, CK×N),
/// `gw_r = Σ_i g_i x̂_i` projected against `w_r` (factor `proj_r`, as
/// [`ProjectOut`] with `a = 1`), and `acc_i += g_i w_r`.
///
/// Rows go in register blocks of [`BWD_ROWS`], two registers per step: for
/// each pair of register columns the block's rows are loaded once, and every
/// sample's `x̂_i` and ∂X̂ registers once for the whole block, so the ∂X̂
/// accumulators cost one load and one store per sample per block rather
/// than per row. The row sums `Σ_i g_i x̂_i` go straight into the gradient
/// rows (whose lines were fetched during the block before) with their dots
/// against `w_r` in registers; then each row is projected in place, from
/// L1. Measured on AVX-512 over 10⁴ rows of 512 in `bench_step`: an L1
/// scratch for the sums instead, copied out by the projection, made the
/// backward 30 % slower at N = 8 (2.7 against 3.55 ms; the scratch pushed
/// the block's working set past L1) and 5 % at N = 1, and ∂X̂ kept in its natural layout (rows 4 KiB
/// apart when D is a power of two) cost 1.5× at N = 1 and 8.
pub(crate) struct SmallBackward<'a, T> {
    pub w: &'a [T],
    pub proj: &'a [T],
    pub prod: &'a [T],
    pub r0: usize,
    pub xs: &'a [T],
    pub d: usize,
    pub n: usize,
    pub gw: &'a mut [T],
    pub acc: &'a mut [T],
    /// Scratch of [`small_backward_scratch`]`(n, d)` elements.
    pub scr: &'a mut [T],
}

/// Scratch elements [`SmallBackward`] needs for `n` samples of dimension `d`.
pub(crate) const fn small_backward_scratch(n: usize, d: usize) -> usize {
    n * d
}

impl<T: Real> WithSimd for SmallBackward<'_, T> {
    /// The finiteness probe of the weight-gradient rows (see [`ProjectOut`]).
    type Output = T;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> T {
        let (d, n) = (self.d, self.n.min(16));
        if d == 0 {
            return T::ZERO;
        }
        let n = n
            .min(self.xs.len() / d)
            .min(self.acc.len() / d)
            .min(self.scr.len() / d);
        let rows = (self.gw.len() / d).min(self.w.len() / d);
        let jn = d / lanes::<T, S>(s);
        // every sample's row split once: registers and tail
        let mut xh: [&[T::V<S>]; 16] = [&[]; 16];
        let mut xt: [&[T]; 16] = [&[]; 16];
        for (i, x) in self.xs.chunks_exact(d).take(n).enumerate() {
            let (h, t) = T::split::<S>(x);
            xh[i] = &h[..jn];
            xt[i] = t;
        }
        let mut ah: [&mut [T::V<S>]; 16] = core::array::from_fn(|_| <&mut [T::V<S>]>::default());
        let mut at: [&mut [T]; 16] = core::array::from_fn(|_| <&mut [T]>::default());
        for (i, a) in self.acc.chunks_exact_mut(d).take(n).enumerate() {
            let (h, t) = T::split_mut::<S>(a);
            ah[i] = &mut h[..jn];
            at[i] = t;
        }
        // ∂X̂'s registers interleaved (register
        // j of every sample side by side): in the natural layout, rows a
        // multiple of 4 KiB apart (D a power of two) made the kernel 1.5×
        // slower, most likely by 4K aliasing between one sample's store and
        // the next one's load
        let acc_t = &mut T::split_mut::<S>(&mut self.scr[..n * jn * lanes::<T, S>(s)]).0[..n * jn];
        acc_t.fill(T::splat(s, T::ZERO));
        let mut parts = BwdParts {
            xh: &xh[..n],
            xt: &xt[..n],
            acc_t: &mut *acc_t,
            at: &mut at[..n],
            jn,
        };
        let full = rows - rows % BWD_ROWS;
        let mut probe = T::splat(s, T::ZERO);
        let pf = Prefetch::new();
        for b0 in (0..full).step_by(BWD_ROWS) {
            let (gw, gw_rest) = self.gw[b0 * d..].split_at_mut(BWD_ROWS * d);
            let w_next = &self.w[(b0 + BWD_ROWS) * d..];
            let ahead = Ahead {
                pf,
                w: &w_next[..w_next.len().min(BWD_ROWS * d)],
                gw: &gw_rest[..gw_rest.len().min(BWD_ROWS * d)],
            };
            probe = bwd_block::<T, S, BWD_ROWS>(
                s,
                &mut parts,
                &self.w[b0 * d..(b0 + BWD_ROWS) * d],
                gw,
                &self.proj[b0..b0 + BWD_ROWS],
                &self.prod[(self.r0 + b0) * self.n..],
                self.n,
                probe,
                ahead,
            );
        }
        for b0 in full..rows {
            probe = bwd_block::<T, S, 1>(
                s,
                &mut parts,
                &self.w[b0 * d..(b0 + 1) * d],
                &mut self.gw[b0 * d..(b0 + 1) * d],
                &self.proj[b0..b0 + 1],
                &self.prod[(self.r0 + b0) * self.n..],
                self.n,
                probe,
                Ahead {
                    pf,
                    w: &[],
                    gw: &[],
                },
            );
        }
        for (i, a) in ah.iter_mut().enumerate().take(n) {
            for (j, v) in a.iter_mut().enumerate() {
                *v = T::vadd(s, *v, acc_t[j * n + i]);
            }
        }
        T::vsum(s, probe)
    }
}

/// Lanes of `T` in one register of `S`.
#[inline(always)]
fn lanes<T: Real, S: Simd>(_: S) -> usize {
    core::mem::size_of::<T::V<S>>() / core::mem::size_of::<T>()
}

/// The samples' rows as [`SmallBackward`] sweeps them: `x̂_i` and the ∂X̂
/// accumulators, each split into `jn` registers and a scalar tail.
struct BwdParts<'p, 'a, T: Real, S: Simd> {
    xh: &'p [&'a [T::V<S>]],
    xt: &'p [&'a [T]],
    /// ∂X̂'s registers, interleaved: `acc_t[j·n + i]` is register j of sample i.
    acc_t: &'p mut [T::V<S>],
    at: &'p mut [&'a mut [T]],
    jn: usize,
}

/// One step of [`bwd_block`]'s sweep over registers `j .. j + JB`: the
/// rows' sums `q_r` (stored, and dotted with `w_r` into `dot`) and every
/// sample's ∂X̂ registers.
#[inline(always)]
fn bwd_step<T: Real, S: Simd, const R: usize, const JB: usize>(
    s: S,
    j: usize,
    wr: &[&[T::V<S>]; R],
    p: &mut BwdParts<'_, '_, T, S>,
    gs: &[[T; R]; 16],
    qr: &mut [&mut [T::V<S>]; R],
    dot: &mut [[T::V<S>; R]; JB],
) {
    let n = p.xh.len();
    let zero = T::splat(s, T::ZERO);
    let wv: [[T::V<S>; R]; JB] = core::array::from_fn(|b| core::array::from_fn(|r| wr[r][j + b]));
    let mut q = [[zero; R]; JB];
    let acc = &mut p.acc_t[j * n..(j + JB) * n];
    for (i, (x, gi)) in p.xh.iter().zip(gs).enumerate() {
        let xv: [T::V<S>; JB] = core::array::from_fn(|b| x[j + b]);
        let mut av: [T::V<S>; JB] = core::array::from_fn(|b| acc[b * n + i]);
        for r in 0..R {
            let gv = T::splat(s, gi[r]);
            for b in 0..JB {
                q[b][r] = T::vfma(s, gv, xv[b], q[b][r]);
                av[b] = T::vfma(s, gv, wv[b][r], av[b]);
            }
        }
        for b in 0..JB {
            acc[b * n + i] = av[b];
        }
    }
    for r in 0..R {
        for b in 0..JB {
            qr[r][j + b] = q[b][r];
            dot[b][r] = T::vfma(s, q[b][r], wv[b][r], dot[b][r]);
        }
    }
}

/// The lines [`bwd_block`] prefetches during its sweep: the next block's
/// rows of W and of ∂W.
struct Ahead<'a, T> {
    pf: Prefetch,
    w: &'a [T],
    gw: &'a [T],
}

/// One register block of `R` weight rows (see [`SmallBackward`]); `g` holds
/// G'ᵀ from the block's first row on, `stride` values per row. The row sums
/// go into `gw`, which each row's projection then updates in place.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn bwd_block<T: Real, S: Simd, const R: usize>(
    s: S,
    p: &mut BwdParts<'_, '_, T, S>,
    w: &[T],
    gw: &mut [T],
    proj: &[T],
    g: &[T],
    stride: usize,
    mut probe: T::V<S>,
    ahead: Ahead<'_, T>,
) -> T::V<S> {
    let d = w.len() / R;
    let jn = p.jn;
    let tail0 = jn * lanes::<T, S>(s);
    let n = p.xh.len();
    // the block's factors, sample-major: gs[i][r] = G'ᵀ[r, i]
    let mut gs = [[T::ZERO; R]; 16];
    for (i, gi) in gs.iter_mut().enumerate().take(n) {
        for (r, v) in gi.iter_mut().enumerate() {
            *v = g[r * stride + i];
        }
    }
    let wr: [&[T::V<S>]; R] =
        core::array::from_fn(|r| &T::split::<S>(&w[r * d..(r + 1) * d]).0[..jn]);
    let zero = T::splat(s, T::ZERO);
    let mut dot = [zero; R];
    {
        let mut qr: [&mut [T::V<S>]; R] = core::array::from_fn(|_| <&mut [T::V<S>]>::default());
        for (r, row) in gw.chunks_exact_mut(d).enumerate().take(R) {
            qr[r] = &mut T::split_mut::<S>(row).0[..jn];
        }
        // two registers per step: independent chains, and each sample's
        // factors and row pointer loaded once for both
        let mut dots = [[zero; R]; 2];
        // the next block's lines, spread evenly over this block's steps
        let per = core::mem::size_of_val(ahead.w)
            .max(core::mem::size_of_val(ahead.gw))
            .div_ceil(64)
            .div_ceil((jn / 2).max(1));
        let mut j = 0;
        while j + 2 <= jn {
            ahead.pf.lines(ahead.w, (j / 2) * per, per);
            ahead.pf.lines(ahead.gw, (j / 2) * per, per);
            bwd_step::<T, S, R, 2>(s, j, &wr, p, &gs, &mut qr, &mut dots);
            j += 2;
        }
        if j < jn {
            let [d0, _] = &mut dots;
            bwd_step::<T, S, R, 1>(s, j, &wr, p, &gs, &mut qr, core::array::from_mut(d0));
        }
        for r in 0..R {
            dot[r] = T::vadd(s, dots[0][r], dots[1][r]);
        }
    }
    // the scalar tail, then each row's projection
    for (r, row) in gw.chunks_exact_mut(d).enumerate() {
        let wrow = &w[r * d..(r + 1) * d];
        let mut dt = T::vsum(s, dot[r]);
        for t in tail0..d {
            let mut qt = T::ZERO;
            for ((x, a), gi) in p.xt.iter().zip(p.at.iter_mut()).zip(&gs) {
                qt += gi[r] * x[t - tail0];
                a[t - tail0] += gi[r] * wrow[t];
            }
            row[t] = qt;
            dt += qt * wrow[t];
        }
        let c = proj[r];
        let coef = if c == T::ZERO { T::ZERO } else { c * (c * dt) };
        let nc = T::splat(s, -coef);
        let (gh, gt) = T::split_mut::<S>(row);
        let mut pr = zero;
        for (gv, wv) in gh.iter_mut().zip(wr[r]) {
            *gv = T::vfma(s, nc, *wv, *gv);
            pr = T::vfma(s, *gv, zero, pr);
        }
        probe = T::vadd(s, probe, pr);
        let mut ptail = T::ZERO;
        for (gv, wv) in gt.iter_mut().zip(&wrow[tail0..]) {
            *gv -= coef * *wv;
            ptail += *gv * T::ZERO;
        }
        if ptail != T::ZERO {
            probe = T::vadd(s, probe, T::splat(s, ptail));
        }
    }
    probe
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

// ------------------------------------------------------------------------
// Class-major kernels. A row of Pᵀ holds one class (or sub-centre) for every
// sample of the batch, and per-sample state (row maximum, sum of
// exponentials, …) is a vector of the same length. Tails go through the same
// vector arithmetic (zero-filled partial loads, partial stores), so every
// sample sees identical operations whatever its position.

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

/// The sub-centre maximum of one class for every sample: with `rows` the K
/// rows (each `len` long, back to back), `out = k · max_j rows_j / n_j` and
/// `kidx` the first arg-max `j` (as a number), ties to the lowest `j`.
pub(crate) struct SubMax<'a, T> {
    pub rows: &'a [T],
    pub norms: &'a [T],
    pub rcps: &'a [T],
    pub k: T,
    pub out: &'a mut [T],
    pub kidx: &'a mut [T],
}
impl<T: Real> WithSimd for SubMax<'_, T> {
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

/// `z = exp(z − m)` and `sum += z`, lane-wise.
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
                            // one norm per row: correctly rounded division, scaled
                            let mut m = x.clone();
                            let (nn, k) =
                                (y.first().copied().unwrap_or(1.0).abs() + 0.3, 64.0 as T);
                            run(
                                w,
                                ScaleDiv {
                                    x: &mut m,
                                    n: nn,
                                    rcp: 1.0 / nn,
                                    k,
                                    m: None,
                                },
                            );
                            for j in 0..n {
                                assert_eq!(m[j], (x[j] / nn) * k, "{w:?} n={n} j={j} division");
                            }
                            let (mut m2, mut mx) = (x.clone(), y.clone());
                            run(
                                w,
                                ScaleDiv {
                                    x: &mut m2,
                                    n: nn,
                                    rcp: 1.0 / nn,
                                    k,
                                    m: Some(&mut mx),
                                },
                            );
                            assert_eq!(m2, m);
                            for j in 0..n {
                                assert_eq!(mx[j], y[j].max(m[j]), "{w:?} n={n} fused max");
                            }
                            // exactly parallel one-dimensional vectors stay exactly ±1
                            for v in [3.0 as T, 7.0, 0.1, 1e-30, 1.0 / 3.0] {
                                let mut p = vec![v; n];
                                p.iter_mut().step_by(2).for_each(|x| *x = -*x);
                                run(
                                    w,
                                    ScaleDiv {
                                        x: &mut p,
                                        n: v,
                                        rcp: 1.0 / v,
                                        k: 1.0,
                                        m: None,
                                    },
                                );
                                assert!(p
                                    .iter()
                                    .enumerate()
                                    .all(|(j, x)| *x == if j % 2 == 0 { -1.0 } else { 1.0 }));
                            }
                            // lane-wise max
                            let mut mm = y.clone();
                            run(w, MaxInto { m: &mut mm, x: &x });
                            for j in 0..n {
                                assert_eq!(mm[j], x[j].max(y[j]));
                            }
                            // sub-centre max over three rows, ties to the lowest
                            let rows: Vec<T> = x.iter().chain(&y).chain(&x).copied().collect();
                            let norms = [1.5 as T, 2.0, 1.5];
                            let rcps: Vec<T> = norms.iter().map(|v| 1.0 / v).collect();
                            let (mut out, mut kid) = (vec![0.0 as T; n], vec![9.0 as T; n]);
                            run(
                                w,
                                SubMax {
                                    rows: &rows,
                                    norms: &norms,
                                    rcps: &rcps,
                                    k: 2.0,
                                    out: &mut out,
                                    kidx: &mut kid,
                                },
                            );
                            for j in 0..n {
                                let (a, b) = (x[j] / 1.5, y[j] / 2.0);
                                let (best, arg) = if b > a { (b, 1.0) } else { (a, 0.0) };
                                assert_eq!(
                                    (out[j], kid[j]),
                                    (best * 2.0, arg),
                                    "{w:?} n={n} submax j={j}"
                                );
                            }
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
                            }
                        }
                    }
                }

                #[test]
                fn small_batch_kernels_match_reference() {
                    for w in WIDTHS {
                        for d in [1usize, 7, 16, 33, 67] {
                            for rows in [1usize, 3, 4, 5, 8, 9, 17] {
                                for n in [1usize, 2, 3, 6, 8, 16] {
                                    small_batch_case(w, d, rows, n);
                                }
                            }
                        }
                    }
                }

                fn small_batch_case(w: Width, d: usize, rows: usize, n: usize) {
                    let seed = (d * 1000 + rows * 20 + n) as u64;
                    let x = cast(&data(rows * d, seed, 2.0));
                    let v = cast(&data(n * d, seed + 1, 1.0));
                    // forward: Pᵀ = W X̂ᵀ, every entry overwritten
                    let mut pt = vec![7.0 as T; rows * n];
                    run(
                        w,
                        SmallForward {
                            w: &x,
                            xs: &v,
                            d,
                            n,
                            pt: &mut pt,
                        },
                    );
                    for r in 0..rows {
                        for i in 0..n {
                            let want = reference::dot(
                                &back(&x[r * d..(r + 1) * d]),
                                &back(&v[i * d..(i + 1) * d]),
                            );
                            assert!(
                                close(pt[r * n + i] as f64, want, sum_tol(d), 2.0 * d as f64),
                                "{w:?} d={d} rows={rows} n={n} smallforward"
                            );
                        }
                    }
                    // backward over the rows r0.. of a G'ᵀ with two rows before
                    // them; one row of zero factors, one zero projection factor
                    let r0 = 2;
                    let mut prod = cast(&data(n * (rows + r0), seed + 2, 1.0));
                    prod[(r0 + rows / 2) * n..(r0 + rows / 2 + 1) * n].fill(0.0);
                    let mut proj = cast(&data(rows, seed + 3, 1.0));
                    proj[rows - 1] = 0.0;
                    let mut gw = vec![9.0 as T; rows * d];
                    let acc0 = cast(&data(n * d, seed + 4, 1.0));
                    let mut acc = acc0.clone();
                    let probe = run(
                        w,
                        SmallBackward {
                            w: &x,
                            proj: &proj,
                            prod: &prod,
                            r0,
                            xs: &v,
                            d,
                            n,
                            gw: &mut gw,
                            acc: &mut acc,
                            scr: &mut vec![5.0 as T; small_backward_scratch(n, d)],
                        },
                    );
                    assert_eq!(probe, 0.0, "{w:?} probe of finite results");
                    for r in 0..rows {
                        let g: Vec<f64> = (0..n).map(|i| prod[(r0 + r) * n + i] as f64).collect();
                        let q: Vec<f64> = (0..d)
                            .map(|j| (0..n).map(|i| g[i] * v[i * d + j] as f64).sum())
                            .collect();
                        let wr = back(&x[r * d..(r + 1) * d]);
                        let want = reference::project_out(&q, &wr, 1.0, proj[r] as f64);
                        let mag =
                            3.0 * n as f64 * (1.0 + (proj[r] as f64).powi(2) * 4.0 * d as f64);
                        for j in 0..d {
                            assert!(
                                close(gw[r * d + j] as f64, want[j], sum_tol(n * d), mag),
                                "{w:?} d={d} rows={rows} n={n} smallbackward dW r={r} j={j}"
                            );
                        }
                    }
                    for i in 0..n {
                        for j in 0..d {
                            let want: f64 = acc0[i * d + j] as f64
                                + (0..rows)
                                    .map(|r| prod[(r0 + r) * n + i] as f64 * x[r * d + j] as f64)
                                    .sum::<f64>();
                            assert!(
                                close(
                                    acc[i * d + j] as f64,
                                    want,
                                    sum_tol(rows + 1),
                                    2.0 * (rows + 1) as f64
                                ),
                                "{w:?} d={d} rows={rows} n={n} smallbackward dX i={i} j={j}"
                            );
                        }
                    }
                    // a non-finite weight gradient shows in the probe
                    let mut bad = prod.clone();
                    bad[r0 * n] = T::INFINITY;
                    let probe = run(
                        w,
                        SmallBackward {
                            w: &x,
                            proj: &proj,
                            prod: &bad,
                            r0,
                            xs: &v,
                            d,
                            n,
                            gw: &mut gw,
                            acc: &mut acc,
                            scr: &mut vec![5.0 as T; small_backward_scratch(n, d)],
                        },
                    );
                    assert!(!probe.is_finite(), "{w:?} d={d} rows={rows} n={n} probe");
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
                            // lane-wise exp and sum against the reference
                            let mlane = cast(&data(n, 31, 5.0))
                                .iter()
                                .map(|v| v.abs() + 40.0)
                                .collect::<Vec<T>>();
                            let mut z = x.clone();
                            let mut sum = cast(&data(n, 37, 1.0));
                            let sum0 = sum.clone();
                            run(
                                w,
                                ExpSumInto {
                                    z: &mut z,
                                    m: &mlane,
                                    sum: &mut sum,
                                },
                            );
                            for j in 0..n {
                                let want = ((x[j] - mlane[j]) as f64).exp();
                                assert!(
                                    close(z[j] as f64, want, TOL, 0.0)
                                        || (want < 1e-36 && (z[j] as f64) < 1e-36),
                                    "{w:?} n={n} expsum"
                                );
                                assert_eq!(sum[j], sum0[j] + z[j]);
                            }
                            let v = cast(&data(n, 13, 1.0));
                            let (pc, q) = (cast(&data(n, 17, 2.0)), cast(&data(n, 19, 2.0)));
                            for (case, vr) in [VRow::Zero, VRow::Uniform(0.25 as T), VRow::Row(&v)]
                                .into_iter()
                                .enumerate()
                            {
                                let vj = |j: usize| match case {
                                    0 => 0.0,
                                    1 => 0.25,
                                    _ => v[j] as f64,
                                };
                                let mut g = z.clone();
                                run(
                                    w,
                                    ColGrad {
                                        e: &mut g,
                                        pc: &pc,
                                        q: &q,
                                        v: vr,
                                        w: 1.5,
                                    },
                                );
                                let mut gap = sum0.clone();
                                run(
                                    w,
                                    GapInto {
                                        gap: &mut gap,
                                        v: vr,
                                        m: &mlane,
                                        z: &x,
                                    },
                                );
                                for j in 0..n {
                                    let want =
                                        (pc[j] as f64 * z[j] as f64 - q[j] as f64 * vj(j)) * 1.5;
                                    assert!(
                                        close(g[j] as f64, want, TOL * 4.0, 8.0),
                                        "{w:?} n={n} colgrad"
                                    );
                                    let wantg =
                                        sum0[j] as f64 + vj(j) * (mlane[j] as f64 - x[j] as f64);
                                    assert!(
                                        close(gap[j] as f64, wantg, TOL * 4.0, 60.0),
                                        "{w:?} n={n} gap"
                                    );
                                }
                            }
                            // a class's gradient to its arg-max sub-centre only
                            let kid: Vec<T> = (0..n).map(|j| (j % 3) as T).collect();
                            for jj in 0..3 {
                                let mut out = vec![7.0 as T; n];
                                run(
                                    w,
                                    Expand {
                                        out: &mut out,
                                        g: &v,
                                        kidx: &kid,
                                        j: jj as T,
                                        w: 2.0,
                                    },
                                );
                                for j in 0..n {
                                    assert_eq!(out[j], if j % 3 == jj { v[j] * 2.0 } else { 0.0 });
                                }
                            }
                        }
                    }
                }
            }
        };
    }
    per_type!(f32_kernels, f32, 3e-7);
    per_type!(f64_kernels, f64, 5e-16);
}
