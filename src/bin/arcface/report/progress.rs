//! Progress on stderr: a header, a live bar redrawn in place when stderr is
//! a terminal, and one line per epoch.

use super::human;
use arcface::{EpochInfo, EvalMetrics, StepInfo};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// The bar's width in characters.
const BAR: usize = 24;
/// The bar is redrawn at most this often (and at each epoch's last step).
const REDRAW_MS: u128 = 80;

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// The progress display of one `train` run.
pub struct Progress {
    tty: bool,
    quiet: bool,
    last: Option<Instant>,
    width: usize,
    epoch_loss: f64,
    epoch_correct: usize,
    epoch_seen: usize,
    samples: usize,
    last_val: Option<EvalMetrics>,
}

impl Progress {
    /// Shows nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            quiet,
            last: None,
            width: 0,
            epoch_loss: 0.0,
            epoch_correct: 0,
            epoch_seen: 0,
            samples: 0,
            last_val: None,
        }
    }

    /// The two header lines: what is trained on what.
    pub fn header(&self, run: &str, head: &str) {
        if !self.quiet {
            eprintln!("{run}");
            eprintln!("  head: {head}");
        }
    }

    /// After each step: accumulates the epoch's loss and accuracy, redraws the bar.
    pub fn step(&mut self, s: &StepInfo) {
        self.epoch_loss += s.loss * s.batch_len as f64;
        self.epoch_correct += s.batch_correct.unwrap_or(0);
        self.epoch_seen += s.batch_len;
        if self.quiet || !self.tty {
            return;
        }
        let now = Instant::now();
        if let Some(t) = self.last {
            if now.duration_since(t).as_millis() < REDRAW_MS && s.step != s.steps_per_epoch {
                return;
            }
        }
        self.last = Some(now);
        let frac = s.step as f64 / s.steps_per_epoch as f64;
        let filled = (frac * BAR as f64).round() as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(BAR - filled);
        let rate = (self.samples + self.epoch_seen) as f64 / s.elapsed.max(1e-9);
        let acc = if s.batch_correct.is_some() {
            format!(
                " acc {:5.1}%",
                100.0 * self.epoch_correct as f64 / self.epoch_seen.max(1) as f64
            )
        } else {
            String::new()
        };
        let val = match self.last_val {
            Some(v) => format!(" val {:5.1}%", 100.0 * v.top1),
            None => String::new(),
        };
        let line = format!(
            "epoch {:>w$}/{} {bar} {:3.0}% loss {:.4}{acc}{val} {} emb/s",
            s.epoch,
            s.epochs,
            100.0 * frac,
            self.epoch_loss / self.epoch_seen.max(1) as f64,
            human(rate),
            w = digits(s.epochs)
        );
        let pad = self.width.saturating_sub(line.chars().count());
        self.width = line.chars().count();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{}", " ".repeat(pad));
        let _ = err.flush();
    }

    /// After each epoch: its line (over the bar on a terminal).
    pub fn epoch(&mut self, e: &EpochInfo) {
        self.samples += e.samples;
        if e.val.is_some() {
            self.last_val = e.val;
        }
        self.epoch_loss = 0.0;
        self.epoch_correct = 0;
        self.epoch_seen = 0;
        if self.quiet {
            return;
        }
        let mut line = format!(
            "epoch {:>w$}/{}  loss {:.4}",
            e.epoch,
            e.epochs,
            e.train_loss,
            w = digits(e.epochs)
        );
        if let Some(t) = e.train_top1 {
            line.push_str(&format!("  train top-1 {:5.1}%", 100.0 * t));
        }
        if let Some(v) = e.val {
            line.push_str(&format!(
                "  test loss {:.4} top-1 {:5.1}% top-5 {:5.1}%",
                v.loss,
                100.0 * v.top1,
                100.0 * v.top5
            ));
        }
        line.push_str(&format!(
            "  lr {:.3e}  {} emb/s",
            e.lr,
            human(super::rate(e.samples, e.train_seconds))
        ));
        let mut err = std::io::stderr().lock();
        if self.tty {
            let pad = self.width.saturating_sub(line.chars().count());
            let _ = writeln!(err, "\r{line}{}", " ".repeat(pad));
            self.width = 0;
        } else {
            let _ = writeln!(err, "{line}");
        }
        self.last = None;
    }
}
