//! Optimiser-state files: a separate safetensors file beside the checkpoint,
//! with PyTorch's state names, so that the checkpoint itself still loads with
//! `load_state_dict(strict=True)`.

use super::metadata::{floats, Obj};
use super::run::{parse_run, run_to_json, RUN_KEY};
use super::{ckpt_err, open, Raw, WeightDtype, FORMAT_VERSION, WEIGHT_KEY};
use crate::error::Result;
use crate::head::ArcFaceHead;
use crate::optim::{AdamW, Optimizer, OptimizerConfig, Sgd};
use crate::real::Real;
use crate::train::RunRecord;
use safetensors::SafeTensors;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The metadata key of an optimiser-state file.
const OPTIM_METADATA_KEY: &str = "arcface_optimizer";

/// The conventional optimiser-state file of a checkpoint: `x.safetensors` →
/// `x.optim.safetensors` (other names get `.optim.safetensors` appended).
///
/// ```
/// use std::path::Path;
/// assert_eq!(arcface::optimizer_path("run/head.safetensors"), Path::new("run/head.optim.safetensors"));
/// assert_eq!(arcface::optimizer_path("head.bin"), Path::new("head.bin.optim.safetensors"));
/// ```
pub fn optimizer_path(checkpoint: impl AsRef<Path>) -> PathBuf {
    let p = checkpoint.as_ref();
    let s = p.as_os_str().to_string_lossy();
    match s.strip_suffix(".safetensors") {
        Some(stem) => PathBuf::from(format!("{stem}.optim.safetensors")),
        None => PathBuf::from(format!("{s}.optim.safetensors")),
    }
}

/// The state tensor `name`'s key: `head.norm_product.weight.<name>`.
fn state_key(name: &str) -> String {
    format!("{WEIGHT_KEY}.{name}")
}

/// The metadata JSON: version, PyTorch class name, step count,
/// hyper-parameters with PyTorch's names, and the run record if any.
fn to_json<T: Real>(o: &Optimizer<T>) -> String {
    let (opt, steps) = (o.config(), o.steps());
    let mut m = Map::new();
    if let Some(r) = o.run() {
        m.insert(RUN_KEY.into(), run_to_json(r));
    }
    m.insert("format_version".into(), Value::from(FORMAT_VERSION));
    m.insert("type".into(), Value::from(opt.name()));
    m.insert("step".into(), Value::from(steps));
    match opt {
        OptimizerConfig::Sgd(s) => {
            m.insert("momentum".into(), Value::from(s.momentum));
            m.insert("dampening".into(), Value::from(s.dampening));
            m.insert("nesterov".into(), Value::Bool(s.nesterov));
            m.insert("weight_decay".into(), Value::from(s.weight_decay));
        }
        OptimizerConfig::AdamW(a) => {
            m.insert("betas".into(), floats(&[a.beta1, a.beta2]));
            m.insert("eps".into(), Value::from(a.eps));
            m.insert("weight_decay".into(), Value::from(a.weight_decay));
        }
    }
    Value::Object(m).to_string()
}

