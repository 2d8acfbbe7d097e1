//! Proptest over the invariants: random bytes through the fuzz decoders,
//! and structured strategies for the states random bytes rarely reach.

use crate::common::invariants::adaptive::{check_adaptive, AdaptiveCase};
use crate::common::invariants::margin::{check_margin, Cos, MarginCase};
use crate::common::invariants::margins_file::{check_file, FileCase};
use crate::common::invariants::step::check_step;
use crate::common::invariants::step_case::StepCase;
use crate::{run_adaptive, run_file, run_margin, run_step};
use arcface::{AdaptiveMargins, LossConfig, MarginGrad, Reduction, Threads};
use proptest::prelude::*;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// f32 cosines where the margin is delicate: ±1, ±1 ± up to 8 ulps, ±0,
/// subnormals, the band below 1, and anything at all.
fn edge_cos_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(1.0f32),
        Just(-1.0f32),
        (-8i32..=8).prop_map(|k| f32::from_bits((1.0f32.to_bits() as i32 + k) as u32)),
        (-8i32..=8).prop_map(|k| f32::from_bits(((-1.0f32).to_bits() as i32 + k) as u32)),
        Just(0.0f32),
        Just(-0.0f32),
        (1u32..0x0080_0000).prop_map(f32::from_bits),
        (0u32..4096).prop_map(|k| 1.0 - k as f32 * 2f32.powi(-24)),
        -1.0f32..=1.0,
        any::<f32>(),
    ]
}

fn edge_cos_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0f64),
        Just(-1.0f64),
        (-8i64..=8).prop_map(|k| f64::from_bits((1.0f64.to_bits() as i64 + k) as u64)),
        (0u64..1 << 22).prop_map(|k| 1.0 - k as f64 * 2f64.powi(-53)),
        (1u64..1 << 52).prop_map(f64::from_bits),
        -1.0f64..=1.0,
        any::<f64>(),
    ]
}

/// Finite margins of every sign and size, and a few non-finite ones.
fn edge_margin() -> impl Strategy<Value = f64> {
    use std::f64::consts::PI;
    prop_oneof![
        4 => -4.0f64..7.0,
        1 => Just(0.0),
        1 => Just(PI),
        1 => (-64i64..=64).prop_map(|k| f64::from_bits((PI.to_bits() as i64 + k) as u64)),
        1 => 1e-300f64..1e-3,
        1 => (-308i32..=308).prop_map(|e| 10f64.powi(e)),
        1 => any::<f64>(),
    ]
}

fn grad_mode() -> impl Strategy<Value = MarginGrad> {
    prop_oneof![Just(MarginGrad::Exact), Just(MarginGrad::StraightThrough)]
}

proptest! {
    #![proptest_config(cfg(512))]

    /// `margin_target`, structured: f32 cosines at the edges, every margin.
    #[test]
    fn prop_margin_f32(c in edge_cos_f32(), m in edge_margin(), easy: bool, g in grad_mode()) {
        check_margin(&MarginCase { cos: Cos::F32(c), margin: m, easy, grad: g });
    }

    /// `margin_target`, structured: f64 cosines at the edges, every margin.
    #[test]
    fn prop_margin_f64(c in edge_cos_f64(), m in edge_margin(), easy: bool, g in grad_mode()) {
        check_margin(&MarginCase { cos: Cos::F64(c), margin: m, easy, grad: g });
    }

    /// `margin_target` through the `margin` fuzz decoder.
    #[test]
    fn prop_margin_bytes(b in prop::collection::vec(any::<u8>(), 0..24)) {
        run_margin(&b);
    }

    /// Margins files through the `margins_file` fuzz decoder.
    #[test]
    fn prop_margins_file_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        run_file(&b);
    }

    /// Adaptive margins through the `adaptive_margins` fuzz decoder.
    #[test]
    fn prop_adaptive_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        run_adaptive(&b);
    }
}

/// A line of a margins file: mostly valid numbers, sometimes a token the
/// D10 grammar rejects.
fn file_line() -> impl Strategy<Value = String> {
    let number = (any::<i32>(), 0u32..4, -40i32..40, 0usize..3).prop_map(|(m, frac, e, style)| {
        let s = format!("{}", m as f64 / 10f64.powi(frac as i32));
        match style {
            0 => s,
            1 => format!("{s}e{e}"),
            _ => format!(" \t{s}E+{} ", e.abs()),
        }
    });
    prop_oneof![
        8 => number,
        1 => prop::sample::select(vec![
            "", " ", "inf", "nan", "-inf", "0,5", "1_0.5", "0.1 0.2", ".", "e5", "1e", "+-1",
            "1e400", "\u{feff}0.5", "0x10", "１", "5.5.5", "- 1",
        ])
        .prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Margins files, structured: well-formed files with random line ends, a bad
    /// line now and then, and a class count near the line count.
    #[test]
    fn prop_margins_file_lines(
        lines in prop::collection::vec(file_line(), 0..12),
        ends in prop::collection::vec(prop::sample::select(vec!["\n", "\r\n", "\r"]), 12),
        final_end: bool,
        nc_delta in -1i64..=1,
        via_load: bool,
    ) {
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            text.push_str(l);
            if i + 1 < lines.len() || final_end {
                text.push_str(ends[i]);
            }
        }
        let nc = (lines.len() as i64 + nc_delta).max(0) as usize;
        check_file(&FileCase { num_classes: nc, via_load, bytes: text.into_bytes() });
    }

    /// Adaptive margins, structured: real label lists and parameters.
    #[test]
    fn prop_adaptive(
        nc in 1usize..40,
        raw in prop::collection::vec(any::<u16>(), 0..200),
        min in edge_margin(),
        max in edge_margin(),
        power in prop_oneof![Just(-0.25f64), Just(0.0), -3.0f64..3.0, any::<f64>()],
        bad in prop::option::of(prop_oneof![Just(-1i64), Just(i64::MIN), Just(i64::MAX), Just(40i64)]),
    ) {
        let mut labels: Vec<i64> = raw.iter().map(|&r| (r as usize % nc) as i64).collect();
        if let (Some(b), false) = (bad, labels.is_empty()) {
            let at = raw[0] as usize % labels.len();
            labels[at] = b;
        }
        check_adaptive(&AdaptiveCase {
            params: AdaptiveMargins { margin_min: min, margin_max: max, power },
            labels,
            num_classes: nc,
        });
    }
}

