//! Property tests of the analytic backward pass.
//!
//! * f64: the analytic gradients against central finite differences of the
//!   f64 loss, over random small configurations (K 1–4, D 1–70, C 1–20,
//!   N 1–16, both margin modes, every loss option).
//! * f32 against f64 on the same inputs, with FORMAT.md's row floors.
//!
//! Finite differences need a smooth neighbourhood: configurations with a
//! target cosine within 1e-4 of its branch boundary (the threshold, or 0 in
//! easy mode), a sub-centre or class maximum within 1e-4 of a tie, or a
//! cosine within 1e-3 of ±1 are rejected (`prop_assume!`), as the golden
//! generator does.

use arcface::{
    ArcFaceHead, Batch, HeadConfig, LabelSmooth, LossConfig, MarginGrad, Margins, Real, Reduction,
    SmoothMode, Workspace,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    c: usize,
    k: usize,
    d: usize,
    n: usize,
    scale: f64,
    easy: bool,
    margins: Vec<f64>,
    x: Vec<f64>,
    w: Vec<f64>,
    labels: Vec<i64>,
    soft: Option<Vec<f64>>,
    sample_w: Option<Vec<f64>>,
    loss: LossConfig,
}

fn loss_strategy(c: usize) -> impl Strategy<Value = LossConfig> {
    (
        0.25f64..3.0,
        prop::option::of(prop::collection::vec(0.1f64..2.0, c)),
        prop_oneof![
            Just(Reduction::Mean),
            Just(Reduction::Sum),
            Just(Reduction::None)
        ],
        prop::option::of((0.0f64..0.6, any::<bool>())),
    )
        .prop_map(|(lw, cw, red, ls)| {
            let mut l = LossConfig::cross_entropy()
                .with_loss_weight(lw)
                .with_reduction(red);
            l.class_weight = cw;
            l.label_smooth = ls.map(|(e, classy)| LabelSmooth {
                label_smooth_val: e,
                mode: if classy {
                    SmoothMode::ClassyVision
                } else {
                    SmoothMode::Original
                },
                num_classes: None,
            });
            l
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..=20, 1usize..=4, 1usize..=70, 1usize..=40).prop_flat_map(|(c, k, d, n)| {
        (
            (
                1.0f64..64.0,
                any::<bool>(),
                prop::collection::vec(-0.3f64..1.4, c),
            ),
            prop::collection::vec(-1.0f64..1.0, n * d),
            prop::collection::vec(-1.0f64..1.0, c * k * d),
            prop::collection::vec(0..c as i64, n),
            prop::option::of(prop::collection::vec(0.0f64..1.0, n * c)),
            prop::option::of(prop::collection::vec(0.2f64..2.0, n)),
            loss_strategy(c),
        )
            .prop_map(
                move |((scale, easy, margins), x, w, labels, soft, sample_w, loss)| Case {
                    c,
                    k,
                    d,
                    n,
                    scale,
                    easy,
                    margins,
                    x,
                    w,
                    labels,
                    soft,
                    sample_w,
                    loss,
                },
            )
    })
}

fn config(cs: &Case, grad: MarginGrad) -> HeadConfig {
    HeadConfig::new(cs.c, cs.d)
        .with_subcenters(cs.k)
        .with_scale(cs.scale)
        .with_easy_margin(cs.easy)
        .with_margins(Margins::PerClass(cs.margins.clone()))
        .with_loss(cs.loss.clone())
        .with_margin_grad(grad)
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Runs one step in precision T; returns (loss, grad_x, grad_w) in f64.
fn step<T: Real>(cs: &Case, x: &[f64], w: &[f64], grad: MarginGrad) -> (f64, Vec<f64>, Vec<f64>) {
    let head =
        ArcFaceHead::<T>::from_weight(config(cs, grad), &cast::<T>(w)).expect("valid config");
    let xt = cast::<T>(x);
    let soft = cs.soft.as_ref().map(|s| cast::<T>(s));
    let sw = cs.sample_w.as_ref().map(|s| cast::<T>(s));
    let mut b = Batch::new(&xt, &cs.labels);
    if let Some(s) = &soft {
        b = b.with_soft_targets(s);
    }
    if let Some(s) = &sw {
        b = b.with_sample_weights(s);
    }
    let mut ws = Workspace::new(&head, cs.n);
    let loss = head.forward_backward(&b, &mut ws).expect("finite input");
    let f = |v: &[T]| v.iter().map(|g| g.to_f64()).collect::<Vec<f64>>();
    (loss.to_f64(), f(ws.grad_features()), f(ws.grad_weight()))
}

fn normalize(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|a| a / n).collect()
}

/// Rejects configurations where the loss is not smooth within the FD stencil.
fn smooth_enough(cs: &Case) -> bool {
    let wn: Vec<Vec<f64>> = cs.w.chunks(cs.d).map(normalize).collect();
    for (i, xi) in cs.x.chunks(cs.d).enumerate() {
        if xi.iter().map(|a| a * a).sum::<f64>().sqrt() < 1e-3 {
            return false;
        }
        let xh = normalize(xi);
        let mut coss = Vec::new();
        for c in 0..cs.c {
            let mut v: Vec<f64> = (0..cs.k)
                .map(|k| xh.iter().zip(&wn[c * cs.k + k]).map(|(a, b)| a * b).sum())
                .collect();
            v.sort_by(|a, b| b.partial_cmp(a).unwrap());
            if v.len() > 1 && v[0] - v[1] < 1e-4 {
                return false;
            }
            if v[0].abs() > 1.0 - 1e-3 {
                return false;
            }
            coss.push(v[0]);
        }
        let y = cs.labels[i] as usize;
        let m = cs.margins[y];
        let boundary = if cs.easy { 0.0 } else { -m.cos() };
        if (coss[y] - boundary).abs() < 1e-4 {
            return false;
        }
    }
    for wr in cs.w.chunks(cs.d) {
        if wr.iter().map(|a| a * a).sum::<f64>().sqrt() < 1e-3 {
            return false;
        }
    }
    true
}

/// A deterministic subset of coordinates to difference (all when few).
fn coords(len: usize, want: usize, salt: usize) -> Vec<usize> {
    if len <= want {
        return (0..len).collect();
    }
    (0..want)
        .map(|j| (j * 7919 + salt * 104729) % len)
        .collect()
}

fn fd_check(cs: &Case) -> Result<(), TestCaseError> {
    let (_, gx, gw) = step::<f64>(cs, &cs.x, &cs.w, MarginGrad::Exact);
    let gmax = gx.iter().chain(&gw).fold(0.0f64, |m, g| m.max(g.abs()));
    let loss_at = |x: &[f64], w: &[f64]| step::<f64>(cs, x, w, MarginGrad::Exact).0;
    let h = 1e-6;
    let tol = |an: f64| 1e-6 * gmax.max(1.0) + 1e-5 * an.abs();
    for j in coords(cs.x.len(), 24, cs.n) {
        let (mut xp, mut xm) = (cs.x.clone(), cs.x.clone());
        xp[j] += h;
        xm[j] -= h;
        let fd = (loss_at(&xp, &cs.w) - loss_at(&xm, &cs.w)) / (2.0 * h);
        prop_assert!(
            (fd - gx[j]).abs() <= tol(gx[j]),
            "d/dx[{j}]: analytic {} vs FD {fd}",
            gx[j]
        );
    }
    for j in coords(cs.w.len(), 24, cs.c) {
        let (mut wp, mut wm) = (cs.w.clone(), cs.w.clone());
        wp[j] += h;
        wm[j] -= h;
        let fd = (loss_at(&cs.x, &wp) - loss_at(&cs.x, &wm)) / (2.0 * h);
        prop_assert!(
            (fd - gw[j]).abs() <= tol(gw[j]),
            "d/dW[{j}]: analytic {} vs FD {fd}",
            gw[j]
        );
    }
    Ok(())
}

/// FORMAT.md's comparison: per row, |a − b| ≤ rtol · max(max|b_row|, floor_row).
fn rows_close(
    a: &[f64],
    b: &[f64],
    ncols: usize,
    floor: impl Fn(usize) -> f64,
    rtol: f64,
) -> Result<(), String> {
    for (r, (ra, rb)) in a.chunks(ncols).zip(b.chunks(ncols)).enumerate() {
        let scale = rb.iter().fold(floor(r), |m, v| m.max(v.abs()));
        for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
            if (x - y).abs() > rtol * scale {
                return Err(format!("[{r},{j}] {x} vs {y} (scale {scale})"));
            }
        }
    }
    Ok(())
}