/// Writes the optimiser's hyper-parameters, step count and state tensors
/// (named `head.norm_product.weight.<state>`, shaped like the weight, in the
/// head's precision) to `path`, atomically. Use [`optimizer_path`] for the
/// conventional name next to the checkpoint.
///
/// ```
/// use arcface::{load_optimizer, save_optimizer, ArcFaceHead, HeadConfig, Optimizer, OptimizerConfig};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 3), 0).unwrap();
/// let mut opt = Optimizer::new(OptimizerConfig::default(), &head).unwrap();
/// opt.set_state(5, &[&[0.25; 6]]).unwrap();
/// let path = std::env::temp_dir().join("arcface_doc.optim.safetensors");
/// save_optimizer(&opt, &head, &path).unwrap();
/// assert_eq!(load_optimizer(&path, &head).unwrap(), opt);
/// ```
pub fn save_optimizer<T: Real>(
    opt: &Optimizer<T>,
    head: &ArcFaceHead<T>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    opt.check_fits(head)?;
    let (rows, cols) = head.config().weight_shape();
    // the state is finite (the optimiser keeps it so) and `T` fits its own
    // dtype exactly, so every value encodes
    let dtype = WeightDtype::exact_for::<T>();
    let state = opt.state();
    let bufs: Vec<(String, Vec<u8>)> = state
        .iter()
        .map(|(name, v)| (state_key(name), dtype.encode_all(v).0))
        .collect();
    let raws = bufs.iter().map(|(n, d)| {
        let raw = Raw {
            dtype: dtype.to_safetensors(),
            shape: [rows, cols],
            data: d,
        };
        (n.as_str(), raw)
    });
    let raws: Vec<(&str, Raw<'_>)> = raws.collect();
    let metadata = [(OPTIM_METADATA_KEY.to_string(), to_json(opt))];
    let bytes = safetensors::serialize(
        raws.iter().map(|(n, r)| (*n, r)),
        Some(metadata.into_iter().collect()),
    )
    .map_err(|e| {
        ckpt_err(
            &path.display().to_string(),
            format!("cannot serialise: {e}"),
        )
    })?;
    crate::io::write_atomic(path, &bytes)
}

/// Reads an optimiser-state file written by [`save_optimizer`] for `head`
/// (the state's shape must match the head's weight).
///
/// ```
/// use arcface::{load_optimizer, save_optimizer, AdamW, ArcFaceHead, HeadConfig, Optimizer, OptimizerConfig};
/// let head = ArcFaceHead::<f64>::new(HeadConfig::new(2, 2), 0).unwrap();
/// let opt = Optimizer::new(OptimizerConfig::AdamW(AdamW::default()), &head).unwrap();
/// let path = std::env::temp_dir().join("arcface_doc_load.optim.safetensors");
/// save_optimizer(&opt, &head, &path).unwrap();
/// let back = load_optimizer(&path, &head).unwrap();
/// assert_eq!(back.config(), opt.config());
/// let wider = ArcFaceHead::<f64>::new(HeadConfig::new(2, 3), 0).unwrap();
/// assert!(load_optimizer(&path, &wider).is_err());
/// ```
pub fn load_optimizer<T: Real>(
    path: impl AsRef<Path>,
    head: &ArcFaceHead<T>,
) -> Result<Optimizer<T>> {
    let path = path.as_ref();
    let p = path.display().to_string();
    let bytes = crate::io::read(path)?;
    let (st, json) = open(&bytes, &p, OPTIM_METADATA_KEY)?;
    let json = json.ok_or_else(|| {
        ckpt_err(
            &p,
            format!("has no `{OPTIM_METADATA_KEY}` metadata: not an optimiser-state file"),
        )
    })?;
    let (config, steps, run) = parse_json(&json, &p)?;
    let mut opt = Optimizer::new(config, head)?;
    opt.set_run(run);
    let shape = head.config().weight_shape();
    let bufs = config
        .state_names()
        .iter()
        .map(|name| read_state::<T>(&st, name, [shape.0, shape.1], &p))
        .collect::<Result<Vec<Vec<T>>>>()?;
    let refs: Vec<&[T]> = bufs.iter().map(Vec::as_slice).collect();
    opt.set_state(steps, &refs)?;
    Ok(opt)
}

/// The optimiser configuration, step count and run record of the metadata
/// JSON.
fn parse_json(json: &str, path: &str) -> Result<(OptimizerConfig, u64, Option<RunRecord>)> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| ckpt_err(path, format!("metadata is not valid JSON ({e})")))?;
    let map = value
        .as_object()
        .ok_or_else(|| ckpt_err(path, "metadata must be a JSON object".into()))?;
    let o = Obj::top(map, path);
    if o.usize("format_version")? as u64 != FORMAT_VERSION {
        return Err(o.err("format_version", "is not 1"));
    }
    let steps = o
        .get("step")?
        .as_u64()
        .ok_or_else(|| o.err("step", "must be a non-negative integer"))?;
    let config = match o.str("type")? {
        "SGD" => OptimizerConfig::Sgd(Sgd {
            momentum: o.f64("momentum")?,
            dampening: o.f64("dampening")?,
            nesterov: o.bool("nesterov")?,
            weight_decay: o.f64("weight_decay")?,
        }),
        "AdamW" => {
            let b = o.floats("betas")?;
            if b.len() != 2 {
                return Err(o.err("betas", "must hold two numbers"));
            }
            OptimizerConfig::AdamW(AdamW {
                beta1: b[0],
                beta2: b[1],
                eps: o.f64("eps")?,
                weight_decay: o.f64("weight_decay")?,
            })
        }
        t => return Err(o.err("type", &format!("is {t:?}, expected \"SGD\" or \"AdamW\""))),
    };
    let run = parse_run(&o)?;
    Ok((config, steps, run))
}

/// The state tensor `name`, which must be a float tensor of `shape`.
fn read_state<T: Real>(
    st: &SafeTensors<'_>,
    name: &str,
    shape: [usize; 2],
    path: &str,
) -> Result<Vec<T>> {
    let key = state_key(name);
    let v = st
        .tensor(&key)
        .map_err(|_| ckpt_err(path, format!("has no tensor `{key}`")))?;
    let dt = WeightDtype::from_safetensors(v.dtype()).ok_or_else(|| {
        ckpt_err(
            path,
            format!("`{key}` has dtype {}; expected a float type", v.dtype()),
        )
    })?;
    if v.shape() != shape {
        return Err(ckpt_err(
            path,
            format!(
                "`{key}` has shape {:?} but the head's weight is {:?}",
                v.shape(),
                shape
            ),
        ));
    }
    Ok(dt.decode_all(v.data()))
}
