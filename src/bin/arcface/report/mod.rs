//! What the program shows and writes about a run: the progress on stderr,
//! the summary tables on stdout, JSON (metrics, eval, predictions), CSV
//! predictions and the SVG curves. Numbers are formatted here, nowhere else.

pub mod clean;
pub mod json;
pub mod predictions;
pub mod progress;
pub mod svg;
pub mod table;

use arcface::{HeadConfig, LrSchedule, Margins, OptimizerConfig, TrainConfig};

/// `12.3k`, `4.56M`: a rate for people.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// ` 96.38 %`: an accuracy in the tables.
pub fn pct(x: f64) -> String {
    format!("{:6.2} %", 100.0 * x)
}

/// `6.2 MiB`, `1.25 GiB`, or `n/a`.
pub fn fmt_bytes(b: Option<u64>) -> String {
    match b {
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        None => "n/a".into(),
    }
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`).
pub fn peak_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Embeddings per second (a zero duration counts as a nanosecond).
pub fn rate(samples: usize, seconds: f64) -> f64 {
    samples as f64 / seconds.max(1e-9)
}

/// Significant digits of a probability (f32 carries about seven).
const PROBABILITY_DIGITS: i32 = 7;

/// A probability for people and parsers: rounded to 7 significant digits,
/// in positional notation from 10⁻⁴ (`0.0001234568`) and scientific below
/// (`1.234568e-5`), trailing zeros dropped; `null` when not finite.
pub fn probability(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if (1e-4..1e6).contains(&x.abs()) {
        // decimals that leave PROBABILITY_DIGITS significant digits
        let decimals = (PROBABILITY_DIGITS - 1 - x.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            &s
        };
        return s.to_string();
    }
    format!("{:.*e}", (PROBABILITY_DIGITS - 1) as usize, x)
}

/// The head in one line: `K 1, scale 64, margin 0.2, CrossEntropyLoss`.
pub fn describe_head(cfg: &HeadConfig, adaptive: bool) -> String {
    let m = match &cfg.margins {
        _ if adaptive => "adaptive margins".to_string(),
        Margins::Uniform(m) => format!("margin {m}"),
        Margins::PerClass(v) if v.windows(2).all(|w| w[0] == w[1]) => format!("margin {}", v[0]),
        Margins::PerClass(_) => "per-class margins".to_string(),
    };
    let loss = match &cfg.loss.label_smooth {
        Some(ls) => format!("LabelSmoothLoss {}", ls.label_smooth_val),
        None => "CrossEntropyLoss".into(),
    };
    format!(
        "K {}, scale {}, {m}{}, {loss}",
        cfg.num_subcenters,
        cfg.scale,
        if cfg.easy_margin { ", easy" } else { "" }
    )
}

/// The optimiser and schedule in one line: `SGD lr 0.1 momentum 0.9 wd 0.0001, cosine`.
pub fn describe_optimizer(t: &TrainConfig) -> String {
    let o = match t.optimizer {
        OptimizerConfig::Sgd(s) => format!(
            "SGD lr {} momentum {}{} wd {}",
            t.lr,
            s.momentum,
            if s.nesterov { " nesterov" } else { "" },
            s.weight_decay
        ),
        OptimizerConfig::AdamW(a) => format!(
            "AdamW lr {} betas ({}, {}) wd {}",
            t.lr, a.beta1, a.beta2, a.weight_decay
        ),
    };
    let s = match t.schedule {
        LrSchedule::Constant => "constant".to_string(),
        LrSchedule::Step { step_size, gamma } => format!("step {step_size}×{gamma}"),
        LrSchedule::Cosine { .. } => "cosine".to_string(),
    };
    let w = if t.warmup_epochs > 0 {
        format!(" after {} warm-up epochs", t.warmup_epochs)
    } else {
        String::new()
    };
    format!("{o}, {s}{w}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(
            (human(999.0), human(12_345.0), human(4_560_000.0)),
            ("999".into(), "12.3k".into(), "4.56M".into())
        );
        assert_eq!(pct(0.96378), " 96.38 %");
        assert_eq!(fmt_bytes(Some(3 << 20)), "3.0 MiB");
        assert_eq!(fmt_bytes(None), "n/a");
    }

    #[test]
    fn probabilities_keep_seven_significant_digits() {
        assert_eq!(probability(0.123456789), "0.1234568");
        assert_eq!(probability(0.00123456789), "0.001234568");
        assert_eq!(probability(0.000123456789), "0.0001234568");
        assert_eq!(probability(0.0999999999), "0.1");
        assert_eq!(probability(0.5), "0.5");
        assert_eq!(probability(1.0), "1");
        assert_eq!(probability(10.0), "10");
        assert_eq!(probability(0.0), "0");
        assert_eq!(probability(1.5e-5), "1.500000e-5");
        assert_eq!(probability(f64::NAN), "null");
    }
}
