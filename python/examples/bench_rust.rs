//! The Rust side of `python/bench.py`: times the library's calls that the
//! Python bindings wrap, on the same shapes, so that the script can state
//! the bindings' overhead as a ratio measured in the same run.
//!
//! ```text
//! cargo run --release -p arcface-python --example bench_rust -- step 256 512 10000 1 20
//! ```
//!
//! Arguments: `step` (`forward_backward` on a training workspace) or
//! `predict` (`predict` then `topk(1)`, as `head.predict(x)`), then N, D, C,
//! K and the repetitions. Prints one JSON line: `op`, the shape, and `ms`, the
//! time of every repetition after one warm-up call.

use arcface::{ArcFaceHead, Batch, HeadConfig, SplitMix64, Workspace};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> usize {
        a.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("usage: bench_rust step|predict N D C K REPS"))
    };
    let (op, n, d, c, k, reps) = (a[0].clone(), num(1), num(2), num(3), num(4), num(5));
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 0).unwrap();
    let mut rng = SplitMix64::new(1);
    let x: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
    let y: Vec<i64> = (0..n).map(|_| rng.below(c) as i64).collect();
    let mut ws = Workspace::new(&head, n);
    let mut call = || match op.as_str() {
        "step" => {
            let l = head.forward_backward(&Batch::new(&x, &y), &mut ws).unwrap();
            std::hint::black_box(l);
        }
        "predict" => {
            let p = head.predict(&x).unwrap();
            std::hint::black_box(p.topk(1));
        }
        other => panic!("unknown op {other}"),
    };
    call();
    let ms: Vec<String> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            call();
            format!("{:.4}", t.elapsed().as_secs_f64() * 1e3)
        })
        .collect();
    println!(
        "{{\"op\":\"{op}\",\"n\":{n},\"d\":{d},\"c\":{c},\"k\":{k},\"ms\":[{}]}}",
        ms.join(",")
    );
}
