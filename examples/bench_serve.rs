//! Times the inference logits of an f32 head against the same head served
//! from bf16 and f16 weights (`HalfHead`), in the same process, interleaved
//! round by round, at N = 1 and N = 8 and on 1 and 2 threads; then the
//! top-1 agreement of the half heads with the f32 head on noisy clusters
//! around the head's rows.
//!
//! ```text
//! cargo run --release --example bench_serve -- --c 100000 --d 512 --k 1 --rounds 15
//! ```
//!
//! Each timing is `logits_into` with a reused workspace and output, on a
//! rayon pool of the given size (the heads' default `Threads::Rayon`). Prints
//! per (N, threads) the medians in ms and the half heads' ratios to f32,
//! then one JSON line per row.

use arcface::half::{bf16, f16};
use arcface::{ArcFaceHead, HalfHead, HeadConfig, ServeWorkspace, SplitMix64, Workspace};
use std::time::Instant;

struct Args {
    c: usize,
    d: usize,
    k: usize,
    rounds: usize,
}

fn parse() -> Args {
    let mut a = Args {
        c: 100_000,
        d: 512,
        k: 1,
        rounds: 15,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v: usize = pair
            .get(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} needs a number", pair[0]));
        match pair[0].as_str() {
            "--c" => a.c = v,
            "--d" => a.d = v,
            "--k" => a.k = v,
            "--rounds" => a.rounds = v,
            other => panic!("unknown argument {other} (use --c --d --k --rounds)"),
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn uniform(n: usize, g: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| (g.next_f64() * 2.0 - 1.0) as f32).collect()
}

/// The fraction of samples whose top-1 label two label lists share.
fn agreement(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

fn main() {
    let a = parse();
    let mut g = SplitMix64::new(7);
    let cfg = HeadConfig::new(a.c, a.d).with_subcenters(a.k);
    let head = ArcFaceHead::<f32>::new(cfg, 1).unwrap();
    let hb = HalfHead::<bf16>::from_head(&head).unwrap();
    let hf = HalfHead::<f16>::from_head(&head).unwrap();
    println!(
        "(D, C, K) = ({}, {}, {}); simd {}; weights f32 {} MB, half {} MB",
        a.d,
        a.c,
        a.k,
        arcface::simd_level(),
        head.weight().len() * 4 / 1_000_000,
        hb.weight_bytes() / 1_000_000
    );
    println!("  N thr   f32 ms  bf16 ms   f16 ms  bf16/f32  f16/f32");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for n in [1, 8] {
            let x = uniform(n * a.d, &mut g);
            let c = a.c;
            let (t32, tb, tf) = pool.install(|| {
                let mut out = vec![0.0f32; n * c];
                let mut ws = Workspace::new(&head, n);
                let mut wsb = ServeWorkspace::new(&hb, n).unwrap();
                let mut wsf = ServeWorkspace::new(&hf, n).unwrap();
                let (mut t32, mut tb, mut tf) = (vec![], vec![], vec![]);
                // one warm-up round, then the timed ones, interleaved
                for r in 0..=a.rounds {
                    let x32 = ms(|| head.logits_into(&x, &mut ws, &mut out).unwrap());
                    let xb = ms(|| hb.logits_into(&x, &mut wsb, &mut out).unwrap());
                    let xf = ms(|| hf.logits_into(&x, &mut wsf, &mut out).unwrap());
                    if r > 0 {
                        t32.push(x32);
                        tb.push(xb);
                        tf.push(xf);
                    }
                }
                (median(t32), median(tb), median(tf))
            });
            println!(
                "{n:3} {threads:3} {t32:8.2} {tb:8.2} {tf:8.2} {:9.2} {:8.2}",
                tb / t32,
                tf / t32
            );
            println!(
                "{{\"bench\":\"serve\",\"d\":{},\"c\":{},\"k\":{},\"n\":{n},\"threads\":{threads},\"f32_ms\":{t32:.3},\"bf16_ms\":{tb:.3},\"f16_ms\":{tf:.3}}}",
                a.d, a.c, a.k
            );
        }
    }
    // top-1 agreement on noisy samples around the head's own rows
    let samples = 2000;
    let mut x = Vec::with_capacity(samples * a.d);
    for i in 0..samples {
        let r = (i * 7919) % (a.c * a.k);
        let row = &head.weight()[r * a.d..(r + 1) * a.d];
        let scale = row.iter().map(|v| v * v).sum::<f32>().sqrt() / (a.d as f32).sqrt();
        x.extend(
            row.iter()
                .map(|&w| w + 0.8 * scale * (g.next_f64() * 2.0 - 1.0) as f32),
        );
    }
    let want = head.predict(&x).unwrap().labels;
    let b = hb.predict(&x).unwrap().labels;
    let f = hf.predict(&x).unwrap().labels;
    println!(
        "top-1 agreement with f32 on {samples} samples: bf16 {:.4}, f16 {:.4}",
        agreement(&b, &want),
        agreement(&f, &want)
    );
}
