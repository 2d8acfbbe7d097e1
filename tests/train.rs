//! The training loop and the optimisers: reproducibility, no allocation per
//! step, early stop on non-finite values with the weights untouched,
//! adaptive margins, schedules, and PyTorch's update rules.

mod common;

use arcface::{
    evaluate, AdamW, AdaptiveMargins, ArcFaceHead, Dataset, Error, Event, HeadConfig, LossConfig,
    LrSchedule, LrScheduler, Margins, Optimizer, OptimizerConfig, Sgd, Threads, TrainConfig,
    Trainer,
};
use common::data::clusters;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ops::ControlFlow;

// ---------------------------------------------------------------- allocation counter

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// ---------------------------------------------------------------- helpers

fn head(c: usize, d: usize, k: usize) -> ArcFaceHead<f32> {
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(30.0)
        .with_margins(Margins::Uniform(0.3));
    ArcFaceHead::new(cfg, 7).unwrap()
}

fn quiet(_: Event<'_>) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

// ---------------------------------------------------------------- tests

#[test]
fn learns_and_evaluates_held_out_data() {
    let (x, y) = clusters(12, 16, 600, 0.6, 1);
    let (vx, vy) = clusters(12, 16, 240, 0.6, 1);
    let cfg = TrainConfig {
        epochs: 8,
        batch_size: 32,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(12, 16, 1), cfg).unwrap();
    let before = evaluate(t.head(), Dataset::new(&vx, &vy), 64).unwrap();
    let report = t
        .fit(Dataset::new(&x, &y), Some(Dataset::new(&vx, &vy)), quiet)
        .unwrap();
    let last = report.history.last().unwrap();
    let val = last.val.unwrap();
    assert!(
        val.top1 > 0.95 && val.top1 > before.top1,
        "{before:?} -> {val:?}"
    );
    assert!(val.top5 >= val.top1);
    assert!(last.train_loss < report.history[0].train_loss);
    assert_eq!(report.history.len(), 8);
    assert_eq!(report.steps, 8 * 600usize.div_ceil(32));
    assert_eq!(report.samples, 8 * 600);
    assert!(!report.stopped_early);
    // the evaluation inside fit is the same as a separate call
    assert_eq!(
        evaluate(t.head(), Dataset::new(&vx, &vy), 1000)
            .unwrap()
            .top1,
        val.top1
    );
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let (x, y) = clusters(10, 24, 300, 0.8, 2);
    let run = |seed: u64, threads: Threads| {
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 20,
            seed,
            optimizer: OptimizerConfig::AdamW(AdamW::default()),
            lr: 0.01,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(head(10, 24, 2).with_threads(threads), cfg).unwrap();
        let r = t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
        (
            t.head().weight().to_vec(),
            r.history.iter().map(|e| e.train_loss).collect::<Vec<_>>(),
        )
    };
    for threads in [Threads::Sequential, Threads::Rayon] {
        let (w1, l1) = run(5, threads);
        let (w2, l2) = run(5, threads);
        assert!(w1.iter().zip(&w2).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(l1, l2);
        let (w3, _) = run(6, threads);
        assert_ne!(w1, w3, "another seed shuffles differently");
    }
}

#[test]
fn a_step_allocates_nothing() {
    let (x, y) = clusters(20, 32, 200, 0.5, 3);
    let before = allocs();
    let probe: Vec<u8> = Vec::with_capacity(10);
    assert!(
        allocs() > before && probe.capacity() >= 10,
        "the counter counts"
    );
    for (opt, k, sample_rate) in [
        (
            OptimizerConfig::Sgd(Sgd {
                nesterov: true,
                ..Sgd::default()
            }),
            1,
            1.0,
        ),
        (OptimizerConfig::AdamW(AdamW::default()), 3, 1.0),
        // PartialFC: sampling, the lazy update and its catch-up
        (OptimizerConfig::Sgd(Sgd::default()), 2, 0.3),
        (OptimizerConfig::AdamW(AdamW::default()), 1, 0.5),
    ] {
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 16,
            optimizer: opt,
            lr: 0.01,
            sample_rate,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(head(20, 32, k).with_threads(Threads::Sequential), cfg).unwrap();
        let mut marks: Vec<(usize, usize, usize)> = Vec::with_capacity(64);
        t.fit(Dataset::new(&x, &y), None, |e| {
            if let Event::Step(s) = e {
                marks.push((s.epoch, s.step, allocs()));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(marks.len(), 2 * 13);
        for w in marks.windows(2) {
            if w[0].0 == w[1].0 {
                assert_eq!(w[1].2, w[0].2, "step {:?} allocated ({})", w[1], opt.name());
            }
        }
    }
}

#[test]
fn a_step_with_retired_and_frozen_classes_allocates_nothing() {
    // the masked class pass, the zeroed frozen rows and the optimiser's
    // trainable spans run on the buffers the workspace already has
    let (x, y) = clusters(20, 32, 200, 0.5, 4);
    let keep: Vec<usize> = (0..200).filter(|&i| y[i] % 5 != 3).collect();
    let x: Vec<f32> = keep
        .iter()
        .flat_map(|&i| x[i * 32..(i + 1) * 32].to_vec())
        .collect();
    let y: Vec<i64> = keep.iter().map(|&i| y[i]).collect();
    for k in [1, 3] {
        let mut h = head(20, 32, k).with_threads(Threads::Sequential);
        h.retire(&[3, 8, 13, 18]).unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 16,
            lr: 0.01,
            train_classes: Some((0..10).filter(|c| c % 5 != 3).collect()),
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(h, cfg).unwrap();
        let mut marks: Vec<(usize, usize)> = Vec::with_capacity(64);
        t.fit(Dataset::new(&x, &y), None, |e| {
            if let Event::Step(s) = e {
                marks.push((s.epoch, allocs()));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(marks.len(), 2 * 10);
        for w in marks.windows(2) {
            if w[0].0 == w[1].0 {
                assert_eq!(w[1].1, w[0].1, "a masked step allocated (K = {k})");
            }
        }
    }
}

#[test]
fn loss_weight_beyond_f32_is_rejected_before_training() {
    // loss_weight 1e38 would turn any per-sample loss above ~3.4 into +inf in
    // f32: the head refuses it at construction, naming the field
    let cfg = HeadConfig::new(6, 8).with_loss(LossConfig::cross_entropy().with_loss_weight(1e38));
    let err = ArcFaceHead::<f32>::new(cfg.clone(), 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "loss_weight",
                ..
            }
        ),
        "{err:?}"
    );
    // f64 has the range for it
    assert!(ArcFaceHead::<f64>::new(cfg, 1).is_ok());
}

#[test]
fn overflowing_update_stops_with_weights_and_state_as_before() {
    let (x, y) = clusters(6, 8, 60, 0.5, 5);
    for opt in [
        OptimizerConfig::Sgd(Sgd::default()),
        OptimizerConfig::AdamW(AdamW {
            eps: 0.0,
            ..AdamW::default()
        }),
    ] {
        // lr·g overflows f32 for any gradient element above ~3.4
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 10,
            lr: 1e38,
            optimizer: opt,
            schedule: LrSchedule::Constant,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(head(6, 8, 1), cfg).unwrap();
        let w0 = t.head().weight().to_vec();
        let mut steps = 0;
        let err = t
            .fit(Dataset::new(&x, &y), None, |e| {
                if let Event::Step(_) = e {
                    steps += 1;
                }
                ControlFlow::Continue(())
            })
            .unwrap_err();
        let Error::Diverged {
            epoch: 1,
            step: 1,
            what: "weight update",
            value,
        } = err
        else {
            panic!("{err:?}")
        };
        assert!(!value.is_finite(), "{value}");
        assert_eq!(steps, 0);
        assert_eq!(t.head().weight(), &w0[..], "{}", opt.name());
        assert_eq!(t.optimizer().steps(), 0);
        assert!(t
            .optimizer()
            .state()
            .iter()
            .all(|(_, s)| s.iter().all(|v| *v == 0.0)));
        // the head is still usable
        assert!(t.head().predict(&x[..8]).is_ok());
    }
}

#[test]
fn adaptive_margins_come_from_the_training_labels() {
    let (x, mut y) = clusters(5, 8, 100, 0.5, 6);
    for (i, l) in y.iter_mut().enumerate() {
        if i % 3 == 0 {
            *l = 0; // class 0 most frequent
        }
    }
    let params = AdaptiveMargins::default();
    let cfg = TrainConfig {
        epochs: 1,
        adaptive_margins: Some(params),
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(5, 8, 1), cfg).unwrap();
    t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
    let want = params.compute(&y, 5).unwrap();
    assert_eq!(t.head().margins(), &want[..]);
    assert_eq!(t.head().margins()[0], 0.05);
}

#[test]
fn callback_can_stop_early() {
    let (x, y) = clusters(4, 8, 80, 0.5, 7);
    let mut t = Trainer::new(
        head(4, 8, 1),
        TrainConfig {
            epochs: 5,
            batch_size: 10,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let r = t
        .fit(Dataset::new(&x, &y), None, |e| match e {
            Event::Step(s) if s.global_step == 11 => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .unwrap();
    assert!(r.stopped_early);
    assert_eq!(r.steps, 11);
    assert_eq!(r.history.len(), 1);
    assert_eq!(t.optimizer().steps(), 11);
}

#[test]
fn schedule_is_applied_per_step_with_warm_up() {
    let (x, y) = clusters(4, 8, 50, 0.5, 8);
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 10,
        lr: 0.2,
        warmup_epochs: 1,
        warmup_start_factor: 0.1,
        schedule: LrSchedule::Cosine { eta_min: 0.01 },
        train_accuracy: false,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(4, 8, 1), cfg).unwrap();
    let mut lrs = Vec::new();
    let r = t
        .fit(Dataset::new(&x, &y), None, |e| {
            if let Event::Step(s) = e {
                assert_eq!(s.batch_correct, None);
                lrs.push(s.lr);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    let sched = LrScheduler::new(0.2, LrSchedule::Cosine { eta_min: 0.01 }, 20).with_warmup(5, 0.1);
    let want: Vec<f64> = (0..20).map(|s| sched.lr_at(s)).collect();
    assert_eq!(lrs, want);
    assert!((lrs[0] - 0.02).abs() < 1e-15 && lrs[5] == 0.2);
    assert_eq!(r.history[0].train_top1, None);
    // step schedule counts epochs in TrainConfig
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 10,
        schedule: LrSchedule::Step {
            step_size: 2,
            gamma: 0.5,
        },
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(4, 8, 1), cfg).unwrap();
    let r = t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
    let lr: Vec<f64> = r.history.iter().map(|e| e.lr).collect();
    assert_eq!(lr, vec![0.1, 0.1, 0.05, 0.05]);
}

/// torch.optim.SGD / AdamW, written out in f64 for one element.
#[test]
fn updates_follow_pytorch() {
    sgd_momentum_follows_pytorch();
    sgd_dampening_follows_pytorch();
    adamw_follows_pytorch();
}

/// The starting weights, the three steps' gradients and learning rates of
/// [`updates_follow_pytorch`].
const W0: [f64; 4] = [0.5, -1.0, 2.0, 0.25];
const GRADS: [[f64; 4]; 3] = [
    [0.1, -0.2, 0.3, 0.0],
    [0.05, 0.4, -0.1, 0.2],
    [-0.3, 0.1, 0.2, -0.1],
];
const LRS: [f64; 3] = [0.1, 0.05, 0.2];

/// SGD with momentum and weight decay, with and without Nesterov.
#[allow(clippy::needless_range_loop)] // the loops mirror the per-element formulas
fn sgd_momentum_follows_pytorch() {
    let (w0, grads, lrs) = (W0, GRADS, LRS);
    let cfg = HeadConfig::new(2, 2);
    for nesterov in [false, true] {
        let sgd = Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov,
            weight_decay: 0.01,
        };
        let mut h = ArcFaceHead::<f64>::from_weight(cfg.clone(), &w0).unwrap();
        let mut opt = Optimizer::new(OptimizerConfig::Sgd(sgd), &h).unwrap();
        let mut w = w0;
        let mut buf = [0.0; 4];
        for (t, (g, lr)) in grads.iter().zip(lrs).enumerate() {
            opt.step(&mut h, g, lr).unwrap();
            for i in 0..4 {
                let gi = g[i] + 0.01 * w[i];
                buf[i] = if t == 0 { gi } else { 0.9 * buf[i] + gi };
                let d = if nesterov { gi + 0.9 * buf[i] } else { buf[i] };
                w[i] -= lr * d;
            }
            assert_eq!(h.weight(), &w[..], "sgd nesterov={nesterov} step {t}");
        }
        assert_eq!(opt.state()[0].1, &buf[..]);
    }
}

/// SGD with dampening, without Nesterov.
#[allow(clippy::needless_range_loop)] // the loop mirrors the per-element formula
fn sgd_dampening_follows_pytorch() {
    let (w0, grads) = (W0, GRADS);
    let cfg = HeadConfig::new(2, 2);
    let sgd = Sgd {
        momentum: 0.5,
        dampening: 0.3,
        nesterov: false,
        weight_decay: 0.0,
    };
    let mut h = ArcFaceHead::<f64>::from_weight(cfg, &w0).unwrap();
    let mut opt = Optimizer::new(OptimizerConfig::Sgd(sgd), &h).unwrap();
    let (mut w, mut buf) = (w0, [0.0; 4]);
    for (t, g) in grads.iter().enumerate() {
        opt.step(&mut h, g, 0.1).unwrap();
        for i in 0..4 {
            buf[i] = if t == 0 {
                g[i]
            } else {
                0.5 * buf[i] + 0.7 * g[i]
            };
            w[i] -= 0.1 * buf[i];
        }
    }
    assert_eq!(h.weight(), &w[..]);
}

/// AdamW with bias correction and decoupled weight decay.
#[allow(clippy::needless_range_loop)] // the loops mirror the per-element formulas
fn adamw_follows_pytorch() {
    let (w0, grads, lrs) = (W0, GRADS, LRS);
    let cfg = HeadConfig::new(2, 2);
    let a = AdamW {
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        weight_decay: 0.05,
    };
    let mut h = ArcFaceHead::<f64>::from_weight(cfg, &w0).unwrap();
    let mut opt = Optimizer::new(OptimizerConfig::AdamW(a), &h).unwrap();
    let (mut w, mut m, mut v) = (w0, [0.0; 4], [0.0; 4]);
    for (t, (g, lr)) in grads.iter().zip(lrs).enumerate() {
        opt.step(&mut h, g, lr).unwrap();
        let step = (t + 1) as i32;
        let (bc1, bc2) = (1.0 - 0.8f64.powi(step), 1.0 - 0.99f64.powi(step));
        for i in 0..4 {
            w[i] *= 1.0 - lr * 0.05;
            m[i] = 0.8 * m[i] + 0.2 * g[i];
            v[i] = 0.99 * v[i] + 0.01 * g[i] * g[i];
            let denom = v[i].sqrt() * (1.0 / bc2.sqrt()) + 1e-6;
            w[i] -= lr / bc1 * (m[i] / denom);
        }
        for i in 0..4 {
            assert!(
                (h.weight()[i] - w[i]).abs() <= 1e-15 * w[i].abs().max(1.0),
                "adamw step {t}"
            );
        }
    }
    assert_eq!(opt.steps(), 3);
}

#[test]
fn bad_data_is_a_clear_error_and_changes_nothing() {
    let (x, y) = clusters(4, 8, 40, 0.5, 9);
    bad_data_changes_nothing(&x, &y);
    batch_larger_than_the_data_with_drop_last_is_an_error(&x, &y);
    bad_configurations_are_errors();
}

/// One trainer fed bad data of every kind in turn, so that "changes
/// nothing" is checked across all of them.
fn bad_data_changes_nothing(x: &[f32], y: &[i64]) {
    let mut t = Trainer::new(head(4, 8, 1), TrainConfig::default()).unwrap();
    let w0 = t.head().weight().to_vec();

    let mut bad = y.to_vec();
    bad[17] = 4;
    let e = t.fit(Dataset::new(x, &bad), None, quiet).unwrap_err();
    assert_eq!(
        e,
        Error::LabelOutOfRange {
            sample: 17,
            label: 4,
            num_classes: 4
        }
    );

    bad[17] = -1;
    assert!(matches!(
        t.fit(Dataset::new(x, &bad), None, quiet),
        Err(Error::LabelOutOfRange { sample: 17, .. })
    ));

    let mut nan = x.to_vec();
    nan[8 * 5 + 3] = f32::NAN;
    let e = t.fit(Dataset::new(&nan, y), None, quiet).unwrap_err();
    assert_eq!(
        e,
        Error::NonFinite {
            what: "features",
            row: 5,
            col: 3
        }
    );

    let e = t
        .fit(Dataset::new(&x[..x.len() - 1], y), None, quiet)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Shape {
            what: "features",
            ..
        }
    ));

    let e = t
        .fit(Dataset::new(x, y), Some(Dataset::new(&nan, y)), quiet)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::NonFinite {
            what: "val features",
            row: 5,
            col: 3
        }
    ));

    assert_eq!(
        t.fit(Dataset::new(&[], &[]), None, quiet).unwrap_err(),
        Error::EmptyBatch
    );
    assert_eq!(t.head().weight(), &w0[..]);
    assert_eq!(t.optimizer().steps(), 0);
}

fn batch_larger_than_the_data_with_drop_last_is_an_error(x: &[f32], y: &[i64]) {
    let cfg = TrainConfig {
        batch_size: 64,
        drop_last: true,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(4, 8, 1), cfg).unwrap();
    assert!(matches!(
        t.fit(Dataset::new(x, y), None, quiet),
        Err(Error::InvalidConfig {
            field: "batch_size",
            ..
        })
    ));
}

fn bad_configurations_are_errors() {
    for cfg in [
        TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            lr: f64::NAN,
            ..TrainConfig::default()
        },
        TrainConfig {
            warmup_epochs: 30,
            ..TrainConfig::default()
        },
        TrainConfig {
            optimizer: OptimizerConfig::AdamW(AdamW {
                beta2: 1.0,
                ..AdamW::default()
            }),
            ..TrainConfig::default()
        },
    ] {
        assert!(Trainer::new(head(4, 8, 1), cfg).is_err());
    }
}

#[test]
fn evaluation_ranks_ties_like_topk() {
    // weights: class c along axis c; classes 1 and 2 identical
    let w = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
    let h = ArcFaceHead::<f32>::from_weight(HeadConfig::new(3, 2), &w).unwrap();
    let x = [0.0f32, 1.0, 0.0, 1.0, 1.0, 0.0];
    // sample 0: tie between 1 and 2 -> rank(1)=0, rank(2)=1
    let m = evaluate(&h, Dataset::new(&x[..2], &[1]), 8).unwrap();
    assert_eq!(m.top1, 1.0);
    let m = evaluate(&h, Dataset::new(&x[..2], &[2]), 8).unwrap();
    assert_eq!((m.top1, m.top5), (0.0, 1.0));
    let m = evaluate(&h, Dataset::new(&x, &[1, 2, 0]), 2).unwrap();
    assert!((m.top1 - 2.0 / 3.0).abs() < 1e-12);
    let p = h.predict(&x[..2]).unwrap();
    assert_eq!(p.topk(1)[0][0].0, 1);
    assert!(m.loss.is_finite() && m.samples == 3);
}

#[test]
fn resuming_keeps_the_optimiser_state() {
    let (x, y) = clusters(4, 8, 40, 0.5, 10);
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 10,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(head(4, 8, 1), cfg.clone()).unwrap();
    t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
    let (h, opt) = t.into_parts();
    assert_eq!(opt.steps(), 8);
    let mut t = Trainer::with_optimizer(h, cfg, opt).unwrap();
    t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
    assert_eq!(t.optimizer().steps(), 16);
}
