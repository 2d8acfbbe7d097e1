//! Sanity checks of the checkers themselves, and one named regression per
//! defect the fuzzers found, each replaying the input kept in the corpus.

use crate::common::corpus::replay_file;
use crate::common::invariants::margins_file::{line_of_offset, oracle_margins_file};
use crate::common::invariants::step::is_overflow_error;
use crate::{run_adaptive, run_file, run_margin, run_step};
use arcface::{
    margin_target, parse_margins_file, AdaptiveMargins, ArcFaceHead, Batch, Error, HeadConfig,
    LossConfig, MarginConstants, MarginGrad, Margins, Reduction, Workspace,
};

/// Sanity of the test plumbing: the tolerance of `check_margin_t` is tight
/// enough to see a wrong formula (`cos(θ − m)` instead of `cos(θ + m)`).
#[test]
fn margin_checker_rejects_a_wrong_formula() {
    let c = 0.6f32;
    let k = MarginConstants::new(0.5);
    let (v, _, _) = margin_target(c, &k, false, MarginGrad::Exact);
    let wrong = ((c as f64).acos() - 0.5).cos();
    let tol = 4.0 * (f32::EPSILON as f64 / 2.0 + f64::EPSILON / 2.0) * 3.5;
    assert!((v as f64 - wrong).abs() > 1e3 * tol);
}

/// Sanity: the oracle and the parser agree on the documented examples.
#[test]
fn margins_file_oracle_matches_docs() {
    assert_eq!(
        oracle_margins_file("0.1\r\n 0.2\t\n3e-1", 3),
        Ok(vec![0.1, 0.2, 0.3])
    );
    assert_eq!(oracle_margins_file("0.1\n\n0.3\n", 3), Err(2));
    assert_eq!(
        parse_margins_file("0.1\r\n 0.2\t\n3e-1", 3).unwrap(),
        vec![0.1, 0.2, 0.3]
    );
    assert_eq!(line_of_offset(b"a\rb\r\nc\nd", 7), 4);
}

/// Sanity: an error leaves a primed workspace's results as they were.
#[test]
fn step_error_keeps_previous_results() {
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 2), 1).unwrap();
    let mut ws = Workspace::new(&head, 2);
    head.forward_backward(&Batch::new(&[1.0, 0.0], &[1]), &mut ws)
        .unwrap();
    let g = ws.grad_weight().to_vec();
    let err = head
        .forward_backward(&Batch::new(&[1.0, 0.0, 0.0, 1.0], &[1, 3]), &mut ws)
        .unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { sample: 1, .. }));
    assert_eq!(ws.grad_weight(), &g[..]);
    assert_eq!(ws.grad_features().len(), 2);
}

/// f32 `Workspace`/head results are all finite.
fn finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Found by the `margin` fuzzer: D7 accepts every finite margin, but in f32 a
/// margin beyond `f32::MAX` (≈ 3.4e38) rounds to ±∞, so `cos(θ + m)` is NaN
/// and the fallback `c − m sin m` is ±∞.
#[test]
fn regression_margin_beyond_f32_range_gives_finite_value() {
    for m in [1e39, -1e39, 1e150, f64::MAX] {
        let k = MarginConstants::new(m);
        for c in [1.0f32, 0.0, -0.99999046, -1.0] {
            for easy in [false, true] {
                for g in [MarginGrad::Exact, MarginGrad::StraightThrough] {
                    let (v, d, _) = margin_target(c, &k, easy, g);
                    assert!(
                        v.is_finite() && d.is_finite(),
                        "m = {m}, c = {c}: ({v}, {d})"
                    );
                }
            }
        }
    }
    replay_file("margin", "seed-margin-1e39-f32", run_margin);
    replay_file("margin", "seed-margin-f32-max-rounds-to-inf", run_margin);
}

