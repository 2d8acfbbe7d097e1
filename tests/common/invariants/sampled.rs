//! The invariants of PartialFC's sampled step ([`arcface::PartialFc`]) on a
//! decoded [`StepCase`], with the sample rate and the momentum rule taken
//! from one more byte.
//!
//! * A rate outside (0, 1] (0, NaN, 1.5) is an error at construction.
//! * Each of three steps (learning rates 0.1, 0.05, 0.02: a changing
//!   schedule) is `Ok` with a finite loss, finite gradients over
//!   kept·K rows, at least as many kept classes as positives, all distinct
//!   and in range; or an error, which on the first step (nothing pending)
//!   leaves the weights, the momentum and the step count unchanged bit for
//!   bit. An invalid batch is always an error.
//! * After the flush every weight is finite, and every row of a class that
//!   was never kept equals its closed-form trajectory: PyTorch's SGD with a
//!   zero gradient, iterated element by element in f64 (weight decay and
//!   momentum act, the first step sets the buffer to the gradient).

use super::step::build_head;
use super::step_case::StepCase;
use arcface::{Batch, Optimizer, OptimizerConfig, PartialFc, Real, Sgd};

pub fn check_sampled(case: &StepCase, byte: u8) {
    if case.f64_path {
        check_sampled_t::<f64>(case, byte)
    } else {
        check_sampled_t::<f32>(case, byte)
    }
}

fn bits<T: Real>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

const LRS: [f64; 3] = [0.1, 0.05, 0.02];
const WD: f64 = 0.01;
const MU: f64 = 0.9;

fn check_sampled_t<T: Real>(case: &StepCase, byte: u8) {
    let Some(mut head) = build_head::<T>(case) else {
        return;
    };
    let (n, d, c, k) = (case.n, case.d, case.c, case.k);
    let rate = match byte % 8 {
        0 => 0.0,
        1 => f64::NAN,
        2 => 1.5,
        3 => 1.0,
        r => f64::from(r - 3) * 0.2,
    };
    let made = PartialFc::new(&head, rate, n.max(1), u64::from(byte));
    if !(rate > 0.0 && rate <= 1.0) {
        assert!(made.is_err(), "rate {rate} accepted");
        return;
    }
    let mut pfc = made.expect("a valid head and rate make a sampler");
    let nesterov = byte & 8 != 0;
    let sgd = Sgd {
        momentum: MU,
        dampening: 0.0,
        nesterov,
        weight_decay: WD,
    };
    let mut opt = Optimizer::new(OptimizerConfig::Sgd(sgd), &head).expect("valid SGD");

    let x: Vec<T> = case.features.iter().map(|&v| T::from_f64(v)).collect();
    let soft: Option<Vec<T>> = case
        .soft
        .as_ref()
        .map(|s| s.iter().map(|&v| T::from_f64(v)).collect());
    let sw: Option<Vec<T>> = case
        .sample_weights
        .as_ref()
        .map(|s| s.iter().map(|&v| T::from_f64(v)).collect());
    let mut batch = Batch::new(&x, &case.labels);
    if let Some(s) = &soft {
        batch = batch.with_soft_targets(s);
    }
    if let Some(s) = &sw {
        batch = batch.with_sample_weights(s);
    }
    let invalid = n == 0
        || x.len() != n * d
        || case.labels.iter().any(|&l| l < 0 || l >= c as i64)
        || !x.iter().all(|v| v.is_finite_());

    let w0: Vec<f64> = head.weight().iter().map(|v| v.to_f64()).collect();
    let mut ever_kept = vec![false; c];
    let mut taken = 0;
    for (i, &lr) in LRS.iter().enumerate() {
        let before = (bits(head.weight()), bits(opt.state()[0].1), opt.steps());
        match pfc.step(&mut head, &mut opt, &batch, lr) {
            Ok(s) => {
                assert!(!invalid, "an invalid batch was accepted");
                assert!(s.loss.is_finite_(), "loss {:?}", s.loss.to_f64());
                assert!(s.kept >= s.positives && s.kept <= c);
                assert_eq!(pfc.kept().len(), s.kept);
                assert_eq!(pfc.grad_weight().len(), s.kept * k * d);
                assert!(pfc.grad_weight().iter().all(|v| v.is_finite_()));
                assert!(pfc.grad_features().iter().all(|v| v.is_finite_()));
                let mut seen = vec![false; c];
                for &cl in pfc.kept() {
                    assert!(!seen[cl as usize], "class {cl} kept twice");
                    seen[cl as usize] = true;
                    ever_kept[cl as usize] = true;
                }
                taken += 1;
            }
            Err(_) => {
                if i == 0 {
                    let after = (bits(head.weight()), bits(opt.state()[0].1), opt.steps());
                    assert!(after == before, "a refused first step changed the state");
                }
                break;
            }
        }
    }
    pfc.flush(&mut head, &mut opt)
        .expect("flushing finite rows");
    assert!(head.weight().iter().all(|v| v.is_finite_()));

    let (tol, floor) = if T::NAME == "f32" {
        (1e-5, 1e-37)
    } else {
        (1e-12, 1e-300)
    };
    let kd = k * d;
    for cl in (0..c).filter(|&cl| !ever_kept[cl]) {
        let rows = cl * kd..(cl + 1) * kd;
        for (e, &start) in rows.clone().zip(&w0[rows]) {
            let (mut w, mut b) = (start, 0.0);
            for (j, &lr) in LRS[..taken].iter().enumerate() {
                let g = WD * w;
                b = if j == 0 { g } else { MU * b + g };
                w -= lr * if nesterov { g + MU * b } else { b };
            }
            let got = head.weight()[e].to_f64();
            assert!(
                (got - w).abs() <= tol * w.abs() + floor,
                "class {cl} element {e}: {got} vs closed form {w}"
            );
        }
    }
}
