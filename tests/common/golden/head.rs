//! `head` cases: the head built as a user would from the case's
//! configuration (margins as a number, a list, a file or the adaptive hook),
//! in f64 and f32, then checked against the golden blocks by
//! [`super::head_check`].

use super::head_check::check_head;
use super::json::{labels_of, list, num, raises, tensor};
use arcface::{
    parse_margins_file, AdaptiveMargins, ArcFaceHead, Error, HeadConfig, LabelSmooth, LossConfig,
    Margins, Real, Reduction, SmoothMode,
};
use serde_json::Value;
use std::collections::BTreeSet;

/// A `head` case's inputs, and the notes (deviations) its checks met.
pub struct HeadCase<'a> {
    pub v: &'a Value,
    pub c: usize,
    pub k: usize,
    pub d: usize,
    pub n: usize,
    pub x: Vec<f64>,
    pub w: Vec<f64>,
    pub labels: Vec<i64>,
    pub soft: Option<Vec<f64>>,
    pub constructed: BTreeSet<usize>,
    pub sensitive: bool,
    pub notes: BTreeSet<&'static str>,
}

/// Flags of cases with rounding-sensitive constructed rows, whose training
/// logits and loss are checked against the documented policy (D1/D2)
/// instead of upstream's values.
const SENSITIVE: [&str; 5] = [
    "rounding_sensitive_parallel",
    "exact_unit_cosine",
    "cos_gt_1_torch_f64",
    "near_boundary_random",
    "nonfinite_",
];

/// The loss configuration of the case's `loss` object; an error for what
/// the crate does not implement.
fn loss_config(l: &Value, notes: &mut BTreeSet<&'static str>) -> Result<LossConfig, String> {
    let ty = l["type"].as_str().unwrap_or("CrossEntropyLoss");
    let mut cfg = match ty {
        "CrossEntropyLoss" => LossConfig::cross_entropy(),
        "LabelSmoothLoss" => {
            let e = &l["label_smooth_val"];
            if e.is_i64() || e.is_u64() {
                // upstream asserts a Python float; Rust's f64 has no int variant
                notes.insert("int-eps-as-float");
            }
            let mode = match l["mode"].as_str().unwrap_or("original") {
                "original" => SmoothMode::Original,
                "classy_vision" => SmoothMode::ClassyVision,
                other => return Err(format!("label smoothing mode {other} is out of scope")),
            };
            let mut c = LossConfig::label_smooth(num(e)).with_smooth_mode(mode);
            if let Some(ls) = &mut c.label_smooth {
                *ls = LabelSmooth {
                    num_classes: l["num_classes"].as_u64().map(|v| v as usize),
                    ..*ls
                };
            }
            c
        }
        other => return Err(format!("loss type {other} is out of scope")),
    };
    if let Some(w) = l.get("loss_weight").filter(|v| !v.is_null()) {
        cfg.loss_weight = num(w);
    }
    if let Some(w) = l.get("class_weight").filter(|v| !v.is_null()) {
        cfg.class_weight = Some(list(w));
    }
    cfg.reduction = match l["reduction"].as_str().unwrap_or("mean") {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        other => return Err(format!("reduction {other}")),
    };
    if l["use_sigmoid"].as_bool() == Some(true) {
        return Err("use_sigmoid is out of scope".into());
    }
    cfg.use_soft = l["use_soft"].as_bool().unwrap_or(false);
    Ok(cfg)
}

/// Builds the head for precision T, applying the margins the way a user would
/// (a number, a list, a file, or the adaptive-margin hook).
fn build_head<T: Real>(
    hc: &HeadCase,
    notes: &mut BTreeSet<&'static str>,
) -> Result<ArcFaceHead<T>, Error> {
    let cfgv = &hc.v["config"];
    let loss = loss_config(&cfgv["loss"], notes).map_err(|reason| Error::InvalidConfig {
        field: "loss",
        reason,
    })?;
    let margins_arg = &cfgv["margins_arg"];
    let source = cfgv["margins_source"].as_str().unwrap_or("float");
    let margins = match source {
        "float" => Margins::Uniform(num(margins_arg)),
        "list" => Margins::PerClass(list(margins_arg)),
        "txt" => Margins::PerClass(parse_margins_file(
            cfgv["margins_txt"].as_str().unwrap(),
            hc.c,
        )?),
        "hook" => {
            if margins_arg.is_array() {
                Margins::PerClass(list(margins_arg))
            } else {
                Margins::Uniform(num(margins_arg))
            }
        }
        other => panic!("margins_source {other}"),
    };
    let cfg = HeadConfig::new(hc.c, hc.d)
        .with_subcenters(hc.k)
        .with_scale(num(&cfgv["scale"]))
        .with_easy_margin(cfgv["easy_margin"].as_bool().unwrap_or(false))
        .with_margins(margins)
        .with_loss(loss);
    let w: Vec<T> = hc.w.iter().map(|&v| T::from_f64(v)).collect();
    let mut head = ArcFaceHead::<T>::from_weight(cfg, &w)?;
    if source == "hook" {
        let h = &cfgv["hook"];
        let params = AdaptiveMargins {
            margin_min: num(&h["margin_min"]),
            margin_max: num(&h["margin_max"]),
            power: num(&h["power"]),
        };
        head.set_adaptive_margins(&labels_of(&h["labels"]), params)?;
    }
    Ok(head)
}

