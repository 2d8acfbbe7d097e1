//! The softmax cross-entropy's kernels apart from the exponential: row
//! maximum, scaled division with its running maximum, lane-wise maximum,
//! and the loss and gradient terms of one class.

use super::{back, both, cast, close, data, lengths, run, Elem, WIDTHS};
use crate::kernels::reference;
use crate::kernels::softmax::{ColGrad, GapInto, MaxInto, RowMax, ScaleDiv, VRow};

both!(row_max, scale_div, max_into, gap_into_and_col_grad);

fn row_max<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x: Vec<T> = cast(&data(n, 3 + n as u64, 2.0));
            let got = run(w, RowMax { x: &x }).f();
            assert_eq!(got, reference::row_max(&back(&x)), "{w:?} n={n} max");
        }
    }
}

/// Correctly rounded divisions (Markstein's refinement), scaled by a power
/// of two: exactly the oracle's value, rounded; the fused maximum exact.
fn scale_div<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x: Vec<T> = cast(&data(n, 3 + n as u64, 2.0));
            let y: Vec<T> = cast(&data(n, 5 + n as u64, 3.0));
            let nn = T::of(y.first().map_or(1.0, |v| v.f()).abs() + 0.3);
            let k = T::of(64.0);
            let mut m = x.clone();
            run(
                w,
                ScaleDiv {
                    x: &mut m,
                    n: nn,
                    rcp: T::ONE / nn,
                    k,
                    m: None,
                },
            );
            let want: Vec<T> = cast(&reference::scale_div(&back(&x), nn.f(), k.f()));
            assert_eq!(m, want, "{w:?} n={n} division");
            let (mut m2, mut mx) = (x.clone(), y.clone());
            run(
                w,
                ScaleDiv {
                    x: &mut m2,
                    n: nn,
                    rcp: T::ONE / nn,
                    k,
                    m: Some(&mut mx),
                },
            );
            assert_eq!(m2, m, "{w:?} n={n} with the fused max");
            let want: Vec<T> = cast(&reference::max_into(&back(&y), &back(&m)));
            assert_eq!(mx, want, "{w:?} n={n} fused max");
            // exactly parallel one-dimensional vectors stay exactly ±1
            for v in [3.0, 7.0, 0.1, 1e-30, 1.0 / 3.0].map(T::of) {
                let mut p = vec![v; n];
                p.iter_mut().step_by(2).for_each(|x| *x = -*x);
                run(
                    w,
                    ScaleDiv {
                        x: &mut p,
                        n: v,
                        rcp: T::ONE / v,
                        k: T::ONE,
                        m: None,
                    },
                );
                assert!(
                    p.iter()
                        .enumerate()
                        .all(|(j, x)| x.f() == if j % 2 == 0 { -1.0 } else { 1.0 }),
                    "{w:?} n={n} ±1"
                );
            }
        }
    }
}

fn max_into<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x: Vec<T> = cast(&data(n, 3 + n as u64, 2.0));
            let y: Vec<T> = cast(&data(n, 5 + n as u64, 3.0));
            let mut m = y.clone();
            run(w, MaxInto { m: &mut m, x: &x });
            assert_eq!(
                back(&m),
                reference::max_into(&back(&y), &back(&x)),
                "{w:?} n={n}"
            );
        }
    }
}

/// Both kernels take the same optional target weights: none, one number
/// for every sample, or a row.
fn gap_into_and_col_grad<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let z: Vec<T> = cast(&data(n, 11 + n as u64, 40.0));
            let m: Vec<T> = cast(
                &data(n, 31, 5.0)
                    .iter()
                    .map(|v| v.abs() + 40.0)
                    .collect::<Vec<_>>(),
            );
            let gap0: Vec<T> = cast(&data(n, 37, 1.0));
            let e: Vec<T> = cast(&data(n, 41, 1.0).iter().map(|v| v.abs()).collect::<Vec<_>>());
            let v: Vec<T> = cast(&data(n, 13, 1.0));
            let (pc, q): (Vec<T>, Vec<T>) = (cast(&data(n, 17, 2.0)), cast(&data(n, 19, 2.0)));
            let u = T::of(0.25);
            for (vr, vf) in [
                (VRow::Zero, vec![0.0; n]),
                (VRow::Uniform(u), vec![u.f(); n]),
                (VRow::Row(&v), back(&v)),
            ] {
                let mut gap = gap0.clone();
                run(
                    w,
                    GapInto {
                        gap: &mut gap,
                        v: vr,
                        m: &m,
                        z: &z,
                    },
                );
                let want = reference::gap_into(&back(&gap0), &vf, &back(&m), &back(&z));
                let mut g = e.clone();
                let gw = T::of(1.5);
                run(
                    w,
                    ColGrad {
                        e: &mut g,
                        pc: &pc,
                        q: &q,
                        v: vr,
                        w: gw,
                    },
                );
                let wantg = reference::col_grad(&back(&e), &back(&pc), &back(&q), &vf, gw.f());
                for j in 0..n {
                    assert!(
                        close(gap[j].f(), want[j], T::TOL * 4.0, 60.0),
                        "{w:?} n={n} j={j} gap"
                    );
                    assert!(
                        close(g[j].f(), wantg[j], T::TOL * 4.0, 8.0),
                        "{w:?} n={n} j={j} colgrad"
                    );
                }
            }
        }
    }
}
