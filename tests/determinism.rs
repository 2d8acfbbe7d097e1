//! The same input and thread count give bit-identical results, run after
//! run; other thread counts agree to rounding. The shapes are large enough
//! for every parallel path (blocked products, class-parallel pass).

mod common;

use arcface::{ArcFaceHead, Batch, HeadConfig, LossConfig, Threads, Workspace};
use common::data::uniform;

fn run(threads: usize, k: usize, n: usize) -> (f32, Vec<f32>, Vec<f32>) {
    let (c, d) = (3000, 128);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let cfg = HeadConfig::new(c, d)
            .with_subcenters(k)
            .with_loss(LossConfig::label_smooth(0.1));
        let head = ArcFaceHead::<f32>::new(cfg, 5)
            .unwrap()
            .with_threads(Threads::Rayon);
        let x = uniform(n * d, 9);
        let labels: Vec<i64> = (0..n as i64).map(|i| (i * 37) % c as i64).collect();
        let mut ws = Workspace::new(&head, n);
        let loss = head
            .forward_backward(&Batch::new(&x, &labels), &mut ws)
            .unwrap();
        (loss, ws.grad_features().to_vec(), ws.grad_weight().to_vec())
    })
}

#[test]
fn same_threads_same_bits_other_threads_same_numbers() {
    // the last two have N·C·K past 2^20, where the class pass splits too
    for (k, n) in [(1, 128), (2, 64), (1, 8), (3, 128), (1, 384)] {
        let a = run(2, k, n);
        let b = run(2, k, n);
        assert_eq!(
            a.0.to_bits(),
            b.0.to_bits(),
            "K={k} N={n}: loss differs between runs"
        );
        assert!(
            a.1.iter()
                .zip(&b.1)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "K={k} N={n}: grad_features"
        );
        assert!(
            a.2.iter()
                .zip(&b.2)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "K={k} N={n}: grad_weight"
        );
        let one = run(1, k, n);
        assert!(
            (one.0 - a.0).abs() <= 1e-5 * a.0.abs(),
            "K={k} N={n}: {} vs {}",
            one.0,
            a.0
        );
        let gmax = one.2.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (x, y) in one.2.iter().zip(&a.2) {
            assert!((x - y).abs() <= 1e-4 * gmax, "K={k} N={n}: {x} vs {y}");
        }
        let fmax = one.1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (x, y) in one.1.iter().zip(&a.1) {
            assert!((x - y).abs() <= 1e-4 * fmax, "K={k} N={n}: {x} vs {y}");
        }
    }
}
