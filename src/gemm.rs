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

/// `dst (n×r) = x (n×d) · wᵀ` with `w` (r×d).
pub(crate) fn x_wt<T: Real>(
    dst: &mut [T],
    x: &[T],
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
    let dst = MatMut::from_row_major_slice_mut(dst, n, r);
    let x = MatRef::from_row_major_slice(x, n, d);
    let w = MatRef::from_row_major_slice(w, r, d);
    matmul(dst, Accum::Replace, x, w.transpose(), T::ONE, par);
}

/// `dst (n×d) = g (n×r) · w (r×d)`.
pub(crate) fn g_w<T: Real>(
    dst: &mut [T],
    g: &[T],
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
    let g = MatRef::from_row_major_slice(g, n, r);
    let w = MatRef::from_row_major_slice(w, r, d);
    matmul(dst, Accum::Replace, g, w, T::ONE, par);
}

/// `dst (r×d) = gᵀ · x` with `g` (n×r) and `x` (n×d).
pub(crate) fn gt_x<T: Real>(
    dst: &mut [T],
    g: &[T],
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
    let g = MatRef::from_row_major_slice(g, n, r);
    let x = MatRef::from_row_major_slice(x, n, d);
    matmul(dst, Accum::Replace, g.transpose(), x, T::ONE, par);
}
