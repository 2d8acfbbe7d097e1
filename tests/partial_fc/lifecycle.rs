//! The class lifecycle under sampling: retired classes are never kept and
//! the kept count is counted over the live classes; frozen classes take
//! part in the softmax but their rows (and momentum) never move, with any
//! change of the retired or frozen set between steps — checked against the
//! dense step and the dense optimiser, which implement the lifecycle
//! separately.

use super::rel_diff;
use arcface::{
    AdamW, ArcFaceHead, Batch, Error, HeadConfig, LabelSmooth, LossConfig, LrSchedule, LrScheduler,
    Optimizer, OptimizerConfig, PartialFc, Real, Sgd, SmoothMode, SplitMix64, Workspace,
};

#[test]
fn retired_classes_are_never_kept_and_the_target_counts_live_classes() {
    let (c, d, n) = (20, 5, 3);
    let mut head = ArcFaceHead::<f64>::new(HeadConfig::new(c, d), 1).unwrap();
    let retired = [0usize, 4, 7, 12, 19];
    head.retire(&retired).unwrap();
    let mut pfc = PartialFc::new(&head, 0.75, n, 2).unwrap();
    let mut rng = SplitMix64::new(3);
    let live: Vec<usize> = (0..c).filter(|cl| !retired.contains(cl)).collect();
    for step in 0..40 {
        let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
        let y: Vec<i64> = (0..n).map(|_| live[rng.below(live.len())] as i64).collect();
        let s = pfc
            .forward_backward(&head, &Batch::new(&x, &y), step)
            .unwrap();
        // ⌈0.75 · 15⌉ = 12 of the 15 live classes, not ⌈0.75 · 20⌉ = 15
        assert_eq!(s.kept, 12);
        assert!(pfc.kept().iter().all(|&k| !head.is_retired(k as usize)));
    }
    let x = vec![0.5; n * d];
    match pfc.forward_backward(&head, &Batch::new(&x, &[1, 7, 2]), 0) {
        Err(Error::RetiredLabel {
            sample: 1,
            class: 7,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn keeping_every_live_class_is_the_dense_step_of_the_retiring_head() {
    let (c, k, d, n) = (16, 2, 6, 4);
    let loss = LossConfig {
        label_smooth: Some(LabelSmooth {
            label_smooth_val: 0.1,
            mode: SmoothMode::Original,
            num_classes: Some(c),
        }),
        ..LossConfig::cross_entropy()
    };
    let cfg = HeadConfig::new(c, d).with_subcenters(k).with_loss(loss);
    let mut head = ArcFaceHead::<f64>::new(cfg, 4).unwrap();
    head.retire(&[2, 3, 11]).unwrap();
    head.set_trainable_classes(Some(&[0, 1, 5, 6, 9])).unwrap();
    let mut pfc = PartialFc::new(&head, 1.0, n, 0).unwrap();
    let mut ws = Workspace::new(&head, n);
    let mut rng = SplitMix64::new(8);
    let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
    let y = [0i64, 5, 13, 5];
    let s = pfc.forward_backward(&head, &Batch::new(&x, &y), 0).unwrap();
    assert_eq!(s.kept, 13);
    // the dense step masks the retired classes (−∞ logits, smoothing over
    // the live ones) and zeroes the frozen and retired ∂W rows
    let want = head.forward_backward(&Batch::new(&x, &y), &mut ws).unwrap();
    assert!(
        (s.loss - want).abs() <= 1e-13 * want.abs(),
        "{} {want}",
        s.loss
    );
    assert!(rel_diff(pfc.grad_features(), ws.grad_features()) <= 1e-13);
    let kd = k * d;
    let mut grad = vec![0.0; c * kd];
    for (&cl, g) in pfc.kept().iter().zip(pfc.grad_weight().chunks_exact(kd)) {
        grad[cl as usize * kd..][..kd].copy_from_slice(g);
    }
    assert!(rel_diff(&grad, ws.grad_weight()) <= 1e-13);
    for cl in [2usize, 3, 4, 13] {
        assert!(grad[cl * kd..][..kd].iter().all(|&g| g == 0.0), "{cl}");
    }
}

/// 120 sampled steps with sparse SGD against the dense optimiser on the
/// same gradients, with frozen classes, a change of the trainable set at
/// step 40 and a retirement at step 80 (applied to both heads between
/// steps): weights and momentum relative difference, and whether the
/// classes frozen throughout stayed bit-identical in both.
fn lifecycle_against_dense<T: Real>(sgd: Sgd, rate: f64, seed: u64) -> (f64, f64, bool) {
    let (c, k, d, n, steps) = (30, 2, 4, 3, 120);
    let mut head = ArcFaceHead::<T>::new(HeadConfig::new(c, d).with_subcenters(k), seed).unwrap();
    let w0 = head.weight().to_vec();
    let oc = OptimizerConfig::Sgd(sgd);
    let mut opt = Optimizer::new(oc, &head).unwrap();
    let mut dense_opt = Optimizer::new(oc, &head).unwrap();
    let first: Vec<usize> = (0..c).filter(|cl| cl % 3 != 0).collect();
    head.set_trainable_classes(Some(&first)).unwrap();
    let mut dense = head.clone();
    let mut pfc = PartialFc::new(&head, rate, n, seed ^ 7).unwrap();
    let sched = LrScheduler::new(0.2, LrSchedule::Cosine { eta_min: 0.0 }, steps);
    let mut rng = SplitMix64::new(seed);
    let kd = k * d;
    let mut grad = vec![T::ZERO; c * kd];
    // classes 0, 3 and 6 stay frozen throughout; 9 trains from step 40 on
    let second: Vec<usize> = (0..c).filter(|&cl| cl % 3 != 0 || cl == 9).collect();
    for step in 0..steps {
        if step == 40 {
            for h in [&mut head, &mut dense] {
                h.set_trainable_classes(Some(&second)).unwrap();
            }
        }
        if step == 80 {
            for h in [&mut head, &mut dense] {
                h.retire(&[10, 11]).unwrap();
            }
        }
        let x: Vec<T> = (0..n * d).map(|_| T::from_f64(rng.normal())).collect();
        let y: Vec<i64> = (0..n)
            .map(|_| loop {
                let l = rng.below(c);
                if !head.is_retired(l) {
                    break l as i64;
                }
            })
            .collect();
        let lr = sched.lr_at(step);
        pfc.step(&mut head, &mut opt, &Batch::new(&x, &y), lr)
            .unwrap();
        grad.fill(T::ZERO);
        for (&cl, g) in pfc.kept().iter().zip(pfc.grad_weight().chunks_exact(kd)) {
            grad[cl as usize * kd..][..kd].copy_from_slice(g);
        }
        dense_opt.step(&mut dense, &grad, lr).unwrap();
    }
    pfc.flush(&mut head, &mut opt).unwrap();
    let w = rel_diff(head.weight(), dense.weight());
    let b = match (opt.state().first(), dense_opt.state().first()) {
        (Some(a), Some(b)) => rel_diff(a.1, b.1),
        _ => 0.0,
    };
    let frozen = [0usize, 3, 6].iter().all(|&cl| {
        let r = cl * kd..(cl + 1) * kd;
        let still = |h: &ArcFaceHead<T>| h.weight()[r.clone()] == w0[r.clone()];
        let no_momentum = |o: &Optimizer<T>| {
            o.state()
                .first()
                .is_none_or(|s| s.1[r.clone()].iter().all(|&v| v == T::ZERO))
        };
        still(&head) && still(&dense) && no_momentum(&opt) && no_momentum(&dense_opt)
    });
    (w, b, frozen)
}

fn sgds() -> [Sgd; 3] {
    let base = Sgd {
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.02,
    };
    [
        base,
        Sgd {
            momentum: 0.9,
            dampening: 0.1,
            ..base
        },
        Sgd {
            momentum: 0.9,
            nesterov: true,
            ..base
        },
    ]
}

#[test]
fn frozen_and_retired_rows_under_sparse_sgd_equal_the_dense_update() {
    for (i, sgd) in sgds().into_iter().enumerate() {
        for rate in [0.1, 0.3, 0.7] {
            let seed = 11 + i as u64;
            let (w, b, frozen) = lifecycle_against_dense::<f32>(sgd, rate, seed);
            assert!(
                w <= 1e-5 && b <= 1e-5 && frozen,
                "f32 {sgd:?} {rate}: {w:e} {b:e}"
            );
            let (w, b, frozen) = lifecycle_against_dense::<f64>(sgd, rate, seed);
            assert!(
                w <= 1e-12 && b <= 1e-12 && frozen,
                "f64 {sgd:?} {rate}: {w:e} {b:e}"
            );
        }
    }
}

#[test]
fn frozen_rows_under_sampled_adamw_stay_bit_identical() {
    let (c, d, n) = (25, 4, 4);
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d), 2).unwrap();
    let w0 = head.weight().to_vec();
    head.set_trainable_classes(Some(&(5..c).collect::<Vec<_>>()))
        .unwrap();
    let oc = OptimizerConfig::AdamW(AdamW::default());
    let mut opt = Optimizer::new(oc, &head).unwrap();
    let mut pfc = PartialFc::new(&head, 0.4, n, 3).unwrap();
    let mut rng = SplitMix64::new(4);
    for _ in 0..30 {
        let x: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        let y: Vec<i64> = (0..n).map(|_| rng.below(c) as i64).collect();
        pfc.step(&mut head, &mut opt, &Batch::new(&x, &y), 0.05)
            .unwrap();
    }
    pfc.flush(&mut head, &mut opt).unwrap();
    assert_eq!(head.weight()[..5 * d], w0[..5 * d]);
    assert_ne!(head.weight()[5 * d..], w0[5 * d..]);
    for (_, s) in opt.state() {
        assert!(s[..5 * d].iter().all(|&v| v == 0.0));
    }
}
