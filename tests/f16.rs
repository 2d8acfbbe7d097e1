//! f16 / bf16 storage (D13): widened at the boundary, f32 arithmetic.

mod common;

use arcface::half::{bf16, f16};
use arcface::{widen_f16, ArcFaceHead, Batch, HeadConfig, Workspace};
use common::data::uniform;

#[test]
fn half_weights_load_exactly() {
    let w = uniform(6 * 3 * 32, 1);
    let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let cfg = HeadConfig::new(6, 32).with_subcenters(3);
    let h16 = ArcFaceHead::from_weight_f16(cfg.clone(), &w16).unwrap();
    let hb = ArcFaceHead::from_weight_bf16(cfg, &wb).unwrap();
    for ((a, b), (c, d)) in h16
        .weight()
        .iter()
        .zip(&w16)
        .zip(hb.weight().iter().zip(&wb))
    {
        assert_eq!(*a, b.to_f32());
        assert_eq!(*c, d.to_f32());
    }
    assert!(ArcFaceHead::from_weight_f16(HeadConfig::new(6, 32), &w16[..5]).is_err());
    assert!(ArcFaceHead::from_weight_f16(HeadConfig::new(1, 2), &[f16::NAN, f16::ONE]).is_err());
}

#[test]
fn half_storage_stays_close_to_f32() {
    // f16 rounding of weights and features (relative 2^-11) moves the
    // cosines by about 1e-3; the logits by S times that
    let (c, d, n) = (20, 64, 8);
    let w = uniform(c * d, 3);
    let x = uniform(n * d, 4);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % c as i64).collect();
    let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    let x16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let mut xw = vec![0.0f32; x.len()];
    widen_f16(&x16, &mut xw).unwrap();
    let h32 = ArcFaceHead::from_weight(HeadConfig::new(c, d), &w).unwrap();
    let h16 = ArcFaceHead::from_weight_f16(HeadConfig::new(c, d), &w16).unwrap();
    let (a, b) = (h32.logits(&x).unwrap(), h16.logits(&xw).unwrap());
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 64.0 * 4e-3, "{p} vs {q}");
    }
    let mut ws = Workspace::new(&h16, n);
    let l16 = h16
        .forward_backward(&Batch::new(&xw, &labels), &mut ws)
        .unwrap();
    let mut ws32 = Workspace::new(&h32, n);
    let l32 = h32
        .forward_backward(&Batch::new(&x, &labels), &mut ws32)
        .unwrap();
    assert!(
        (l16 - l32).abs() < 0.02 * l32.abs().max(1.0),
        "{l16} vs {l32}"
    );
}
