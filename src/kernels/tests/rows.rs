//! Row-major kernels: squared norms, dots, divisions and the normalisation
//! Jacobian, one row and many; the many-row kernels also bit for bit equal
//! to their one-row kernel on each row.

use super::{back, both, cast, close, data, lengths, run, sum_tol, Elem, WIDTHS};
use crate::kernels::reference;
use crate::kernels::rows::{
    DivInPlace, DivInto, DivRows, Dot, ProjectOut, ProjectRows, RowSumSq, SumSq,
};

both!(
    sumsq,
    dot,
    div_into_and_in_place,
    project_out,
    row_sumsq,
    div_rows,
    project_rows
);

/// Row widths of the many-row kernels (0: no columns at all).
const DIMS: [usize; 6] = [0, 1, 7, 16, 33, 67];
/// Rows of the many-row kernels.
const ROWS: usize = 5;

fn sumsq<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            for scale in [1.0, 1e-3, 1e15] {
                let a: Vec<T> = cast(&data(n, n as u64, scale));
                let got = run(w, SumSq { x: &a }).f();
                let want = reference::sumsq(&back(&a));
                assert!(
                    close(got, want, sum_tol::<T>(n), 0.0),
                    "{w:?} n={n} sumsq {got} {want}"
                );
            }
        }
    }
}

fn dot<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            for scale in [1.0, 1e-3, 1e15] {
                let a: Vec<T> = cast(&data(n, n as u64, scale));
                let b: Vec<T> = cast(&data(n, n as u64 + 7, 1.0));
                let (af, bf) = (back(&a), back(&b));
                let got = run(w, Dot { a: &a, b: &b }).f();
                let want = reference::dot(&af, &bf);
                let mag: f64 = af.iter().zip(&bf).map(|(x, y)| (x * y).abs()).sum();
                assert!(
                    close(got, want, sum_tol::<T>(n), mag),
                    "{w:?} n={n} dot {got} {want}"
                );
            }
        }
    }
}

/// Correctly rounded divisions: exactly the oracle's quotient, rounded.
fn div_into_and_in_place<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x: Vec<T> = cast(&data(n, 3 + n as u64, 2.0));
            for k in [T::of(3.0), T::of(0.7)] {
                let mut d = vec![T::ZERO; n];
                run(
                    w,
                    DivInto {
                        src: &x,
                        dst: &mut d,
                        k,
                    },
                );
                let want: Vec<T> = cast(&reference::div(&back(&x), k.f()));
                assert_eq!(d, want, "{w:?} n={n} divinto");
                let mut ip = x.clone();
                run(w, DivInPlace { x: &mut ip, k });
                assert_eq!(ip, d, "{w:?} n={n} divinplace");
            }
        }
    }
}

fn project_out<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x: Vec<T> = cast(&data(n, 3 + n as u64, 2.0));
            let y: Vec<T> = cast(&data(n, 5 + n as u64, 3.0));
            for (a, c) in [(1.0, 1.0), (2.5, 0.3), (3.0, 0.0)] {
                let (a, c) = (T::of(a), T::of(c));
                let mut g = y.clone();
                let probe = run(
                    w,
                    ProjectOut {
                        g: &mut g,
                        v: &x,
                        a,
                        c,
                    },
                );
                assert_eq!(probe, T::ZERO, "{w:?} n={n} probe of finite results");
                let want = reference::project_out(&back(&y), &back(&x), a.f(), c.f());
                let mag = 3.0 * a.f() * (1.0 + c.f() * c.f() * 6.0 * n as f64);
                for j in 0..n {
                    assert!(
                        close(g[j].f(), want[j], T::TOL * 8.0, mag),
                        "{w:?} n={n} project j={j}"
                    );
                }
            }
            // a non-finite result shows in the probe, wherever it lies
            for at in [0, n / 2, n.saturating_sub(1)]
                .into_iter()
                .filter(|_| n > 0)
            {
                for c in [T::ONE, T::ZERO] {
                    let mut g = y.clone();
                    g[at] = T::of(f64::INFINITY);
                    let probe = run(
                        w,
                        ProjectOut {
                            g: &mut g,
                            v: &x,
                            a: T::ONE,
                            c,
                        },
                    );
                    assert!(!probe.f().is_finite(), "{w:?} n={n} at={at} probe");
                }
            }
        }
    }
}

