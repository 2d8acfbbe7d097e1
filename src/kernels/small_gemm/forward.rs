//! The small-batch forward `Pᵀ = W X̂ᵀ` in register blocks.

use super::{lanes, Prefetch};
use crate::real::Real;
use pulp::{Simd, WithSimd};

/// Weight rows per register block in [`SmallForward`] at N = 1: eight
/// independent accumulator chains keep both FMA units busy.
const FWD_ROWS: usize = 8;

/// The small-batch forward over a block of weight rows: `pt[r·n + i] =
/// w_r · x̂_i` (Pᵀ), one dispatch for the block.
///
/// A small product in register blocks, like a GEMM micro-kernel without
/// packing: at N = 1, eight rows against the sample (eight accumulator
/// chains); otherwise four rows against four samples at a time, 16
/// accumulators fed by eight loads per step (the rest of the samples one by
/// one). W is streamed once; a block's rows stay in L1 while they meet every
/// sample.
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
