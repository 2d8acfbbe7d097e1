//! Checkpoints in safetensors that travel to and from PyTorch (deviation
//! D9); the format is documented on [`Checkpoint`].

use crate::config::{
    HeadConfig, LabelSmooth, LossConfig, MarginGrad, Margins, Reduction, SmoothMode,
};
use crate::error::{Error, Result};
use crate::head::ArcFaceHead;
use crate::optim::{AdamW, Optimizer, OptimizerConfig, Sgd};
use crate::real::Real;
use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The weight's key: `head.norm_product.weight` (the `ArcFaceClsHead` inside
/// an mmpretrain `ImageClassifier`). On loading, a bare head's
/// `norm_product.weight` is accepted too.
///
/// ```
/// assert_eq!(arcface::WEIGHT_KEY, "head.norm_product.weight");
/// ```
pub const WEIGHT_KEY: &str = "head.norm_product.weight";

/// The bare head's key, accepted on loading when [`WEIGHT_KEY`] is absent.
const BARE_WEIGHT_KEY: &str = "norm_product.weight";

/// The one `__metadata__` key arcface writes: `"arcface"` (a JSON object).
///
/// ```
/// assert_eq!(arcface::METADATA_KEY, "arcface");
/// ```
pub const METADATA_KEY: &str = "arcface";

/// The metadata key of an optimiser-state file.
const OPTIM_METADATA_KEY: &str = "arcface_optimizer";

/// The version written in `format_version`; files with another are refused.
const FORMAT_VERSION: u64 = 1;

/// How the weight tensor is stored.
///
/// ```
/// use arcface::WeightDtype;
/// assert_eq!(WeightDtype::default(), WeightDtype::F32);
/// assert_eq!("bf16".parse::<WeightDtype>().unwrap(), WeightDtype::BF16);
/// assert_eq!(WeightDtype::F16.name(), "F16");
/// assert!("int8".parse::<WeightDtype>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// IEEE binary32: mmpretrain's parameter dtype.
    #[default]
    F32,
    /// IEEE binary16 (`torch.float16`).
    F16,
    /// bfloat16 (`torch.bfloat16`).
    BF16,
    /// IEEE binary64 (`torch.float64`).
    F64,
}

impl WeightDtype {
    /// The safetensors name: `"F32"`, `"F16"`, `"BF16"`, `"F64"`.
    ///
    /// ```
    /// assert_eq!(arcface::WeightDtype::BF16.name(), "BF16");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "F32",
            WeightDtype::F16 => "F16",
            WeightDtype::BF16 => "BF16",
            WeightDtype::F64 => "F64",
        }
    }

    /// Bytes per element.
    ///
    /// ```
    /// assert_eq!(arcface::WeightDtype::BF16.size(), 2);
    /// ```
    pub fn size(self) -> usize {
        match self {
            WeightDtype::F16 | WeightDtype::BF16 => 2,
            WeightDtype::F32 => 4,
            WeightDtype::F64 => 8,
        }
    }

    fn to_st(self) -> Dtype {
        match self {
            WeightDtype::F32 => Dtype::F32,
            WeightDtype::F16 => Dtype::F16,
            WeightDtype::BF16 => Dtype::BF16,
            WeightDtype::F64 => Dtype::F64,
        }
    }

    fn from_st(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(WeightDtype::F32),
            Dtype::F16 => Some(WeightDtype::F16),
            Dtype::BF16 => Some(WeightDtype::BF16),
            Dtype::F64 => Some(WeightDtype::F64),
            _ => None,
        }
    }

    /// Element `x` as little-endian bytes; `None` if it does not fit (f16 overflow).
    fn encode(self, x: f64, out: &mut Vec<u8>) -> bool {
        match self {
            WeightDtype::F32 => {
                let v = x as f32;
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::F16 => {
                let v = f16::from_f64(x);
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::BF16 => {
                let v = bf16::from_f64(x);
                out.extend_from_slice(&v.to_le_bytes());
                v.is_finite()
            }
            WeightDtype::F64 => {
                out.extend_from_slice(&x.to_le_bytes());
                x.is_finite()
            }
        }
    }

    fn decode(self, b: &[u8]) -> f64 {
        match self {
            WeightDtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            WeightDtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f64(),
            WeightDtype::BF16 => bf16::from_le_bytes([b[0], b[1]]).to_f64(),
            WeightDtype::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
        }
    }
}

impl core::str::FromStr for WeightDtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(WeightDtype::F32),
            "f16" | "float16" | "half" => Ok(WeightDtype::F16),
            "bf16" | "bfloat16" => Ok(WeightDtype::BF16),
            "f64" | "float64" | "double" => Ok(WeightDtype::F64),
            _ => Err(crate::config::invalid(
                "dtype",
                format!("is {s:?}, expected f32, f16, bf16 or f64"),
            )),
        }
    }
}

