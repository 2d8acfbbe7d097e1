//! Sizes that cannot be had are errors, never aborts: the head, its
//! workspaces, the optimiser state and the logits allocate with
//! `try_reserve`, and their `bytes_needed` estimates agree with the buffers
//! the documentation lists.

use arcface::{AdamW, ArcFaceHead, Error, HeadConfig, Optimizer, OptimizerConfig, Sgd, Workspace};
use std::time::Instant;

/// 10⁹ classes × 1000 sub-centres × 512 channels: about 1.8 PiB of f32,
/// beyond any machine's address space, so the refusal does not depend on
/// the host's memory or its overcommit policy.
fn impossible() -> HeadConfig {
    HeadConfig::new(1_000_000_000, 512).with_subcenters(1000)
}

#[test]
fn a_head_beyond_the_address_space_is_an_error_naming_its_size() {
    let t = Instant::now();
    let err = ArcFaceHead::<f32>::new(impossible(), 0).unwrap_err();
    match &err {
        Error::OutOfMemory { what, bytes } => {
            assert_eq!(*what, "weights");
            assert_eq!(*bytes, 1_000_000_000u128 * 1000 * 512 * 4);
        }
        e => panic!("expected OutOfMemory, got {e:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("weights") && msg.contains("PiB"), "{msg}");
    assert!(
        t.elapsed().as_secs_f64() < 5.0,
        "refused only after {:?}",
        t.elapsed()
    );
    // the same through from_weight's path is a shape error first (no such slice exists)
    let err = ArcFaceHead::<f32>::from_weight(impossible(), &[0.0; 4]).unwrap_err();
    assert!(
        matches!(err, Error::Shape { what: "weight", .. }),
        "{err:?}"
    );
}

#[test]
fn workspaces_and_logits_too_large_are_errors() {
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(1000, 16), 0).unwrap();
    for training in [true, false] {
        let ws = if training {
            Workspace::try_new(&head, usize::MAX / 64)
        } else {
            Workspace::try_inference(&head, usize::MAX / 64)
        };
        assert!(matches!(ws, Err(Error::OutOfMemory { .. })), "{ws:?}");
    }
    let ws = Workspace::try_new(&head, 8).unwrap();
    assert_eq!(ws.capacity(), 8);
}

#[test]
fn optimiser_state_too_large_is_an_error() {
    for cfg in [
        OptimizerConfig::Sgd(Sgd::default()),
        OptimizerConfig::AdamW(AdamW::default()),
    ] {
        let err = Optimizer::<f64>::with_len(cfg, usize::MAX / 4).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfMemory {
                    what: "optimiser state",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let plain = OptimizerConfig::Sgd(Sgd {
        momentum: 0.0,
        ..Sgd::default()
    });
    assert_eq!(Optimizer::<f32>::bytes_needed(&plain, 1 << 20), 0);
    assert!(Optimizer::<f32>::with_len(plain, 1 << 20).is_ok());
}

/// The estimate against the buffers the `Workspace` documentation lists,
/// written out here independently: products N·CK, weight gradient CK·D,
/// x̂ and ∂x (2ND), per-thread partial ∂x (tND) and softmax partials (4tN),
/// small-batch scratch, a dozen per-sample vectors, the class index and,
/// for K > 1, the arg-max sub-centres (CN).
#[test]
fn workspace_estimate_matches_the_documented_buffers() {
    for (n, c, k, d, threads) in [
        (256usize, 10_000usize, 1usize, 512usize, 1usize),
        (256, 10_000, 3, 512, 2),
        (8, 100_000, 1, 512, 2),
        (1, 1000, 2, 64, 1),
    ] {
        let cfg = HeadConfig::new(c, d).with_subcenters(k);
        let train = Workspace::<f32>::bytes_needed(&cfg, n, threads, true);
        let infer = Workspace::<f32>::bytes_needed(&cfg, n, threads, false);
        let (n, c, k, d, t) = (n as u128, c as u128, k as u128, d as u128, threads as u128);
        assert_eq!(train - infer, c * k * d * 4, "the weight gradient");
        let small = n.min(16);
        let floor =
            4 * (n * c * k + 2 * n * d + t * n * d + 4 * t * n + if k > 1 { c * n } else { 0 });
        let ceiling =
            floor + 4 * (2 * t * small * d + 16 * small + 12 * n) + 4 * (2 * c + 2 + n) + 4096;
        assert!(
            (floor..=ceiling).contains(&infer),
            "N {n} C {c} K {k} D {d} t {t}: {infer} not in [{floor}, {ceiling}]"
        );
    }
}

#[test]
fn head_estimate_covers_the_weights_and_per_class_state() {
    let cfg = HeadConfig::new(1000, 64).with_subcenters(3);
    let bytes = ArcFaceHead::<f64>::bytes_needed(&cfg);
    let weights = 1000 * 3 * 64 * 8;
    assert!(bytes >= weights + 1000 * 3 * 3 * 8 + 1000 * 8, "{bytes}");
    assert!(
        bytes <= weights + 1000 * 3 * 3 * 8 + 1000 * 8 * 8,
        "{bytes}"
    );
}
