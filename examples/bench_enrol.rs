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
//! the class-sized buffers (the weights' capacity doubles, one copy); the
//! next ones fit in that capacity. Prints each median and their ratio to the
//! step, then one JSON line.

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
    let (mut steps, mut enrols) = (Vec::new(), Vec::new());
    let mut first = f64::NAN;
    for r in 0..=a.rounds {
        let shots = draw(a.shots * a.d);
        let t = Instant::now();
        head.enrol(&shots, &how)?;
        ws.fit(&head)?;
        opt.fit(&head)?;
        if r == 0 {
            first = ms(t);
        } else {
            enrols.push(ms(t));
        }
        let t = Instant::now();
        head.forward_backward(&Batch::new(&x, &y), &mut ws)?;
        opt.step(&mut head, ws.grad_weight(), 0.01)?;
        steps.push(ms(t));
    }
    let (step_ms, enrol_ms) = (median(steps), median(enrols));
    println!(
        "C = {} (+{} enrolled), D = {}, N = {}, {} threads",
        a.c,
        a.rounds + 1,
        a.d,
        a.n,
        rayon::current_num_threads()
    );
    println!("training step (N = {}):            {step_ms:10.2} ms", a.n);
    println!(
        "enrolment, first (reallocates):     {first:10.2} ms  ({:.4} of a step)",
        first / step_ms
    );
    println!(
        "enrolment, within capacity:         {enrol_ms:10.3} ms  ({:.5} of a step)",
        enrol_ms / step_ms
    );
    println!(
        "{{\"c\":{},\"d\":{},\"n\":{},\"shots\":{},\"threads\":{},\"step_ms\":{step_ms:.3},\"enrol_first_ms\":{first:.3},\"enrol_ms\":{enrol_ms:.4},\"ratio_first\":{:.5},\"ratio\":{:.6}}}",
        a.c,
        a.d,
        a.n,
        a.shots,
        rayon::current_num_threads(),
        first / step_ms,
        enrol_ms / step_ms
    );
    Ok(())
}
