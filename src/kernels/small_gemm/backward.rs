//! The small-batch fused backward: ∂W rows (projected against W) and ∂X̂ in
//! one sweep over W.

use super::{lanes, Prefetch};
use crate::real::Real;
use pulp::{Simd, WithSimd};

/// Weight rows per register block in [`SmallBackward`]: each ∂X̂ register is
/// loaded and stored once per four rows instead of once per row.
const BWD_ROWS: usize = 4;

/// The small-batch backward over a block of weight rows `r0 ..`: for each
/// row, with $g_i = G'_{i r}$ read from `prod` (G'ᵀ, CK×N),
/// `gw_r = Σ_i g_i x̂_i` projected against `w_r` (factor `proj_r`, as
/// [`ProjectOut`](crate::kernels::ProjectOut) with `a = 1`), and
/// `acc_i += g_i w_r`.
///
/// Rows go in register blocks of [`BWD_ROWS`], two registers per step: for
/// each pair of register columns the block's rows are loaded once, and every
/// sample's `x̂_i` and ∂X̂ registers once for the whole block, so the ∂X̂
/// accumulators cost one load and one store per sample per block rather
/// than per row. The row sums `Σ_i g_i x̂_i` go straight into the gradient
/// rows (whose lines were fetched during the block before) with their dots
/// against `w_r` in registers; then each row is projected in place, from
/// L1. Two layouts that read more naturally were slower: an L1 scratch for
/// the sums, copied out by the projection, pushed the block's working set
/// past L1; and ∂X̂ in its natural layout puts the samples' rows 4 KiB apart
/// when D is a power of two (hence the interleaved scratch `scr`).
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
    /// The finiteness probe of the weight-gradient rows (see
    /// [`ProjectOut`](crate::kernels::ProjectOut)).
    type Output = T;
    // About 90 lines, kept whole: moving the per-sample row splits into
    // #[inline(always)] helpers (returning the arrays of slices) doubled the
    // machine code of the dispatched instances.
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
        // ∂X̂'s registers interleaved (register j of every sample side by
        // side): in the natural layout, rows a multiple of 4 KiB apart (D a
        // power of two) were measurably slower, most likely by 4K aliasing
        // between one sample's store and the next one's load
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
///
/// About 90 lines, kept whole: moving the register sweep into an
/// `#[inline(always)]` helper changed the machine code of the dispatched
/// instances (register allocation), which this innermost loop should not
/// risk without a benchmark.
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
