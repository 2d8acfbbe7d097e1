//! Times one training step (forward + analytic backward) against the three
//! plain faer products of the same shapes, measured in the same process,
//! interleaved, with the same thread count.
//!
//! ```text
//! cargo run --release --example bench_step -- --n 256 --d 512 --c 10000 --k 1 --threads 2
//! ```
//!
//! The last line printed is one JSON object: `n, d, c, k, threads, step_ms`
//! (median), `gemm_floor_ms` (sum over the three products of the better of
//! one thread and `threads` threads, medians), `ratio`, `gflops` (6·N·D·C·K
//! over the step's median), `weight_bytes_moved` (bytes of W-sized arrays
//! the step reads and writes), `stream_gbs` (measured read bandwidth over a
//! buffer the size of W), `mem_floor_ms` (`weight_bytes_moved` at that
//! bandwidth) and `mem_ratio`, `rw_floor_ms` (the same reads at that speed
//! but the writes at the speed of a measured copy into a W-sized buffer,
//! STREAM-style: writing costs more than reading) and `rw_ratio`,
//! `read_ms` and `copy_ms` (those two measurements), `logits_ms` (inference
//! logits of the same batch, `logits_into` on an inference workspace: one
//! read of W), `fma_gflops` (the f32 FMA peak of `threads` threads, register
//! FMAs only) and `fma_floor_ms` (the step's 6·N·D·C·K flops at that peak:
//! no implementation of the three products can be faster), `peak_rss_mb` (the process's peak after the warm-up: the
//! head, its workspace and the plain products' operands), `simd`. The
//! read and copy measurements use one thread whatever `--threads` says. The
//! parallel faer products are timed in rounds of their own, after the
//! interleaved rounds of everything else.
//!
//! With `--sample-rate R` (and optionally `--dense-c C'`) it times PartialFC's
//! sampled training step against the dense step of ⌈R·C⌉ classes instead
//! (`examples/support/sampled.rs` describes its JSON line).
use arcface::{ArcFaceHead, Batch, HeadConfig, Workspace};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::time::Instant;

#[path = "support/sampled.rs"]
mod sampled;

struct Args {
    n: usize,
    d: usize,
    c: usize,
    k: usize,
    threads: usize,
    seconds: f64,
    sample_rate: Option<f64>,
    dense_c: Option<usize>,
}

fn parse() -> Args {
    let mut a = Args {
        n: 256,
        d: 512,
        c: 10000,
        k: 1,
        threads: 1,
        seconds: 3.0,
        sample_rate: None,
        dense_c: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        let num = || {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("{} needs a number", argv[i]))
        };
        match argv[i].as_str() {
            "--n" => a.n = num(),
            "--d" => a.d = num(),
            "--c" => a.c = num(),
            "--k" => a.k = num(),
            "--threads" => a.threads = num(),
            "--seconds" => a.seconds = v.parse().expect("--seconds needs a number"),
            "--sample-rate" => a.sample_rate = Some(v.parse().expect("--sample-rate needs a number")),
            "--dense-c" => a.dense_c = Some(num()),
            other => panic!(
                "unknown argument {other} (use --n --d --c --k --threads --seconds --sample-rate --dense-c)"
            ),
        }
        i += 2;
    }
    a
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Sum of a buffer with 16 independent lanes (a read-bandwidth probe).
fn stream_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for ch in chunks {
        for j in 0..16 {
            acc[j] += ch[j];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// Twelve independent chains of register FMAs (no memory traffic), widest
/// SIMD: returns the lanes per register and a value to keep.
struct FmaLoop(usize);
impl pulp::WithSimd for FmaLoop {
    type Output = (usize, f32);
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, s: S) -> (usize, f32) {
        let c = s.splat_f32s(0.999_9);
        let x = s.splat_f32s(1e-4);
        let mut a = [s.splat_f32s(0.0); 12];
        for _ in 0..self.0 {
            for v in &mut a {
                *v = s.mul_add_f32s(*v, c, x);
            }
        }
        let mut t = a[0];
        for v in &a[1..] {
            t = s.add_f32s(t, *v);
        }
        (core::mem::size_of::<S::f32s>() / 4, s.reduce_sum_f32s(t))
    }
}

/// The f32 FMA peak of the current pool's threads together, GFLOP/s: every
/// thread runs [`FmaLoop`] at once, best of five.
fn fma_peak_gflops() -> f64 {
    let iters = std::hint::black_box(2_000_000usize);
    let threads = rayon::current_num_threads();
    let arch = pulp::Arch::new();
    let mut best = f64::MAX;
    let mut lanes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let out = rayon::broadcast(|_| arch.dispatch(FmaLoop(iters)));
        best = best.min(t.elapsed().as_secs_f64());
        lanes = out[0].0;
        std::hint::black_box(out);
    }
    (2 * 12 * lanes * iters * threads) as f64 / best / 1e9
}

