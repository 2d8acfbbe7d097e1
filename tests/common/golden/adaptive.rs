//! `adaptive_margins` cases: `AdaptiveMargins::compute` against upstream's
//! hook, or against the independent reference where a deviation applies.

use super::json::{labels_of, list, num, raises};
use super::reference::hook_reference;
use arcface::AdaptiveMargins;
use serde_json::Value;

/// Checks one `adaptive_margins` case: the margins against the golden
/// ones, or against the reference where upstream's are NaN (D5) or upstream
/// raises (D6, or an int power Rust's f64 cannot express); an error for no
/// labels or a label out of range (D6).
pub fn check_adaptive_case(v: &Value) -> Result<String, String> {
    let cfg = &v["config"];
    let c = cfg["num_classes"].as_u64().unwrap() as usize;
    let p = AdaptiveMargins {
        margin_min: num(&cfg["margin_min"]),
        margin_max: num(&cfg["margin_max"]),
        power: num(&cfg["power"]),
    };
    let labels = labels_of(&v["inputs"]["labels"]);
    let got = p.compute(&labels, c);
    let exact = &v["exact_f64"]["margins"];
    let bad_label = labels.iter().any(|&l| l < 0 || l as usize >= c);
    if labels.is_empty() || bad_label {
        return match got {
            Err(e) => Ok(format!("error as expected: {e}  [D6]")),
            Ok(m) => Err(format!(
                "expected an error for labels {labels:?}, got {m:?}"
            )),
        };
    }
    let got = got.map_err(|e| format!("unexpected error: {e}"))?;
    let (want, note) = match raises(exact) {
        Some(_) => {
            let note = if cfg["power_is_python_int"].as_bool() == Some(true) {
                "Rust's power is an f64: upstream's int-power ValueError cannot arise; checked against the formula"
            } else {
                "D6"
            };
            (
                hook_reference(&labels, c, p.margin_min, p.margin_max, p.power),
                note,
            )
        }
        None => {
            let e = list(exact);
            if e.iter().any(|m| !m.is_finite()) {
                (
                    hook_reference(&labels, c, p.margin_min, p.margin_max, p.power),
                    "D5",
                )
            } else {
                (e, "")
            }
        }
    };
    for (cls, (a, b)) in got.iter().zip(&want).enumerate() {
        if (a - b).abs() > 1e-12 * b.abs().max(1.0) || got.len() != want.len() {
            return Err(format!("class {cls}: {a} vs {b}"));
        }
    }
    Ok(format!(
        "{} margins match{}",
        got.len(),
        if note.is_empty() {
            String::new()
        } else {
            format!("  [{note}]")
        }
    ))
}
