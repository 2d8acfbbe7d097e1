//! The three matrix products of a step, through faer. All operands are
//! row-major slices; transposes are free views.
//!
//! With more than one thread, each product is split into contiguous blocks
//! of the long (C·K) dimension ([`crate::parallel`]), one sequential faer
//! product per block: faer's own parallel split of these thin shapes is
//! slower than one thread for the ∂X̂ product (its output is only N×D), and
//! no faster for the others. The blocks of ∂X̂ are partial sums, added in
//! block order: the same thread count always gives the same bits.
//!
//! faer is reached only through [`Product`], a crate-private supertrait of
//! [`crate::Real`] implemented for `f32` and `f64`: faer's scalar traits are
//! no bound of the public `Real`.

use crate::parallel::{for_blocks, product_blocks, PerBlock, RowSplit, Rows};
use crate::real::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// The one faer call of the crate, for each element type.
pub trait Product: Sized {
    /// `dst = lhs · rhs` on the calling thread (`dst` is not read).
    fn product(dst: MatMut<'_, Self>, lhs: MatRef<'_, Self>, rhs: MatRef<'_, Self>);
}

macro_rules! product_for {
    ($t:ty) => {
        impl Product for $t {
            #[inline]
            fn product(dst: MatMut<'_, $t>, lhs: MatRef<'_, $t>, rhs: MatRef<'_, $t>) {
                matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
            }
        }
    };
}
product_for!(f32);
product_for!(f64);

/// Blocks of the `r` rows of a product with an n×d operand against an r×d
/// one.
fn split<T: Real>(n: usize, d: usize, r: usize, threads: usize) -> RowSplit {
    let flops = 2.0 * (n * d * r) as f64;
    let big_operand_bytes = r * d * core::mem::size_of::<T>();
    RowSplit::new(r, product_blocks(flops, big_operand_bytes, threads))
}

/// The number of blocks a product with an n×d operand against an r×d one
/// is split into.
pub(crate) fn blocks<T: Real>(n: usize, d: usize, r: usize, threads: usize) -> usize {
    split::<T>(n, d, r, threads).blocks()
}

/// `dst (r×a) = lhs (r×k) · rhs (k×a)`, block by block of rows.
fn row_blocks<T: Real>(
    dst: &mut [T],
    a: usize,
    lhs: &[T],
    k: usize,
    rhs: MatRef<'_, T>,
    split: &RowSplit,
) {
    for_blocks(
        split,
        Rows(dst, a),
        |b, dst| {
            let rows = b.rows.len();
            let dst = MatMut::from_row_major_slice_mut(dst, rows, a);
            let lhs = MatRef::from_row_major_slice(&lhs[b.rows.start * k..b.rows.end * k], rows, k);
            T::product(dst, lhs, rhs);
        },
        |(), ()| (),
    );
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
    let split = split::<T>(n, d, r, threads);
    row_blocks(&mut dst[..r * n], n, &w[..r * d], d, x.transpose(), &split);
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
    let split = split::<T>(n, d, r, threads);
    row_blocks(&mut dst[..r * d], d, &gt[..r * n], n, x, &split);
}

/// `dst (n×d) = gtᵀ · w` with `gt` (r×n) and `w` (r×d): ∂L/∂X̂ = G'W. Split
/// over blocks of `r` into partial sums in `partial` (blocks × n × d), as
/// many blocks as `partial` holds at most, added in block order.
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
    let nd = n * d;
    let wanted = split::<T>(n, d, r, threads).blocks();
    let split = RowSplit::new(r, wanted.min(partial.len() / nd.max(1)));
    let one = |dst: &mut [T], rows: core::ops::Range<usize>| {
        let gt = MatRef::from_row_major_slice(&gt[rows.start * n..rows.end * n], rows.len(), n);
        let w = MatRef::from_row_major_slice(&w[rows.start * d..rows.end * d], rows.len(), d);
        T::product(
            MatMut::from_row_major_slice_mut(dst, n, d),
            gt.transpose(),
            w,
        );
    };
    let dst = &mut dst[..nd];
    if split.blocks() == 1 {
        one(dst, 0..r);
        return;
    }
    let part = &mut partial[..split.blocks() * nd];
    for_blocks(
        &split,
        PerBlock(&mut *part, nd),
        |b, p| one(p, b.rows),
        |(), ()| (),
    );
    dst.copy_from_slice(&part[..nd]);
    for p in part[nd..].chunks_exact(nd) {
        for (a, b) in dst.iter_mut().zip(p) {
            *a += *b;
        }
    }
}