fn f32_vs_f64(cs: &Case) -> Result<(), TestCaseError> {
    let (l64, gx64, gw64) = step::<f64>(cs, &cs.x, &cs.w, MarginGrad::Exact);
    let (l32, gx32, gw32) = step::<f32>(cs, &cs.x, &cs.w, MarginGrad::Exact);
    // A = loss_weight · max_i s_i Σ_c |w_c T_ic| (with smoothing, ≤ that of the raw targets + ε)
    let cw = cs
        .loss
        .class_weight
        .clone()
        .unwrap_or_else(|| vec![1.0; cs.c]);
    let cwmax = cw.iter().fold(0.0f64, |m, v| m.max(*v));
    let tmax = cs
        .soft
        .as_ref()
        .map_or(1.0, |s| {
            s.chunks(cs.c)
                .map(|r| r.iter().sum::<f64>())
                .fold(0.0, f64::max)
        })
        .max(1.0);
    let swmax = cs
        .sample_w
        .as_ref()
        .map_or(1.0, |s| s.iter().fold(0.0f64, |m, v| m.max(*v)));
    let a = cs.loss.loss_weight * cwmax * tmax * swmax;
    let an = if cs.loss.reduction == Reduction::Mean {
        a / cs.n as f64
    } else {
        a
    };
    let s = cs.scale;
    let rtol = 1e-4;
    prop_assert!(
        (l32 - l64).abs() <= rtol * l64.abs().max(s * a),
        "loss {l32} vs {l64}"
    );
    let xnorm: Vec<f64> =
        cs.x.chunks(cs.d)
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12))
            .collect();
    let wnorm: Vec<f64> =
        cs.w.chunks(cs.d)
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12))
            .collect();
    rows_close(&gx32, &gx64, cs.d, |r| s * an / xnorm[r], rtol)
        .map_err(|e| TestCaseError::fail(format!("grad_x {e}")))?;
    rows_close(
        &gw32,
        &gw64,
        cs.d,
        |r| s * an * cs.n as f64 / wnorm[r],
        rtol,
    )
    .map_err(|e| TestCaseError::fail(format!("grad_w {e}")))?;
    Ok(())
}