fn row_sumsq<T: Elem>() {
    for w in WIDTHS {
        for d in DIMS {
            let x: Vec<T> = cast(&data(ROWS * d, d as u64, 2.0));
            let mut ss = vec![T::of(7.0); ROWS];
            run(
                w,
                RowSumSq {
                    x: &x,
                    d,
                    out: &mut ss,
                },
            );
            let want = reference::row_sumsq(&back(&x), d, ROWS);
            for r in 0..ROWS {
                let row = &x[r * d..(r + 1) * d];
                assert!(
                    close(ss[r].f(), want[r], sum_tol::<T>(d), 0.0),
                    "{w:?} d={d} r={r} rowsumsq"
                );
                assert_eq!(ss[r], run(w, SumSq { x: row }), "{w:?} d={d} rowsumsq");
            }
        }
    }
}

fn div_rows<T: Elem>() {
    for w in WIDTHS {
        for d in DIMS {
            let x: Vec<T> = cast(&data(ROWS * d, d as u64, 2.0));
            let k: Vec<T> = cast(&data(ROWS, 5, 3.0));
            let mut dv = vec![T::ZERO; ROWS * d];
            run(
                w,
                DivRows {
                    src: &x,
                    dst: &mut dv,
                    d,
                    k: &k,
                },
            );
            let want: Vec<T> = cast(&reference::div_rows(&back(&x), d, &back(&k)));
            assert_eq!(dv, want, "{w:?} d={d} divrows");
            for r in 0..ROWS {
                let mut one = vec![T::ZERO; d];
                run(
                    w,
                    DivInto {
                        src: &x[r * d..(r + 1) * d],
                        dst: &mut one,
                        k: k[r],
                    },
                );
                assert_eq!(&dv[r * d..(r + 1) * d], &one[..], "{w:?} d={d} divrows");
            }
        }
    }
}

fn project_rows<T: Elem>() {
    for w in WIDTHS {
        for d in DIMS {
            let x: Vec<T> = cast(&data(ROWS * d, d as u64, 2.0));
            let v: Vec<T> = cast(&data(ROWS * d, 3 + d as u64, 1.0));
            let k: Vec<T> = cast(&data(ROWS, 5, 3.0));
            for a in [Some(&k[..]), None] {
                let mut pg = x.clone();
                let probe = run(
                    w,
                    ProjectRows {
                        g: &mut pg,
                        v: &v,
                        d,
                        a,
                        c: &k,
                    },
                );
                assert_eq!(probe, T::ZERO, "{w:?} d={d} probe of finite results");
                let af = a.map(back);
                let want =
                    reference::project_rows(&back(&x), &back(&v), d, af.as_deref(), &back(&k));
                for r in 0..ROWS {
                    let ar = a.map_or(T::ONE, |a| a[r]);
                    // |g| ≤ 2, |v| ≤ 1: the projected term is at most c²·2d
                    let mag = ar.f().abs() * (2.0 + k[r].f() * k[r].f() * 2.0 * d as f64);
                    for j in 0..d {
                        assert!(
                            close(
                                pg[r * d + j].f(),
                                want[r * d + j],
                                2.0 * sum_tol::<T>(d),
                                mag
                            ),
                            "{w:?} d={d} r={r} j={j} projectrows"
                        );
                    }
                    let mut g = x[r * d..(r + 1) * d].to_vec();
                    run(
                        w,
                        ProjectOut {
                            g: &mut g,
                            v: &v[r * d..(r + 1) * d],
                            a: ar,
                            c: k[r],
                        },
                    );
                    assert_eq!(&pg[r * d..(r + 1) * d], &g[..], "{w:?} d={d} projectrows");
                }
            }
        }
    }
}