/// A tensor to serialise: dtype, shape and little-endian bytes.
struct Raw<'a> {
    dtype: Dtype,
    shape: [usize; 2],
    data: &'a [u8],
}

impl View for &Raw<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn ckpt_err(path: &str, reason: String) -> Error {
    Error::Checkpoint {
        path: path.to_string(),
        reason,
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling file, then a
/// rename. On error the temporary file is removed and `path` is untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: path.display().to_string(),
        message: "is not a file path".into(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// A head's weights with its configuration and margins, as stored in a
/// safetensors file.
///
/// A checkpoint holds exactly one tensor, [`WEIGHT_KEY`] =
/// `head.norm_product.weight`, of shape (C·K, D) and dtype F32 (or F16, BF16,
/// F64 when asked), which is the key and shape of mmpretrain's
/// `ArcFaceClsHead` inside an `ImageClassifier`'s `state_dict`. In Python:
///
/// ```python
/// import json
/// from safetensors.torch import load_file, safe_open
/// sd = load_file("head.safetensors")                       # {'head.norm_product.weight': (C*K, D)}
/// head.load_state_dict({k.removeprefix("head."): v for k, v in sd.items()})   # a bare ArcFaceClsHead
/// model.load_state_dict(sd, strict=False)                  # or a whole ImageClassifier
/// meta = json.loads(safe_open("head.safetensors", "pt").metadata()["arcface"])
/// head = MODELS.build(meta["head"])                         # the same head config, margins included
/// ```
///
/// The head's configuration and its per-class margins, which upstream keeps
/// in non-persistent buffers and so loses (D9), travel in the safetensors
/// `__metadata__` under the single key [`METADATA_KEY`] = `"arcface"`, as a
/// JSON object: `{"format_version": 1, "head": {...}, "margin_grad": ...,
/// "extra": {...}}`, where `head` is an mmpretrain config dict
/// (`type='ArcFaceClsHead'`, `num_classes`, `in_channels`, `num_subcenters`,
/// `scale`, `margins` as a per-class list, `easy_margin`, `loss`). One key
/// keeps the file bytes reproducible (safetensors writes metadata maps in hash
/// order).
///
/// Optimiser state never goes into the checkpoint, so that
/// `load_state_dict(strict=True)` keeps working: [`save_optimizer`] writes it
/// to a separate file, by convention [`optimizer_path`] (`x.safetensors` →
/// `x.optim.safetensors`), with PyTorch's state names
/// (`head.norm_product.weight.momentum_buffer`, `….exp_avg`, `….exp_avg_sq`).
///
/// Files are written atomically (a temporary file in the same directory,
/// then a rename): on any error nothing is written.
///
/// ```
/// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 4).with_subcenters(2), 1).unwrap();
/// let bytes = Checkpoint::from_head(&head, WeightDtype::F32).unwrap().to_bytes().unwrap();
/// let back = Checkpoint::from_bytes(&bytes).unwrap();
/// assert_eq!(back.shape(), (6, 4));
/// let head2: ArcFaceHead<f32> = back.to_head(None).unwrap();
/// assert_eq!(head2.weight(), head.weight());
/// assert_eq!(head2.config(), head.config());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    config: Option<HeadConfig>,
    rows: usize,
    cols: usize,
    dtype: WeightDtype,
    data: Vec<u8>,
    extra: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The head's weights (converted to `dtype`), configuration and margins.
    ///
    /// Errors if a weight does not fit `dtype` (beyond ±65504 for F16).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f64>::from_weight(HeadConfig::new(1, 2), &[1e6, 0.0]).unwrap();
    /// assert!(Checkpoint::from_head(&head, WeightDtype::F16).is_err());
    /// assert!(Checkpoint::from_head(&head, WeightDtype::BF16).is_ok());
    /// ```
    pub fn from_head<T: Real>(head: &ArcFaceHead<T>, dtype: WeightDtype) -> Result<Self> {
        let cfg = head.config().clone();
        let (rows, cols) = (cfg.num_classes * cfg.num_subcenters, cfg.in_channels);
        let mut data = Vec::with_capacity(rows * cols * dtype.size());
        for (i, w) in head.weight().iter().enumerate() {
            if !dtype.encode(w.to_f64(), &mut data) {
                return Err(ckpt_err(
                    "<memory>",
                    format!(
                        "weight row {}, column {} ({w}) does not fit in {}",
                        i / cols.max(1),
                        i % cols.max(1),
                        dtype.name()
                    ),
                ));
            }
        }
        let mut config = cfg;
        config.margins = Margins::PerClass(head.margins().to_vec());
        Ok(Self {
            config: Some(config),
            rows,
            cols,
            dtype,
            data,
            extra: BTreeMap::new(),
        })
    }

    /// The head configuration from the metadata, margins as a per-class list;
    /// `None` for a file without arcface metadata (a plain PyTorch export).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, Margins, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 3).with_scale(30.0), 0).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// let cfg = ck.config().unwrap();
    /// assert_eq!(cfg.scale, 30.0);
    /// assert_eq!(cfg.margins, Margins::PerClass(vec![0.5, 0.5]));
    /// ```
    pub fn config(&self) -> Option<&HeadConfig> {
        self.config.as_ref()
    }

    /// The weight's shape (C·K, D).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 8).with_subcenters(3), 0).unwrap();
    /// assert_eq!(Checkpoint::from_head(&head, WeightDtype::F32).unwrap().shape(), (12, 8));
    /// ```
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The weight's stored dtype.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 8), 0).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::F16).unwrap();
    /// assert_eq!(ck.dtype(), WeightDtype::F16);
    /// ```
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }

    /// The weights converted to `T`, (C·K)×D row-major (rounded to nearest
    /// for F64 → f32; exact otherwise).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::from_weight(HeadConfig::new(1, 2), &[0.1, 3.0]).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::BF16).unwrap();
    /// assert_eq!(ck.weight::<f32>(), vec![0.10009765625, 3.0]);
    /// ```
    pub fn weight<T: Real>(&self) -> Vec<T> {
        self.data
            .chunks_exact(self.dtype.size())
            .map(|b| T::from_f64(self.dtype.decode(b)))
            .collect()
    }

    /// Extra string entries carried in the metadata (`extra`), for example a
    /// program's preprocessing; not used by the head.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// let mut ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// ck.set_extra("data", "digits");
    /// let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap()).unwrap();
    /// assert_eq!(back.extra().get("data").map(String::as_str), Some("digits"));
    /// ```
    pub fn extra(&self) -> &BTreeMap<String, String> {
        &self.extra
    }

    /// Sets an extra metadata entry (see [`Self::extra`]).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// let mut ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// ck.set_extra("run", "17");
    /// assert_eq!(ck.extra()["run"], "17");
    /// ```
    pub fn set_extra(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.extra.insert(key.into(), value.into());
    }

    /// A head from this checkpoint: with `config = None`, the stored
    /// configuration (an error for a file without one); with `Some(cfg)`,
    /// `cfg` (for a PyTorch export, or to fine-tune with other settings). The
    /// weight's shape must be (C·K, D) of the configuration used.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 3), 0).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// let err = ck.to_head::<f32>(Some(HeadConfig::new(4, 3).with_subcenters(2))).unwrap_err();
    /// assert!(err.to_string().contains("(4, 3)"));
    /// ```
    pub fn to_head<T: Real>(&self, config: Option<HeadConfig>) -> Result<ArcFaceHead<T>> {
        let cfg = match config.or_else(|| self.config.clone()) {
            Some(c) => c,
            None => {
                return Err(ckpt_err(
                    "<memory>",
                    format!(
                        "holds no arcface metadata (a plain PyTorch export?): give the head \
                         configuration; the weight has shape ({}, {}) = (C·K, D)",
                        self.rows, self.cols
                    ),
                ))
            }
        };
        cfg.validate()?;
        let want = (cfg.num_classes * cfg.num_subcenters, cfg.in_channels);
        if want != (self.rows, self.cols) {
            return Err(ckpt_err(
                "<memory>",
                format!(
                    "`{WEIGHT_KEY}` has shape ({}, {}) but the configuration (num_classes {}, \
                     num_subcenters {}, in_channels {}) needs ({}, {})",
                    self.rows,
                    self.cols,
                    cfg.num_classes,
                    cfg.num_subcenters,
                    cfg.in_channels,
                    want.0,
                    want.1
                ),
            ));
        }
        ArcFaceHead::from_weight(cfg, &self.weight::<T>())
    }

    /// The safetensors bytes (the same bytes for the same checkpoint).
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(2, 2), 0).unwrap();
    /// let bytes = Checkpoint::from_head(&head, WeightDtype::F32).unwrap().to_bytes().unwrap();
    /// let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    /// assert_eq!(bytes.len(), 8 + header_len + 2 * 2 * 4);
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let raw = Raw {
            dtype: self.dtype.to_st(),
            shape: [self.rows, self.cols],
            data: &self.data,
        };
        let meta = self.metadata_json();
        safetensors::serialize(
            [(WEIGHT_KEY, &raw)],
            Some([(METADATA_KEY.to_string(), meta)].into_iter().collect()),
        )
        .map_err(|e| ckpt_err("<memory>", format!("cannot serialise: {e}")))
    }

    /// Reads a checkpoint from safetensors bytes (see [`Self::load`]).
    ///
    /// ```
    /// let err = arcface::Checkpoint::from_bytes(&[0u8; 4]).unwrap_err();
    /// assert!(err.to_string().contains("not a valid safetensors file"));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, "<memory>")
    }

    /// Writes the checkpoint to `path`, atomically.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let head = ArcFaceHead::<f32>::new(HeadConfig::new(3, 8), 0).unwrap();
    /// let path = std::env::temp_dir().join("arcface_doc_ckpt.safetensors");
    /// Checkpoint::from_head(&head, WeightDtype::F32).unwrap().save(&path).unwrap();
    /// let back: ArcFaceHead<f32> = Checkpoint::load(&path).unwrap().to_head(None).unwrap();
    /// assert_eq!(back.weight(), head.weight());
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes().map_err(|e| with_path(e, path))?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint file: the tensor [`WEIGHT_KEY`] (or a bare head's
    /// `norm_product.weight`) of dtype F32, F16, BF16 or F64 and shape
    /// (rows, D), other tensors ignored, and the arcface metadata when
    /// present. A file that is not safetensors, lacks the key, or holds a
    /// tensor of another dtype or rank is an [`Error::Checkpoint`] naming
    /// the problem.
    ///
    /// ```
    /// let path = std::env::temp_dir().join("arcface_doc_not_a_ckpt.safetensors");
    /// std::fs::write(&path, b"hello").unwrap();
    /// assert!(matches!(arcface::Checkpoint::load(&path), Err(arcface::Error::Checkpoint { .. })));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::parse(&bytes, &path.display().to_string())
    }

    fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| ckpt_err(path, format!("is not a valid safetensors file ({e})")))?;
        let view = match st
            .tensor(WEIGHT_KEY)
            .or_else(|_| st.tensor(BARE_WEIGHT_KEY))
        {
            Ok(v) => v,
            Err(_) => {
                let mut names = st.names();
                names.sort_unstable();
                let shown: Vec<&str> = names.iter().take(8).copied().collect();
                return Err(ckpt_err(
                    path,
                    format!(
                        "has no tensor `{WEIGHT_KEY}` (nor `{BARE_WEIGHT_KEY}`); it holds {} \
                         tensor(s){}{}",
                        names.len(),
                        if shown.is_empty() { "" } else { ": " },
                        shown.join(", ")
                    ),
                ));
            }
        };
        let dtype = WeightDtype::from_st(view.dtype()).ok_or_else(|| {
            ckpt_err(
                path,
                format!(
                    "`{WEIGHT_KEY}` has dtype {}; expected F32, F16, BF16 or F64",
                    view.dtype()
                ),
            )
        })?;
        let (rows, cols) = match view.shape() {
            [r, c] if *r > 0 && *c > 0 => (*r, *c),
            s => {
                return Err(ckpt_err(
                    path,
                    format!(
                        "`{WEIGHT_KEY}` has shape {s:?}; expected two non-zero dimensions (C·K, D)"
                    ),
                ))
            }
        };
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ckpt_err(path, format!("is not a valid safetensors file ({e})")))?;
        let (config, extra) = match header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) {
            Some(json) => parse_metadata(json, path)?,
            None => (None, BTreeMap::new()),
        };
        if let Some(cfg) = &config {
            let want = (cfg.num_classes * cfg.num_subcenters, cfg.in_channels);
            if want != (rows, cols) {
                return Err(ckpt_err(
                    path,
                    format!(
                        "`{WEIGHT_KEY}` has shape ({rows}, {cols}) but its metadata describes \
                         ({}, {})",
                        want.0, want.1
                    ),
                ));
            }
        }
        Ok(Self {
            config,
            rows,
            cols,
            dtype,
            data: view.data().to_vec(),
            extra,
        })
    }

    fn metadata_json(&self) -> String {
        let mut top = Map::new();
        top.insert("format_version".into(), Value::from(FORMAT_VERSION));
        if let Some(cfg) = &self.config {
            top.insert("head".into(), head_to_json(cfg));
            let mg = match cfg.margin_grad {
                MarginGrad::Exact => "exact",
                MarginGrad::StraightThrough => "straight_through",
            };
            top.insert("margin_grad".into(), Value::from(mg));
            if cfg.loss.label_smooth.is_some() && cfg.loss.use_soft {
                top.insert("use_soft".into(), Value::Bool(true));
            }
        }
        let extra: Map<String, Value> = self
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        top.insert("extra".into(), Value::Object(extra));
        Value::Object(top).to_string()
    }
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Checkpoint { reason, .. } => ckpt_err(&path.display().to_string(), reason),
        other => other,
    }
}