impl<'a> HeadCase<'a> {
    /// The case's inputs and flags.
    fn from_json(v: &'a Value) -> Self {
        let cfgv = &v["config"];
        let inputs = &v["inputs"];
        let (xs, x) = tensor(&inputs["features"]);
        let (_, w) = tensor(&inputs["weight"]);
        let c = cfgv["num_classes"].as_u64().unwrap() as usize;
        let k = cfgv["num_subcenters"].as_u64().unwrap() as usize;
        let d = cfgv["in_channels"].as_u64().unwrap() as usize;
        let n = xs[0];
        let flags: Vec<String> = v["flags"]
            .as_array()
            .map(|a| a.iter().map(|f| f.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let sensitive = flags
            .iter()
            .any(|f| SENSITIVE.iter().any(|s| f.starts_with(s)));
        let mut hc = HeadCase {
            v,
            c,
            k,
            d,
            n,
            x,
            w,
            labels: labels_of(&inputs["labels"]),
            soft: inputs
                .get("soft_targets")
                .filter(|s| !s.is_null())
                .map(|s| tensor(s).1),
            constructed: v["constructed_rows"]
                .as_array()
                .map(|a| a.iter().map(|r| r.as_u64().unwrap() as usize).collect())
                .unwrap_or_default(),
            sensitive,
            notes: BTreeSet::new(),
        };
        if sensitive {
            hc.notes
                .insert("D1/D2 (sensitive rows checked against the documented policy)");
        }
        hc
    }
}

/// Checks one `head` case: a line with the worst normalised errors (f64
/// and f32 against `exact_f64`, f64 against `upstream_f64`) and the
/// deviations met, or what disagreed.
pub fn check_head_case(v: &Value) -> Result<String, String> {
    let mut hc = HeadCase::from_json(v);
    let cfgv = &v["config"];
    let mut notes = BTreeSet::new();
    let h64 = match build_head::<f64>(&hc, &mut notes) {
        Ok(h) => h,
        Err(e) => {
            // a configuration upstream accepted but the crate rejects must be a
            // documented deviation; one upstream rejected must be rejected here
            return check_config_rejection(&hc, &e);
        }
    };
    let h32 = build_head::<f32>(&hc, &mut notes).map_err(|e| format!("f32 head: {e}"))?;
    hc.notes.extend(notes);

    // margins as the crate installed them
    let want_m = list(&cfgv["margins"]);
    if want_m.iter().all(|m| m.is_finite()) {
        for (cls, (a, b)) in h64.margins().iter().zip(&want_m).enumerate() {
            if (a - b).abs() > 1e-12 * b.abs().max(1.0) {
                return Err(format!("margin of class {cls}: {a} vs {b}"));
            }
        }
    } else {
        hc.notes.insert("D5/D7 (non-finite upstream margins)");
    }

    let e64 = check_head::<f64>(&hc, &h64, 1e-10, "exact_f64")?;
    let e32 = check_head::<f32>(&hc, &h32, 1e-4, "exact_f64")?;
    // any f64 against upstream's own f64 run (f32 buffers, f32 smoothing): 1e-6
    let u64e = check_head::<f64>(&hc, &h64, 1e-6, "upstream_f64")?;
    let notes: Vec<&str> = hc.notes.iter().copied().collect();
    Ok(format!(
        "f64 {e64:.1e}  f32 {e32:.1e}  vs upstream_f64 {u64e:.1e}{}",
        if notes.is_empty() {
            String::new()
        } else {
            format!("  [{}]", notes.join(", "))
        }
    ))
}

/// A configuration the crate rejects: right where upstream raised too (in
/// either reference block), wrong otherwise.
fn check_config_rejection(hc: &HeadCase, e: &Error) -> Result<String, String> {
    let raised = ["exact_f64", "upstream_f64"]
        .iter()
        .any(|b| raises(&hc.v[b]).is_some() || raises(&hc.v[b]["logits_infer"]).is_some());
    if raised {
        Ok(format!("rejected as upstream does: {e}"))
    } else {
        Err(format!(
            "the crate rejects a configuration upstream accepts: {e}"
        ))
    }
}