/// The same through the head: scale 0 passes the scale-times-margin guard,
/// so an f32 head with margin 1e39 is built, and its loss is NaN (0 · NaN).
#[test]
fn regression_head_f32_margin_1e39_scale_0_loss_is_finite() {
    // 3.5e38 takes cos(θ + m) (threshold −0.93), 1e300 the fallback with
    // m sin m = −8.2e299; both overflow f32
    let cfg = HeadConfig::new(3, 2)
        .with_scale(0.0)
        .with_margins(Margins::PerClass(vec![3.5e38, 1e300, 0.5]));
    let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]) else {
        return; // refusing the margin is a fix too
    };
    let mut ws = Workspace::new(&head, 2);
    let x = [1.0f32, 0.5, 0.5, 1.0];
    match head.forward_backward(&Batch::new(&x, &[0, 1]), &mut ws) {
        Ok(loss) => {
            assert!(loss.is_finite(), "loss {loss}");
            assert!(finite(ws.grad_features()) && finite(ws.grad_weight()));
        }
        Err(e) => assert!(is_overflow_error(&e), "{e:?}"),
    }
    let z = head.logits_train(&x, &[0, 1]).unwrap();
    assert!(finite(&z), "{z:?}");
}

/// Found by the `adaptive_margins` fuzzer: `compute(&[0], usize::MAX)` panics with
/// "capacity overflow" (and sizes just below it abort in the allocator)
/// instead of returning an error; a bad label should be reported before
/// anything of size `num_classes` is allocated.
#[test]
fn regression_adaptive_margins_num_classes_beyond_memory_is_an_error() {
    let p = AdaptiveMargins::default();
    for nc in [usize::MAX, isize::MAX as usize, isize::MAX as usize / 8 + 1] {
        for labels in [&[0i64][..], &[-1], &[0, 7, 7]] {
            let r = std::panic::catch_unwind(|| p.compute(labels, nc));
            assert!(
                matches!(r, Ok(Err(_))),
                "compute({labels:?}, {nc}) should be an error"
            );
        }
    }
    replay_file(
        "adaptive_margins",
        "seed-num-classes-usize-max",
        run_adaptive,
    );
    replay_file(
        "adaptive_margins",
        "seed-num-classes-beyond-vec",
        run_adaptive,
    );
}

/// Found by the `margins_file` fuzzer: `load_margins_file` numbers the line of invalid
/// UTF-8 by counting `\n` only, so a file with `\r` line ends (which the
/// parser accepts, D10) gets the wrong line in the error.
#[test]
fn regression_margins_file_invalid_utf8_after_cr_names_the_right_line() {
    let path = std::env::temp_dir().join(format!("arcface-regr-{}.txt", std::process::id()));
    for (bytes, line) in [
        (&b"0.5\r\xff\n"[..], 2),
        (b"0.5\r0.25\r\n\xfe", 3),
        (b"0.5\n0.25\r\n\xfe", 3),
        (b"\r\r\r\x80", 4),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let r = arcface::load_margins_file(&path, 3);
        let _ = std::fs::remove_file(&path);
        match r {
            Err(Error::MarginsFile { line: got, .. }) => {
                assert_eq!(got, line, "{:?}", String::from_utf8_lossy(bytes))
            }
            other => panic!("{other:?}"),
        }
    }
    replay_file(
        "margins_file",
        "crash-invalid-utf8-after-cr-line-end",
        run_file,
    );
}

/// Found by the `step` fuzzer: `LossConfig::validate` checks class and loss weights
/// for finiteness in f64, but an f32 head rounds 2^128 to +∞, and the loss
/// becomes NaN (0 · ∞) or ∞ from a configuration every check accepted.
#[test]
fn regression_class_weight_beyond_f32_is_an_error_or_finite() {
    let w = [1.0f32, 0.0, 0.0, 1.0];
    for loss in [
        LossConfig::cross_entropy().with_class_weight(vec![2f64.powi(128), 1.0]),
        LossConfig::cross_entropy()
            .with_class_weight(vec![2f64.powi(128), 1.0])
            .with_loss_weight(0.0),
        LossConfig::cross_entropy().with_loss_weight(1e39),
    ] {
        let cfg = HeadConfig::new(2, 2).with_loss(loss.clone());
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &w) else {
            continue; // refusing it at construction is the fix proposed
        };
        let mut ws = Workspace::new(&head, 1);
        if let Ok(l) = head.forward_backward(&Batch::new(&[1.0, 0.5], &[0]), &mut ws) {
            assert!(
                l.is_finite() && finite(ws.grad_weight()),
                "{loss:?}: loss {l}"
            );
        }
    }
    replay_file("step", "crash-class-weight-beyond-f32", run_step);
}