fn time_ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let a = parse();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .unwrap();
    match a.sample_rate {
        Some(rate) => {
            let s = sampled::SampledArgs {
                n: a.n,
                d: a.d,
                c: a.c,
                k: a.k,
                threads: a.threads,
                seconds: a.seconds,
                rate,
                dense_c: a.dense_c,
            };
            pool.install(|| sampled::run(&s, peak_rss_mb))
        }
        None => pool.install(|| run(&a)),
    }
}

/// Sets up the head, the batch and the plain products' operands, times them
/// and prints the summary and the JSON line.
fn run(a: &Args) {
    let (n, d, c, k) = (a.n, a.d, a.c, a.k);
    let ck = c * k;
    let head = ArcFaceHead::<f32>::new(HeadConfig::new(c, d).with_subcenters(k), 1).unwrap();
    let mut r = lcg(7);
    let x: Vec<f32> = (0..n * d).map(|_| r()).collect();
    let labels: Vec<i64> = (0..n).map(|i| ((i * 7919) % c) as i64).collect();
    let ws = Workspace::new(&head, n);
    let batch = Batch::new(&x, &labels);
    let w: Vec<f32> = head.weight().to_vec();
    let g: Vec<f32> = (0..n * ck).map(|_| r() * 1e-3).collect();
    let prod = Products::new(&x, w, g, n, d, ck);
    let mut bench = Bench {
        head: &head,
        batch,
        ws,
        prod,
        threads: a.threads,
    };
    bench.warm_up();
    // the process's peak so far: the step's workspace and the products'
    // operands; the buffers of the stream and inference measurements
    // below are not counted
    let rss = peak_rss_mb();
    let mut extra = Extras {
        dw_copy: vec![0.0f32; ck * d],
        ws_inf: Workspace::inference(&head, n),
        logits: vec![0.0f32; n * c],
        probe: 0.0,
    };
    let one = time_ms(&mut || {
        head.forward_backward(&bench.batch, &mut bench.ws).unwrap();
    });
    let rounds = ((a.seconds * 1e3 / 2.5 / one.max(1e-3)) as usize).clamp(5, 2000);
    let mut times = bench.interleaved_rounds(&mut extra, rounds);
    bench.parallel_rounds(&mut times, rounds);
    report(a, &mut times, rounds, extra.probe, rss);
}

/// The operands of the three plain products, row-major like the crate's.
struct Products<'a> {
    x: &'a [f32],
    w: Vec<f32>,
    g: Vec<f32>,
    p: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    n: usize,
    d: usize,
    ck: usize,
}

impl<'a> Products<'a> {
    fn new(x: &'a [f32], w: Vec<f32>, g: Vec<f32>, n: usize, d: usize, ck: usize) -> Self {
        Products {
            x,
            w,
            g,
            p: vec![0.0f32; n * ck],
            dx: vec![0.0f32; n * d],
            dw: vec![0.0f32; ck * d],
            n,
            d,
            ck,
        }
    }

    /// Product `which`: 0 is P = X·Wᵀ, 1 is ∂X = G·W, 2 is ∂W = Gᵀ·X.
    fn run(&mut self, which: usize, par: Par) {
        let (n, d, ck) = (self.n, self.d, self.ck);
        match which {
            0 => matmul(
                MatMut::from_row_major_slice_mut(&mut self.p, n, ck),
                Accum::Replace,
                MatRef::from_row_major_slice(self.x, n, d),
                MatRef::from_row_major_slice(&self.w, ck, d).transpose(),
                1.0f32,
                par,
            ),
            1 => matmul(
                MatMut::from_row_major_slice_mut(&mut self.dx, n, d),
                Accum::Replace,
                MatRef::from_row_major_slice(&self.g, n, ck),
                MatRef::from_row_major_slice(&self.w, ck, d),
                1.0f32,
                par,
            ),
            _ => matmul(
                MatMut::from_row_major_slice_mut(&mut self.dw, ck, d),
                Accum::Replace,
                MatRef::from_row_major_slice(&self.g, n, ck).transpose(),
                MatRef::from_row_major_slice(self.x, n, d),
                1.0f32,
                par,
            ),
        }
    }
}

