//! The three matrix products of a step, through faer. All operands are
//! row-major slices; transposes are free views.

use crate::real::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// Products below this many flops run on one thread: faer's parallel split
/// costs more than it saves there (see `notes/perf-anchors.md`)...
pub(crate) const PAR_MIN_FLOPS: f64 = 48e6;
/// ...unless they stream a large operand: a matrix-vector product is bound by
/// memory bandwidth, which a second core does raise.
pub(crate) const PAR_MIN_BYTES: usize = 4 << 20;

pub(crate) fn par_for(flops: f64, big_operand_bytes: usize, threads: usize) -> Par {
    if threads > 1 && (flops >= PAR_MIN_FLOPS || big_operand_bytes >= PAR_MIN_BYTES) {
        Par::rayon(threads)
    } else {
        Par::Seq
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
    let par = par_for(
        2.0 * (n * d * r) as f64,
        r * d * core::mem::size_of::<T>(),
        threads,
    );
    let dst = MatMut::from_row_major_slice_mut(dst, r, n);
    let w = MatRef::from_row_major_slice(w, r, d);
    let x = MatRef::from_row_major_slice(x, n, d);
    matmul(dst, Accum::Replace, w, x.transpose(), T::ONE, par);
}

/// `dst (n×d) = gtᵀ · w` with `gt` (r×n) and `w` (r×d): ∂L/∂X̂ = G'W.
pub(crate) fn gt_w<T: Real>(
    dst: &mut [T],
    gt: &[T],
    w: &[T],
    n: usize,
    d: usize,
    r: usize,
    threads: usize,
) {
    let par = par_for(
        2.0 * (n * d * r) as f64,
        r * d * core::mem::size_of::<T>(),
        threads,
    );
    let dst = MatMut::from_row_major_slice_mut(dst, n, d);
    let gt = MatRef::from_row_major_slice(gt, r, n);
    let w = MatRef::from_row_major_slice(w, r, d);
    matmul(dst, Accum::Replace, gt.transpose(), w, T::ONE, par);
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
    let par = par_for(
        2.0 * (n * d * r) as f64,
        r * d * core::mem::size_of::<T>(),
        threads,
    );
    let dst = MatMut::from_row_major_slice_mut(dst, r, d);
    let gt = MatRef::from_row_major_slice(gt, r, n);
    let x = MatRef::from_row_major_slice(x, n, d);
    matmul(dst, Accum::Replace, gt, x, T::ONE, par);
}
