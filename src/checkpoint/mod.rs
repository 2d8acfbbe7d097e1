//! Checkpoints in safetensors that travel to and from PyTorch (deviation
//! D9); the format is documented on [`Checkpoint`].
//!
//! This file holds the file layout (keys, the one weight tensor, reading and
//! writing); [`dtype`] the element codec, [`metadata`] the configuration as
//! JSON, [`optimizer`] the optimiser-state file beside a checkpoint.

mod dtype;
mod metadata;
mod optimizer;
mod run;

pub use dtype::WeightDtype;
pub use optimizer::{load_optimizer, optimizer_path, save_optimizer};

use crate::config::{HeadConfig, Margins};
use crate::error::{Error, Result};
use crate::head::ArcFaceHead;
use crate::io::{read, write_atomic};
use crate::real::Real;
use safetensors::tensor::{Dtype, SafeTensors, TensorView, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

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

/// The version written in `format_version`; files with another are refused.
const FORMAT_VERSION: u64 = 1;

/// The path named in errors about a checkpoint that is not a file.
const IN_MEMORY: &str = "<memory>";

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

/// An [`Error::Checkpoint`] about the file `path`.
fn ckpt_err(path: &str, reason: String) -> Error {
    Error::Checkpoint {
        path: path.to_string(),
        reason,
    }
}

/// The tensors of safetensors `bytes` read from `path`, and the text of
/// their `__metadata__` entry `key` when there is one.
fn open<'a>(bytes: &'a [u8], path: &str, key: &str) -> Result<(SafeTensors<'a>, Option<String>)> {
    let invalid = |e| ckpt_err(path, format!("is not a valid safetensors file ({e})"));
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let json = header.metadata().as_ref().and_then(|m| m.get(key)).cloned();
    Ok((st, json))
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
/// `scale`, `margins` as a per-class list, `easy_margin`, `loss`), and for a
/// head with retired classes `"retired": [c, ...]` (read back by
/// [`Checkpoint::to_head`]; files without it have none). A grown head is
/// saved at its new `num_classes`: the weight tensor is (C·K, D) as usual,
/// so it loads into mmpretrain with that `num_classes`. One key
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
    /// The retired classes, ascending (recorded in the metadata).
    retired: Vec<usize>,
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
        let mut config = head.config().clone();
        let (rows, cols) = config.weight_shape();
        let (data, unfit) = dtype.encode_all(head.weight());
        if let Some(i) = unfit {
            return Err(ckpt_err(
                IN_MEMORY,
                format!(
                    "weight row {}, column {} ({}) does not fit in {}",
                    i / cols.max(1),
                    i % cols.max(1),
                    head.weight()[i],
                    dtype.name()
                ),
            ));
        }
        config.margins = Margins::PerClass(head.margins().to_vec());
        Ok(Self {
            config: Some(config),
            rows,
            cols,
            dtype,
            data,
            retired: head.retired(),
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
        self.dtype.decode_all(&self.data)
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
        let cfg = self.resolve_config(config)?;
        let mut head = ArcFaceHead::from_weight(cfg, &self.weight::<T>())?;
        if !self.retired.is_empty() {
            head.retire(&self.retired)?;
        }
        Ok(head)
    }

    /// The configuration [`Self::to_head`] uses: `config`, else the stored
    /// one (an error for a file without one), validated and checked against
    /// the weight's shape.
    pub(crate) fn resolve_config(&self, config: Option<HeadConfig>) -> Result<HeadConfig> {
        let cfg = match config.or_else(|| self.config.clone()) {
            Some(c) => c,
            None => {
                return Err(ckpt_err(
                    IN_MEMORY,
                    format!(
                        "holds no arcface metadata (a plain PyTorch export?): give the head \
                         configuration; the weight has shape ({}, {}) = (C·K, D)",
                        self.rows, self.cols
                    ),
                ))
            }
        };
        cfg.validate()?;
        let want = cfg.weight_shape();
        if want != (self.rows, self.cols) {
            return Err(ckpt_err(
                IN_MEMORY,
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
        Ok(cfg)
    }

    /// The stored weight: its dtype and little-endian bytes.
    pub(crate) fn raw_weight(&self) -> (WeightDtype, &[u8]) {
        (self.dtype, &self.data)
    }

    /// The retired classes recorded in the metadata, ascending (empty for a
    /// file written without any, or before classes could retire);
    /// [`Self::to_head`] retires them again.
    ///
    /// ```
    /// use arcface::{ArcFaceHead, Checkpoint, HeadConfig, WeightDtype};
    /// let mut head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 2), 0).unwrap();
    /// head.retire(&[2]).unwrap();
    /// let ck = Checkpoint::from_head(&head, WeightDtype::F32).unwrap();
    /// let back = Checkpoint::from_bytes(&ck.to_bytes().unwrap()).unwrap();
    /// assert_eq!(back.retired(), &[2]);
    /// assert!(back.to_head::<f32>(None).unwrap().is_retired(2));
    /// ```
    pub fn retired(&self) -> &[usize] {
        &self.retired
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
            dtype: self.dtype.to_safetensors(),
            shape: [self.rows, self.cols],
            data: &self.data,
        };
        let meta = metadata::to_json(self.config.as_ref(), &self.retired, &self.extra);
        safetensors::serialize(
            [(WEIGHT_KEY, &raw)],
            Some([(METADATA_KEY.to_string(), meta)].into_iter().collect()),
        )
        .map_err(|e| ckpt_err(IN_MEMORY, format!("cannot serialise: {e}")))
    }

    /// Reads a checkpoint from safetensors bytes (see [`Self::load`]).
    ///
    /// ```
    /// let err = arcface::Checkpoint::from_bytes(&[0u8; 4]).unwrap_err();
    /// assert!(err.to_string().contains("not a valid safetensors file"));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, IN_MEMORY)
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
        let bytes = read(path)?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Reads the weight tensor (see [`Self::load`]) and the metadata of
    /// safetensors `bytes` from the file `path`.
    fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let (st, json) = open(bytes, path, METADATA_KEY)?;
        let view = weight_view(&st, path)?;
        let dtype = WeightDtype::from_safetensors(view.dtype()).ok_or_else(|| {
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
        let (config, retired, extra) = match json {
            Some(json) => metadata::parse(&json, path)?,
            None => (None, Vec::new(), BTreeMap::new()),
        };
        if let Some(cfg) = &config {
            let want = cfg.weight_shape();
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
            retired,
            extra,
        })
    }
}

/// The weight tensor: [`WEIGHT_KEY`], else [`BARE_WEIGHT_KEY`]; the error
/// lists (the first few of) the tensors the file holds instead.
fn weight_view<'a>(st: &SafeTensors<'a>, path: &str) -> Result<TensorView<'a>> {
    if let Ok(v) = st
        .tensor(WEIGHT_KEY)
        .or_else(|_| st.tensor(BARE_WEIGHT_KEY))
    {
        return Ok(v);
    }
    let mut names = st.names();
    names.sort_unstable();
    let shown: Vec<&str> = names.iter().take(8).copied().collect();
    Err(ckpt_err(
        path,
        format!(
            "has no tensor `{WEIGHT_KEY}` (nor `{BARE_WEIGHT_KEY}`); it holds {} \
             tensor(s){}{}",
            names.len(),
            if shown.is_empty() { "" } else { ": " },
            shown.join(", ")
        ),
    ))
}

/// Puts `path` into a checkpoint error made without one.
fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Checkpoint { reason, .. } => ckpt_err(&path.display().to_string(), reason),
        other => other,
    }
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