/// What the timed rounds run: the step and the plain products.
struct Bench<'a> {
    head: &'a ArcFaceHead<f32>,
    batch: Batch<'a, f32>,
    ws: Workspace<f32>,
    prod: Products<'a>,
    threads: usize,
}

/// The buffers of the stream and inference measurements, allocated after
/// the peak RSS is read.
struct Extras {
    dw_copy: Vec<f32>,
    ws_inf: Workspace<f32>,
    logits: Vec<f32>,
    /// Sum of the read probes, printed so the reads are kept.
    probe: f32,
}

/// Per-round times, ms.
#[derive(Default)]
struct Times {
    step: Vec<f64>,
    seq: [Vec<f64>; 3],
    par: [Vec<f64>; 3],
    bw: Vec<f64>,
    cp: Vec<f64>,
    inf: Vec<f64>,
    fwd: Vec<f64>,
}

impl Bench<'_> {
    /// Faults pages in and lets faer size its buffers.
    fn warm_up(&mut self) {
        let t = self.threads;
        for _ in 0..2 {
            self.head
                .forward_backward(&self.batch, &mut self.ws)
                .unwrap();
            for j in 0..3 {
                self.prod.run(j, Par::Seq);
                if t > 1 {
                    self.prod.run(j, Par::rayon(t));
                }
            }
        }
    }

    /// `rounds` rounds of everything but the parallel products, interleaved.
    fn interleaved_rounds(&mut self, extra: &mut Extras, rounds: usize) -> Times {
        let mut times = Times::default();
        let (head, batch) = (self.head, &self.batch);
        for _ in 0..rounds {
            times.fwd.push(time_ms(&mut || {
                head.loss(batch, &mut self.ws).unwrap();
            }));
            times.step.push(time_ms(&mut || {
                head.forward_backward(batch, &mut self.ws).unwrap();
            }));
            for (j, v) in times.seq.iter_mut().enumerate() {
                v.push(time_ms(&mut || self.prod.run(j, Par::Seq)));
            }
            let w = &self.prod.w;
            times.bw.push(time_ms(&mut || extra.probe += stream_sum(w)));
            times
                .cp
                .push(time_ms(&mut || stream_copy(&mut extra.dw_copy, w)));
            let x = self.prod.x;
            times.inf.push(time_ms(&mut || {
                head.logits_into(x, &mut extra.ws_inf, &mut extra.logits)
                    .unwrap();
            }));
        }
        times
    }

    /// faer's parallel products in rounds of their own, each after its
    /// sequential twin as in the anchors' measurement: right after one,
    /// the pool's workers still spin, which slowed the sequential step
    /// timed next by 5-8 % at the small shapes. (Back to back, with the
    /// pool kept hot, faer's parallel products are faster at the smallest
    /// shapes than they are between other work.)
    fn parallel_rounds(&mut self, times: &mut Times, rounds: usize) {
        let t = self.threads;
        if t > 1 {
            for _ in 0..rounds {
                for (j, v) in times.par.iter_mut().enumerate() {
                    self.prod.run(j, Par::Seq);
                    v.push(time_ms(&mut || self.prod.run(j, Par::rayon(t))));
                }
            }
        }
    }
}

