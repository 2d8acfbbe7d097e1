//! A training step's case (a small head, a batch and the calls around the
//! step) and its decoder from fuzz bytes.

use super::bytes::{decode_label, decode_margin_value, decode_value, Bytes};
use arcface::{LabelSmooth, LossConfig, MarginGrad, Reduction, SmoothMode, Threads};

/// One training step and the calls around it, on a small random head.
#[derive(Debug, Clone)]
pub struct StepCase {
    pub f64_path: bool,
    pub n: usize,
    pub d: usize,
    pub c: usize,
    pub k: usize,
    pub scale: f64,
    pub margins: Vec<f64>,
    pub easy: bool,
    pub grad: MarginGrad,
    pub loss: LossConfig,
    pub threads: Threads,
    /// (C·K)×D, as f64 (rounded to `T` by the checker; beyond f32's range
    /// that makes ±∞, which must be an error).
    pub weight: Vec<f64>,
    pub features: Vec<f64>,
    pub labels: Vec<i64>,
    pub soft: Option<Vec<f64>>,
    pub sample_weights: Option<Vec<f64>>,
    pub ws_capacity: usize,
    /// Use a workspace made for another head (must be a Shape error).
    pub foreign_workspace: bool,
    pub lr: f64,
    /// Extra calls after the step: new margins and adaptive-margin labels.
    pub new_margins: Vec<f64>,
    pub adaptive_labels: Vec<i64>,
}

/// `d` fresh data values.
fn decode_row(b: &mut Bytes, d: usize) -> Vec<f64> {
    (0..d).map(|_| decode_value(b)).collect()
}

/// Row kinds shared by weights and features: fresh values, zero, below the
/// norm epsilon, an exact duplicate / negation / power-of-two multiple of a
/// row of `pool`, or an axis.
fn decode_rows(b: &mut Bytes, rows: usize, d: usize, pool: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::with_capacity(rows * d);
    for _ in 0..rows {
        let tag = b.u8() % 8;
        let pool_rows = pool.len() / d.max(1);
        let own_rows = out.len() / d.max(1);
        let row: Vec<f64> = match tag {
            1 => vec![0.0; d],
            2 => decode_row(b, d)
                .iter()
                .map(|v| v * 2f64.powi(-47))
                .collect(),
            3..=5 if pool_rows > 0 => {
                let r = b.u8() as usize % pool_rows;
                let src = &pool[r * d..(r + 1) * d];
                let f = match tag {
                    3 => 1.0,
                    4 => -1.0,
                    _ => 2f64.powi((b.u8() as i8 as i32) / 2),
                };
                src.iter().map(|v| v * f).collect()
            }
            6 if own_rows > 0 => {
                let r = b.u8() as usize % own_rows;
                out[r * d..(r + 1) * d].to_vec()
            }
            7 => {
                let j = b.u8() as usize % d.max(1);
                let mut r = vec![0.0; d];
                if d > 0 {
                    r[j] = if b.u8() & 1 == 0 { 1.0 } else { -1.0 };
                }
                r
            }
            _ => decode_row(b, d),
        };
        out.extend(row);
    }
    out
}

/// The scale: 64, 30, 1, 0, −64, 1e36 (near the f32 overflow guard), a
/// power of two, 1e-300 or any datum.
fn decode_scale(b: &mut Bytes) -> f64 {
    match b.u8() % 10 {
        0 => 64.0,
        1 => 30.0,
        2 => 1.0,
        3 => 0.0,
        4 => -64.0,
        5 => 1e36, // near the f32 overflow guard
        6 => 2f64.powi(b.u8() as i8 as i32),
        7 => 1e-300,
        _ => decode_value(b),
    }
}

