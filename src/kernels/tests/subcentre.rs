//! Sub-centres: the maximum over a class's sub-centres (ties to the lowest)
//! and the gradient handed to the arg-max one.

use super::{back, both, cast, data, lengths, run, Elem, WIDTHS};
use crate::kernels::reference;
use crate::kernels::subcentre::{Expand, SubcentreMax};

both!(subcentre_max, expand);

/// K = 1; K = 3 with rows x, y, x and norms 1.5, 2, 1.5 (the first and the
/// last always tie: the first must win); K = 4 of random rows and norms.
fn subcentre_max<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let x = data(n, 3 + n as u64, 2.0);
            let y = data(n, 5 + n as u64, 3.0);
            let cases: [(Vec<f64>, Vec<f64>); 3] = [
                (x.clone(), vec![1.5]),
                ([&x[..], &y, &x].concat(), vec![1.5, 2.0, 1.5]),
                (data(4 * n, 7 + n as u64, 2.0), vec![0.9, 1.7, 1.1, 2.3]),
            ];
            for (rows, norms) in cases {
                let (rows, norms): (Vec<T>, Vec<T>) = (cast(&rows), cast(&norms));
                let rcps: Vec<T> = norms.iter().map(|&v| T::ONE / v).collect();
                let k = T::of(2.0);
                let (mut out, mut kidx) = (vec![T::ZERO; n], vec![T::of(9.0); n]);
                run(
                    w,
                    SubcentreMax {
                        rows: &rows,
                        norms: &norms,
                        rcps: &rcps,
                        k,
                        out: &mut out,
                        kidx: &mut kidx,
                    },
                );
                let (want, arg) =
                    reference::subcentre_max(&back(&rows), &back(&norms), k.f(), |v| T::of(v).f());
                let kk = norms.len();
                for j in 0..n {
                    assert_eq!(
                        (out[j].f(), kidx[j].f()),
                        (want[j], arg[j] as f64),
                        "{w:?} n={n} K={kk} j={j} subcentre max"
                    );
                }
            }
        }
    }
}

fn expand<T: Elem>() {
    for w in WIDTHS {
        for n in lengths() {
            let g: Vec<T> = cast(&data(n, 13, 1.0));
            let kid: Vec<usize> = (0..n).map(|j| j % 3).collect();
            let kidx: Vec<T> = kid.iter().map(|&k| T::of(k as f64)).collect();
            let gw = T::of(2.0);
            for jj in 0..3 {
                let mut out = vec![T::of(7.0); n];
                run(
                    w,
                    Expand {
                        out: &mut out,
                        g: &g,
                        kidx: &kidx,
                        j: T::of(jj as f64),
                        w: gw,
                    },
                );
                let want: Vec<T> = cast(&reference::expand(&back(&g), &kid, jj, gw.f()));
                assert_eq!(out, want, "{w:?} n={n} sub-centre {jj}");
            }
        }
    }
}
