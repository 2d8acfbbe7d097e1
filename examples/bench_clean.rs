//! Times sub-centre cleaning of N samples against one training step
//! (forward + backward) of the same shape, in the same process, alternating
//! the two, on the same thread pool; prints one Markdown row per N.
//!
//! ```text
//! cargo run --release --example bench_clean -- 2 256 1024 4096
//! ```
//!
//! Arguments: the thread count, then the sample counts N. The shape is
//! D = 512, C = 10 000, K = 3 (f32). Each is timed `REPS` times and the
//! median kept; `ratio` is step / clean.
use arcface::{ArcFaceHead, Batch, CleanConfig, HeadConfig, SplitMix64, Workspace};
use std::time::Instant;

const REPS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: THREADS N..."))
        .collect();
    let (threads, ns) = match args.split_first() {
        Some((t, ns)) if !ns.is_empty() => (*t, ns.to_vec()),
        _ => (2, vec![256, 1024]),
    };
    let (d, c, k) = (512, 10_000, 3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 0).unwrap();
        println!("| N | step (ms) | clean (ms) | step / clean |");
        println!("|---:|---:|---:|---:|");
        for &n in &ns {
            let mut g = SplitMix64::new(n as u64);
            let x: Vec<f32> = (0..n * d).map(|_| g.normal() as f32).collect();
            let y: Vec<i64> = (0..n).map(|_| g.below(c) as i64).collect();
            let mut ws = Workspace::new(&head, n);
            let batch = Batch::new(&x, &y);
            head.forward_backward(&batch, &mut ws).unwrap(); // warm-up
            let cfg = CleanConfig::default();
            let (mut step, mut clean) = (Vec::new(), Vec::new());
            for _ in 0..REPS {
                let t = Instant::now();
                head.forward_backward(&batch, &mut ws).unwrap();
                step.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let r = head.clean(&x, &y, &cfg).unwrap();
                clean.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(r.angles.len(), n);
            }
            let (s, cl) = (median(step), median(clean));
            println!("| {n} | {s:.1} | {cl:.2} | {:.0} |", s / cl);
        }
    });
}
