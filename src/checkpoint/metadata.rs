//! The `"arcface"` metadata entry of a checkpoint, both ways: the head's
//! configuration as an mmpretrain config dict, in JSON, and a strict reader
//! whose errors name the dotted key that is wrong.

use super::{ckpt_err, FORMAT_VERSION, METADATA_KEY};
use crate::config::{
    HeadConfig, LabelSmooth, LossConfig, MarginGrad, Margins, Reduction, SmoothMode,
};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The metadata JSON: `{"format_version", "head", "margin_grad",
/// "use_soft" (label smoothing with soft targets only), "retired" (the
/// retired classes, only when there are some), "extra"}`; without a
/// configuration only the version and `extra`.
pub(super) fn to_json(
    config: Option<&HeadConfig>,
    retired: &[usize],
    extra: &BTreeMap<String, String>,
) -> String {
    let mut top = Map::new();
    top.insert("format_version".into(), Value::from(FORMAT_VERSION));
    if let Some(cfg) = config {
        top.insert("head".into(), head_to_json(cfg));
        let mg = match cfg.margin_grad {
            MarginGrad::Exact => "exact",
            MarginGrad::StraightThrough => "straight_through",
        };
        top.insert("margin_grad".into(), Value::from(mg));
        if cfg.loss.label_smooth.is_some() && cfg.loss.use_soft {
            top.insert("use_soft".into(), Value::Bool(true));
        }
        if !retired.is_empty() {
            let list = retired.iter().map(|&c| Value::from(c as u64)).collect();
            top.insert("retired".into(), Value::Array(list));
        }
    }
    let extra: Map<String, Value> = extra
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    top.insert("extra".into(), Value::Object(extra));
    Value::Object(top).to_string()
}

/// A JSON list of numbers.
pub(super) fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| Value::from(x)).collect())
}

/// The mmpretrain config dict of the head, margins as a per-class list.
fn head_to_json(cfg: &HeadConfig) -> Value {
    let margins = match &cfg.margins {
        Margins::Uniform(m) => vec![*m; cfg.num_classes],
        Margins::PerClass(v) => v.clone(),
    };
    let mut head = Map::new();
    head.insert("type".into(), Value::from("ArcFaceClsHead"));
    head.insert("num_classes".into(), Value::from(cfg.num_classes as u64));
    head.insert("in_channels".into(), Value::from(cfg.in_channels as u64));
    head.insert(
        "num_subcenters".into(),
        Value::from(cfg.num_subcenters as u64),
    );
    head.insert("scale".into(), Value::from(cfg.scale));
    head.insert("margins".into(), floats(&margins));
    head.insert("easy_margin".into(), Value::Bool(cfg.easy_margin));
    head.insert("loss".into(), loss_to_json(&cfg.loss));
    Value::Object(head)
}

/// The loss's config dict: `CrossEntropyLoss` or `LabelSmoothLoss`.
fn loss_to_json(l: &LossConfig) -> Value {
    let mut loss = Map::new();
    match &l.label_smooth {
        None => {
            loss.insert("type".into(), Value::from("CrossEntropyLoss"));
            loss.insert("use_soft".into(), Value::Bool(l.use_soft));
        }
        Some(ls) => {
            loss.insert("type".into(), Value::from("LabelSmoothLoss"));
            loss.insert("label_smooth_val".into(), Value::from(ls.label_smooth_val));
            let mode = match ls.mode {
                SmoothMode::Original => "original",
                SmoothMode::ClassyVision => "classy_vision",
            };
            loss.insert("mode".into(), Value::from(mode));
            if let Some(n) = ls.num_classes {
                loss.insert("num_classes".into(), Value::from(n as u64));
            }
        }
    }
    let red = match l.reduction {
        Reduction::Mean => "mean",
        Reduction::Sum => "sum",
        Reduction::None => "none",
    };
    loss.insert("reduction".into(), Value::from(red));
    loss.insert("loss_weight".into(), Value::from(l.loss_weight));
    if let Some(cw) = &l.class_weight {
        loss.insert("class_weight".into(), floats(cw));
    }
    Value::Object(loss)
}

/// Strict accessors over a JSON object; errors name the dotted key.
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    prefix: &'a str,
    path: &'a str,
}

