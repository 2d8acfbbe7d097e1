//! `arcface predict` on a checkpoint stored in bf16 or f16 serves from the
//! half weights as stored; its labels are checked against the library's
//! f64 head of the same (widened) weights.

use super::{f32s, npy, ok, Dir};
use crate::common::data::clusters;
use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};

#[test]
fn predict_serves_a_half_checkpoint_with_the_f64_heads_top1() {
    let dir = Dir::new("serve_half");
    let (c, d, n) = (7, 12, 60);
    let (centres, _) = clusters(c, d, c, 0.0, 3);
    let mut head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(c, d), &centres).unwrap();
    head.retire(&[5]).unwrap();
    let (x, _) = clusters(c, d, n, 0.8, 3);
    let xf = dir.write("x.npy", &npy("<f4", &[n, d], &f32s(&x)));
    for dtype in [WeightDtype::BF16, WeightDtype::F16] {
        let ck = Checkpoint::from_head(&head, dtype).unwrap();
        let path = dir.s("half.safetensors");
        ck.save(&path).unwrap();
        let args = [
            "predict",
            "--checkpoint",
            &path,
            "--features",
            &xf,
            "--format",
            "csv",
            "--top-k",
            "1",
        ];
        let (out, _) = ok(&dir, &args);
        let got: Vec<usize> = out
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        // the library's f64 head of the stored values
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let f64_head: ArcFaceHead<f64> = Checkpoint::load(&path).unwrap().to_head(None).unwrap();
        let want = f64_head.predict(&x64).unwrap().labels;
        assert_eq!(got.len(), n);
        assert_eq!(got, want, "{dtype:?}");
        assert!(!got.contains(&5));
    }
}