/// Found by the `step` fuzzer: finite data whose loss overflows f32 (a sample weight
/// of f32::MAX times a loss weight of 4) gives `Ok(inf)`.
#[test]
fn regression_loss_overflow_is_an_error_not_inf() {
    let cfg = HeadConfig::new(2, 2).with_loss(
        LossConfig::cross_entropy()
            .with_loss_weight(4.0)
            .with_reduction(Reduction::Sum),
    );
    let head = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]).unwrap();
    let mut ws = Workspace::new(&head, 1);
    let x = [0.0f32, 1.0];
    let batch = Batch::new(&x, &[0]).with_sample_weights(&[f32::MAX]);
    match head.forward_backward(&batch, &mut ws) {
        Ok(l) => assert!(l.is_finite() && finite(ws.sample_losses()), "loss {l}"),
        Err(e) => assert!(is_overflow_error(&e), "{e:?}"),
    }
}

/// Found by the `step` fuzzer: a feature row below the 1e-12 norm epsilon has the
/// normalisation Jacobian I/1e-12; with a large (accepted) scale the true
/// gradient exceeds f32 and `forward_backward` returns `Ok` with ±∞/NaN
/// gradients. Kept input: S = 7.7e25, zero features, zero weight rows.
#[test]
fn regression_gradient_overflow_sub_eps_features_huge_scale() {
    replay_file(
        "step",
        "crash-gradient-overflow-sub-eps-features-huge-scale",
        run_step,
    );
    // the largest scale a fixed head accepts still has to give finite
    // gradients or an overflow error
    for scale in [1e30, 1e27, 1e26, 1e25, 1e20] {
        let cfg = HeadConfig::new(2, 2).with_scale(scale);
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]) else {
            continue; // refusing the scale up front is a fix too
        };
        let mut ws = Workspace::new(&head, 1);
        match head.forward_backward(&Batch::new(&[1e-20, 0.0], &[1]), &mut ws) {
            Ok(l) => assert!(
                l.is_finite() && finite(ws.grad_features()) && finite(ws.grad_weight()),
                "scale {scale}: loss {l}, grad_features {:?}",
                ws.grad_features()
            ),
            Err(e) => assert!(is_overflow_error(&e), "scale {scale}: {e:?}"),
        }
    }
}

/// Found by the `step` fuzzer: a weight row of finite entries whose L2 norm exceeds
/// f32::MAX gets norm +∞, so its cosines come out 0 (silently wrong: the
/// true cosine below is 0.894) or NaN (∞/∞). It should be refused, or right.
#[test]
fn regression_weight_row_norm_beyond_f32_max() {
    let cfg = HeadConfig::new(2, 3).with_scale(1.0);
    for row0 in [[f32::MAX, f32::MAX / 2.0, 0.0], [f32::MAX, -f32::MAX, 0.0]] {
        let w = [row0[0], row0[1], row0[2], 0.0, 1.0, 0.0];
        let Ok(head) = ArcFaceHead::<f32>::from_weight(cfg.clone(), &w) else {
            continue;
        };
        if let Ok(z) = head.logits(&[1.0, 0.0, 0.0, 1.0, -1.0, 0.5]) {
            let n0 = (row0[0] as f64).hypot(row0[1] as f64);
            let want = [row0[0] as f64 / n0, 0.0];
            assert!(finite(&z), "{z:?}");
            assert!((z[0] as f64 - want[0]).abs() < 1e-5, "{z:?} vs {want:?}");
        }
    }
    replay_file("step", "crash-weight-row-norm-beyond-f32", run_step);
}