/// A valid step case: finite moderate data, labels in range, right shapes,
/// with zero rows, duplicated weight rows and features parallel to weight
/// rows mixed in. The checker then demands `Ok` with finite results.
fn valid_step() -> impl Strategy<Value = StepCase> {
    (
        1usize..=8,
        1usize..=12,
        1usize..=8,
        1usize..=4,
        any::<bool>(),
    )
        .prop_flat_map(|(n, d, c, k, f64_path)| {
            let val = prop_oneof![
                6 => -4.0f64..4.0,
                1 => Just(0.0),
                1 => (-60i32..60).prop_map(|e| 2f64.powi(e)),
            ];
            (
                prop::collection::vec(val.clone(), c * k * d),
                prop::collection::vec(val.clone(), n * d),
                prop::collection::vec(0..c as i64, n),
                prop::collection::vec((0usize..4, any::<prop::sample::Index>()), n),
                prop::collection::vec(any::<prop::sample::Index>(), c * k),
                prop::option::of(prop::collection::vec(0.0f64..1.0, n * c)),
                prop::option::of(prop::collection::vec(0.0f64..3.0, n)),
                (
                    edge_margin().prop_filter("finite", |m| m.is_finite() && m.abs() < 1e6),
                    prop_oneof![Just(64.0f64), Just(1.0), Just(0.0), -100.0f64..100.0],
                    any::<bool>(),
                    grad_mode(),
                    0usize..6,
                    0usize..3,
                ),
            )
                .prop_map(move |(mut w, mut x, labels, xrow, wdup, soft, sw, misc)| {
                    let (margin, scale, easy, grad, loss_kind, red) = misc;
                    mix_rows(&mut w, &mut x, &wdup, &xrow, d);
                    let loss = valid_loss(loss_kind, red, c);
                    let soft = if loss.use_soft {
                        Some(soft.unwrap_or(vec![0.5; n * c]))
                    } else {
                        soft
                    };
                    StepCase {
                        f64_path,
                        n,
                        d,
                        c,
                        k,
                        scale,
                        margins: vec![margin; c],
                        easy,
                        grad,
                        loss,
                        threads: Threads::Sequential,
                        weight: w,
                        features: x,
                        labels,
                        soft,
                        sample_weights: sw,
                        ws_capacity: n,
                        foreign_workspace: false,
                        lr: 0.1,
                        new_margins: vec![0.3; c],
                        adaptive_labels: vec![0],
                    }
                })
        })
}

/// Weight rows: every third (from the second) a copy of another row, every
/// fifth (from the fifth) zero. Feature rows: by `xrow`'s kind, an exact
/// copy or negation of a weight row, zero, or as drawn.
fn mix_rows(
    w: &mut [f64],
    x: &mut [f64],
    wdup: &[prop::sample::Index],
    xrow: &[(usize, prop::sample::Index)],
    d: usize,
) {
    let rows = wdup.len();
    for (r, idx) in wdup.iter().enumerate() {
        let src = idx.index(rows);
        if r % 3 == 1 && src != r {
            let copy = w[src * d..(src + 1) * d].to_vec();
            w[r * d..(r + 1) * d].copy_from_slice(&copy);
        } else if r % 5 == 4 {
            w[r * d..(r + 1) * d].fill(0.0);
        }
    }
    for (i, (kind, idx)) in xrow.iter().enumerate() {
        let r = idx.index(rows);
        let src = w[r * d..(r + 1) * d].to_vec();
        let dst = &mut x[i * d..(i + 1) * d];
        match kind {
            0 => dst.copy_from_slice(&src),
            1 => dst.iter_mut().zip(&src).for_each(|(a, b)| *a = -b),
            2 => dst.fill(0.0),
            _ => {}
        }
    }
}

/// A valid loss: cross-entropy (plain, with loss or class weights, or
/// `use_soft`) or label smoothing 0.1, under any reduction.
fn valid_loss(kind: usize, reduction: usize, c: usize) -> LossConfig {
    let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][reduction];
    match kind {
        0 | 1 => LossConfig::cross_entropy(),
        2 => LossConfig::label_smooth(0.1),
        3 => LossConfig::cross_entropy().with_loss_weight(0.5),
        4 => {
            LossConfig::cross_entropy().with_class_weight((0..c).map(|j| 0.5 + j as f64).collect())
        }
        _ => LossConfig::cross_entropy().with_use_soft(true),
    }
    .with_reduction(reduction)
}

proptest! {
    #![proptest_config(cfg(96))]

    /// A training step, structured: valid batches must give finite losses and
    /// gradients (and everything else `check_step` asks).
    #[test]
    fn prop_step_valid(case in valid_step(), byte in any::<u8>()) {
        check_step(&case);
        crate::common::invariants::sampled::check_sampled(&case, byte);
        crate::common::invariants::lifecycle::check_lifecycle(&case);
    }

    /// A training step through the `step` fuzz decoder (mostly error paths).
    #[test]
    fn prop_step_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        run_step(&b);
    }
}
