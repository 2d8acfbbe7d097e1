//! The exponentials: the vector `exp`'s error bound on a dense sweep of its
//! domain, and the two kernels built on it.

use super::{back, both, cast, close, data, lengths, run, sum_tol, Elem, WIDTHS};
use crate::kernels::exp::{ExpShiftSum, ExpSumInto};
use crate::kernels::reference;

both!(exp_error_bound, exp_shift_sum, exp_sum_into);

/// Where `exp` clamps its argument: −87 in f32, −708 in f64.
fn clamp<T: Elem>() -> f64 {
    if core::mem::size_of::<T>() == 4 {
        -87.0
    } else {
        -708.0
    }
}

/// The bound documented in `kernels::exp`: relative error below `T::TOL`
/// from the clamp up to 0, and below the clamp no more than `exp(clamp)`.
fn exp_error_bound<T: Elem>() {
    let lo = clamp::<T>();
    // a dense grid from below the clamp to 0, the clamp itself, its
    // neighbours, and arguments far below it
    let mut xs: Vec<f64> = (0..=400_000)
        .map(|i| (lo - 5.0) * (i as f64 / 400_000.0))
        .collect();
    xs.extend([lo, lo - 1e-3, lo + 1e-3, -0.0, -1e-30, -1e30, f64::MIN]);
    let x: Vec<T> = cast(&xs);
    let top = lo.exp() * (1.0 + T::TOL);
    for w in WIDTHS {
        let mut e = x.clone();
        run(
            w,
            ExpShiftSum {
                x: &mut e,
                shift: T::ZERO,
            },
        );
        let mut worst = 0.0f64;
        for (&xj, &ej) in x.iter().zip(&e) {
            let (xj, ej) = (xj.f(), ej.f());
            if xj >= lo {
                let want = xj.exp();
                let err = (ej - want).abs() / want;
                worst = worst.max(err);
                assert!(
                    err <= T::TOL,
                    "{w:?} exp({xj}) = {ej}, want {want}: {err:e}"
                );
            } else {
                assert!(
                    (0.0..=top).contains(&ej),
                    "{w:?} exp({xj}) = {ej} below the clamp"
                );
            }
        }
        assert!(worst > 0.0, "{w:?} the sweep measured nothing");
    }
}

fn exp_shift_sum<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let mut x: Vec<T> = cast(&data(n, 11 + n as u64, 40.0));
            if n > 3 {
                x[1] = T::of(-1e30);
                x[2] = T::ZERO;
                x[3] = T::of(-800.0);
            }
            let shift = T::of(40.0);
            // the oracle sees the same rounded argument x − shift
            let diffs: Vec<f64> = x.iter().map(|&v| (v - shift).f()).collect();
            let (want, wsum) = reference::exp_shift(&diffs, 0.0);
            let mut e = x.clone();
            let sum = run(w, ExpShiftSum { x: &mut e, shift }).f();
            for j in 0..n {
                assert!(
                    close(e[j].f(), want[j], T::TOL, 0.0) || (want[j] < 1e-36 && e[j].f() < 1e-36),
                    "{w:?} n={n} exp({}) = {:?} want {}",
                    diffs[j],
                    e[j],
                    want[j]
                );
            }
            assert!(close(sum, wsum, sum_tol::<T>(n), 0.0), "{w:?} n={n} sum");
        }
    }
}

/// The exponentials against the oracle; the sums exactly the old sums plus
/// the new exponentials.
fn exp_sum_into<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let z0: Vec<T> = cast(&data(n, 11 + n as u64, 40.0));
            let m: Vec<T> = cast(
                &data(n, 31, 5.0)
                    .iter()
                    .map(|v| v.abs() + 40.0)
                    .collect::<Vec<_>>(),
            );
            let sum0: Vec<T> = cast(&data(n, 37, 1.0));
            let (mut z, mut sum) = (z0.clone(), sum0.clone());
            run(
                w,
                ExpSumInto {
                    z: &mut z,
                    m: &m,
                    sum: &mut sum,
                },
            );
            // the oracle sees the same rounded argument z − m
            let diffs: Vec<f64> = z0.iter().zip(&m).map(|(&z, &m)| (z - m).f()).collect();
            let (want, wsum) = reference::exp_sum_into(&diffs, &vec![0.0; n], &back(&sum0));
            for j in 0..n {
                assert!(
                    close(z[j].f(), want[j], T::TOL, 0.0) || (want[j] < 1e-36 && z[j].f() < 1e-36),
                    "{w:?} n={n} j={j} expsum"
                );
                assert_eq!(sum[j], sum0[j] + z[j], "{w:?} n={n} j={j} sum");
                assert!(
                    close(sum[j].f(), wsum[j], 2.0 * T::TOL, 1.0),
                    "{w:?} n={n} j={j} sum"
                );
            }
        }
    }
}