impl<'a> Obj<'a> {
    /// The top-level object of a metadata entry read from `path`.
    pub(super) fn top(map: &'a Map<String, Value>, path: &'a str) -> Self {
        Self {
            map,
            prefix: "",
            path,
        }
    }
    pub(super) fn err(&self, key: &str, what: &str) -> Error {
        ckpt_err(self.path, format!("metadata `{}{key}` {what}", self.prefix))
    }
    pub(super) fn get(&self, key: &str) -> Result<&'a Value> {
        self.map.get(key).ok_or_else(|| self.err(key, "is missing"))
    }
    pub(super) fn usize(&self, key: &str) -> Result<usize> {
        self.get(key)?
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.err(key, "must be a non-negative integer"))
    }
    pub(super) fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)?
            .as_f64()
            .ok_or_else(|| self.err(key, "must be a number"))
    }
    pub(super) fn bool(&self, key: &str) -> Result<bool> {
        self.get(key)?
            .as_bool()
            .ok_or_else(|| self.err(key, "must be true or false"))
    }
    pub(super) fn str(&self, key: &str) -> Result<&'a str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.err(key, "must be a string"))
    }
    pub(super) fn floats(&self, key: &str) -> Result<Vec<f64>> {
        let arr = self
            .get(key)?
            .as_array()
            .ok_or_else(|| self.err(key, "must be a list of numbers"))?;
        arr.iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.err(key, "must be a list of numbers"))
            })
            .collect()
    }
    pub(super) fn obj(&self, key: &str, prefix: &'a str) -> Result<Obj<'a>> {
        let map = self
            .get(key)?
            .as_object()
            .ok_or_else(|| self.err(key, "must be an object"))?;
        Ok(Obj {
            map,
            prefix,
            path: self.path,
        })
    }
}

/// What the metadata holds: the configuration (absent without a `head`
/// key), the retired classes (empty when absent, as in files written
/// before classes could retire) and the `extra` strings.
pub(super) type Parsed = (Option<HeadConfig>, Vec<usize>, BTreeMap<String, String>);

/// Reads the metadata JSON of the file `path`, strictly: every key checked
/// in a fixed order, so that the first problem found is the one reported.
pub(super) fn parse(json: &str, path: &str) -> Result<Parsed> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        ckpt_err(
            path,
            format!("metadata `{METADATA_KEY}` is not valid JSON ({e})"),
        )
    })?;
    let map = value.as_object().ok_or_else(|| {
        ckpt_err(
            path,
            format!("metadata `{METADATA_KEY}` must be a JSON object"),
        )
    })?;
    let top = Obj::top(map, path);
    let version = top.usize("format_version")?;
    if version as u64 != FORMAT_VERSION {
        return Err(ckpt_err(
            path,
            format!("has format_version {version}; this arcface reads version {FORMAT_VERSION}"),
        ));
    }
    let extra = parse_extra(&top)?;
    if !map.contains_key("head") {
        return Ok((None, Vec::new(), extra));
    }
    let head = top.obj("head", "head.")?;
    let mut cfg = parse_head(&head)?;
    cfg.loss = parse_loss(&head.obj("loss", "head.loss.")?, &top)?;
    cfg.margin_grad = match map.get("margin_grad").map(|v| v.as_str()) {
        None | Some(Some("exact")) => MarginGrad::Exact,
        Some(Some("straight_through")) => MarginGrad::StraightThrough,
        _ => return Err(top.err("margin_grad", "must be \"exact\" or \"straight_through\"")),
    };
    cfg.validate()
        .map_err(|e| ckpt_err(path, format!("metadata describes an invalid head: {e}")))?;
    let retired = parse_retired(&top, cfg.num_classes)?;
    Ok((Some(cfg), retired, extra))
}

