//! Trains an ArcFace head for a few hundred SGD steps on generated clustered
//! embeddings and prints the loss falling.
//!
//! `cargo run --release --example train_toy`
use arcface::{ArcFaceHead, Batch, HeadConfig, Workspace};

fn main() -> Result<(), arcface::Error> {
    let (c, d, n, batch) = (20usize, 32usize, 2000usize, 64usize);
    // class centres and noisy samples around them (deterministic LCG)
    let mut s = 0x2545F4914F6CDD1Du64;
    let mut rnd = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) as f32 * 2.0 - 1.0
    };
    let centres: Vec<f32> = (0..c * d).map(|_| rnd()).collect();
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let cls = i % c;
        for j in 0..d {
            x.push(centres[cls * d + j] + 1.6 * rnd());
        }
        y.push(cls as i64);
    }
    let mut head = ArcFaceHead::<f32>::new(
        HeadConfig::new(c, d)
            .with_scale(30.0)
            .with_margins(arcface::Margins::Uniform(0.3)),
        0,
    )?;
    let mut ws = Workspace::new(&head, batch);
    let lr = 0.05f32;
    for epoch in 0..10 {
        let mut total = 0.0;
        let mut steps = 0;
        for start in (0..n).step_by(batch) {
            let end = (start + batch).min(n);
            let b = Batch::new(&x[start * d..end * d], &y[start..end]);
            total += head.forward_backward(&b, &mut ws)?;
            steps += 1;
            head.sgd_step(ws.grad_weight(), lr)?;
        }
        let pred = head.predict(&x)?;
        let acc = pred
            .labels
            .iter()
            .zip(&y)
            .filter(|(p, t)| **p as i64 == **t)
            .count() as f32
            / n as f32;
        println!(
            "epoch {epoch:2}  loss {:8.4}  train top-1 {:5.1} %",
            total / steps as f32,
            100.0 * acc
        );
    }
    Ok(())
}
