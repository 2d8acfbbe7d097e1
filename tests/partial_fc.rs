//! PartialFC sampling: the sparse (lazy) SGD update against the dense update
//! of the same sampled gradients, and the sampled loss against an
//! independent f64 computation of the head restricted to the kept classes.

use arcface::{
    ArcFaceHead, Batch, HeadConfig, LabelSmooth, LossConfig, LrSchedule, LrScheduler, Optimizer,
    OptimizerConfig, PartialFc, Real, Sgd, SmoothMode, SplitMix64, Workspace,
};
use proptest::prelude::*;

#[path = "partial_fc/lifecycle.rs"]
mod lifecycle;

/// ‖a − b‖ / ‖b‖ in f64.
fn rel_diff<T: Real>(a: &[T], b: &[T]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_f64(), y.to_f64());
        num += (x - y) * (x - y);
        den += y * y;
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

#[derive(Debug, Clone)]
struct Case {
    c: usize,
    k: usize,
    d: usize,
    n: usize,
    rate: f64,
    sgd: Sgd,
    lr: f64,
    window: usize,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (5usize..60, 1usize..3, 2usize..9, 1usize..6),
        (0.01f64..1.0, 0usize..3, 0.0f64..0.4, 0.0f64..0.05),
        (
            0.01f64..0.5,
            prop_oneof![Just(1000usize), 1usize..40],
            any::<u64>(),
        ),
    )
        .prop_map(
            |((c, k, d, n), (rate, kind, damp, wd), (lr, window, seed))| {
                let sgd = match kind {
                    0 => Sgd {
                        momentum: 0.0,
                        dampening: 0.0,
                        nesterov: false,
                        weight_decay: wd,
                    },
                    1 => Sgd {
                        momentum: 0.9,
                        dampening: damp,
                        nesterov: false,
                        weight_decay: wd,
                    },
                    _ => Sgd {
                        momentum: 0.9,
                        dampening: 0.0,
                        nesterov: true,
                        weight_decay: wd,
                    },
                };
                Case {
                    c,
                    k,
                    d,
                    n,
                    rate,
                    sgd,
                    lr,
                    window,
                    seed,
                }
            },
        )
}

