//! mmpretrain's constructor arguments: `margins=` (a float, a sequence, or
//! a `.txt` path) and `loss=dict(type=..., ...)` (`CrossEntropyLoss` or
//! `LabelSmoothLoss` with mmpretrain's keys), mapped onto the library's
//! `Margins` and `LossConfig`. The defaults are the library's.

use crate::to_py;
use crate::ArcFaceError;
use arcface::{AdaptiveMargins, LabelSmooth, LossConfig, Margins, Reduction, SmoothMode};
use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// mmpretrain's `margins=` argument: a number (every class), a sequence of
/// `num_classes` numbers, or a path (`str` or `os.PathLike`) ending in
/// `.txt` holding one number a line.
pub fn margins(obj: &Bound<'_, PyAny>, num_classes: usize) -> PyResult<Margins> {
    if let Ok(m) = obj.extract::<f64>() {
        if !obj.is_instance_of::<PyString>() {
            return Ok(Margins::Uniform(m));
        }
    }
    let os = obj.py().import("os")?;
    let is_path = obj.is_instance_of::<PyString>() || obj.is_instance(&os.getattr("PathLike")?)?;
    if is_path {
        let path: String = os.call_method1("fspath", (obj,))?.extract()?;
        if !path.ends_with(".txt") {
            return Err(PyTypeError::new_err(format!(
                "margins: a path must end in .txt (mmpretrain's rule), got {path:?}"
            )));
        }
        let m = arcface::load_margins_file(&path, num_classes).map_err(to_py)?;
        return Ok(Margins::PerClass(m));
    }
    match obj.extract::<Vec<f64>>() {
        Ok(v) => Ok(Margins::PerClass(v)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "margins must be a float, a sequence of floats or a path ending in .txt, got {}",
            obj.get_type().name()?
        ))),
    }
}

/// `arcface.load_margins(path, num_classes)`: a margins file's values, as
/// the head's constructor reads them.
#[pyfunction]
pub fn load_margins<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    num_classes: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = arcface::load_margins_file(&path, num_classes).map_err(to_py)?;
    Ok(PyArray1::from_vec(py, m))
}

/// `arcface.adaptive_margins(labels, num_classes, margin_min, margin_max,
/// power)`: the margins mmpretrain's `SetAdaptiveMarginsHook` derives from
/// the class counts of `labels`, without a head.
#[pyfunction]
#[pyo3(signature = (labels, num_classes, margin_min=None, margin_max=None, power=None))]
pub fn adaptive_margins<'py>(
    labels: &Bound<'py, PyAny>,
    num_classes: usize,
    margin_min: Option<f64>,
    margin_max: Option<f64>,
    power: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let py = labels.py();
    let y = crate::arrays::labels(labels, "labels")?;
    let p = adaptive_params(margin_min, margin_max, power);
    let y = y.as_slice()?;
    let m = py.detach(|| p.compute(y, num_classes)).map_err(to_py)?;
    Ok(PyArray1::from_vec(py, m))
}

/// The hook's parameters; the ones not given take the library's defaults.
pub fn adaptive_params(lo: Option<f64>, hi: Option<f64>, p: Option<f64>) -> AdaptiveMargins {
    let d = AdaptiveMargins::default();
    AdaptiveMargins {
        margin_min: lo.unwrap_or(d.margin_min),
        margin_max: hi.unwrap_or(d.margin_max),
        power: p.unwrap_or(d.power),
    }
}

fn bad(msg: String) -> PyErr {
    ArcFaceError::new_err(format!("loss: {msg}"))
}

/// The keys each loss type accepts (mmpretrain's constructor arguments).
const CE_KEYS: [&str; 7] = [
    "type",
    "use_sigmoid",
    "use_soft",
    "reduction",
    "loss_weight",
    "class_weight",
    "pos_weight",
];
const LS_KEYS: [&str; 8] = [
    "type",
    "label_smooth_val",
    "num_classes",
    "use_sigmoid",
    "mode",
    "reduction",
    "loss_weight",
    "class_weight",
];

