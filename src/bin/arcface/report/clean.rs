//! `arcface clean`'s report: the JSON of `--report` (per class, then per
//! sample) and the summary on standard output.

use super::pct;
use arcface::{CleanRule, Cleaning};
use serde::Serialize;

/// Where the run's inputs came from and what it was asked.
pub struct Run<'a> {
    pub checkpoint: &'a str,
    pub features: &'a str,
    pub rule: CleanRule,
}

fn rule_name(r: CleanRule) -> &'static str {
    match r {
        CleanRule::Official => "official",
        CleanRule::Strict => "strict",
    }
}

#[derive(Serialize)]
struct Report<'a> {
    checkpoint: &'a str,
    features: &'a str,
    rule: &'static str,
    threshold_degrees: f64,
    samples: usize,
    num_classes: usize,
    num_subcenters: usize,
    kept_official: usize,
    kept_strict: usize,
    classes: Vec<Class>,
    per_sample: PerSample<'a>,
}

/// One class; angles are `null` for a class without samples.
#[derive(Serialize)]
struct Class {
    class: usize,
    samples: usize,
    dominant: usize,
    nearest_counts: Vec<usize>,
    kept_official: usize,
    dropped_official: usize,
    kept_strict: usize,
    dropped_strict: usize,
    angle_min: Option<f64>,
    angle_mean: Option<f64>,
    angle_max: Option<f64>,
}

/// Per sample, in input order.
#[derive(Serialize)]
struct PerSample<'a> {
    nearest: &'a [usize],
    angle_degrees: &'a [f64],
    keep_official: &'a [bool],
    keep_strict: &'a [bool],
}

/// The `--report` JSON (one object, pretty-printed, ending in a newline).
pub fn json(run: &Run<'_>, r: &Cleaning) -> String {
    let classes = r
        .classes()
        .into_iter()
        .map(|c| Class {
            class: c.class,
            samples: c.samples,
            dominant: c.dominant,
            dropped_official: c.dropped(CleanRule::Official),
            dropped_strict: c.dropped(CleanRule::Strict),
            nearest_counts: c.nearest_counts,
            kept_official: c.kept_official,
            kept_strict: c.kept_strict,
            angle_min: c.angles.map(|a| a.min),
            angle_mean: c.angles.map(|a| a.mean),
            angle_max: c.angles.map(|a| a.max),
        })
        .collect();
    let report = Report {
        checkpoint: run.checkpoint,
        features: run.features,
        rule: rule_name(run.rule),
        threshold_degrees: r.threshold_degrees,
        samples: r.labels.len(),
        num_classes: r.num_classes,
        num_subcenters: r.num_subcenters,
        kept_official: r.kept(CleanRule::Official),
        kept_strict: r.kept(CleanRule::Strict),
        classes,
        per_sample: PerSample {
            nearest: &r.nearest,
            angle_degrees: &r.angles,
            keep_official: &r.keep_official,
            keep_strict: &r.keep_strict,
        },
    };
    let mut s = serde_json::to_string_pretty(&report)
        .unwrap_or_else(|e| unreachable!("JSON of a plain struct: {e}"));
    s.push('\n');
    s
}

/// The summary on standard output.
pub fn summary(run: &Run<'_>, r: &Cleaning, seconds: f64) -> String {
    let n = r.labels.len();
    let line = |rule: CleanRule| {
        let kept = r.kept(rule);
        let mark = if rule == run.rule { "  (--rule)" } else { "" };
        format!(
            "  {:<9} kept {kept:>8} ({:>6}), dropped {:>8}{mark}\n",
            rule_name(rule),
            pct(kept as f64 / n.max(1) as f64),
            n - kept
        )
    };
    let split = r
        .classes()
        .iter()
        .filter(|c| c.samples > 0 && 2 * c.nearest_counts[c.dominant] <= c.samples)
        .count();
    format!(
        "clean {}: {n} samples of {}, C = {}, K = {}, threshold {}°, {seconds:.3} s\n{}{}  classes whose dominant sub-centre holds at most half their samples: {split}\n",
        run.checkpoint,
        run.features,
        r.num_classes,
        r.num_subcenters,
        r.threshold_degrees,
        line(CleanRule::Official),
        line(CleanRule::Strict),
    )
}
