//! Robustness invariants shared by `tests/robustness.rs` (stable, proptest)
//! and the cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly, libFuzzer),
//! which include this file with `#[path]`. One decoder per target turns raw
//! bytes into a small, bounded case; one checker per target asserts the
//! invariants of issue 5 over the public API. A corpus file therefore means
//! the same thing to the fuzzer and to `cargo test`.
//!
//! The decoders never fail: a byte that is not there reads as 0, so every
//! input, however short, is a case.
//!
//! Bounds (so that one execution takes microseconds): N ≤ 16 samples,
//! D ≤ 64 channels, C ≤ 32 classes, K ≤ 4 sub-centres; margins files of at
//! most the input's length; adaptive margins over at most 256 labels and
//! `num_classes` ≤ 64 or beyond what a `Vec<f64>` can hold (see
//! [`decode_adaptive`]).
#![allow(dead_code)]

use arcface::{
    load_margins_file, margin_target, parse_margins_file, AdaptiveMargins, ArcFaceHead, Batch,
    Branch, Error, HeadConfig, LabelSmooth, LossConfig, MarginConstants, MarginGrad, Margins, Real,
    Reduction, SmoothMode, Threads, Workspace, SIN_THETA_FLOOR,
};

// ------------------------------------------------------------------ bytes

/// A cursor over fuzz input; reads past the end give zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        r
    }
}

/// `x` moved by `k` units in the last place (`k > 0` towards +∞), through
/// the bit pattern; for finite, non-zero `x` of one sign only.
fn ulps_f32(x: f32, k: i32) -> f32 {
    let b = x.to_bits() as i64;
    let step = if x > 0.0 { k as i64 } else { -(k as i64) };
    f32::from_bits((b + step) as u32)
}

fn ulps_f64(x: f64, k: i64) -> f64 {
    let b = x.to_bits() as i128;
    let step = if x > 0.0 { k as i128 } else { -(k as i128) };
    f64::from_bits((b + step) as u64)
}

/// A margin of any sign and size, NaN and ±∞ included (tag byte + payload).
pub fn decode_margin_value(b: &mut Bytes) -> f64 {
    use std::f64::consts::PI;
    let tag = b.u8() % 12;
    let p = b.u64();
    let sign = if p & 1 == 0 { 1.0 } else { -1.0 };
    match tag {
        0 => 0.5,
        1 => f64::from_bits(p), // anything, NaN and ±∞ included
        2 => 0.0 * sign,
        3 => sign * f64::from_bits((p >> 1) & 0x000F_FFFF_FFFF_FFFF), // subnormal
        4 => sign * 1e-300 * ((p >> 1) % 1000) as f64,                // tiny
        5 => ulps_f64(PI, (p >> 1) as i8 as i64),                     // π ± 128 ulps
        6 => (PI as f32) as f64 * (1.0 + ((p >> 1) as i8 as f64) * 2f64.powi(-24)), // f32's π ± ulps
        7 => PI + ((p >> 1) % 10_000) as f64 / 1000.0,                              // above π
        8 => -(((p >> 1) % 100_000) as f64) / 10_000.0, // negative, down to −10
        9 => ((p >> 1) % 65_536) as f64 / 65_536.0 * PI, // usual range
        10 => sign * 10f64.powi(((p >> 1) % 309) as i32), // huge, also beyond f32
        _ => sign * f32::MAX as f64 * (1.0 + ((p >> 1) as i8 as f64) * 2f64.powi(-26)), // f32 overflow edge
    }
}

// ------------------------------------------------------------------ 1. margin

/// The cosine fed to [`margin_target`], in the precision under test.
#[derive(Debug, Clone, Copy)]
pub enum Cos {
    F32(f32),
    F64(f64),
}

/// One call of [`margin_target`].
#[derive(Debug, Clone, Copy)]
pub struct MarginCase {
    pub cos: Cos,
    pub margin: f64,
    pub easy: bool,
    pub grad: MarginGrad,
}

