//! The small-batch forward and backward over every register-block shape:
//! whole and partial blocks of rows, one sample and groups of samples, rows
//! with and without a scalar tail.

use super::{back, both, cast, close, data, run, sum_tol, Elem, Width, WIDTHS};
use crate::kernels::reference;
use crate::kernels::small_gemm::{small_backward_scratch, SmallBackward, SmallForward};

both!(small_forward, small_backward, small_backward_probe);

const DIMS: [usize; 5] = [1, 7, 16, 33, 67];
const ROWS: [usize; 7] = [1, 3, 4, 5, 8, 9, 17];
const SAMPLES: [usize; 6] = [1, 2, 3, 6, 8, 16];

/// Every (width, d, rows, n) of the grid, with a seed of its own.
fn grid(mut case: impl FnMut(Width, usize, usize, usize, u64)) {
    for w in WIDTHS {
        for d in DIMS {
            for rows in ROWS {
                for n in SAMPLES {
                    case(w, d, rows, n, (d * 1000 + rows * 20 + n) as u64);
                }
            }
        }
    }
}

/// Pᵀ = W X̂ᵀ, every entry overwritten.
fn small_forward<T: Elem>() {
    grid(|w, d, rows, n, seed| {
        let x: Vec<T> = cast(&data(rows * d, seed, 2.0));
        let v: Vec<T> = cast(&data(n * d, seed + 1, 1.0));
        let mut pt = vec![T::of(7.0); rows * n];
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
        let want = reference::small_forward(&back(&x), &back(&v), d, n);
        for (e, (&got, want)) in pt.iter().zip(&want).enumerate() {
            assert!(
                close(got.f(), *want, sum_tol::<T>(d), 2.0 * d as f64),
                "{w:?} d={d} rows={rows} n={n} entry {e} smallforward"
            );
        }
    });
}

/// The backward over rows `R0 ..` of a G'ᵀ with rows before them.
const R0: usize = 2;

/// The inputs of one backward case: weight rows `x`, samples `v`, G'ᵀ in
/// `prod` (one row of zero factors), projection factors `proj` (the last
/// zero), and the ∂X̂ accumulators' starting values `acc0`.
struct BackwardCase<T> {
    x: Vec<T>,
    v: Vec<T>,
    prod: Vec<T>,
    proj: Vec<T>,
    acc0: Vec<T>,
}

impl<T: Elem> BackwardCase<T> {
    fn new(d: usize, rows: usize, n: usize, seed: u64) -> Self {
        let mut prod: Vec<T> = cast(&data(n * (rows + R0), seed + 2, 1.0));
        prod[(R0 + rows / 2) * n..(R0 + rows / 2 + 1) * n].fill(T::ZERO);
        let mut proj: Vec<T> = cast(&data(rows, seed + 3, 1.0));
        proj[rows - 1] = T::ZERO;
        Self {
            x: cast(&data(rows * d, seed, 2.0)),
            v: cast(&data(n * d, seed + 1, 1.0)),
            prod,
            proj,
            acc0: cast(&data(n * d, seed + 4, 1.0)),
        }
    }

    /// The kernel's probe, ∂W rows and ∂X̂ accumulators, with G'ᵀ `prod`
    /// and every output buffer filled with junk first.
    fn run(&self, w: Width, d: usize, n: usize, prod: &[T]) -> (T, Vec<T>, Vec<T>) {
        let mut gw = vec![T::of(9.0); self.x.len()];
        let mut acc = self.acc0.clone();
        let probe = run(
            w,
            SmallBackward {
                w: &self.x,
                proj: &self.proj,
                prod,
                r0: R0,
                xs: &self.v,
                d,
                n,
                gw: &mut gw,
                acc: &mut acc,
                scr: &mut vec![T::of(5.0); small_backward_scratch(n, d)],
            },
        );
        (probe, gw, acc)
    }
}

/// ∂W rows and ∂X̂ against the oracle, and a zero probe for finite results.
fn small_backward<T: Elem>() {
    grid(|w, d, rows, n, seed| {
        let c = BackwardCase::<T>::new(d, rows, n, seed);
        let (probe, gw, acc) = c.run(w, d, n, &c.prod);
        assert_eq!(probe, T::ZERO, "{w:?} probe of finite results");
        let (want_gw, want_acc) = reference::small_backward(
            &back(&c.x),
            &back(&c.proj),
            &back(&c.prod[R0 * n..]),
            &back(&c.v),
            d,
            n,
            &back(&c.acc0),
        );
        for r in 0..rows {
            let mag = 3.0 * n as f64 * (1.0 + c.proj[r].f().powi(2) * 4.0 * d as f64);
            for j in 0..d {
                assert!(
                    close(
                        gw[r * d + j].f(),
                        want_gw[r * d + j],
                        sum_tol::<T>(n * d),
                        mag
                    ),
                    "{w:?} d={d} rows={rows} n={n} smallbackward dW r={r} j={j}"
                );
            }
        }
        for (ij, (&got, want)) in acc.iter().zip(&want_acc).enumerate() {
            assert!(
                close(
                    got.f(),
                    *want,
                    sum_tol::<T>(rows + 1),
                    2.0 * (rows + 1) as f64
                ),
                "{w:?} d={d} rows={rows} n={n} smallbackward dX {ij}"
            );
        }
    });
}

/// A non-finite factor shows in the probe.
fn small_backward_probe<T: Elem>() {
    grid(|w, d, rows, n, seed| {
        let c = BackwardCase::<T>::new(d, rows, n, seed);
        let mut bad = c.prod.clone();
        bad[R0 * n] = T::of(f64::INFINITY);
        let (probe, _, _) = c.run(w, d, n, &bad);
        assert!(
            !probe.f().is_finite(),
            "{w:?} d={d} rows={rows} n={n} probe"
        );
    });
}