/// The loss: reduction, kind (cross-entropy, with `use_soft`, or label
/// smoothing of any ε, mode and class count), then a loss weight if `f0 & 16`
/// and class weights (one too many if `f1 & 8`) if `f0 & 32`.
fn decode_loss(b: &mut Bytes, c: usize, f0: u8, f1: u8) -> LossConfig {
    let reduction = match b.u8() % 3 {
        0 => Reduction::Mean,
        1 => Reduction::Sum,
        _ => Reduction::None,
    };
    let mut loss = match b.u8() % 4 {
        0 | 1 => LossConfig::cross_entropy(),
        2 => LossConfig::cross_entropy().with_use_soft(true),
        _ => {
            let eps = match b.u8() % 4 {
                0 => 0.1,
                1 => 0.0,
                2 => (b.u8() as f64) / 255.0, // 1.0 is invalid
                _ => decode_value(b),
            };
            let mut l = LossConfig::label_smooth(eps);
            l.label_smooth = Some(LabelSmooth {
                label_smooth_val: eps,
                mode: if b.u8() & 1 == 0 {
                    SmoothMode::Original
                } else {
                    SmoothMode::ClassyVision
                },
                num_classes: match b.u8() % 4 {
                    0 => Some(c),
                    1 => Some(c + 1),
                    _ => None,
                },
            });
            l
        }
    }
    .with_reduction(reduction);
    if f0 & 16 != 0 {
        loss = loss.with_loss_weight(decode_value(b));
    }
    if f0 & 32 != 0 {
        let len = if f1 & 8 != 0 { c + 1 } else { c };
        loss = loss.with_class_weight((0..len).map(|_| decode_value(b)).collect());
    }
    loss
}

/// A step case. Flags `f0`: 1 f64, 2 easy margin, 4 straight-through
/// gradient, 8 per-class margins, 16 loss weight, 32 class weights, 64 soft
/// targets, 128 sample weights. Flags `f1`: 1 features one value off (2:
/// short, else long), 4 sequential, 8/16/32/64 class weights, soft targets,
/// sample weights, new margins one too long, 128 a foreign workspace.
pub fn decode_step(data: &[u8]) -> StepCase {
    let mut b = Bytes::new(data);
    let f0 = b.u8();
    let f1 = b.u8();
    let n = b.u8() as usize % 17; // 0 → empty batch
    let d = b.u8() as usize % 65; // 0 → config error
    let c = b.u8() as usize % 33;
    let k = b.u8() as usize % 5;
    let scale = decode_scale(&mut b);
    let margins: Vec<f64> = if f0 & 8 == 0 {
        vec![decode_margin_value(&mut b); c]
    } else {
        (0..c).map(|_| decode_margin_value(&mut b)).collect()
    };
    let loss = decode_loss(&mut b, c, f0, f1);
    let weight = decode_rows(&mut b, c * k, d, &[]);
    let mut features = decode_rows(&mut b, n, d, &weight);
    if f1 & 1 != 0 {
        if f1 & 2 != 0 {
            features.pop();
        } else {
            features.push(0.0);
        }
    }
    let labels = (0..n).map(|_| decode_label(&mut b, c)).collect();
    let soft = (f0 & 64 != 0).then(|| {
        let len = if f1 & 16 != 0 { n * c + 1 } else { n * c };
        (0..len).map(|_| decode_value(&mut b)).collect()
    });
    let sample_weights = (f0 & 128 != 0).then(|| {
        let len = if f1 & 32 != 0 { n + 1 } else { n };
        (0..len).map(|_| decode_value(&mut b)).collect()
    });
    let ws_capacity = b.u8() as usize % 20;
    let lr = decode_value(&mut b);
    let new_margins = {
        let len = if f1 & 64 != 0 { c + 1 } else { c };
        (0..len).map(|_| decode_margin_value(&mut b)).collect()
    };
    let adaptive_labels = (0..b.u8() % 8).map(|_| decode_label(&mut b, c)).collect();
    StepCase {
        f64_path: f0 & 1 != 0,
        n,
        d,
        c,
        k,
        scale,
        margins,
        easy: f0 & 2 != 0,
        grad: if f0 & 4 != 0 {
            MarginGrad::StraightThrough
        } else {
            MarginGrad::Exact
        },
        loss,
        threads: if f1 & 4 != 0 {
            Threads::Sequential
        } else {
            Threads::Rayon
        },
        weight,
        features,
        labels,
        soft,
        sample_weights,
        ws_capacity,
        foreign_workspace: f1 & 128 != 0,
        lr,
        new_margins,
        adaptive_labels,
    }
}