/// The small-batch backward (N ≤ SMALL_BATCH) and the product-based one
/// (larger N) compute the same gradients: a batch of 2·N samples with the
/// Sum reduction equals the sum of its two halves.
fn small_and_large_paths_agree(cs: &Case) -> Result<(), TestCaseError> {
    let mut cs = cs.clone();
    cs.loss.reduction = Reduction::Sum;
    cs.soft = None;
    cs.sample_w = None;
    let half = arcface::SMALL_BATCH;
    let n = 2 * half + 4;
    let d = cs.d;
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7919 % 1009) as f64 / 504.5) - 1.0)
        .collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % cs.c) as i64).collect();
    // the same conditioning as the finite-difference checks: near cos = ±1
    // the target's derivative has a factor cos θ / sin θ, so two exact
    // summation orders may differ far beyond 1e-10 (a drawn weight row
    // parallel to one of these fixed samples to 1e-9 did so)
    let whole = Case {
        n,
        x: x.clone(),
        labels: labels.clone(),
        ..cs.clone()
    };
    prop_assume!(smooth_enough(&whole));
    let run = |lo: usize, hi: usize| {
        let mut part = cs.clone();
        part.n = hi - lo;
        part.x = x[lo * d..hi * d].to_vec();
        part.labels = labels[lo..hi].to_vec();
        step::<f64>(&part, &part.x, &cs.w, MarginGrad::Exact)
    };
    let (l_all, _, gw_all) = run(0, n);
    let (l_a, _, gw_a) = run(0, half);
    let (l_b, _, gw_b) = run(half, 2 * half);
    let (l_c, _, gw_c) = run(2 * half, n);
    prop_assert!((l_all - (l_a + l_b + l_c)).abs() <= 1e-10 * l_all.abs().max(1.0));
    // FORMAT.md's row floor for weight gradients, S·A·N/‖w_r‖ (A = loss_weight ·
    // max class weight): the projection's cancellation happens at that scale
    let cwmax = cs
        .loss
        .class_weight
        .as_ref()
        .map_or(1.0, |w| w.iter().fold(0.0f64, |m, v| m.max(*v)));
    let wnorm: Vec<f64> =
        cs.w.chunks(d)
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12))
            .collect();
    let parts: Vec<f64> = (0..gw_all.len())
        .map(|j| gw_a[j] + gw_b[j] + gw_c[j])
        .collect();
    rows_close(
        &gw_all,
        &parts,
        d,
        |r| cs.scale * cs.loss.loss_weight * cwmax * n as f64 / wnorm[r],
        1e-10,
    )
    .map_err(|e| TestCaseError::fail(format!("dW {e}")))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 8192, ..ProptestConfig::default() })]

    #[test]
    fn analytic_gradients_match_finite_differences(cs in case_strategy()) {
        prop_assume!(smooth_enough(&cs));
        fd_check(&cs)?;
    }

    #[test]
    fn small_batch_backward_matches_product_backward(cs in case_strategy()) {
        small_and_large_paths_agree(&cs)?;
    }

    #[test]
    fn f32_path_matches_f64_path(cs in case_strategy()) {
        prop_assume!(smooth_enough(&cs));
        f32_vs_f64(&cs)?;
    }

    /// With every margin 0 the exact margin derivative is 1, so the
    /// straight-through mode must give the same gradients.
    #[test]
    fn straight_through_equals_exact_at_zero_margin(cs in case_strategy()) {
        let mut cs = cs;
        cs.margins.iter_mut().for_each(|m| *m = 0.0);
        prop_assume!(smooth_enough(&cs));
        let (_, gx, gw) = step::<f64>(&cs, &cs.x, &cs.w, MarginGrad::Exact);
        let (_, sx, sw) = step::<f64>(&cs, &cs.x, &cs.w, MarginGrad::StraightThrough);
        let gmax = gx.iter().chain(&gw).fold(1e-300f64, |m, g| m.max(g.abs()));
        for (a, b) in gx.iter().chain(&gw).zip(sx.iter().chain(&sw)) {
            prop_assert!((a - b).abs() <= 1e-9 * gmax, "{a} vs {b}");
        }
    }

    /// Straight-through differs from the exact derivative only in the target
    /// column's phi branch: the loss is the same and gradients stay finite.
    #[test]
    fn straight_through_keeps_the_loss(cs in case_strategy()) {
        let (l, _, _) = step::<f64>(&cs, &cs.x, &cs.w, MarginGrad::Exact);
        let (ls, sx, sw) = step::<f64>(&cs, &cs.x, &cs.w, MarginGrad::StraightThrough);
        prop_assert_eq!(l, ls);
        prop_assert!(sx.iter().chain(&sw).all(|g| g.is_finite()));
    }
}