/// The row-norm overflow for features: a row like (f32::MAX, f32::MAX) has norm +∞ and
/// is silently normalised to the zero vector.
#[test]
fn regression_feature_norm_beyond_f32_max() {
    let head = ArcFaceHead::<f32>::from_weight(
        HeadConfig::new(2, 2).with_scale(1.0),
        &[1.0, 0.0, 0.0, 1.0],
    )
    .unwrap();
    if let Ok(z) = head.logits(&[f32::MAX, f32::MAX]) {
        let c = std::f32::consts::FRAC_1_SQRT_2;
        assert!((z[0] - c).abs() < 1e-6 && (z[1] - c).abs() < 1e-6, "{z:?}");
    }
    replay_file("step", "crash-feature-norm-beyond-f32", run_step);
}

/// The row-norm overflow through training: an SGD step whose entries stay finite but whose
/// row norm overflows is accepted, and the row's cosines are then wrong. It
/// should be refused without writing (or give right cosines).
#[test]
fn regression_sgd_step_to_a_row_norm_beyond_f32() {
    let mut head = ArcFaceHead::<f32>::from_weight(
        HeadConfig::new(2, 2).with_scale(1.0),
        &[1e38, 1e38, 0.0, 1.0],
    )
    .unwrap();
    let before = head.weight().to_vec();
    let grad = [-2e38f32, -2e38, 0.0, 0.0];
    match head.sgd_step(&grad, 1.0) {
        Err(_) => assert_eq!(head.weight(), &before[..], "a refused step wrote"),
        Ok(()) => {
            let z = head.logits(&[1.0, 1.0]).unwrap();
            let c = std::f32::consts::FRAC_1_SQRT_2;
            assert!(
                (z[0] - 1.0).abs() < 1e-6 && (z[1] - c).abs() < 1e-6,
                "{z:?}"
            );
        }
    }
}

/// Found by the `step` fuzzer against the first overflow fix: an overflow
/// error must not leave a half-written workspace. With the loss check after
/// the per-sample losses are published, `sample_losses()` shows `[inf]`
/// beside the previous step's gradients; with the gradient check after the
/// backward pass, the gradients are overwritten. Either keep the previous
/// results or clear them (no losses, no feature gradients, zero weight
/// gradients).
#[test]
fn regression_overflow_error_leaves_no_partial_results() {
    replay_file(
        "step",
        "crash-overflow-error-leaves-partial-results",
        run_step,
    );
    for sw in [1e36f32, 1e37, 3e37, f32::MAX] {
        let cfg = HeadConfig::new(2, 2)
            .with_scale(30.0)
            .with_loss(LossConfig::cross_entropy().with_reduction(Reduction::Sum));
        let head = ArcFaceHead::<f32>::from_weight(cfg, &[1.0, 0.0, 0.0, 1.0]).unwrap();
        let mut ws = Workspace::new(&head, 1);
        head.forward_backward(&Batch::new(&[1.0, 0.0], &[1]), &mut ws)
            .unwrap();
        let before = (
            ws.grad_features().to_vec(),
            ws.grad_weight().to_vec(),
            ws.sample_losses().to_vec(),
        );
        let x = [0.3f32, 1.0];
        let r = head.forward_backward(&Batch::new(&x, &[0]).with_sample_weights(&[sw]), &mut ws);
        let after = (
            ws.grad_features().to_vec(),
            ws.grad_weight().to_vec(),
            ws.sample_losses().to_vec(),
        );
        match r {
            Ok(l) => assert!(l.is_finite() && finite(&after.0) && finite(&after.1)),
            Err(e) => {
                assert!(is_overflow_error(&e), "{e:?}");
                let cleared =
                    after.0.is_empty() && after.2.is_empty() && after.1.iter().all(|&g| g == 0.0);
                assert!(
                    after == before || cleared,
                    "sample weight {sw}: {e:?} left {after:?} (before: {before:?})"
                );
            }
        }
    }
}
