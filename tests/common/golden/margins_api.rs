//! The `margins_api` case: upstream's answers to many ways of passing
//! margins to `__init__` and `set_margins`, one subcase each, and the
//! constants `__init__` and `set_margins` derive from the same margins.
//! Each subcase is checked alone; those whose argument is a Python value no
//! Rust parameter can hold are skipped with that reason.

use super::json::list;
use arcface::{ArcFaceHead, HeadConfig, MarginConstants, Margins};
use serde_json::Value;

/// Why a subcase is not checked.
pub const NOT_EXPRESSIBLE: &str = "a Python value (int scalar, str, numpy float32, tensor, dict \
     or negative count) that Rust's f64 / &[f64] / usize parameters cannot hold";

/// D8: one f64 formula for the margin constants; upstream's two f32
/// formulas differ from it by at most 3.1e-7 per unit of margin (π is
/// rounded to f32 first).
const D8_TOL: f64 = 3.1e-7;

/// The outcome of a subcase that did not fail.
pub enum Subcase {
    /// Checked; what agreed.
    Checked(String),
    /// Not expressible in Rust's types; the reason.
    Skipped(&'static str),
}

/// The subcases of the case, in file order.
pub fn subcases(v: &Value) -> Vec<Value> {
    v["subcases"].as_array().cloned().unwrap_or_default()
}

/// A subcase's argument as upstream wrote it (`margins=0.5 (python float)`).
pub fn subcase_arg(s: &Value) -> &str {
    s["arg"].as_str().unwrap_or("")
}

/// Checks one subcase on a 3-class, 4-channel head.
pub fn check_subcase(s: &Value) -> Result<Subcase, String> {
    let arg = subcase_arg(s);
    let ok = s["result"].as_str() == Some("ok");
    let c = 3usize;
    let cfg_of = |m: Margins| HeadConfig::new(c, 4).with_margins(m);
    if arg.contains("num_classes=0") {
        if ArcFaceHead::<f32>::new(HeadConfig::new(0, 4), 0).is_ok() {
            return Err("num_classes = 0 must be rejected (D11)".into());
        }
        Ok(Subcase::Checked("rejected  [D11]".into()))
    } else if arg.contains("num_subcenters=0") {
        if ArcFaceHead::<f32>::new(cfg_of(Margins::Uniform(0.5)).with_subcenters(0), 0).is_ok() {
            return Err("num_subcenters = 0 must be rejected".into());
        }
        Ok(Subcase::Checked("rejected".into()))
    } else if arg.contains("wrong length") {
        if ArcFaceHead::<f32>::new(cfg_of(Margins::PerClass(vec![0.1, 0.2])), 0).is_ok() {
            return Err("wrong-length margins must be rejected".into());
        }
        let mut h = ArcFaceHead::<f32>::new(cfg_of(Margins::Uniform(0.5)), 0).unwrap();
        if h.set_margins(&[0.1, 0.2]).is_ok() {
            return Err("set_margins with the wrong length must be rejected".into());
        }
        Ok(Subcase::Checked(
            "rejected at construction and by set_margins".into(),
        ))
    } else if ok && s.get("margins_f32").is_some() {
        check_accepted(s, arg, c).map(Subcase::Checked)
    } else {
        Ok(Subcase::Skipped(NOT_EXPRESSIBLE))
    }
}

/// Margins upstream accepted: non-finite ones are an error here (D7), at
/// construction and in `set_margins`; finite ones give the constants
/// upstream derived, within [`D8_TOL`].
fn check_accepted(s: &Value, arg: &str, c: usize) -> Result<String, String> {
    let cfg_of = |m: Margins| HeadConfig::new(c, 4).with_margins(m);
    let m = list(&s["margins_f32"]);
    let init = ArcFaceHead::<f32>::new(cfg_of(Margins::PerClass(m.clone())), 0);
    if m.iter().any(|x| !x.is_finite()) {
        if init.is_ok() {
            return Err(format!("{arg}: NaN margins must be rejected (D7)"));
        }
        let mut h = ArcFaceHead::<f32>::new(cfg_of(Margins::Uniform(0.5)), 0).unwrap();
        if h.set_margins(&m).is_ok() {
            return Err(format!("{arg}: set_margins must reject NaN (D7)"));
        }
        return Ok("rejected at construction and by set_margins  [D7]".into());
    }
    let h = init.map_err(|e| format!("{arg}: {e}"))?;
    for (cls, &mc) in m.iter().enumerate().take(c) {
        let k = h.margin_constants(cls);
        for (field, ours) in [("sinm_m_f32", k.sinm_m), ("threshold_f32", k.threshold)] {
            let theirs = list(&s[field])[cls];
            if ((ours as f32) as f64 - theirs).abs() > D8_TOL * mc.abs().max(1.0) {
                return Err(format!("{arg}: {field}[{cls}] {ours} vs {theirs}"));
            }
        }
    }
    Ok("margin constants agree  [D8]".into())
}

/// The constants of `__init__` and of `set_margins` for the same margins,
/// against this crate's one formula, within [`D8_TOL`].
pub fn check_init_vs_set(v: &Value) -> Result<String, String> {
    let ivs = &v["init_vs_set_margins"];
    let ms = list(&ivs["margins"]);
    if ms.is_empty() {
        return Err("init_vs_set_margins lists no margins".into());
    }
    for (i, &m) in ms.iter().enumerate() {
        let k = MarginConstants::new(m);
        for (field, ours) in [
            ("init_sinm_m", k.sinm_m),
            ("set_sinm_m", k.sinm_m),
            ("init_threshold", k.threshold),
            ("set_threshold", k.threshold),
        ] {
            let theirs = list(&ivs[field])[i];
            if ((ours as f32) as f64 - theirs).abs() > D8_TOL * m.abs().max(1.0) {
                return Err(format!("{field}[{i}] (m = {m}): {ours} vs {theirs}"));
            }
        }
    }
    Ok(format!("{} margins agree  [D8]", ms.len()))
}
