//! `ArcFaceClsHead`: the library's `ArcFaceHead<f32>` or `<f64>` (the
//! `dtype` argument) with its training workspace, behind mmpretrain's
//! constructor and methods.
//!
//! The head owns one training workspace, grown to the largest batch seen;
//! `loss` leaves the gradients there, where an optimiser's `step()` finds
//! them (as `loss.backward()` leaves `.grad` for `torch.optim`). Every
//! computation runs with the GIL released; while one runs, another thread's
//! call on the same head gets PyO3's "already borrowed" `RuntimeError`.

use crate::arrays;
use crate::config;
use crate::state::{state_key, with_state, Inner, State};
use crate::to_py;
use arcface::{
    load_head, ArcFaceHead, Checkpoint, Enrolment, HeadConfig, MarginGrad, Margins, Real,
    WeightDtype,
};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// `'float32'` or `'float64'` from a string, a numpy dtype or a type.
pub fn parse_dtype(obj: Option<&Bound<'_, PyAny>>) -> PyResult<&'static str> {
    let Some(obj) = obj else {
        return Ok("float32");
    };
    let py = obj.py();
    let name: String = py
        .import("numpy")?
        .call_method1("dtype", (obj,))?
        .getattr("name")?
        .extract()?;
    match name.as_str() {
        "float32" => Ok("float32"),
        "float64" => Ok("float64"),
        other => Err(PyTypeError::new_err(format!(
            "dtype must be float32 or float64, got {other}"
        ))),
    }
}

/// The enrolment options; those not given take the library's defaults.
fn enrolment(
    margin: Option<f64>,
    seed: Option<u64>,
    kmeans_iters: Option<usize>,
    class_weight: Option<f64>,
) -> Enrolment {
    let d = Enrolment::default();
    Enrolment {
        seed: seed.unwrap_or(d.seed),
        kmeans_iters: kmeans_iters.unwrap_or(d.kmeans_iters),
        margin: margin.or(d.margin),
        class_weight: class_weight.unwrap_or(d.class_weight),
    }
}

fn margin_grad(name: &str) -> PyResult<MarginGrad> {
    match name {
        "exact" => Ok(MarginGrad::Exact),
        "straight_through" => Ok(MarginGrad::StraightThrough),
        other => Err(crate::ArcFaceError::new_err(format!(
            "margin_grad is {other:?}, expected 'exact' or 'straight_through'"
        ))),
    }
}
/// mmpretrain's `ArcFaceClsHead` on the CPU.
///
/// `ArcFaceClsHead(num_classes, in_channels, num_subcenters=1, scale=64.0,
/// margins=0.5, easy_margin=False, loss=dict(type='CrossEntropyLoss',
/// loss_weight=1.0), *, dtype='float32', seed=0, margin_grad='exact')`.
/// `margins` is a float, a sequence of `num_classes` floats, or a path to a
/// `.txt` file with one margin a line. `loss` is `CrossEntropyLoss`
/// (`loss_weight`, `class_weight`, `reduction`, `use_soft`) or
/// `LabelSmoothLoss` (`label_smooth_val`, `mode`, `num_classes`,
/// `loss_weight`, `class_weight`, `reduction`). The weight
/// (`norm_product.weight`, shape (num_classes·num_subcenters, in_channels),
/// row c·K + k) is drawn uniformly in ±1/√in_channels from `seed`.
#[pyclass(module = "arcface", name = "ArcFaceClsHead")]
pub struct ArcFaceClsHead {
    pub inner: Inner,
}

#[pymethods]
impl ArcFaceClsHead {
    #[new]
    #[pyo3(signature = (num_classes, in_channels, num_subcenters=HeadConfig::DEFAULT_SUBCENTERS,
        scale=HeadConfig::DEFAULT_SCALE, margins=None, easy_margin=false, loss=None, *,
        dtype=None, seed=0, margin_grad="exact"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        num_classes: usize,
        in_channels: usize,
        num_subcenters: usize,
        scale: f64,
        margins: Option<&Bound<'_, PyAny>>,
        easy_margin: bool,
        loss: Option<&Bound<'_, PyDict>>,
        dtype: Option<&Bound<'_, PyAny>>,
        seed: u64,
        margin_grad: &str,
    ) -> PyResult<Self> {
        let margins = match margins {
            None => Margins::Uniform(HeadConfig::DEFAULT_MARGIN),
            Some(m) => config::margins(m, num_classes)?,
        };
        let cfg = HeadConfig::new(num_classes, in_channels)
            .with_subcenters(num_subcenters)
            .with_scale(scale)
            .with_margins(margins)
            .with_easy_margin(easy_margin)
            .with_loss(config::loss(loss)?)
            .with_margin_grad(self::margin_grad(margin_grad)?);
        let inner = match parse_dtype(dtype)? {
            "float64" => Inner::F64(State::new(ArcFaceHead::new(cfg, seed).map_err(to_py)?)),
            _ => Inner::F32(State::new(ArcFaceHead::new(cfg, seed).map_err(to_py)?)),
        };
        Ok(Self { inner })
    }

    /// The loss of a batch, and its gradients.
    ///
    /// `feats` (N, in_channels) and the optional `soft_targets` (N,
    /// num_classes) and per-sample `weight` (N,) are C-contiguous arrays of
    /// the head's dtype (borrowed, never copied); `labels` (N,) integers.
    /// Returns a dict: `loss` (a float, or the (N,) per-sample losses under
    /// `reduction='none'`), and unless `grad=False`, `grad_feats` (N,
    /// in_channels) and `grad_weight` (num_classes·num_subcenters,
    /// in_channels), new arrays, or the two arrays of `out=(grad_feats,
    /// grad_weight)` (writable, C-contiguous, the head's dtype and those
    /// shapes: no allocation per step). The gradients also stay in the head
    /// for an optimiser's `step()`.
    #[pyo3(signature = (feats, labels, soft_targets=None, weight=None, *, grad=true, out=None))]
    fn loss<'py>(
        &mut self,
        feats: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
        soft_targets: Option<&Bound<'py, PyAny>>,
        weight: Option<&Bound<'py, PyAny>>,
        grad: bool,
        out: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        with_state!(&mut self.inner, s, T =>
            s.loss(feats, labels, soft_targets, weight, grad, out))
    }

    /// `head(feats)`: the inference logits S·max_k cos θ, (N, num_classes);
    /// `head(feats, labels)`: the training logits, with the margin at each
    /// sample's label.
    #[pyo3(signature = (feats, labels=None))]
    fn __call__<'py>(
        &self,
        feats: &Bound<'py, PyAny>,
        labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_state!(&self.inner, s, T => s.logits(feats, labels))
    }

    /// A dict: `pred_score` (N, num_classes) softmax of the logits,
    /// `pred_label` (N,) int64 argmax (first on ties), `topk_labels` and
    /// `topk_scores` (N, min(topk, num_classes)), best first.
    #[pyo3(signature = (feats, topk=1))]
    fn predict<'py>(&self, feats: &Bound<'py, PyAny>, topk: usize) -> PyResult<Bound<'py, PyDict>> {
        with_state!(&self.inner, s, T => s.predict(feats, topk))
    }

    /// mmpretrain's `set_margins(margins)`: a float, a sequence or a `.txt`
    /// path.
    fn set_margins(&mut self, margins: &Bound<'_, PyAny>) -> PyResult<()> {
        let c = self.num_classes();
        let list = match config::margins(margins, c)? {
            Margins::Uniform(m) => {
                return with_state!(&mut self.inner, s, T =>
                    s.head.set_uniform_margin(m).map_err(to_py))
            }
            Margins::PerClass(v) => v,
        };
        with_state!(&mut self.inner, s, T => s.head.set_margins(&list).map_err(to_py))
    }

    /// What mmpretrain's `SetAdaptiveMarginsHook(margin_min, margin_max,
    /// power)` does before training: per-class margins from the class
    /// counts of `labels` (the training set's labels).
    #[pyo3(signature = (labels, margin_min=None, margin_max=None, power=None))]
    fn set_adaptive_margins(
        &mut self,
        labels: &Bound<'_, PyAny>,
        margin_min: Option<f64>,
        margin_max: Option<f64>,
        power: Option<f64>,
    ) -> PyResult<()> {
        let py = labels.py();
        let y = arrays::labels(labels, "labels")?;
        let y = y.as_slice()?;
        let p = config::adaptive_params(margin_min, margin_max, power);
        with_state!(&mut self.inner, s, T =>
            py.detach(|| s.head.set_adaptive_margins(y, p)).map_err(to_py))
    }

    /// Adds one class from its embeddings ((n, in_channels), the head's
    /// dtype) by weight imprinting (with sub-centres, a seeded spherical
    /// k-means) and returns its index (the old `num_classes`). `margin`:
    /// the new class's margin (default: the margin all classes share; an
    /// error when they differ); `class_weight`: its loss weight where the
    /// loss has class weights. An optimiser of this head follows the grown
    /// head at its next `step()` (zero state for the new rows).
    #[pyo3(signature = (embeddings, *, margin=None, seed=None, kmeans_iters=None,
        class_weight=None))]
    fn enrol(
        &mut self,
        embeddings: &Bound<'_, PyAny>,
        margin: Option<f64>,
        seed: Option<u64>,
        kmeans_iters: Option<usize>,
        class_weight: Option<f64>,
    ) -> PyResult<usize> {
        let how = enrolment(margin, seed, kmeans_iters, class_weight);
        let new = with_state!(&mut self.inner, s, T => s.enrol(embeddings, None, &how))?;
        Ok(new[0])
    }

    /// Adds one class per distinct label 0..m of `labels` from the rows of
    /// `embeddings` carrying it, in one growth; returns the new indices.
    #[pyo3(signature = (embeddings, labels, *, margin=None, seed=None, kmeans_iters=None,
        class_weight=None))]
    fn enrol_many(
        &mut self,
        embeddings: &Bound<'_, PyAny>,
        labels: &Bound<'_, PyAny>,
        margin: Option<f64>,
        seed: Option<u64>,
        kmeans_iters: Option<usize>,
        class_weight: Option<f64>,
    ) -> PyResult<Vec<usize>> {
        let how = enrolment(margin, seed, kmeans_iters, class_weight);
        with_state!(&mut self.inner, s, T => s.enrol(embeddings, Some(labels), &how))
    }

    /// Retires classes (mask semantics): their logits are -inf, `predict`
    /// never returns them, a training label naming one is an error, and they
    /// take no part in the softmax. All or nothing.
    fn retire(&mut self, classes: Vec<usize>) -> PyResult<()> {
        with_state!(&mut self.inner, s, T => {
            s.grad_ready = false;
            s.head.retire(&classes).map_err(to_py)
        })
    }

    /// Whether `class` is retired.
    fn is_retired(&self, class: usize) -> bool {
        with_state!(&self.inner, s, T => s.head.is_retired(class))
    }

    /// The retired classes, in increasing order.
    #[getter]
    fn retired(&self) -> Vec<usize> {
        with_state!(&self.inner, s, T => s.head.retired())
    }

    /// `{'norm_product.weight': weight}`: a copy, shape
    /// (num_classes·num_subcenters, in_channels), the head's dtype.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        with_state!(&self.inner, s, T => {
            let (c, k, dim) = s.dims();
            d.set_item(state_key(), arrays::to_numpy(py, s.head.weight(), &[c * k, dim])?)?;
        });
        Ok(d)
    }

    /// Loads `state_dict['norm_product.weight']` (any float array of the
    /// right shape; copied into the head). With `strict`, other keys are an
    /// error, as in PyTorch.
    #[pyo3(signature = (state_dict, strict=true))]
    fn load_state_dict(&mut self, state_dict: &Bound<'_, PyDict>, strict: bool) -> PyResult<()> {
        if strict {
            for k in state_dict.keys() {
                let k: String = k.extract()?;
                if k != state_key() {
                    return Err(PyKeyError::new_err(format!(
                        "unexpected key {k:?} in state_dict (the head has only {:?})",
                        state_key()
                    )));
                }
            }
        }
        let Some(w) = state_dict.get_item(state_key())? else {
            return Err(PyKeyError::new_err(format!(
                "missing key {:?} in state_dict",
                state_key()
            )));
        };
        with_state!(&mut self.inner, s, T => s.set_weight(&w))
    }

    /// Saves a safetensors checkpoint that mmpretrain loads (the weight
    /// under `norm_product.weight`, the configuration in the metadata);
    /// `dtype` of the stored weight: 'float32' (default), 'float16',
    /// 'bfloat16' or 'float64'. The file is written atomically.
    #[pyo3(signature = (path, dtype=None))]
    fn save(&self, py: Python<'_>, path: PathBuf, dtype: Option<&str>) -> PyResult<()> {
        let dt: WeightDtype = match dtype {
            Some(s) => s.parse().map_err(to_py)?,
            None => WeightDtype::default(),
        };
        with_state!(&self.inner, s, T => py.detach(|| {
            Checkpoint::from_head(&s.head, dt)?.save(&path)
        }).map_err(to_py))
    }

    /// A head from a checkpoint written by `save` (or by the `arcface`
    /// program), computing in `dtype`.
    #[staticmethod]
    #[pyo3(signature = (path, dtype=None))]
    fn load(py: Python<'_>, path: PathBuf, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let inner = match parse_dtype(dtype)? {
            "float64" => Inner::F64(State::new(
                py.detach(|| load_head::<f64>(&path)).map_err(to_py)?,
            )),
            _ => Inner::F32(State::new(
                py.detach(|| load_head::<f32>(&path)).map_err(to_py)?,
            )),
        };
        Ok(Self { inner })
    }

    /// `num_classes` C.
    #[getter]
    fn num_classes(&self) -> usize {
        with_state!(&self.inner, s, T => s.head.config().num_classes)
    }

    /// `in_channels` D.
    #[getter]
    fn in_channels(&self) -> usize {
        with_state!(&self.inner, s, T => s.head.config().in_channels)
    }

    /// `num_subcenters` K.
    #[getter]
    fn num_subcenters(&self) -> usize {
        with_state!(&self.inner, s, T => s.head.config().num_subcenters)
    }

    /// `scale` S.
    #[getter]
    fn scale(&self) -> f64 {
        with_state!(&self.inner, s, T => s.head.config().scale)
    }

    /// `easy_margin`.
    #[getter]
    fn easy_margin(&self) -> bool {
        with_state!(&self.inner, s, T => s.head.config().easy_margin)
    }

    /// The loss configuration as mmpretrain's dict.
    #[getter]
    fn loss_cfg<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        with_state!(&self.inner, s, T => config::loss_dict(py, &s.head.config().loss))
    }

    /// The per-class margins (float64, a copy).
    #[getter]
    fn margins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        with_state!(&self.inner, s, T => arrays::to_numpy(py, s.head.margins(), &[s.dims().0]))
    }

    /// The numpy dtype the head computes in.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArrayDescr> {
        with_state!(&self.inner, _s, T => numpy::dtype::<T>(py))
    }

    fn __repr__(&self) -> String {
        let name = with_state!(&self.inner, _s, T => T::NAME);
        format!(
            "ArcFaceClsHead(num_classes={}, in_channels={}, num_subcenters={}, scale={}, \
             easy_margin={}, dtype='{}')",
            self.num_classes(),
            self.in_channels(),
            self.num_subcenters(),
            self.scale(),
            if self.easy_margin() { "True" } else { "False" },
            if name == "f64" { "float64" } else { "float32" }
        )
    }
}
