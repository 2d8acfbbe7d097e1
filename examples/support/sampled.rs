//! `bench_step --sample-rate R`: the whole PartialFC training step (sampling,
//! catch-up of the kept rows, the step over the kept classes, the sparse SGD
//! update) on a C-class head, against the full step with its dense SGD
//! update on a head of ⌈R·C⌉ classes (or `--dense-c`), in the same process,
//! interleaved, on the same thread pool. SGD: momentum 0.9, weight decay
//! 1e-4 (mmpretrain's recipe).
//!
//! The JSON line: `n, d, c, k, threads, sample_rate, kept` (classes a step
//! keeps), `sampled_ms` and `dense_ms` (medians), `dense_c`, `ratio`
//! (sampled over dense), `flush_ms` (one flush of every row, which happens
//! every `PartialFc::FLUSH_WINDOW` steps and before evaluation),
//! `peak_rss_mb` (the process's peak before the dense head exists: the
//! C-class head, its optimiser state and the sampler), `state_mb` (weights
//! plus optimiser state, the bound's base), `rss_bound_mb`
//! (1.15 × state_mb + 64), `simd`.

use arcface::{
    ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, PartialFc, Sgd, Workspace,
};
use std::time::Instant;

/// What the sampled comparison needs from the command line.
pub struct SampledArgs {
    pub n: usize,
    pub d: usize,
    pub c: usize,
    pub k: usize,
    pub threads: usize,
    pub seconds: f64,
    pub rate: f64,
    pub dense_c: Option<usize>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn sgd() -> OptimizerConfig {
    OptimizerConfig::Sgd(Sgd::default())
}

pub fn run(a: &SampledArgs, peak_rss_mb: fn() -> f64) {
    let (n, d, c, k) = (a.n, a.d, a.c, a.k);
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 1).unwrap();
    let mut opt = Optimizer::new(sgd(), &head).unwrap();
    let mut pfc = PartialFc::new(&head, a.rate, n, 3).unwrap();
    let mut s = 7u64;
    let mut r = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..n * d).map(|_| r()).collect();
    let labels: Vec<i64> = (0..n).map(|i| ((i * 7919) % c) as i64).collect();
    let batch = Batch::new(&x, &labels);
    let lr = 0.1;
    let mut kept = 0;
    for _ in 0..2 {
        kept = pfc.step(&mut head, &mut opt, &batch, lr).unwrap().kept;
    }
    let rss = peak_rss_mb();
    let state_mb = ((head.weight().len() + opt.len()) * 4) as f64 / 1048576.0;

    let dense_c = a.dense_c.unwrap_or(kept);
    let mut dense =
        ArcFaceHead::<f32>::new(HeadConfig::new(dense_c, d).with_subcenters(k), 2).unwrap();
    let mut dense_opt = Optimizer::new(sgd(), &dense).unwrap();
    let mut ws = Workspace::new(&dense, n);
    let dense_labels: Vec<i64> = labels.iter().map(|&l| l % dense_c as i64).collect();
    let dense_batch = Batch::new(&x, &dense_labels);
    let mut dense_step = || {
        dense.forward_backward(&dense_batch, &mut ws).unwrap();
        dense_opt.step(&mut dense, ws.grad_weight(), lr).unwrap();
    };
    dense_step();

    let (mut ts, mut td) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while ts.len() < 3 || (start.elapsed().as_secs_f64() < a.seconds && ts.len() < 200) {
        ts.push(ms(&mut || {
            pfc.step(&mut head, &mut opt, &batch, lr).unwrap();
        }));
        td.push(ms(&mut dense_step));
    }
    let flush_ms = ms(&mut || pfc.flush(&mut head, &mut opt).unwrap());
    let (sm, dm) = (median(&mut ts), median(&mut td));
    println!(
        "sampled step {sm:.1} ms (C = {c}, r = {}, kept {kept}) vs dense step {dm:.1} ms (C = {dense_c}): ratio {:.3}; flush {flush_ms:.0} ms; peak RSS {rss:.0} MB for {state_mb:.0} MB of weights + state ({} rounds)",
        a.rate,
        sm / dm,
        ts.len()
    );
    println!(
        "{{\"n\":{n},\"d\":{d},\"c\":{c},\"k\":{k},\"threads\":{},\"sample_rate\":{},\"kept\":{kept},\"sampled_ms\":{sm:.3},\"dense_c\":{dense_c},\"dense_ms\":{dm:.3},\"ratio\":{:.4},\"flush_ms\":{flush_ms:.1},\"peak_rss_mb\":{rss:.1},\"state_mb\":{state_mb:.1},\"rss_bound_mb\":{:.1},\"rounds\":{},\"simd\":\"{}\"}}",
        a.threads,
        a.rate,
        sm / dm,
        1.15 * state_mb + 64.0,
        ts.len(),
        arcface::simd_level()
    );
}
