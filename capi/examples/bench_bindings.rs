//! The Rust side of scripts/bench-bindings.sh: one training step (forward,
//! backward, SGD update) and one top-k prediction through the library's Rust
//! API, with the same head (seed 0) and inputs as examples/c/bench.c.
//!
//! `cargo run --release -p arcface-capi --example bench_bindings -- N D C K ITERS`
//! prints one JSON line per operation.

use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, Workspace};
use std::time::Instant;

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [n, d, c, k, iters] = args[..] else {
        return Err("usage: bench_bindings N D C K ITERS".into());
    };
    let x: Vec<f32> = (0..n * d).map(|i| (0.37 * i as f64).sin() as f32).collect();
    let y: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 0)?;
    let mut ws = Workspace::try_new(&head, n)?;
    let mut opt = Optimizer::new(OptimizerConfig::default(), &head)?;

    let mut times = Vec::with_capacity(iters);
    let mut loss = 0.0;
    for i in 0..iters + 2 {
        let t0 = Instant::now();
        loss = head.forward_backward(&Batch::new(&x, &y), &mut ws)?;
        opt.step(&mut head, ws.grad_weight(), 0.01)?;
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    println!(
        "{{\"api\":\"rust\",\"op\":\"step\",\"n\":{n},\"median_ms\":{:.4},\"loss\":{loss:.6}}}",
        1e3 * median(std::mem::take(&mut times))
    );
    let mut top = 0;
    for i in 0..iters + 2 {
        let t0 = Instant::now();
        top = head.predict(&x[..d])?.topk(1)[0][0].0;
        if i >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    println!(
        "{{\"api\":\"rust\",\"op\":\"predict\",\"n\":1,\"median_ms\":{:.4},\"top\":{top}}}",
        1e3 * median(times)
    );
    Ok(())
}