/// mmpretrain's `loss=dict(type='CrossEntropyLoss' | 'LabelSmoothLoss',
/// ...)`; `None` is `CrossEntropyLoss` with its defaults. Options the
/// library does not implement (`use_sigmoid=True`, `pos_weight`,
/// `mode='multi_label'`, another `type`) are refused, as is an unknown key.
pub fn loss(obj: Option<&Bound<'_, PyDict>>) -> PyResult<LossConfig> {
    let Some(d) = obj else {
        return Ok(LossConfig::cross_entropy());
    };
    let ty: String = match d.get_item("type")? {
        Some(t) => t.extract()?,
        None => return Err(bad("the dict needs a 'type'".into())),
    };
    let keys: &[&str] = match ty.as_str() {
        "CrossEntropyLoss" => &CE_KEYS,
        "LabelSmoothLoss" => &LS_KEYS,
        other => {
            return Err(bad(format!(
                "type {other:?} is not implemented (CrossEntropyLoss or LabelSmoothLoss)"
            )))
        }
    };
    for k in d.keys() {
        let k: String = k.extract()?;
        if !keys.contains(&k.as_str()) {
            return Err(bad(format!("{ty} has no parameter {k:?}")));
        }
    }
    let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(d.get_item(k)?.filter(|v| !v.is_none()))
    };
    if let Some(s) = get("use_sigmoid")? {
        if s.extract::<bool>()? {
            return Err(bad("use_sigmoid=True is not implemented".into()));
        }
    }
    if get("pos_weight")?.is_some() {
        return Err(bad("pos_weight is not implemented".into()));
    }
    let mut cfg = if ty == "LabelSmoothLoss" {
        let Some(eps) = get("label_smooth_val")? else {
            return Err(bad("LabelSmoothLoss needs label_smooth_val".into()));
        };
        let mode = match get("mode")? {
            None => SmoothMode::default(),
            Some(m) => match m.extract::<String>()?.as_str() {
                "original" => SmoothMode::Original,
                "classy_vision" => SmoothMode::ClassyVision,
                other => return Err(bad(format!("mode {other:?} is not implemented"))),
            },
        };
        let mut c = LossConfig::label_smooth(eps.extract()?).with_smooth_mode(mode);
        if let Some(ls) = &mut c.label_smooth {
            *ls = LabelSmooth {
                num_classes: get("num_classes")?.map(|v| v.extract()).transpose()?,
                ..*ls
            };
        }
        c
    } else {
        LossConfig::cross_entropy()
    };
    if let Some(w) = get("loss_weight")? {
        cfg.loss_weight = w.extract()?;
    }
    if let Some(w) = get("class_weight")? {
        cfg.class_weight = Some(w.extract()?);
    }
    if let Some(r) = get("reduction")? {
        cfg.reduction = match r.extract::<String>()?.as_str() {
            "mean" => Reduction::Mean,
            "sum" => Reduction::Sum,
            "none" => Reduction::None,
            other => return Err(bad(format!("reduction {other:?} (mean, sum or none)"))),
        };
    }
    if let Some(u) = get("use_soft")? {
        cfg.use_soft = u.extract()?;
    }
    Ok(cfg)
}

/// The loss configuration as mmpretrain's dict (the inverse of [`loss`]).
pub fn loss_dict<'py>(py: Python<'py>, l: &LossConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match &l.label_smooth {
        Some(ls) => {
            d.set_item("type", "LabelSmoothLoss")?;
            d.set_item("label_smooth_val", ls.label_smooth_val)?;
            d.set_item(
                "mode",
                match ls.mode {
                    SmoothMode::Original => "original",
                    SmoothMode::ClassyVision => "classy_vision",
                },
            )?;
            d.set_item("num_classes", ls.num_classes)?;
        }
        None => {
            d.set_item("type", "CrossEntropyLoss")?;
            d.set_item("use_soft", l.use_soft)?;
        }
    }
    d.set_item("loss_weight", l.loss_weight)?;
    d.set_item("class_weight", l.class_weight.clone())?;
    d.set_item(
        "reduction",
        match l.reduction {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
        },
    )?;
    Ok(d)
}