/// 200 sampled steps with the sparse update, against the dense optimiser
/// stepping a copy of the head with the same gradients scattered into a
/// C·K×D zero gradient. Returns the relative differences of the weights
/// and of the momentum buffers after the final flush.
fn sparse_against_dense<T: Real>(case: &Case) -> (f64, f64) {
    let steps = 200;
    let cfg = HeadConfig::new(case.c, case.d).with_subcenters(case.k);
    let mut head = ArcFaceHead::<T>::new(cfg, case.seed).unwrap();
    let mut dense = head.clone();
    let oc = OptimizerConfig::Sgd(case.sgd);
    let mut opt = Optimizer::new(oc, &head).unwrap();
    let mut dense_opt = Optimizer::new(oc, &head).unwrap();
    let mut pfc = PartialFc::new(&head, case.rate, case.n, case.seed ^ 1)
        .unwrap()
        .with_flush_window(case.window)
        .unwrap();
    let sched = LrScheduler::new(case.lr, LrSchedule::Cosine { eta_min: 0.0 }, steps);
    let mut rng = SplitMix64::new(case.seed);
    let kd = case.k * case.d;
    let mut grad = vec![T::ZERO; case.c * kd];
    for step in 0..steps {
        let x: Vec<T> = (0..case.n * case.d)
            .map(|_| T::from_f64(rng.normal()))
            .collect();
        let y: Vec<i64> = (0..case.n).map(|_| rng.below(case.c) as i64).collect();
        let lr = sched.lr_at(step);
        pfc.step(&mut head, &mut opt, &Batch::new(&x, &y), lr)
            .unwrap();
        grad.fill(T::ZERO);
        for (&c, g) in pfc.kept().iter().zip(pfc.grad_weight().chunks_exact(kd)) {
            grad[c as usize * kd..][..kd].copy_from_slice(g);
        }
        dense_opt.step(&mut dense, &grad, lr).unwrap();
    }
    pfc.flush(&mut head, &mut opt).unwrap();
    assert_eq!(opt.steps(), dense_opt.steps());
    let w = rel_diff(head.weight(), dense.weight());
    let b = match (opt.state().first(), dense_opt.state().first()) {
        (Some(a), Some(b)) => rel_diff(a.1, b.1),
        _ => 0.0,
    };
    (w, b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sparse_sgd_equals_the_dense_update_f32(case in case()) {
        let (w, b) = sparse_against_dense::<f32>(&case);
        prop_assert!(w <= 1e-5 && b <= 1e-5, "weights {w:e}, momentum {b:e}");
    }

    #[test]
    fn sparse_sgd_equals_the_dense_update_f64(case in case()) {
        let (w, b) = sparse_against_dense::<f64>(&case);
        prop_assert!(w <= 1e-12 && b <= 1e-12, "weights {w:e}, momentum {b:e}");
    }
}

/// mmpretrain's ArcFace loss of one sample in f64, over the classes `kept`
/// of the full weights (K sub-centres per class), with per-class margins,
/// class weights and label smoothing (`original` mode, ε/C' off the target).
#[allow(clippy::too_many_arguments)]
fn reference_loss(
    w: &[f64],
    k: usize,
    d: usize,
    kept: &[u32],
    x: &[f64],
    label: usize,
    margins: &[f64],
    class_weight: &[f64],
    eps: f64,
    scale: f64,
) -> f64 {
    let xn = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let logits: Vec<f64> = kept
        .iter()
        .map(|&c| {
            let c = c as usize;
            let cos = (0..k)
                .map(|s| {
                    let row = &w[(c * k + s) * d..][..d];
                    let wn = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                    row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() / (wn * xn)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            let z = if c == label {
                let m = margins[c];
                let th = (std::f64::consts::PI - m).cos();
                let mm = (std::f64::consts::PI - m).sin() * m;
                if cos > th {
                    (cos.acos() + m).cos()
                } else {
                    cos - mm
                }
            } else {
                cos
            };
            scale * z
        })
        .collect();
    let mx = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = mx + logits.iter().map(|z| (z - mx).exp()).sum::<f64>().ln();
    let cp = kept.len() as f64;
    // loss = −Σ_c w_c t_c log p_c; the weight of the mean is the target's
    let mut loss = 0.0;
    for (j, &c) in kept.iter().enumerate() {
        let t = if c as usize == label {
            1.0 - eps + eps / cp
        } else {
            eps / cp
        };
        loss -= class_weight[c as usize] * t * (logits[j] - lse);
    }
    loss
}

#[test]
fn the_sampled_loss_is_the_head_restricted_to_the_kept_classes() {
    let (c, k, d, n) = (40, 2, 6, 5);
    let mut rng = SplitMix64::new(9);
    let margins: Vec<f64> = (0..c).map(|_| 0.2 + 0.4 * rng.next_f64()).collect();
    let class_weight: Vec<f64> = (0..c).map(|_| 0.5 + rng.next_f64()).collect();
    let eps = 0.1;
    let loss = LossConfig {
        class_weight: Some(class_weight.clone()),
        label_smooth: Some(LabelSmooth {
            label_smooth_val: eps,
            mode: SmoothMode::Original,
            num_classes: Some(c),
        }),
        ..LossConfig::cross_entropy()
    };
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(16.0)
        .with_margins(arcface::Margins::PerClass(margins.clone()))
        .with_loss(loss);
    let head = ArcFaceHead::<f64>::new(cfg.clone(), 3).unwrap();
    let mut pfc = PartialFc::new(&head, 0.3, n, 5).unwrap();
    for step in 0..5 {
        let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
        let y: Vec<i64> = (0..n).map(|_| rng.below(c) as i64).collect();
        let s = pfc
            .forward_backward(&head, &Batch::new(&x, &y), step)
            .unwrap();
        let kept = pfc.kept().to_vec();
        assert_eq!(kept.len(), 12);
        // mmpretrain's mean over the samples
        let mut num = 0.0;
        for i in 0..n {
            num += reference_loss(
                head.weight(),
                k,
                d,
                &kept,
                &x[i * d..][..d],
                y[i] as usize,
                &margins,
                &class_weight,
                eps,
                16.0,
            );
        }
        let want = num / n as f64;
        assert!(
            (s.loss - want).abs() <= 1e-10 * want.abs().max(1.0),
            "{} vs {want}",
            s.loss
        );

        // the gradient is the head of the kept classes' gradient
        let rows: Vec<f64> = kept
            .iter()
            .flat_map(|&c| head.weight()[c as usize * k * d..][..k * d].to_vec())
            .collect();
        let sub_cfg = HeadConfig::new(kept.len(), d)
            .with_subcenters(k)
            .with_scale(16.0)
            .with_margins(arcface::Margins::PerClass(
                kept.iter().map(|&c| margins[c as usize]).collect(),
            ))
            .with_loss(LossConfig {
                class_weight: Some(kept.iter().map(|&c| class_weight[c as usize]).collect()),
                label_smooth: Some(LabelSmooth {
                    label_smooth_val: eps,
                    mode: SmoothMode::Original,
                    num_classes: None,
                }),
                ..LossConfig::cross_entropy()
            });
        let sub = ArcFaceHead::<f64>::from_weight(sub_cfg, &rows).unwrap();
        let mut ws = Workspace::new(&sub, n);
        let y_sub: Vec<i64> = y
            .iter()
            .map(|&l| kept.iter().position(|&c| c as i64 == l).unwrap() as i64)
            .collect();
        let l2 = sub
            .forward_backward(&Batch::new(&x, &y_sub), &mut ws)
            .unwrap();
        assert_eq!(l2, s.loss);
        assert_eq!(ws.grad_weight(), pfc.grad_weight());
        assert_eq!(ws.grad_features(), pfc.grad_features());
    }
}

#[test]
fn bad_rates_and_batches_are_errors_that_change_nothing() {
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(30, 4), 0).unwrap();
    for r in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(PartialFc::new(&head, r, 4, 0).is_err(), "{r}");
    }
    let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    let mut pfc = PartialFc::new(&head, 0.2, 2, 0).unwrap();
    let x = [1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    pfc.step(&mut head, &mut opt, &Batch::new(&x, &[1, 2]), 0.1)
        .unwrap();
    let (w, st, steps) = (
        head.weight().to_vec(),
        opt.state()[0].1.to_vec(),
        opt.steps(),
    );
    // a label out of range, too many samples, a negative rate of learning
    assert!(pfc
        .step(&mut head, &mut opt, &Batch::new(&x, &[1, 30]), 0.1)
        .is_err());
    let x3 = [0.5f32; 12];
    assert!(pfc
        .step(&mut head, &mut opt, &Batch::new(&x3, &[1, 2, 3]), 0.1)
        .is_err());
    assert!(pfc
        .step(&mut head, &mut opt, &Batch::new(&x, &[1, 2]), -1.0)
        .is_err());
    assert_eq!(
        (head.weight(), opt.state()[0].1, opt.steps()),
        (&w[..], &st[..], steps)
    );
    // an optimiser stepped elsewhere meanwhile
    let mut other = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
    assert!(pfc
        .step(&mut head, &mut other, &Batch::new(&x, &[1, 2]), 0.1)
        .is_err());
}

#[test]
fn positives_beyond_the_target_are_all_kept_and_reported() {
    let head = ArcFaceHead::<f64>::new(HeadConfig::new(100, 3), 0).unwrap();
    let mut pfc = PartialFc::new(&head, 0.02, 8, 0).unwrap();
    let x: Vec<f64> = (0..24).map(|i| (i as f64).sin()).collect();
    let s = pfc
        .forward_backward(&head, &Batch::new(&x, &[5, 6, 7, 8, 9, 10, 11, 5]), 0)
        .unwrap();
    assert_eq!((s.kept, s.positives, s.positives_exceeded), (7, 7, true));
    assert_eq!(pfc.grad_weight().len(), 7 * 3);
}

mod common;

use arcface::{Dataset, Event};
use common::data::clusters;
use std::ops::ControlFlow;

fn sampled_cfg(optimizer: OptimizerConfig, sample_rate: f64) -> arcface::TrainConfig {
    arcface::TrainConfig {
        epochs: 4,
        batch_size: 16,
        lr: 0.05,
        optimizer,
        seed: 5,
        sample_rate,
        ..arcface::TrainConfig::default()
    }
}

#[test]
fn a_resumed_sampled_run_ends_with_the_bits_of_the_uninterrupted_one() {
    let (x, y) = clusters(30, 12, 240, 0.4, 3);
    let data = Dataset::new(&x, &y);
    let head = || ArcFaceHead::<f32>::new(HeadConfig::new(30, 12).with_scale(16.0), 1).unwrap();
    for optimizer in [
        OptimizerConfig::Sgd(Sgd {
            nesterov: true,
            ..Sgd::default()
        }),
        OptimizerConfig::AdamW(arcface::AdamW::default()),
    ] {
        let cfg = sampled_cfg(optimizer, 0.2);
        let mut full = arcface::Trainer::new(head(), cfg.clone()).unwrap();
        let mut kept = Vec::new();
        full.fit(data, None, |e| {
            if let Event::Step(s) = e {
                kept.push(s.kept_classes);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        // ⌈0.2·30⌉ = 6, or all of a batch's distinct labels when more
        assert!(kept.iter().all(|&k| (6..=16).contains(&k)), "{kept:?}");

        let mut first = arcface::Trainer::new(head(), cfg.clone()).unwrap();
        first
            .fit(data, None, |e| match e {
                Event::Epoch(info) if info.epoch == 2 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .unwrap();
        let (h, opt) = first.into_parts();
        let resumed = arcface::TrainConfig {
            start_epoch: 2,
            ..cfg
        };
        let mut second = arcface::Trainer::with_optimizer(h, resumed, opt).unwrap();
        second
            .fit(data, None, |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(
            second.head().weight(),
            full.head().weight(),
            "{optimizer:?}"
        );
        assert_eq!(second.optimizer().state(), full.optimizer().state());
    }
}

#[test]
fn sampled_training_learns() {
    let (x, y) = clusters(40, 16, 800, 0.5, 7);
    let (vx, vy) = clusters(40, 16, 400, 0.5, 7);
    let head = || ArcFaceHead::<f32>::new(HeadConfig::new(40, 16).with_scale(16.0), 2).unwrap();
    let top1 = |rate: f64| {
        let cfg = arcface::TrainConfig {
            epochs: 6,
            train_accuracy: true,
            ..sampled_cfg(OptimizerConfig::default(), rate)
        };
        let mut t = arcface::Trainer::new(head(), cfg).unwrap();
        let r = t
            .fit(Dataset::new(&x, &y), Some(Dataset::new(&vx, &vy)), |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
        let last = r.history.last().unwrap();
        (last.val.unwrap().top1, last.train_top1)
    };
    let (full, full_train) = top1(1.0);
    let (sampled, sampled_train) = top1(0.25);
    // a sampled step has no logits for every class: no training top-1, not 0
    assert!(full_train.is_some() && sampled_train.is_none());
    assert!(
        sampled > 0.8 && full > 0.8,
        "top-1 {sampled} (r = 0.25), {full} (r = 1)"
    );
}

#[test]
fn resuming_with_another_rate_or_schedule_is_refused() {
    let (x, y) = clusters(30, 12, 120, 0.4, 3);
    let data = Dataset::new(&x, &y);
    let cfg = sampled_cfg(OptimizerConfig::default(), 0.2);
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(30, 12), 1).unwrap();
    let mut t = arcface::Trainer::new(head, cfg.clone()).unwrap();
    t.fit(data, None, |_| ControlFlow::Continue(())).unwrap();
    let (h, opt) = t.into_parts();
    let path = std::env::temp_dir().join(format!(
        "arcface_pfc_run_{}.optim.safetensors",
        std::process::id()
    ));
    arcface::save_optimizer(&opt, &h, &path).unwrap();
    let saved = arcface::load_optimizer(&path, &h).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(saved, opt);
    assert_eq!(saved.run(), Some(&cfg.run_record()));
    let resumed = |c: arcface::TrainConfig| {
        arcface::Trainer::with_optimizer(h.clone(), c, saved.clone()).map(|_| ())
    };
    let field = |c| match resumed(c) {
        Err(arcface::Error::ResumeMismatch { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(arcface::TrainConfig {
            sample_rate: 0.3,
            ..cfg.clone()
        }),
        "sample_rate"
    );
    assert_eq!(
        field(arcface::TrainConfig {
            sample_rate: 1.0,
            ..cfg.clone()
        }),
        "sample_rate"
    );
    assert_eq!(
        field(arcface::TrainConfig {
            lr: 0.06,
            ..cfg.clone()
        }),
        "lr"
    );
    let step = LrSchedule::Step {
        step_size: 1,
        gamma: 0.5,
    };
    assert_eq!(
        field(arcface::TrainConfig {
            schedule: step,
            ..cfg.clone()
        }),
        "schedule"
    );
    assert_eq!(
        field(arcface::TrainConfig {
            warmup_epochs: 1,
            ..cfg.clone()
        }),
        "warmup_epochs"
    );
    // the same run, longer: accepted; a state without a record: accepted
    let longer = arcface::TrainConfig {
        epochs: 6,
        start_epoch: 4,
        ..cfg.clone()
    };
    assert!(resumed(longer.clone()).is_ok());
    let mut bare = saved.clone();
    bare.set_run(None);
    let other = arcface::TrainConfig {
        sample_rate: 0.5,
        ..longer
    };
    assert!(arcface::Trainer::with_optimizer(h.clone(), other, bare).is_ok());
}
