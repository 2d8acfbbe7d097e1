//! The memory the library will allocate for what a command asks of it,
//! estimated from the shapes before anything is built, so that a head or a
//! batch that would not fit is refused with its size (see
//! [`crate::memory`]). The figures follow the library's buffers: the head
//! (weights and per-row norms, per-class margins), the workspace of a batch
//! (normalised features, the N×C·K products, the weight gradient when it
//! trains, the arg-max sub-centres for K > 1, per-thread partial results),
//! the optimiser's state, the logits of an evaluation batch, and the copies
//! a checkpoint takes while it is written.

use crate::memory::Need;
use arcface::{
    ArcFaceHead, EpochInfo, HeadConfig, Optimizer, OptimizerConfig, PartialFc, Real, TrainConfig,
    WeightDtype, Workspace,
};

/// A head's shape: C, K, D and its element type, with the library's own
/// estimates of what the head and its buffers hold.
#[derive(Debug, Clone)]
pub struct Shape {
    /// C, K and D (margins and loss as the defaults: they do not change the
    /// size of anything the estimates count beyond C numbers).
    cfg: HeadConfig,
    c: u128,
    k: u128,
    d: u128,
    /// Bytes of the element type.
    t: usize,
}

impl Shape {
    /// The shape of `cfg` in `T`.
    pub fn of<T: Real>(cfg: &HeadConfig) -> Self {
        Shape {
            cfg: HeadConfig::new(cfg.num_classes, cfg.in_channels)
                .with_subcenters(cfg.num_subcenters),
            c: cfg.num_classes as u128,
            k: cfg.num_subcenters as u128,
            d: cfg.in_channels as u128,
            t: std::mem::size_of::<T>(),
        }
    }

    fn weights(&self) -> u128 {
        self.c * self.k * self.d
    }

    fn f64(&self) -> bool {
        self.t == std::mem::size_of::<f64>()
    }

    /// `a head of C = 10 classes × K = 3 sub-centres × D = 64 in f32`.
    pub fn describe(&self, dtype: &str) -> String {
        format!(
            "a head of C = {} classes × K = {} sub-centres × D = {} in {dtype}",
            self.c, self.k, self.d
        )
    }
}

/// The head itself ([`ArcFaceHead::bytes_needed`]).
pub fn head(s: &Shape) -> Need {
    let bytes = if s.f64() {
        ArcFaceHead::<f64>::bytes_needed(&s.cfg)
    } else {
        ArcFaceHead::<f32>::bytes_needed(&s.cfg)
    };
    let mut n = Need::new();
    n.add("head", bytes, 1);
    n
}

/// The weights decoded from a checkpoint and their copy, alive while a
/// head is built from it.
pub fn decoding(s: &Shape) -> Need {
    let mut n = Need::new();
    n.add("weights being decoded", 2 * s.weights(), s.t);
    n
}

/// The workspace of batches of `cap` samples on `threads` threads, with
/// the weight gradient when `grads` ([`Workspace::bytes_needed`]).
pub fn workspace(s: &Shape, cap: usize, threads: usize, grads: bool) -> Need {
    let bytes = if s.f64() {
        Workspace::<f64>::bytes_needed(&s.cfg, cap, threads, grads)
    } else {
        Workspace::<f32>::bytes_needed(&s.cfg, cap, threads, grads)
    };
    let mut n = Need::new();
    n.add(
        if grads {
            "training workspace"
        } else {
            "workspace"
        },
        bytes,
        1,
    );
    n
}

/// An evaluation pass over batches of `cap` samples, as the library's
/// evaluator runs it: an inference workspace and the batch's logits.
pub fn evaluation(s: &Shape, cap: usize, threads: usize) -> Need {
    let mut n = workspace(s, cap, threads, false);
    n.add("logits", cap.max(1) as u128 * s.c, s.t);
    n
}

/// Prediction over chunks of `cap` samples, `top_k` kept per sample.
pub fn prediction(s: &Shape, cap: usize, threads: usize, top_k: usize) -> Need {
    let mut n = workspace(s, cap, threads, false);
    let b = cap.max(1) as u128;
    n.add("logits", b * s.c, s.t)
        .add("top-k lists", b * top_k as u128, 8 + s.t);
    n
}

/// The step buffers of a sampled (PartialFC) run at `rate` < 1
/// ([`PartialFc::bytes_needed`]: the kept rows and a training workspace
/// sized by the kept count, per-class tables), beside the head's own
/// one-sample inference workspace that the trainer keeps.
fn sampled_step(s: &Shape, rate: f64, cap: usize, threads: usize) -> Need {
    let bytes = if s.f64() {
        PartialFc::<f64>::bytes_needed(&s.cfg, rate, cap, threads)
    } else {
        PartialFc::<f32>::bytes_needed(&s.cfg, rate, cap, threads)
    };
    // a bad rate is refused when the trainer is made; count it as dense
    let Ok(bytes) = bytes else {
        return workspace(s, cap, threads, true);
    };
    let mut n = workspace(s, 1, threads, false);
    n.add("sampled step (kept classes)", bytes, 1);
    n
}

