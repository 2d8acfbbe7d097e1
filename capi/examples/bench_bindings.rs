//! The Rust side of scripts/bench-bindings.sh: one training step (forward,
//! backward, SGD update) and one top-k prediction through the library's Rust
//! API, with the same head (seed 0) and inputs as examples/c/bench.c.
//!
//! `cargo run --release -p arcface-capi --example bench_bindings -- N D C K ITERS`
//! prints one JSON line per operation.
//!
//! With a sixth argument `paired`, each iteration makes the call both ways in
//! the same process, alternating which goes first: through the Rust API and
//! through the exported C functions (the same code a C program calls), and
//! prints the median of the per-iteration ratios C ABI / Rust. Load on the
//! machine then affects both sides of each ratio alike.

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
        .take(5)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let paired = std::env::args().nth(6).is_some_and(|a| a == "paired");
    let [n, d, c, k, iters] = args[..5] else {
        return Err("usage: bench_bindings N D C K ITERS [paired]".into());
    };
    if paired {
        return abi::paired(n, d, c, k, iters);
    }
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

/// The same calls through the exported C functions, paired with the Rust
/// calls in each iteration.
mod abi {
    use super::median;
    use arcface::{ArcFaceHead, Batch, HeadConfig, Optimizer, OptimizerConfig, Workspace};
    use arcface_c::*;
    use std::ptr::null_mut;
    use std::time::Instant;

    fn ok(s: ArcfaceStatus) -> Result<(), Box<dyn std::error::Error>> {
        match s {
            ArcfaceStatus::ArcfaceOk => Ok(()),
            s => Err(format!("C call failed: {s:?}").into()),
        }
    }

    pub fn paired(
        n: usize,
        d: usize,
        c: usize,
        k: usize,
        iters: usize,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let x: Vec<f32> = (0..n * d).map(|i| (0.37 * i as f64).sin() as f32).collect();
        let y: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
        let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 0)?;
        let mut ws = Workspace::try_new(&head, n)?;
        let mut opt = Optimizer::new(OptimizerConfig::default(), &head)?;

        let mut cfg = arcface_head_config_default(c, d);
        cfg.num_subcenters = k;
        let (mut ch, mut cws, mut copt) = (null_mut(), null_mut(), null_mut());
        let mut oc = arcface_train_config_default().optimizer;
        // SAFETY: every pointer is to a live local or a handle made here and
        // freed at the end; every length is its array's
        unsafe {
            ok(arcface_head_new(&cfg, std::ptr::null(), 0, 0, &mut ch))?;
            ok(arcface_workspace_new(ch, n, &mut cws))?;
            ok(arcface_optimizer_config_default(
                ARCFACE_OPTIMIZER_SGD,
                &mut oc,
            ))?;
            ok(arcface_optimizer_new(&oc, ch, &mut copt))?;
        }
        let mut rust_step = || -> Result<f64, Box<dyn std::error::Error>> {
            let t0 = Instant::now();
            head.forward_backward(&Batch::new(&x, &y), &mut ws)?;
            opt.step(&mut head, ws.grad_weight(), 0.01)?;
            Ok(t0.elapsed().as_secs_f64())
        };
        let c_step = || -> Result<f64, Box<dyn std::error::Error>> {
            let mut loss = 0.0f32;
            let t0 = Instant::now();
            // SAFETY: as above
            unsafe {
                ok(arcface_forward_backward(
                    ch,
                    cws,
                    x.as_ptr(),
                    x.len(),
                    y.as_ptr(),
                    n,
                    &mut loss,
                    null_mut(),
                    0,
                ))?;
                ok(arcface_optimizer_step(copt, ch, cws, 0.01))?;
            }
            Ok(t0.elapsed().as_secs_f64())
        };
        let steps = pair(iters, &mut rust_step, c_step)?;
        // both heads took the same steps: the same weights, so the same sort work
        let predict_head = &head;
        let mut rust_predict = || -> Result<f64, Box<dyn std::error::Error>> {
            let t0 = Instant::now();
            let top = predict_head.predict(&x[..d])?.topk(1);
            std::hint::black_box(top);
            Ok(t0.elapsed().as_secs_f64())
        };
        let c_predict = || -> Result<f64, Box<dyn std::error::Error>> {
            let (mut top, mut score) = (0i64, 0.0f32);
            let t0 = Instant::now();
            // SAFETY: as above; one sample, k = 1, outputs of length 1
            unsafe {
                ok(arcface_predict_topk(
                    ch,
                    x.as_ptr(),
                    d,
                    1,
                    &mut top,
                    &mut score,
                    1,
                ))?;
            }
            std::hint::black_box(top);
            Ok(t0.elapsed().as_secs_f64())
        };
        // a prediction is ~100 times cheaper than a step: 10 times the pairs
        let predicts = pair(10 * iters, &mut rust_predict, c_predict)?;
        // SAFETY: the handles were made above and are freed once
        unsafe {
            arcface_optimizer_free(copt);
            arcface_workspace_free(cws);
            arcface_head_free(ch);
        }
        for (op, (r, q)) in [("step", steps), ("predict", predicts)] {
            println!(
                "{{\"api\":\"paired\",\"op\":\"{op}\",\"rust_median_ms\":{:.4},\"ratio_median\":{q:.4}}}",
                1e3 * r
            );
        }
        Ok(())
    }

    /// Two warm-up pairs, then `iters` pairs alternating which side goes
    /// first; the Rust side's median time and the median ratio C ABI / Rust.
    fn pair(
        iters: usize,
        mut rust: impl FnMut() -> Result<f64, Box<dyn std::error::Error>>,
        mut c: impl FnMut() -> Result<f64, Box<dyn std::error::Error>>,
    ) -> Result<(f64, f64), Box<dyn std::error::Error>> {
        let (mut times, mut ratios) = (Vec::new(), Vec::new());
        for i in 0..iters + 2 {
            let (r, q) = if i % 2 == 0 {
                let r = rust()?;
                (r, c()?)
            } else {
                let q = c()?;
                (rust()?, q)
            };
            if i >= 2 {
                times.push(r);
                ratios.push(q / r);
            }
        }
        Ok((median(times), median(ratios)))
    }
}