fn floats(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| Value::from(x)).collect())
}

fn head_to_json(cfg: &HeadConfig) -> Value {
    let mut loss = Map::new();
    let l = &cfg.loss;
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
    head.insert("loss".into(), Value::Object(loss));
    Value::Object(head)
}

/// Strict accessors over a JSON object; errors name the dotted key.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
    path: &'a str,
}

impl<'a> Obj<'a> {
    fn err(&self, key: &str, what: &str) -> Error {
        ckpt_err(self.path, format!("metadata `{}{key}` {what}", self.prefix))
    }
    fn get(&self, key: &str) -> Result<&'a Value> {
        self.map.get(key).ok_or_else(|| self.err(key, "is missing"))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        self.get(key)?
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.err(key, "must be a non-negative integer"))
    }
    fn f64(&self, key: &str) -> Result<f64> {
        self.get(key)?
            .as_f64()
            .ok_or_else(|| self.err(key, "must be a number"))
    }
    fn bool(&self, key: &str) -> Result<bool> {
        self.get(key)?
            .as_bool()
            .ok_or_else(|| self.err(key, "must be true or false"))
    }
    fn str(&self, key: &str) -> Result<&'a str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.err(key, "must be a string"))
    }
    fn floats(&self, key: &str) -> Result<Vec<f64>> {
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
    fn obj(&self, key: &str, prefix: &'a str) -> Result<Obj<'a>> {
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

type Parsed = (Option<HeadConfig>, BTreeMap<String, String>);

fn parse_metadata(json: &str, path: &str) -> Result<Parsed> {
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
    let top = Obj {
        map,
        prefix: "",
        path,
    };
    let version = top.usize("format_version")?;
    if version as u64 != FORMAT_VERSION {
        return Err(ckpt_err(
            path,
            format!("has format_version {version}; this arcface reads version {FORMAT_VERSION}"),
        ));
    }
    let mut extra = BTreeMap::new();
    if let Some(e) = map.get("extra") {
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
    if !map.contains_key("head") {
        return Ok((None, extra));
    }
    let head = top.obj("head", "head.")?;
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
    let loss = head.obj("loss", "head.loss.")?;
    let mut l = match loss.str("type")? {
        "CrossEntropyLoss" => {
            let use_soft = match loss.map.get("use_soft") {
                Some(_) => loss.bool("use_soft")?,
                None => false,
            };
            LossConfig::cross_entropy().with_use_soft(use_soft)
        }
        "LabelSmoothLoss" => {
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
            let n = match loss.map.get("num_classes") {
                None | Some(Value::Null) => None,
                Some(_) => Some(loss.usize("num_classes")?),
            };
            let mut l = LossConfig::cross_entropy();
            l.label_smooth = Some(LabelSmooth {
                label_smooth_val: loss.f64("label_smooth_val")?,
                mode,
                num_classes: n,
            });
            if map.get("use_soft").and_then(Value::as_bool) == Some(true) {
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
    cfg.loss = l;
    cfg.margin_grad = match map.get("margin_grad").map(|v| v.as_str()) {
        None | Some(Some("exact")) => MarginGrad::Exact,
        Some(Some("straight_through")) => MarginGrad::StraightThrough,
        _ => return Err(top.err("margin_grad", "must be \"exact\" or \"straight_through\"")),
    };
    cfg.validate()
        .map_err(|e| ckpt_err(path, format!("metadata describes an invalid head: {e}")))?;
    Ok((Some(cfg), extra))
}

/// Saves `head` to `path` as an F32 checkpoint (see [`Checkpoint`]).
///
/// ```
/// use arcface::{save_head, load_head, ArcFaceHead, HeadConfig};
/// let head = ArcFaceHead::<f32>::new(HeadConfig::new(5, 8).with_subcenters(3), 2).unwrap();
/// let path = std::env::temp_dir().join("arcface_doc_save_head.safetensors");
/// save_head(&head, &path).unwrap();
/// let back = load_head::<f32>(&path).unwrap();
/// assert_eq!(back.predict(&[1.0; 8]).unwrap(), head.predict(&[1.0; 8]).unwrap());
/// ```
pub fn save_head<T: Real>(head: &ArcFaceHead<T>, path: impl AsRef<Path>) -> Result<()> {
    Checkpoint::from_head(head, WeightDtype::F32)?.save(path)
}

/// Loads a head saved with its configuration ([`save_head`], or the
/// `arcface` program). For a plain PyTorch export use [`Checkpoint::load`]
/// and [`Checkpoint::to_head`] with a configuration.
///
/// ```
/// use arcface::{load_head, save_head, ArcFaceHead, HeadConfig};
/// let path = std::env::temp_dir().join("arcface_doc_load_head.safetensors");
/// let mut head = ArcFaceHead::<f64>::new(HeadConfig::new(3, 4), 5).unwrap();
/// head.set_margins(&[0.1, 0.2, 0.3]).unwrap();
/// save_head(&head, &path).unwrap();
/// assert_eq!(load_head::<f64>(&path).unwrap().margins(), &[0.1, 0.2, 0.3]); // D9
/// ```
pub fn load_head<T: Real>(path: impl AsRef<Path>) -> Result<ArcFaceHead<T>> {
    let path = path.as_ref();
    Checkpoint::load(path)?
        .to_head(None)
        .map_err(|e| with_path(e, path))
}

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

fn optim_json(opt: &OptimizerConfig, steps: u64) -> String {
    let mut m = Map::new();
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
    let p = path.display().to_string();
    let cfg = head.config();
    let shape = [cfg.num_classes * cfg.num_subcenters, cfg.in_channels];
    if opt.len() != shape[0] * shape[1] {
        return Err(Error::Shape {
            what: "optimizer state",
            expected: shape[0] * shape[1],
            got: opt.len(),
        });
    }
    let dtype = if T::NAME == "f64" {
        WeightDtype::F64
    } else {
        WeightDtype::F32
    };
    let state = opt.state();
    let mut bufs = Vec::with_capacity(state.len());
    for (name, v) in &state {
        let mut data = Vec::with_capacity(v.len() * dtype.size());
        for x in v.iter() {
            dtype.encode(x.to_f64(), &mut data);
        }
        bufs.push((format!("{WEIGHT_KEY}.{name}"), data));
    }
    let raws: Vec<(String, Raw<'_>)> = bufs
        .iter()
        .map(|(n, d)| {
            (
                n.clone(),
                Raw {
                    dtype: dtype.to_st(),
                    shape,
                    data: d,
                },
            )
        })
        .collect();
    let bytes = safetensors::serialize(
        raws.iter().map(|(n, r)| (n.as_str(), r)),
        Some(
            [(
                OPTIM_METADATA_KEY.to_string(),
                optim_json(opt.config(), opt.steps()),
            )]
            .into_iter()
            .collect(),
        ),
    )
    .map_err(|e| ckpt_err(&p, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
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
    let bytes = read_file(path)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| ckpt_err(&p, format!("is not a valid safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| ckpt_err(&p, format!("is not a valid safetensors file ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(OPTIM_METADATA_KEY))
        .ok_or_else(|| {
            ckpt_err(
                &p,
                format!("has no `{OPTIM_METADATA_KEY}` metadata: not an optimiser-state file"),
            )
        })?;
    let value: Value = serde_json::from_str(json)
        .map_err(|e| ckpt_err(&p, format!("metadata is not valid JSON ({e})")))?;
    let map = value
        .as_object()
        .ok_or_else(|| ckpt_err(&p, "metadata must be a JSON object".into()))?;
    let o = Obj {
        map,
        prefix: "",
        path: &p,
    };
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
    let mut opt = Optimizer::new(config, head)?;
    let cfg = head.config();
    let shape = [cfg.num_classes * cfg.num_subcenters, cfg.in_channels];
    let mut bufs: Vec<Vec<T>> = Vec::new();
    for name in config.state_names() {
        let key = format!("{WEIGHT_KEY}.{name}");
        let v = st
            .tensor(&key)
            .map_err(|_| ckpt_err(&p, format!("has no tensor `{key}`")))?;
        let dt = WeightDtype::from_st(v.dtype()).ok_or_else(|| {
            ckpt_err(
                &p,
                format!("`{key}` has dtype {}; expected a float type", v.dtype()),
            )
        })?;
        if v.shape() != shape {
            return Err(ckpt_err(
                &p,
                format!(
                    "`{key}` has shape {:?} but the head's weight is {:?}",
                    v.shape(),
                    shape
                ),
            ));
        }
        bufs.push(
            v.data()
                .chunks_exact(dt.size())
                .map(|b| T::from_f64(dt.decode(b)))
                .collect(),
        );
    }
    let refs: Vec<&[T]> = bufs.iter().map(Vec::as_slice).collect();
    opt.set_state(steps, &refs)?;
    Ok(opt)
}
