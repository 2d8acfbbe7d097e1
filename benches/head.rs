//! Criterion benches of a whole training step (forward + analytic backward)
//! and of inference, per shape, sequential and on the rayon pool.
//! Throughput is in logits (N·C·K) per second.
//!
//! `cargo bench --bench head` (the large shapes of the README table are run
//! with `examples/bench_step.rs`, which also measures the product floor).
use arcface::{ArcFaceHead, Batch, HeadConfig, Threads, Workspace};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn step(c: &mut Criterion) {
    let shapes = [
        (32usize, 128usize, 500usize, 1usize),
        (64, 128, 1000, 1),
        (8, 512, 10000, 1),
        (1, 512, 10000, 1),
        (256, 512, 1000, 1),
        (64, 128, 1000, 3),
    ];
    let mut g = c.benchmark_group("step");
    g.sample_size(20);
    for &(n, d, cl, k) in &shapes {
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 1009) as f32 / 504.5) - 1.0)
            .collect();
        let labels: Vec<i64> = (0..n).map(|i| (i * 31 % cl) as i64).collect();
        g.throughput(Throughput::Elements((n * cl * k) as u64));
        for threads in [Threads::Sequential, Threads::Rayon] {
            let head = ArcFaceHead::<f32>::new(HeadConfig::new(cl, d).with_subcenters(k), 1)
                .unwrap()
                .with_threads(threads);
            let mut ws = Workspace::new(&head, n);
            let id = BenchmarkId::new(format!("{threads:?}"), format!("n{n}_d{d}_c{cl}_k{k}"));
            g.bench_function(id, |b| {
                b.iter(|| {
                    black_box(
                        head.forward_backward(&Batch::new(&x, &labels), &mut ws)
                            .unwrap(),
                    )
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("logits");
    for &(n, d, cl) in &[(1usize, 512usize, 10000usize), (64, 128, 1000)] {
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 1009) as f32 / 504.5) - 1.0)
            .collect();
        let head = ArcFaceHead::<f32>::new(HeadConfig::new(cl, d), 1).unwrap();
        let mut ws = Workspace::new(&head, n);
        let mut out = vec![0.0f32; n * cl];
        g.throughput(Throughput::Elements((n * cl) as u64));
        g.bench_function(format!("n{n}_d{d}_c{cl}"), |b| {
            b.iter(|| head.logits_into(&x, &mut ws, black_box(&mut out)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