/// The optional `retired` list: distinct classes of the head, not all of them.
fn parse_retired(top: &Obj<'_>, num_classes: usize) -> Result<Vec<usize>> {
    let Some(v) = top.map.get("retired") else {
        return Ok(Vec::new());
    };
    let bad = || top.err("retired", "must be a list of class indices");
    let list = v
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|c| {
            c.as_u64()
                .and_then(|c| usize::try_from(c).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<usize>>>()?;
    crate::head::check_class_list("retired", &list, num_classes)
        .map_err(|e| top.err("retired", &format!("is not usable: {e}")))?;
    if !list.is_empty() && list.len() >= num_classes {
        return Err(top.err("retired", "names every class; a head keeps at least one"));
    }
    Ok(list)
}

/// The `extra` object: string values only.
fn parse_extra(top: &Obj<'_>) -> Result<BTreeMap<String, String>> {
    let mut extra = BTreeMap::new();
    if let Some(e) = top.map.get("extra") {
        let e = e
            .as_object()
            .ok_or_else(|| top.err("extra", "must be an object"))?;
        for (k, v) in e {
            let v = v
                .as_str()
                .ok_or_else(|| top.err("extra", "values must be strings"))?;
            extra.insert(k.clone(), v.to_string());
        }
    }
    Ok(extra)
}

/// The head's config dict, without its loss.
fn parse_head(head: &Obj<'_>) -> Result<HeadConfig> {
    let ty = head.str("type")?;
    if ty != "ArcFaceClsHead" {
        return Err(head.err("type", &format!("is {ty:?}, expected \"ArcFaceClsHead\"")));
    }
    let num_classes = head.usize("num_classes")?;
    let mut cfg = HeadConfig::new(num_classes, head.usize("in_channels")?)
        .with_subcenters(head.usize("num_subcenters")?)
        .with_scale(head.f64("scale")?)
        .with_easy_margin(head.bool("easy_margin")?);
    cfg.margins = match head.get("margins")? {
        Value::Number(_) => Margins::Uniform(head.f64("margins")?),
        _ => Margins::PerClass(head.floats("margins")?),
    };
    Ok(cfg)
}

/// `head.loss`; a label-smoothing loss takes `use_soft` from the top level
/// `top`, where [`to_json`] writes it.
fn parse_loss(loss: &Obj<'_>, top: &Obj<'_>) -> Result<LossConfig> {
    let mut l = match loss.str("type")? {
        "CrossEntropyLoss" => {
            let use_soft = match loss.map.get("use_soft") {
                Some(_) => loss.bool("use_soft")?,
                None => false,
            };
            LossConfig::cross_entropy().with_use_soft(use_soft)
        }
        "LabelSmoothLoss" => {
            let mut l = LossConfig::cross_entropy();
            l.label_smooth = Some(parse_label_smooth(loss)?);
            if top.map.get("use_soft").and_then(Value::as_bool) == Some(true) {
                l.use_soft = true;
            }
            l
        }
        t => {
            return Err(loss.err(
                "type",
                &format!("is {t:?}, expected \"CrossEntropyLoss\" or \"LabelSmoothLoss\""),
            ))
        }
    };
    if loss.map.contains_key("loss_weight") {
        l.loss_weight = loss.f64("loss_weight")?;
    }
    if let Some(r) = loss.map.get("reduction") {
        l.reduction = match r.as_str() {
            Some("mean") => Reduction::Mean,
            Some("sum") => Reduction::Sum,
            Some("none") => Reduction::None,
            _ => return Err(loss.err("reduction", "must be \"mean\", \"sum\" or \"none\"")),
        };
    }
    match loss.map.get("class_weight") {
        None | Some(Value::Null) => {}
        Some(_) => l.class_weight = Some(loss.floats("class_weight")?),
    }
    Ok(l)
}

/// `LabelSmoothLoss`'s `mode`, `num_classes` and `label_smooth_val`.
fn parse_label_smooth(loss: &Obj<'_>) -> Result<LabelSmooth> {
    let mode = match loss.map.get("mode") {
        None => SmoothMode::Original,
        Some(_) => match loss.str("mode")? {
            "original" => SmoothMode::Original,
            "classy_vision" => SmoothMode::ClassyVision,
            m => {
                return Err(loss.err(
                    "mode",
                    &format!("is {m:?}, expected \"original\" or \"classy_vision\""),
                ))
            }
        },
    };
    let num_classes = match loss.map.get("num_classes") {
        None | Some(Value::Null) => None,
        Some(_) => Some(loss.usize("num_classes")?),
    };
    Ok(LabelSmooth {
        label_smooth_val: loss.f64("label_smooth_val")?,
        mode,
        num_classes,
    })
}
