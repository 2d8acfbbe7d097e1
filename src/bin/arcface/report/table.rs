//! The summary tables `train` and `eval` print on stdout.

use super::{fmt_bytes, human, pct};
use arcface::EvalMetrics;

/// What `train` reports at the end.
pub struct TrainSummary<'a> {
    /// `digits (...) · 1438 train / 359 test · D 64 · C 10`
    pub data: String,
    pub head: &'a str,
    pub optimizer: &'a str,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub batch: usize,
    pub train: EvalMetrics,
    pub test: Option<EvalMetrics>,
    pub train_seconds: f64,
    pub embeddings_per_s: f64,
    pub eval_seconds: f64,
    pub total_seconds: f64,
    pub peak_memory: Option<u64>,
    pub threads: usize,
    pub dtype: &'a str,
    pub simd: &'a str,
    /// `path (F32 `head.norm_product.weight` (10, 64))`, or `None` when not written.
    pub checkpoint: Option<String>,
    /// (what, path) of the other files written.
    pub files: Vec<(&'a str, &'a str)>,
}

impl TrainSummary<'_> {
    /// Prints the table.
    pub fn print(&self) {
        println!();
        println!("arcface train · {}", self.data);
        println!("  head       {}", self.head);
        println!(
            "  optimiser  {}; {} epochs × {} steps of {}",
            self.optimizer, self.epochs, self.steps_per_epoch, self.batch
        );
        println!();
        let hdr = if self.test.is_some() {
            "      test"
        } else {
            ""
        };
        println!("  {:<16}{:>10}{hdr}", "", "train");
        let row = |name: &str, f: fn(&EvalMetrics) -> String| {
            let test = self
                .test
                .as_ref()
                .map_or(String::new(), |v| format!("{:>10}", f(v)));
            println!("  {name:<16}{:>10}{test}", f(&self.train));
        };
        row("loss", |m| format!("{:.4}", m.loss));
        row("top-1 accuracy", |m| pct(m.top1));
        row("top-5 accuracy", |m| pct(m.top5));
        println!();
        println!(
            "  time         {:.2} s training ({} embeddings/s) + {:.2} s evaluation; {:.2} s in all",
            self.train_seconds,
            human(self.embeddings_per_s),
            self.eval_seconds,
            self.total_seconds
        );
        println!("  peak memory  {}", fmt_bytes(self.peak_memory));
        println!(
            "  threads      {} · {} · SIMD {}",
            self.threads, self.dtype, self.simd
        );
        match &self.checkpoint {
            Some(c) => println!("  checkpoint   {c}"),
            None => println!("  checkpoint   not written (use --out PATH)"),
        }
        for (what, path) in &self.files {
            println!("  {what:<12} {path}");
        }
    }
}

/// The table `eval` prints by default.
pub fn print_eval(checkpoint: &str, source: &str, m: &EvalMetrics, seconds: f64) {
    println!(
        "arcface eval · {checkpoint} · {} samples from {source}",
        m.samples
    );
    println!("  loss            {:.4}", m.loss);
    println!("  top-1 accuracy  {}", pct(m.top1));
    println!("  top-5 accuracy  {}", pct(m.top5));
    println!(
        "  time            {seconds:.3} s ({} embeddings/s)",
        human(super::rate(m.samples, seconds))
    );
}
