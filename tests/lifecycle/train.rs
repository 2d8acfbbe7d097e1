//! Training after enrolment: a grown head, workspace and optimiser behave
//! exactly like ones built at the new size; frozen rows stay bit-identical.

use crate::{data, head};
use arcface::{
    AdamW, ArcFaceHead, Batch, Dataset, Enrolment, Event, Optimizer, OptimizerConfig, Sgd, Threads,
    TrainConfig, Trainer, Workspace,
};
use std::ops::ControlFlow;

fn quiet(_: Event<'_>) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_batch_with_the_new_class_trains_at_once_as_on_a_fresh_head() {
    let (d, k) = (12, 2);
    for n in [4usize, 40] {
        let mut h = head::<f32>(5, k, d, 3).with_threads(Threads::Sequential);
        let mut ws = Workspace::new(&h, n);
        let mut opt = Optimizer::new(OptimizerConfig::default(), &h).unwrap();
        // one step before enrolling, so that the optimiser has state
        let x: Vec<f32> = data(n, d, 7);
        let y: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
        h.forward_backward(&Batch::new(&x, &y), &mut ws).unwrap();
        opt.step(&mut h, ws.grad_weight(), 0.1).unwrap();
        let new = h.enrol(&x[..3 * d], &Enrolment::default()).unwrap() as i64;
        ws.fit(&h).unwrap();
        opt.fit(&h).unwrap();
        assert_eq!(opt.state()[0].1[5 * k * d..], vec![0.0; k * d][..]);
        // the same head built at its new size, with a fresh workspace
        let fresh = ArcFaceHead::from_weight(h.config().clone(), h.weight())
            .unwrap()
            .with_threads(Threads::Sequential);
        let mut fresh_ws = Workspace::new(&fresh, n);
        let y2: Vec<i64> = (0..n as i64)
            .map(|i| if i % 3 == 0 { new } else { i % 5 })
            .collect();
        let a = h.forward_backward(&Batch::new(&x, &y2), &mut ws).unwrap();
        let b = fresh
            .forward_backward(&Batch::new(&x, &y2), &mut fresh_ws)
            .unwrap();
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(bits(ws.grad_weight()), bits(fresh_ws.grad_weight()));
        assert_eq!(bits(ws.grad_features()), bits(fresh_ws.grad_features()));
        // the new rows get a gradient, and a few steps lower the loss
        assert!(ws.grad_weight()[5 * k * d..].iter().any(|&g| g != 0.0));
        for _ in 0..20 {
            h.forward_backward(&Batch::new(&x, &y2), &mut ws).unwrap();
            opt.step(&mut h, ws.grad_weight(), 0.05).unwrap();
        }
        assert!(h.loss(&Batch::new(&x, &y2), &mut ws).unwrap() < a);
    }
}

#[test]
fn frozen_rows_are_bit_identical_after_fit_with_momentum_decay_and_adamw() {
    let (d, k) = (10, 2);
    let opts = [
        OptimizerConfig::Sgd(Sgd {
            momentum: 0.9,
            weight_decay: 0.05,
            ..Sgd::default()
        }),
        OptimizerConfig::AdamW(AdamW {
            weight_decay: 0.1,
            ..AdamW::default()
        }),
    ];
    for opt in opts {
        let mut h = head::<f32>(6, k, d, 4);
        let new = h
            .enrol(&data::<f32>(3, d, 9), &Enrolment::default())
            .unwrap();
        let x: Vec<f32> = data(70, d, 10);
        let y: Vec<i64> = (0..70).map(|i| i % 7).collect();
        let before = h.weight().to_vec();
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 16,
            lr: 0.05,
            optimizer: opt,
            train_classes: Some(vec![new, 2]),
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(h, cfg).unwrap();
        t.fit(Dataset::new(&x, &y), None, quiet).unwrap();
        let w = t.head().weight();
        let row = k * d;
        for c in 0..7 {
            let (a, b) = (&w[c * row..(c + 1) * row], &before[c * row..(c + 1) * row]);
            if c == new || c == 2 {
                assert_ne!(bits(a), bits(b), "trainable class {c} did not move");
            } else {
                assert_eq!(bits(a), bits(b), "frozen class {c} moved ({})", opt.name());
            }
        }
        // the frozen rows' optimiser state was never touched either
        for (_, s) in t.optimizer().state() {
            for c in [0, 1, 3, 4, 5] {
                assert!(s[c * row..(c + 1) * row].iter().all(|&v| v == 0.0));
            }
        }
        // the restriction was for that run only
        assert_eq!(t.head().trainable_classes(), None);
    }
}

#[test]
fn a_restricted_step_changes_only_the_weight_gradient_of_frozen_rows() {
    // frozen classes stay in the softmax: the loss and ∂X are those of the
    // unrestricted step, and ∂W differs only in the frozen rows (zero)
    let (d, k, n) = (7, 3, 20);
    let h = head::<f32>(5, k, d, 6).with_threads(Threads::Sequential);
    let mut frozen = h.clone();
    frozen.set_trainable_classes(Some(&[1, 4])).unwrap();
    let x: Vec<f32> = data(n, d, 12);
    let y: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
    let (mut w1, mut w2) = (Workspace::new(&h, n), Workspace::new(&frozen, n));
    let a = h.forward_backward(&Batch::new(&x, &y), &mut w1).unwrap();
    let b = frozen
        .forward_backward(&Batch::new(&x, &y), &mut w2)
        .unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(bits(w1.grad_features()), bits(w2.grad_features()));
    let row = k * d;
    for c in 0..5 {
        let (g1, g2) = (
            &w1.grad_weight()[c * row..(c + 1) * row],
            &w2.grad_weight()[c * row..(c + 1) * row],
        );
        if c == 1 || c == 4 {
            assert_eq!(bits(g1), bits(g2));
        } else {
            assert!(g2.iter().all(|&g| g == 0.0) && g1.iter().any(|&g| g != 0.0));
        }
    }
    // plain SGD on the head skips the frozen rows too
    let mut s = frozen.clone();
    s.sgd_step(w1.grad_weight(), 0.5).unwrap();
    assert_eq!(bits(&s.weight()[..row]), bits(&frozen.weight()[..row]));
    assert_ne!(
        bits(&s.weight()[row..2 * row]),
        bits(&frozen.weight()[row..2 * row])
    );
}
