//! Times enrolling one class into a large head against one training step of
//! that head, in the same process, interleaved.
//!
//! ```text
//! cargo run --release --example bench_enrol -- --c 100000 --d 512 --n 256 --shots 5 --rounds 5
//! ```
//!
//! A step is what the trainer does per batch: `forward_backward` on N
//! samples, then the optimiser's update (SGD with momentum). An enrolment
//! is `enrol` from `--shots` embeddings (K = 1: their normalised mean), then
//! `Workspace::fit` and `Optimizer::fit`, after which the next step can
//! train the new class. The first enrolment into a fresh head reallocates
//! the class-sized buffers (each capacity doubles: one copy, and new pages
//! to touch); the next ones fit in that capacity. Prints the step's median,
//! the first enrolment's parts and the median of the others, each as a
//! fraction of a step, then one JSON line.

use arcface::{
    ArcFaceHead, Batch, Enrolment, HeadConfig, Optimizer, OptimizerConfig, SplitMix64, Workspace,
};
use std::time::Instant;

struct Args {
    c: usize,
    d: usize,
    n: usize,
    shots: usize,
    rounds: usize,
}

fn parse() -> Args {
    let mut a = Args {
        c: 100_000,
        d: 512,
        n: 256,
        shots: 5,
        rounds: 5,
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
            "--n" => a.n = v,
            "--shots" => a.shots = v,
            "--rounds" => a.rounds = v,
            other => panic!("unknown argument {other} (use --c --d --n --shots --rounds)"),
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() -> Result<(), arcface::Error> {
    let a = parse();
    let mut rng = SplitMix64::new(7);
    let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
    let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(a.c, a.d), 1)?;
    let mut ws = Workspace::try_new(&head, a.n)?;
    let mut opt = Optimizer::new(OptimizerConfig::default(), &head)?;
    let x = draw(a.n * a.d);
    let y: Vec<i64> = (0..a.n).map(|i| ((i * 7919) % a.c) as i64).collect();
    let how = Enrolment::default();
    // warm-up step (first touches of the workspace)
    head.forward_backward(&Batch::new(&x, &y), &mut ws)?;
    opt.step(&mut head, ws.grad_weight(), 0.01)?;
    // per round: enrol, Workspace::fit, Optimizer::fit, then a step
    let (mut steps, mut parts) = (Vec::new(), Vec::new());
    for _ in 0..=a.rounds {
        let shots = draw(a.shots * a.d);
        let t = Instant::now();
        head.enrol(&shots, &how)?;
        let t_enrol = ms(t);
        let t = Instant::now();
        ws.fit(&head)?;
        let t_ws = ms(t);
        let t = Instant::now();
        opt.fit(&head)?;
        parts.push([t_enrol, t_ws, ms(t)]);
        let t = Instant::now();
        head.forward_backward(&Batch::new(&x, &y), &mut ws)?;
        opt.step(&mut head, ws.grad_weight(), 0.01)?;
        steps.push(ms(t));
    }
    let step_ms = median(steps);
    let first = parts[0];
    let rest: [f64; 3] =
        core::array::from_fn(|j| median(parts[1..].iter().map(|p| p[j]).collect()));
    println!(
        "C = {} (+{} enrolled), D = {}, N = {}, {} threads, {} shots",
        a.c,
        a.rounds + 1,
        a.d,
        a.n,
        rayon::current_num_threads(),
        a.shots
    );
    println!("training step (N = {}), median: {step_ms:10.2} ms", a.n);
    for (what, p) in [
        ("first enrolment (grows every buffer)", first),
        ("enrolment within capacity, median", rest),
    ] {
        let total: f64 = p.iter().sum();
        println!(
            "{what}: enrol {:.3} ms + Workspace::fit {:.3} ms + Optimizer::fit {:.3} ms = {total:.3} ms = {:.5} of a step",
            p[0], p[1], p[2], total / step_ms
        );
    }
    let sum = |p: [f64; 3]| p.iter().sum::<f64>();
    println!(
        "{{\"c\":{},\"d\":{},\"n\":{},\"shots\":{},\"threads\":{},\"step_ms\":{step_ms:.3},\"first_enrol_ms\":{:.3},\"first_total_ms\":{:.3},\"enrol_ms\":{:.4},\"total_ms\":{:.4},\"ratio_first\":{:.5},\"ratio\":{:.6}}}",
        a.c,
        a.d,
        a.n,
        a.shots,
        rayon::current_num_threads(),
        first[0],
        sum(first),
        rest[0],
        sum(rest),
        sum(first) / step_ms,
        sum(rest) / step_ms
    );
    Ok(())
}