/// Cosines: exactly ±1, a few ulps beyond or inside ±1, subnormals, ±0,
/// NaN, ±∞, the margin's own threshold ± a few ulps, and anything else.
pub fn decode_margin(data: &[u8]) -> MarginCase {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let margin = decode_margin_value(&mut b);
    let tag = b.u8() % 10;
    let p = b.u64();
    let sign: f64 = if p & 1 == 0 { 1.0 } else { -1.0 };
    let k = ((p >> 1) as i8 as i32).clamp(-16, 16);
    let f64_path = flags & 1 != 0;
    let t = MarginConstants::new(margin).threshold;
    let cos = if f64_path {
        Cos::F64(match tag {
            0 => f64::from_bits(p),
            1 => sign,
            2 => ulps_f64(sign, k as i64),
            3 => 0.0 * sign,
            4 => sign * f64::from_bits((p >> 1) & 0x000F_FFFF_FFFF_FFFF),
            5 => f64::NAN,
            6 => sign * f64::INFINITY,
            7 if t.is_finite() && t != 0.0 => ulps_f64(t, k as i64),
            8 => 1.0 - ((p >> 1) % 4096) as f64 * 2f64.powi(-53), // the SIN_THETA_FLOOR band
            _ => ((p >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0,
        })
    } else {
        let sign = sign as f32;
        Cos::F32(match tag {
            0 => f32::from_bits(p as u32),
            1 => sign,
            2 => ulps_f32(sign, k),
            3 => 0.0 * sign,
            4 => sign * f32::from_bits(((p >> 1) as u32) & 0x007F_FFFF),
            5 => f32::NAN,
            6 => sign * f32::INFINITY,
            7 if (t as f32).is_finite() && t as f32 != 0.0 => ulps_f32(t as f32, k),
            8 => 1.0 - ((p >> 1) % 64) as f32 * 2f32.powi(-24),
            _ => ((p >> 40) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0,
        })
    };
    MarginCase {
        cos,
        margin,
        easy: flags & 2 != 0,
        grad: if flags & 4 != 0 {
            MarginGrad::StraightThrough
        } else {
            MarginGrad::Exact
        },
    }
}

pub fn check_margin(case: &MarginCase) {
    match case.cos {
        Cos::F32(c) => check_margin_t::<f32>(c, case, f32::EPSILON as f64 / 2.0),
        Cos::F64(c) => check_margin_t::<f64>(c, case, f64::EPSILON / 2.0),
    }
}

/// Invariants of [`margin_target`] for a cosine `c` of type `T` (unit
/// roundoff `u`, 2⁻²⁴ for f32 and 2⁻⁵³ for f64):
///
/// 1. **No panic**, whatever the input (NaN cosine, NaN or infinite margin).
/// 2. **Branch.** With $\bar c = \min(\max(c, -1), 1)$ and the threshold
///    rounded once to `T` (D8), the branch is `Phi` iff $\bar c > 0$ (easy)
///    or $\bar c > t_T$ (normal), with strict `>` (SPEC §3); otherwise
///    `EasyCos` or `Fallback`. Against the exact f64 threshold $t$ the
///    branch may differ only for $|\bar c - t| \le 2u|t|$ (one rounding).
/// 3. **Finite.** A finite cosine and a finite margin give a finite value
///    and a finite derivative (D1, D2, D7).
/// 4. **Value.** It agrees with the f64 evaluation of the documented
///    formula at the same $\bar c$ and the exact margin $m$:
///    $|\hat\phi - \cos(\arccos\bar c + m)| \le 4(u + u_{64})(3 + |m|)$.
///    Derivation: $\bar c$ is exact in both; `acos` in `T` has relative
///    error ≤ 2u, so $|\delta\theta| \le 2u\pi$; rounding $m$ to `T` costs
///    $u|m|$; the sum $\theta+m$ costs $u(\pi + |m|)$; `cos` ≤ 2u absolute;
///    the Lipschitz constant of cos is 1. Total $u(3\pi + 2 + 2|m|) \le
///    4u(3 + |m|)$, and the same again for the f64 reference. There is no
///    $\sqrt{u}$ term because both sides start from the same cosine: the
///    ill-conditioning of `acos` at ±1 ($\delta\theta \approx
///    \sqrt{2\delta c}$) applies to errors *in c*, and there are none here
///    (the step target, where the f32 and f64 cosines differ, checks
///    finiteness, not agreement). For $|m| \gtrsim 2^{21}$ in f32 the bound
///    exceeds 2 and only finiteness is left: `T` cannot resolve θ next to m.
///    Fallback: $|\hat\phi - (\bar c - m\sin m)| \le 2(u+u_{64})(1 + |m \sin m|)$
///    (two roundings: $s$ to `T`, the difference), unless $|m\sin m|$ is
///    beyond `T`'s range, where only finiteness is asked; easy fallback:
///    exactly $\bar c$.
/// 5. **Derivative.** Straight-through and both fallbacks: exactly 1.
///    `Exact`: $d = \sin(\theta+m)/\sigma$, $\sigma = \max(\sqrt{(1-\bar c)(1+\bar c)},
///    10^{-6})$ (D2). The numerator carries the value's error $e_v$, σ a
///    relative error ≤ 4u (two products and a square root, the floor
///    rounded to `T`), the division u: $|\hat d - d| \le e_v/\sigma + 8(u+u_{64})|d|$.
pub fn check_margin_t<T: Real>(c: T, case: &MarginCase, u: f64) {
    let k = MarginConstants::new(case.margin);
    let (v, d, branch) = margin_target(c, &k, case.easy, case.grad);
    let cf = c.to_f64();
    if cf.is_nan() {
        return; // only "no panic": a NaN cosine cannot come out of finite data
    }
    let ctx = || format!("{case:?} (T = {})", T::NAME);

    // 2. branch, by the strict-comparison rule in T
    let cc = cf.clamp(-1.0, 1.0);
    let cc_t = T::from_f64(cc);
    let t_t = T::from_f64(k.threshold);
    let take_phi = if case.easy {
        cc_t > T::ZERO
    } else {
        cc_t > t_t
    };
    let want = match (take_phi, case.easy) {
        (true, _) => Branch::Phi,
        (false, true) => Branch::EasyCos,
        (false, false) => Branch::Fallback,
    };
    assert_eq!(branch, want, "branch, {}", ctx());
    if !case.easy && k.threshold.is_finite() && (cc > k.threshold) != take_phi {
        assert!(
            (cc - k.threshold).abs() <= 2.0 * u * k.threshold.abs(),
            "branch differs from the exact f64 rule away from the threshold, {}",
            ctx()
        );
    }

    if !case.margin.is_finite() {
        return; // D7: rejected before it reaches a head; here only "no panic"
    }
    // 3. finite
    assert!(
        v.is_finite_() && d.is_finite_(),
        "finite cosine and margin gave value {v}, derivative {d}, {}",
        ctx()
    );

    let (v, d) = (v.to_f64(), d.to_f64());
    let uu = u + f64::EPSILON / 2.0;
    let m = case.margin;
    match branch {
        Branch::EasyCos => {
            assert_eq!(v, cc, "easy fallback keeps the cosine, {}", ctx());
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Fallback if k.sinm_m.abs() > T::MAX.to_f64() => {
            // m sin m itself is beyond T: no value to agree with, finite is all
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Fallback => {
            let want = cc - k.sinm_m;
            let tol = 2.0 * uu * (1.0 + k.sinm_m.abs());
            assert!(
                (v - want).abs() <= tol,
                "fallback {v} vs {want} (tol {tol:e}), {}",
                ctx()
            );
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Phi => {
            let theta = cc.acos();
            let want = (theta + m).cos();
            let tol_v = 4.0 * uu * (3.0 + m.abs());
            assert!(
                (v - want).abs() <= tol_v,
                "phi {v} vs {want} (tol {tol_v:e}), {}",
                ctx()
            );
            match case.grad {
                MarginGrad::StraightThrough => assert_eq!(d, 1.0, "{}", ctx()),
                MarginGrad::Exact => {
                    let sigma = ((1.0 - cc) * (1.0 + cc)).sqrt().max(SIN_THETA_FLOOR);
                    let want_d = (theta + m).sin() / sigma;
                    let tol_d = tol_v / sigma + 8.0 * uu * want_d.abs();
                    assert!(
                        (d - want_d).abs() <= tol_d,
                        "derivative {d} vs {want_d} (tol {tol_d:e}), {}",
                        ctx()
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------ 2. step

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

/// A datum: mostly small multiples of 1/16, plus ±0, huge and tiny powers
/// of two (2^±1016, also past f32's range), ~1e-13 (a row of those is below
/// the 1e-12 normalisation epsilon), f32 subnormals, ±f32::MAX, NaN, ±∞ and
/// raw f32/f64 bit patterns.
pub fn decode_value(b: &mut Bytes) -> f64 {
    let tag = b.u8();
    match tag {
        0..=0xDF => ((tag as i32 + 112) % 224 - 112) as f64 / 16.0, // 0 → 0.0
        0xE0 => 0.0,
        0xE1 => -0.0,
        0xE2 => 2f64.powi((b.u8() as i8 as i32) * 8),
        0xE3 => -(2f64.powi((b.u8() as i8 as i32) * 8)),
        0xE4 => f32::from_bits(b.u32()) as f64,
        0xE5 => f64::from_bits(b.u64()),
        0xE6 => f32::from_bits(b.u16() as u32) as f64,
        0xE7 => 1e-13 * (b.u8() as f64 - 128.0) / 16.0,
        0xE8 => f32::MAX as f64,
        0xE9 => -(f32::MAX as f64),
        0xEA => f64::NAN,
        0xEB => f64::INFINITY,
        0xEC => f64::NEG_INFINITY,
        _ => (tag as i32 - 0xF5) as f64, // −9..=10
    }
}

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

fn decode_label(b: &mut Bytes, c: usize) -> i64 {
    let tag = b.u8();
    let c = c as i64;
    match tag {
        0xF0 => -1,
        0xF1 => c,
        0xF2 => i64::MIN,
        0xF3 => i64::MAX,
        0xF4 => c + b.u8() as i64,
        _ => tag as i64 % c.max(1),
    }
}

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
                _ => decode_value(&mut b),
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
        loss = loss.with_loss_weight(decode_value(&mut b));
    }
    if f0 & 32 != 0 {
        let len = if f1 & 8 != 0 { c + 1 } else { c };
        loss = loss.with_class_weight((0..len).map(|_| decode_value(&mut b)).collect());
    }
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

pub fn check_step(case: &StepCase) {
    if case.f64_path {
        check_step_t::<f64>(case)
    } else {
        check_step_t::<f32>(case)
    }
}

fn to_t<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn all_finite<T: Real>(v: &[T]) -> bool {
    v.iter().all(|x| x.is_finite_())
}

fn bits<T: Real>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// What a caller can see of a workspace: gradients and per-sample losses.
fn snapshot<T: Real>(ws: &Workspace<T>) -> [Vec<u64>; 3] {
    [
        bits(ws.grad_features()),
        bits(ws.grad_weight()),
        bits(ws.sample_losses()),
    ]
}

/// An error about finite values that `T` cannot carry (a row norm, a loss,
/// a gradient): `Error::Overflow`, or a `NonFinite` naming a computed
/// result rather than an input array. Allowed for valid input.
pub fn is_overflow_error(e: &Error) -> bool {
    match e {
        Error::Overflow { .. } => true,
        Error::NonFinite { what, .. } => {
            !["features", "weight", "soft_targets", "sample_weights"].contains(what)
        }
        _ => false,
    }
}

/// Invariants of a training step (issue 5, target 2), for `T` = f32 or f64:
///
/// * construction: an error only for a documented reason (bad shape,
///   non-finite weight, invalid configuration, or a value finite in f64
///   that overflows `T`); a head otherwise.
/// * `forward_backward` either returns a typed error and leaves everything a
///   caller can see unchanged (the head's weights and margins, and the
///   workspace's gradients and per-sample losses, bit for bit, from the
///   priming step before it), or a finite loss with finite gradients of the
///   right shapes (N×D, CK×D, N). One exception: when finite data makes a
///   loss or gradient beyond `T`'s range, the `NonFinite` error may instead
///   leave the workspace cleared (no per-sample losses, no feature
///   gradients, zero weight gradients), never partial or stale results.
///   An invalid batch (empty, wrong length,
///   label outside `0..C` (D12), NaN/∞ datum, `use_soft` without soft
///   targets (D4), foreign workspace) is always an error; a valid one is
///   `Ok`, or an overflow error naming a computed result (never `Ok(∞)`).
/// * `loss` returns the same value, bit for bit, as `forward_backward`.
/// * `logits`, `logits_train`, `predict`: finite results of the right
///   shapes or an error; `logits_into` leaves `out` alone on error.
/// * `sgd_step`, `set_margins`, `set_adaptive_margins`: on error the weights
///   and margins are unchanged bit for bit; on success they are finite.
pub fn check_step_t<T: Real>(case: &StepCase) {
    let (n, d, c, k) = (case.n, case.d, case.c, case.k);
    let cfg = HeadConfig::new(c, d)
        .with_subcenters(k)
        .with_scale(case.scale)
        .with_margins(Margins::PerClass(case.margins.clone()))
        .with_easy_margin(case.easy)
        .with_loss(case.loss.clone())
        .with_margin_grad(case.grad);
    let w: Vec<T> = to_t(&case.weight);
    let head = ArcFaceHead::<T>::from_weight(cfg.clone(), &w);
    let cfg_ok = cfg.validate().is_ok();
    let mut head = match head {
        Ok(h) => {
            assert!(cfg_ok, "a head from an invalid config: {case:?}");
            assert!(all_finite(&w) && w.len() == c * k * d);
            h.with_threads(case.threads)
        }
        Err(e) => {
            // beyond the documented checks, a value finite in f64 may not
            // fit `T`: margins times the scale, loss or class weights, a
            // weight row whose norm overflows
            let documented = !cfg_ok
                || !all_finite(&w)
                || is_overflow_error(&e)
                || matches!(
                    e,
                    Error::InvalidConfig {
                        field: "margins" | "loss_weight" | "class_weight" | "scale",
                        ..
                    }
                );
            assert!(documented, "unexpected construction error {e:?}: {case:?}");
            return;
        }
    };

    // prime the workspace so that "nothing written" is observable
    let mut ws = if case.foreign_workspace {
        let other = ArcFaceHead::<T>::new(HeadConfig::new(c + 1, d).with_subcenters(k), 0)
            .expect("valid config");
        Workspace::new(&other, case.ws_capacity)
    } else {
        Workspace::new(&head, case.ws_capacity)
    };
    let prime_x = vec![T::ONE; d];
    let mut prime_t = vec![T::ZERO; c];
    prime_t[0] = T::ONE;
    let prime = Batch::new(&prime_x, &[0]).with_soft_targets(&prime_t);
    let _ = head.forward_backward(&prime, &mut ws);
    let before = snapshot(&ws);
    let w_before = bits(head.weight());

    let x: Vec<T> = to_t(&case.features);
    let soft: Option<Vec<T>> = case.soft.as_deref().map(to_t);
    let sw: Option<Vec<T>> = case.sample_weights.as_deref().map(to_t);
    let mut batch = Batch::new(&x, &case.labels);
    if let Some(s) = &soft {
        batch = batch.with_soft_targets(s);
    }
    if let Some(s) = &sw {
        batch = batch.with_sample_weights(s);
    }

    let invalid = n == 0
        || x.len() != n * d
        || case.foreign_workspace
        || !all_finite(&x)
        || case.labels.iter().any(|&l| l < 0 || l >= c as i64)
        || match &soft {
            Some(s) => s.len() != n * c || !all_finite(s),
            None => case.loss.use_soft,
        }
        || sw.as_ref().is_some_and(|s| s.len() != n || !all_finite(s));

    let r = head.forward_backward(&batch, &mut ws);
    match &r {
        Err(e) => {
            assert!(
                invalid || is_overflow_error(e),
                "error {e:?} for a valid batch: {case:?}"
            );
            assert!(!e.to_string().is_empty());
            let cleared = ws.grad_features().is_empty()
                && ws.sample_losses().is_empty()
                && ws.grad_weight().iter().all(|&g| g == T::ZERO);
            assert!(
                snapshot(&ws) == before || (is_overflow_error(e) && cleared),
                "an error wrote into the workspace ({e:?}): {case:?}"
            );
        }
        Ok(loss) => {
            assert!(!invalid, "Ok for an invalid batch: {case:?}");
            assert!(loss.is_finite_(), "finite data gave loss {loss}: {case:?}");
            assert_eq!(ws.grad_features().len(), n * d);
            assert_eq!(ws.grad_weight().len(), c * k * d);
            assert_eq!(ws.sample_losses().len(), n);
            assert!(
                all_finite(ws.grad_features()) && all_finite(ws.grad_weight()),
                "finite data gave non-finite gradients (loss {loss}): {case:?}"
            );
            assert!(all_finite(ws.sample_losses()), "{case:?}");
            let again = head.loss(&batch, &mut ws).expect("loss after a good step");
            assert_eq!(
                again.to_f64().to_bits(),
                loss.to_f64().to_bits(),
                "loss() and forward_backward() disagree: {case:?}"
            );
        }
    }
    assert_eq!(bits(head.weight()), w_before, "a step changed the weights");

    // inference
    if !case.foreign_workspace {
        match head.logits(&x) {
            Ok(z) => {
                assert_eq!(z.len(), (x.len() / d) * c);
                assert!(all_finite(&z), "non-finite logits: {case:?}");
            }
            Err(e) => assert!(
                x.is_empty()
                    || !x.len().is_multiple_of(d)
                    || !all_finite(&x)
                    || is_overflow_error(&e),
                "logits error {e:?}: {case:?}"
            ),
        }
        if let Ok(z) = head.logits_train(&x, &case.labels) {
            assert!(all_finite(&z), "non-finite training logits: {case:?}");
        }
        if let Ok(p) = head.predict(&x) {
            assert!(p.labels.iter().all(|&l| l < c));
            assert!(
                p.scores
                    .iter()
                    .all(|s| s.is_finite_() && *s >= T::ZERO && s.to_f64() <= 1.0 + 1e-6),
                "scores outside [0, 1]: {case:?}"
            );
        }
        let sentinel = T::from_f64(-12345.0);
        let mut out = vec![sentinel; n * c];
        if head.logits_into(&x, &mut ws, &mut out).is_err() {
            assert!(
                out.iter().all(|&v| v == sentinel),
                "logits_into wrote on error"
            );
        }
    }

    // sgd: refused steps change nothing
    let grad: Vec<T> = if r.is_ok() {
        ws.grad_weight().to_vec()
    } else {
        vec![T::from_f64(case.lr); c * k * d]
    };
    let w_before = bits(head.weight());
    match head.sgd_step(&grad, T::from_f64(case.lr)) {
        Err(_) => assert_eq!(bits(head.weight()), w_before, "a refused sgd_step wrote"),
        Ok(()) => assert!(all_finite(head.weight())),
    }
    let w_before = bits(head.weight());
    assert!(head.sgd_step(&grad[..grad.len() - 1], T::ONE).is_err());
    assert_eq!(bits(head.weight()), w_before);

    // margins: refused updates change nothing
    let m_before = head.margins().to_vec();
    match head.set_margins(&case.new_margins) {
        Ok(()) => assert_eq!(head.margins(), &case.new_margins[..]),
        Err(_) => assert_eq!(head.margins(), &m_before[..], "a refused set_margins wrote"),
    }
    let m_before = head.margins().to_vec();
    match head.set_adaptive_margins(&case.adaptive_labels, AdaptiveMargins::default()) {
        Ok(()) => assert!(head.margins().iter().all(|m| m.is_finite())),
        Err(_) => assert_eq!(
            head.margins(),
            &m_before[..],
            "a refused adaptive update wrote"
        ),
    }
    assert_eq!(bits(head.weight()), w_before);
}

// ------------------------------------------------------------------ 3. margins file

/// A margins file: the class count, the route (text or a real file), bytes.
#[derive(Debug, Clone)]
pub struct FileCase {
    pub num_classes: usize,
    pub via_load: bool,
    pub bytes: Vec<u8>,
}

/// `num_classes` is 0..=39 or huge (`usize::MAX`, `isize::MAX`, 2^32 + x):
/// parsing allocates by the file, never by the class count.
fn decode_num_classes(b: &mut Bytes) -> usize {
    match b.u8() {
        0xF0 => usize::MAX,
        0xF1 => isize::MAX as usize,
        0xF2 => (1usize << 32) + b.u8() as usize,
        t => t as usize % 40,
    }
}

pub fn decode_file(data: &[u8]) -> FileCase {
    let mut b = Bytes::new(data);
    let num_classes = decode_num_classes(&mut b);
    let via_load = b.u8() & 1 != 0;
    FileCase {
        num_classes,
        via_load,
        bytes: b.rest().to_vec(),
    }
}

/// The D10 grammar, written again from DEVIATIONS.md as an oracle:
/// `Ok(values)` or `Err(line)` (0 = the whole file). Lines end with `\n`,
/// `\r\n` or `\r`; a final line end is optional; each line, stripped of
/// spaces and tabs at both ends, is `[+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?` and
/// finite in f64. Like the implementation, it reports the first bad line
/// among the first `num_classes + 1` lines, else a wrong count (line 0).
pub fn oracle_margins_file(text: &str, num_classes: usize) -> Result<Vec<f64>, usize> {
    if text.starts_with('\u{feff}') {
        return Err(1);
    }
    let lines = split_universal(text);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().take(num_classes.saturating_add(1)) {
        let s = line.trim_matches(|ch| ch == ' ' || ch == '\t');
        match decimal(s) {
            Some(v) => out.push(v),
            None => return Err(i + 1),
        }
    }
    if lines.len() != num_classes {
        return Err(0);
    }
    Ok(out)
}

fn split_universal(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            None => {
                lines.push(rest);
                break;
            }
            Some(p) => {
                lines.push(&rest[..p]);
                let skip = if rest[p..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[p + skip..];
            }
        }
    }
    lines
}

/// The 1-based line (universal newlines) holding byte offset `at`.
pub fn line_of_offset(bytes: &[u8], at: usize) -> usize {
    let mut line = 1;
    let mut i = 0;
    while i < at.min(bytes.len()) {
        match bytes[i] {
            b'\n' => line += 1,
            b'\r' => {
                line += 1;
                if bytes.get(i + 1) == Some(&b'\n') && i + 1 < at {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    line
}

fn decimal(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

fn temp_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "arcface-robustness-{}-{:?}.txt",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// Invariants of a margins file (issue 5, target 3): a typed
/// [`Error::MarginsFile`] or exactly `num_classes` finite margins; the same
/// verdict, values (bit for bit) and error line as the oracle above; no
/// panic and no allocation beyond the file's size, whatever the class count.
/// Through `load_margins_file`, bytes that are not UTF-8 are an error naming
/// the line (universal newlines, as the parser counts them) of the first bad
/// byte.
pub fn check_file(case: &FileCase) {
    let nc = case.num_classes;
    let (got, text): (Result<Vec<f64>, Error>, String) = if case.via_load {
        let path = temp_path();
        std::fs::write(&path, &case.bytes).expect("temp file");
        let r = load_margins_file(&path, nc);
        let _ = std::fs::remove_file(&path);
        match std::str::from_utf8(&case.bytes) {
            Ok(t) => (r, t.to_owned()),
            Err(e) => {
                let want = line_of_offset(&case.bytes, e.valid_up_to());
                match r {
                    Err(Error::MarginsFile { line, .. }) => assert_eq!(
                        line, want,
                        "invalid UTF-8 reported on the wrong line: {case:?}"
                    ),
                    other => panic!("invalid UTF-8 gave {other:?}: {case:?}"),
                }
                return;
            }
        }
    } else {
        let t = String::from_utf8_lossy(&case.bytes).into_owned();
        (parse_margins_file(&t, nc), t)
    };
    let want = oracle_margins_file(&text, nc);
    match (got, want) {
        (Ok(v), Ok(w)) => {
            assert_eq!(v.len(), nc);
            assert!(v.iter().all(|m| m.is_finite()));
            assert_eq!(
                bits_f64(&v),
                bits_f64(&w),
                "values differ from the oracle: {case:?}"
            );
        }
        (Err(Error::MarginsFile { line, reason }), Err(want_line)) => {
            assert_eq!(line, want_line, "error line ({reason}) vs oracle: {case:?}");
        }
        (got, want) => panic!("parser {got:?} but oracle {want:?}: {case:?}"),
    }
}

fn bits_f64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ------------------------------------------------------------------ 3b. adaptive

#[derive(Debug, Clone)]
pub struct AdaptiveCase {
    pub params: AdaptiveMargins,
    pub labels: Vec<i64>,
    pub num_classes: usize,
}

/// `num_classes` is 0..=64, or larger than any `Vec<f64>` can be
/// (> `isize::MAX / 8`), where only a typed error is possible. Sizes in
/// between are legal and make a result of that length, so a fuzzer would
/// only measure the allocator there.
pub fn decode_adaptive(data: &[u8]) -> AdaptiveCase {
    let mut b = Bytes::new(data);
    let num_classes = match b.u8() {
        0xF0 => usize::MAX,
        0xF1 => isize::MAX as usize,
        0xF2 => (isize::MAX as usize) / 8 + 1 + b.u8() as usize,
        t => t as usize % 65,
    };
    let params = match b.u8() % 4 {
        0 => AdaptiveMargins::default(),
        _ => AdaptiveMargins {
            margin_min: decode_margin_value(&mut b),
            margin_max: decode_margin_value(&mut b),
            power: match b.u8() % 4 {
                0 => -0.25,
                1 => 0.0,
                2 => decode_value(&mut b),
                _ => decode_margin_value(&mut b),
            },
        },
    };
    let n = b.u8() as usize;
    let labels = (0..n)
        .map(|_| decode_label(&mut b, num_classes.min(64)))
        .collect();
    AdaptiveCase {
        params,
        labels,
        num_classes,
    }
}

/// Invariants of [`AdaptiveMargins::compute`] (issue 5, target 3): a typed
/// error when a parameter is not finite, there are no labels, a label is
/// outside `0..num_classes` (D6), or `num_classes` is 0 or too large to
/// hold; for valid input an `AdaptiveMargins` error only if the result
/// overflows f64 (`count^power` or the affine map); otherwise `num_classes` finite
/// margins, each between `margin_min` and `margin_max` up to one rounding
/// of the affine map ($2u(|m_{min}| + |m_{max}|)$), all `margin_max` when
/// every class is equally frequent (D5). No panic.
pub fn check_adaptive(case: &AdaptiveCase) {
    let p = case.params;
    let nc = case.num_classes;
    let r = p.compute(&case.labels, nc);
    let bad_input = !(p.margin_min.is_finite() && p.margin_max.is_finite() && p.power.is_finite())
        || nc == 0
        || case.labels.is_empty()
        || case.labels.iter().any(|&l| l < 0 || l as u64 >= nc as u64)
        || nc > isize::MAX as usize / 8;
    match r {
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::AdaptiveMargins { .. } | Error::LabelOutOfRange { .. }
                ),
                "untyped error {e:?}"
            );
            // valid input may still fail when the result overflows f64
            // (count^power or the affine map): then it is that error
            assert!(
                bad_input || matches!(e, Error::AdaptiveMargins { .. }),
                "error {e:?} for valid input: {case:?}"
            );
        }
        Ok(m) => {
            assert!(!bad_input, "Ok for bad input: {case:?}");
            assert_eq!(m.len(), nc);
            let lo = p.margin_min.min(p.margin_max);
            let hi = p.margin_min.max(p.margin_max);
            let tol = 2.0 * f64::EPSILON * (p.margin_min.abs() + p.margin_max.abs());
            for &v in &m {
                assert!(v.is_finite(), "{case:?}");
                assert!(
                    v >= lo - tol && v <= hi + tol,
                    "margin {v} outside [{lo}, {hi}]: {case:?}"
                );
            }
            let mut counts = vec![0usize; nc];
            for &l in &case.labels {
                counts[l as usize] += 1;
            }
            let first = counts[0].max(1);
            if p.power == 0.0 || counts.iter().all(|&x| x.max(1) == first) {
                assert!(m.iter().all(|&v| v == p.margin_max), "D5: {case:?}");
            }
        }
    }
}
