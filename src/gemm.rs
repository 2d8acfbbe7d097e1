//! The three matrix products of a step, through faer. All operands are
//! row-major slices; transposes are free views.
//!
//! With more than one thread, each product is split by hand into contiguous
//! blocks of the long (C·K) dimension, one sequential faer product per
//! thread: faer's own parallel split of these thin shapes is slower than one
//! thread for the ∂X̂ product (its output is only N×D), and no faster for the
//! others (measured with `examples/bench_step.rs`). The blocks of ∂X̂ are
//! partial sums, added in block order: the same thread count always gives
//! the same bits.

use crate::real::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Below [`PAR_MIN_FLOPS`], the two backward products run side by side on
/// two threads from this many flops each (below it, waking a thread costs
/// more than it saves: at (32, 128, 500), 4 MFLOP each, the step took twice
/// as long; at (64, 128, 1000), 16 MFLOP each, 7 % less).
pub(crate) const OVERLAP_MIN_FLOPS: f64 = 10e6;

/// Products below this many flops run on one thread...
pub(crate) const PAR_MIN_FLOPS: f64 = 48e6;
/// ...unless they stream a large operand (memory-bound products).
pub(crate) const PAR_MIN_BYTES: usize = 4 << 20;

/// How many blocks to split a product over `r` rows into.
pub(crate) fn blocks_for(flops: f64, big_operand_bytes: usize, r: usize, threads: usize) -> usize {
    if threads > 1 && (flops >= PAR_MIN_FLOPS || big_operand_bytes >= PAR_MIN_BYTES) {
        threads.min(r.max(1))
    } else {
        1
    }
}

pub(crate) fn blocks<T: Real>(n: usize, d: usize, r: usize, threads: usize) -> usize {
    blocks_for(
        2.0 * (n * d * r) as f64,
        r * d * core::mem::size_of::<T>(),
        r,
        threads,
    )
}

/// `dst (r×a) = lhs (r×k) · rhs (k×a)`, split into `blocks` contiguous
/// blocks of rows, one sequential product each.
fn row_blocks<T: Real>(
    dst: &mut [T],
    a: usize,
    lhs: &[T],
    k: usize,
    rhs: MatRef<'_, T>,
    r: usize,
    blocks: usize,
) {
    let one = |dst: &mut [T], lhs: &[T]| {
        let rows = lhs.len() / k.max(1);
        let dst = MatMut::from_row_major_slice_mut(dst, rows, a);
        let lhs = MatRef::from_row_major_slice(lhs, rows, k);
        matmul(dst, Accum::Replace, lhs, rhs, T::ONE, Par::Seq);
    };
    if blocks > 1 {
        let rows = r.div_ceil(blocks);
        dst[..r * a]
            .par_chunks_mut(rows * a)
            .zip(lhs[..r * k].par_chunks(rows * k))
            .for_each(|(o, l)| one(o, l));
    } else {
        one(&mut dst[..r * a], &lhs[..r * k]);
    }
}

/// `dst (r×n) = w (r×d) · xᵀ` with `x` (n×d): the forward products,
/// class-major (Pᵀ).
pub(crate) fn w_xt<T: Real>(
    dst: &mut [T],
    w: &[T],
    x: &[T],
    n: usize,
    d: usize,
    r: usize,
    threads: usize,
) {
    let x = MatRef::from_row_major_slice(x, n, d);
    row_blocks(
        dst,
        n,
        w,
        d,
        x.transpose(),
        r,
        blocks::<T>(n, d, r, threads),
    );
}

/// `dst (r×d) = gt · x` with `gt` (r×n) and `x` (n×d): G'ᵀX̂.
pub(crate) fn g_x<T: Real>(
    dst: &mut [T],
    gt: &[T],
    x: &[T],
    n: usize,
    d: usize,
    r: usize,
    threads: usize,
) {
    let x = MatRef::from_row_major_slice(x, n, d);
    row_blocks(dst, d, gt, n, x, r, blocks::<T>(n, d, r, threads));
}

/// `dst (n×d) = gtᵀ · w` with `gt` (r×n) and `w` (r×d): ∂L/∂X̂ = G'W. Split
/// over blocks of `r` into partial sums in `partial` (blocks × n × d).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gt_w<T: Real>(
    dst: &mut [T],
    gt: &[T],
    w: &[T],
    partial: &mut [T],
    n: usize,
    d: usize,
    r: usize,
    threads: usize,
) {
    let one = |dst: &mut [T], gt: &[T], w: &[T]| {
        let rows = w.len() / d.max(1);
        let dst = MatMut::from_row_major_slice_mut(dst, n, d);
        let gt = MatRef::from_row_major_slice(gt, rows, n);
        let w = MatRef::from_row_major_slice(w, rows, d);
        matmul(dst, Accum::Replace, gt.transpose(), w, T::ONE, Par::Seq);
    };
    let b = blocks::<T>(n, d, r, threads)
        .min(partial.len() / (n * d).max(1))
        .max(1);
    if b > 1 {
        let rows = r.div_ceil(b);
        let part = &mut partial[..b * n * d];
        part.par_chunks_mut(n * d)
            .zip(
                gt[..r * n]
                    .par_chunks(rows * n)
                    .zip(w[..r * d].par_chunks(rows * d)),
            )
            .for_each(|(o, (g, w))| one(o, g, w));
        let dst = &mut dst[..n * d];
        dst.copy_from_slice(&part[..n * d]);
        for p in part[n * d..].chunks_exact(n * d) {
            for (a, b) in dst.iter_mut().zip(p) {
                *a += *b;
            }
        }
    } else {
        one(&mut dst[..n * d], &gt[..r * n], &w[..r * d]);
    }
}
