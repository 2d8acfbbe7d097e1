//! Criterion benches of the row kernels (throughput in elements), each after
//! a naive scalar baseline.
//!
//! `cargo bench --bench kernels`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1009) as f32 / 504.5) - 1.0)
        .collect()
}

/// Each kernel's group at three lengths, in this order.
fn kernels(c: &mut Criterion) {
    for &n in &[512usize, 4096, 65536] {
        let x = data(n);
        let y: Vec<f32> = data(n).iter().map(|v| v * 0.5 + 0.1).collect();
        sum_squares(c, &x);
        dot(c, &x, &y);
        softmax(c, &x);
        normalize_rows(c, &x);
        project_out(c, &x, &y);
    }
}

fn sum_squares(c: &mut Criterion, x: &[f32]) {
    let n = x.len();
    let mut g = c.benchmark_group("sum_squares");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_with_input(BenchmarkId::new("naive", n), x, |b, x| {
        b.iter(|| black_box(x).iter().map(|v| v * v).sum::<f32>())
    });
    g.bench_with_input(BenchmarkId::new("simd", n), x, |b, x| {
        b.iter(|| arcface::ops::sum_squares(black_box(x)))
    });
    g.finish();
}

fn dot(c: &mut Criterion, x: &[f32], y: &[f32]) {
    let n = x.len();
    let mut g = c.benchmark_group("dot");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_with_input(BenchmarkId::new("naive", n), x, |b, x| {
        b.iter(|| black_box(x).iter().zip(y).map(|(a, b)| a * b).sum::<f32>())
    });
    g.bench_with_input(BenchmarkId::new("simd", n), x, |b, x| {
        b.iter(|| arcface::ops::dot(black_box(x), y))
    });
    g.finish();
}

fn softmax(c: &mut Criterion, x: &[f32]) {
    let n = x.len();
    let mut g = c.benchmark_group("softmax");
    g.throughput(Throughput::Elements(n as u64));
    let mut buf = x.to_vec();
    g.bench_function(BenchmarkId::new("naive", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(x);
            let m = buf.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut s = 0.0;
            for v in buf.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            buf.iter_mut().for_each(|v| *v /= s);
            black_box(&buf);
        })
    });
    g.bench_function(BenchmarkId::new("simd", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(x);
            arcface::ops::softmax(&mut buf);
            black_box(&buf);
        })
    });
    g.finish();
}

/// Rows of 512 (or one row of all of `x` when it is shorter).
fn normalize_rows(c: &mut Criterion, x: &[f32]) {
    let n = x.len();
    let mut g = c.benchmark_group("normalize_rows_d512");
    g.throughput(Throughput::Elements(n as u64));
    let mut buf = x.to_vec();
    g.bench_function(BenchmarkId::new("naive", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(x);
            for row in buf.chunks_exact_mut(512.min(n)) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            }
            black_box(&buf);
        })
    });
    g.bench_function(BenchmarkId::new("simd", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(x);
            arcface::ops::normalize_rows(&mut buf, 512.min(n));
            black_box(&buf);
        })
    });
    g.finish();
}

/// `0.5 · (y − (x·y) x)`.
fn project_out(c: &mut Criterion, x: &[f32], y: &[f32]) {
    let n = x.len();
    let mut g = c.benchmark_group("project_out");
    g.throughput(Throughput::Elements(n as u64));
    let mut buf = y.to_vec();
    g.bench_function(BenchmarkId::new("naive", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(y);
            let d: f32 = buf.iter().zip(x).map(|(a, b)| a * b).sum();
            buf.iter_mut()
                .zip(x)
                .for_each(|(g, v)| *g = 0.5 * (*g - d * v));
            black_box(&buf);
        })
    });
    g.bench_function(BenchmarkId::new("simd", n), |b| {
        b.iter(|| {
            buf.copy_from_slice(y);
            arcface::ops::project_out(&mut buf, x, 0.5, 1.0);
            black_box(&buf);
        })
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