/// The medians and the floors derived from them; prints the summary line
/// and the JSON line.
fn report(a: &Args, times: &mut Times, rounds: usize, probe: f32, rss: f64) {
    let (n, d, c, k, t) = (a.n, a.d, a.c, a.k, a.threads);
    let ck = c * k;
    let step_ms = median(&mut times.step);
    let floor = gemm_floor(times, t, step_ms);
    let w_bytes = (ck * d * 4) as f64;
    let stream_gbs = w_bytes / (median(&mut times.bw) * 1e-3) / 1e9;
    // W-sized traffic of the step: the forward product reads W, the
    // backward reads W, writes ∂W, and its row projection reads W and ∂W
    let moved = ws_traffic(n, d, ck);
    let mem_floor_ms = moved / (stream_gbs * 1e9) * 1e3;
    // the same traffic as plain streams, reads at the read speed and
    // writes at the speed of a copy (STREAM's copy: read W, write a
    // W-sized buffer): reads R·W and writes X·W cost
    // (R − X)·read + X·copy
    let (reads, writes) = ws_reads_writes(n);
    let (read_ms, copy_ms) = (median(&mut times.bw), median(&mut times.cp));
    let rw_floor_ms = (reads - writes) * read_ms + writes * copy_ms;
    let logits_ms = median(&mut times.inf);
    let flops = 6.0 * (n * d * ck) as f64;
    let fma_gflops = fma_peak_gflops();
    let fma_floor_ms = flops / fma_gflops / 1e6;
    println!(
        "step {step_ms:.3} ms  floor {floor:.3} ms  ratio {:.3}  {:.1} GFLOP/s  W traffic {:.1} MB at {stream_gbs:.1} GB/s = {mem_floor_ms:.3} ms; as streams (read {read_ms:.3}, copy {copy_ms:.3} ms) {rw_floor_ms:.3} ms  ({rounds} rounds, probe {probe:.1})",
        step_ms / floor,
        flops / step_ms / 1e6,
        moved / 1e6
    );
    println!(
        "{{\"n\":{n},\"d\":{d},\"c\":{c},\"k\":{k},\"threads\":{t},\"step_ms\":{step_ms:.4},\"gemm_floor_ms\":{floor:.4},\"ratio\":{:.4},\"gflops\":{:.2},\"weight_bytes_moved\":{},\"stream_gbs\":{stream_gbs:.2},\"mem_floor_ms\":{mem_floor_ms:.4},\"mem_ratio\":{:.3},\"rw_floor_ms\":{rw_floor_ms:.4},\"rw_ratio\":{:.3},\"read_ms\":{read_ms:.4},\"copy_ms\":{copy_ms:.4},\"logits_ms\":{logits_ms:.4},\"fma_gflops\":{fma_gflops:.1},\"fma_floor_ms\":{fma_floor_ms:.4},\"peak_rss_mb\":{:.1},\"simd\":\"{}\"}}",
        step_ms / floor,
        flops / step_ms / 1e6,
        moved as u64,
        step_ms / mem_floor_ms,
        step_ms / rw_floor_ms,
        rss,
        arcface::simd_level()
    );
}

/// The three products' floor: per product the median of one thread, or the
/// better of that and `threads` threads; prints the forward and backward
/// split against their products.
fn gemm_floor(times: &mut Times, t: usize, step_ms: f64) -> f64 {
    let fwd_ms = median(&mut times.fwd);
    let mut floor = 0.0;
    let mut parts = [0.0; 3];
    for (j, part) in parts.iter_mut().enumerate() {
        let s = median(&mut times.seq[j]);
        *part = if t > 1 {
            s.min(median(&mut times.par[j]))
        } else {
            s
        };
        floor += *part;
    }
    eprintln!(
        "forward only (loss) {fwd_ms:.3} ms vs product X·Wᵀ {:.3} ms; backward {:.3} ms vs products {:.3} + {:.3} ms",
        parts[0],
        step_ms - fwd_ms,
        parts[1],
        parts[2]
    );
    floor
}

/// W-sized arrays one step reads and writes (see [`ws_traffic`]).
fn ws_reads_writes(n: usize) -> (f64, f64) {
    if n <= arcface::SMALL_BATCH {
        (2.0, 1.0)
    } else {
        (4.0, 2.0)
    }
}

/// `dst = 0.5 · src`, streamed.
fn stream_copy(dst: &mut [f32], src: &[f32]) {
    for (o, i) in dst.iter_mut().zip(src) {
        *o = 0.5 * *i;
    }
    std::hint::black_box(&*dst);
}

/// Bytes of W-sized arrays (W and ∂W, f32) one step reads or writes.
fn ws_traffic(n: usize, d: usize, ck: usize) -> f64 {
    let w = (ck * d * 4) as f64;
    if n <= arcface::SMALL_BATCH {
        // small batches: the forward streams W once; the fused backward
        // streams W once more and writes ∂W once
        3.0 * w
    } else {
        // forward reads W; ∂X̂ = G'W reads W; ∂W = G'ᵀX̂ writes ∂W; the row
        // projection reads W and ∂W and writes ∂W
        6.0 * w
    }
}