/// What `train` adds to the loaded data: the head, the optimiser's state,
/// the trainer's buffers (the training workspace of C classes, or with
/// `sample_rate` < 1 that of the kept classes) and its record of every epoch, then the largest of the evaluation during `fit`
/// (with `n_val` held-out samples), the final evaluation (batches of
/// `eval_batch`) and the checkpoint and optimiser-state files being written.
pub fn training(
    s: &Shape,
    t: &TrainConfig,
    (n_train, n_val): (usize, usize),
    eval_batch: usize,
    threads: usize,
    out: Option<(WeightDtype, bool)>,
) -> Need {
    let cap = t.batch_size.min(n_train).max(1);
    let states = state_count(&t.optimizer);
    let opt = if s.f64() {
        Optimizer::<f64>::bytes_needed(&t.optimizer, s.weights() as usize)
    } else {
        Optimizer::<f32>::bytes_needed(&t.optimizer, s.weights() as usize)
    };
    let step = if t.is_sampled() {
        sampled_step(s, t.sample_rate, cap, threads)
    } else {
        workspace(s, cap, threads, true)
    };
    let mut n = head(s);
    n.add("optimiser state", opt, 1)
        .merge(&step)
        .add("batch features", cap as u128 * s.d, s.t)
        .add("shuffle order", n_train as u128, 8)
        .add(
            "epoch history",
            t.epochs as u128,
            std::mem::size_of::<EpochInfo>(),
        );
    if t.train_accuracy {
        n.add("logits", cap as u128 * s.c, s.t);
    }
    if t.adaptive_margins.is_some() {
        n.add("margins", s.c, 3 * 8);
    }
    let fit_eval = (n_val > 0).then(|| evaluation(s, t.eval_batch(n_val), threads));
    let final_eval = evaluation(s, eval_batch.min(n_train), threads);
    let writing = out.map(|(dtype, optimiser)| {
        let mut w = Need::new();
        w.add("checkpoint being written", 2 * s.weights(), dtype.size());
        if optimiser {
            w.add("checkpoint being written", 2 * states * s.weights(), s.t);
        }
        w
    });
    let largest = [fit_eval, Some(final_eval), writing]
        .into_iter()
        .flatten()
        .max_by_key(Need::total);
    if let Some(phase) = largest {
        n.merge(&phase);
    }
    n
}

fn state_count(o: &OptimizerConfig) -> u128 {
    o.state_names().len() as u128
}

/// The hint of an error about a head too large: what would shrink it.
pub fn hint<T: Real>(batch_flag: bool) -> String {
    let mut h = String::new();
    if T::NAME == "f64" {
        h.push_str("; --dtype f32 would halve it");
    }
    if batch_flag {
        h.push_str("; a smaller --batch-size shrinks the per-batch buffers");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_head_needs_little_and_a_billion_classes_need_terabytes() {
        let t = TrainConfig::default();
        let small = Shape::of::<f32>(&HeadConfig::new(10, 64));
        let n = training(
            &small,
            &t,
            (1438, 359),
            128,
            2,
            Some((WeightDtype::F32, false)),
        );
        assert!(n.total() < 8 << 20, "{}", n.describe());
        let huge = Shape::of::<f32>(&HeadConfig::new(1_000_000_000, 64));
        let n = training(&huge, &t, (1438, 359), 128, 2, None);
        // weights, gradient, momentum, and the final evaluation's logits
        assert!(n.total() > 4 * 256_000_000_000, "{}", n.describe());
        assert!(n.describe().contains(" TiB ("), "{}", n.describe());
    }

    #[test]
    fn a_sampled_run_sizes_its_step_by_the_kept_classes() {
        let s = Shape::of::<f32>(&HeadConfig::new(1_000_000, 512));
        let dense = TrainConfig {
            batch_size: 256,
            ..TrainConfig::default()
        };
        let sampled = TrainConfig {
            sample_rate: 0.1,
            ..dense.clone()
        };
        let run = |t: &TrainConfig| training(&s, t, (100_000, 0), 256, 2, None).total();
        let (d, p) = (run(&dense), run(&sampled));
        let (c, n, kept, dim) = (1_000_000u128, 256u128, 100_000u128, 512u128);
        // the dense step's C×D gradient and N×C products are gone; the
        // sampled step holds C'×D rows and gradient and N×C' products
        // (some 0.6 GB against 3 GB)
        let freed = 4 * (c * dim + n * c);
        let added = 4 * (3 * kept * dim + 4 * n * kept) + 16 * c;
        assert!(d - p > freed - added, "{d} {p}");
        let step = PartialFc::<f32>::bytes_needed(&s.cfg, 0.1, 256, 2).unwrap();
        assert!(
            step >= 4 * (2 * kept * dim + n * kept) && step < added,
            "{step}"
        );
    }

    #[test]
    fn sub_centres_and_batches_scale_the_workspace() {
        let k3 = Shape::of::<f32>(&HeadConfig::new(100_000, 128).with_subcenters(3));
        let big = evaluation(&k3, 1024, 1).total();
        let small = evaluation(&k3, 8, 1).total();
        // 1024 × 300k products, 1024 × 100k logits and arg-max sub-centres
        let parts = 4 * (1024 * 300_000 + 1024 * 100_000 + 100_000 * 1024);
        assert!(big > parts && small < 200 << 20, "{big} {small}");
    }
}
