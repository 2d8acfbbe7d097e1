//! The state behind an `ArcFaceClsHead`: the library's head of one
//! precision with its training workspace, the enum over the two
//! precisions, and the generic bodies of the head's methods (argument
//! checks in `arrays`, the library call with the GIL released, the result
//! as numpy arrays).

use crate::arrays::{self, Dim};
use crate::to_py;
use arcface::{ArcFaceHead, Batch, Enrolment, Real, Reduction, Workspace, WEIGHT_KEY};
use numpy::Element;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The weight's key in the head's `state_dict()`: mmpretrain's
/// `norm_product.weight`, the checkpoint's key without the model's `head.`
/// prefix.
pub fn state_key() -> &'static str {
    WEIGHT_KEY.strip_prefix("head.").unwrap_or(WEIGHT_KEY)
}

/// A head of one precision with its training workspace.
pub struct State<T: Real> {
    pub head: ArcFaceHead<T>,
    /// Grown to the largest batch by the library; made on the first `loss`.
    pub ws: Option<Workspace<T>>,
    /// The workspace holds the gradients of the last successful `loss`
    /// with `grad=True`, for the weights the head has now.
    pub grad_ready: bool,
}

/// The two precisions.
pub enum Inner {
    F32(State<f32>),
    F64(State<f64>),
}

/// Runs `$body` with `$s` bound to the `State<T>` of either precision and
/// the type alias `$T` naming that precision.
macro_rules! with_state {
    ($inner:expr, $s:ident, $T:ident => $body:expr) => {
        match $inner {
            $crate::state::Inner::F32($s) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::state::Inner::F64($s) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_state;

impl<T: Real + Element> State<T> {
    pub fn new(head: ArcFaceHead<T>) -> Self {
        Self {
            head,
            ws: None,
            grad_ready: false,
        }
    }

    pub fn dims(&self) -> (usize, usize, usize) {
        let c = self.head.config();
        (c.num_classes, c.num_subcenters, c.in_channels)
    }

    /// `loss`: the loss (a float, or the (N,) per-sample losses under
    /// `reduction='none'`), and with `grad` both gradients, as a dict.
    pub fn loss<'py>(
        &mut self,
        feats: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
        soft: Option<&Bound<'py, PyAny>>,
        weight: Option<&Bound<'py, PyAny>>,
        grad: bool,
        out: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = feats.py();
        let (c, k, d) = self.dims();
        let (x, free) = arrays::floats::<T>(feats, "feats", &[Dim::Any("N"), Dim::Is(d)])?;
        let n = free[0];
        let y = arrays::labels(labels, "labels")?;
        let soft = soft
            .map(|s| arrays::floats::<T>(s, "soft_targets", &[Dim::Is(n), Dim::Is(c)]))
            .transpose()?;
        let sw = weight
            .map(|w| arrays::floats::<T>(w, "weight", &[Dim::Is(n)]))
            .transpose()?;
        arrays::check_labels_len(y.as_slice()?, n)?;
        let mut batch = Batch::new(arrays::slice(&x), y.as_slice()?);
        if let Some((s, _)) = &soft {
            batch = batch.with_soft_targets(arrays::slice(s));
        }
        if let Some((w, _)) = &sw {
            batch = batch.with_sample_weights(arrays::slice(w));
        }
        let buffers = out;
        let value = py.detach(|| self.run(&batch, grad)).map_err(to_py)?;
        let ws = self.ws.as_ref().expect("made by run");
        let res = PyDict::new(py);
        if self.head.config().loss.reduction == Reduction::None {
            res.set_item("loss", arrays::to_numpy(py, ws.sample_losses(), &[n])?)?;
        } else {
            res.set_item("loss", value.to_f64())?;
        }
        match (grad, buffers) {
            (false, _) => {}
            (true, Some((gf, gw))) => {
                arrays::copy_into(&gf, "out[0]", ws.grad_features(), &[n, d])?;
                arrays::copy_into(&gw, "out[1]", ws.grad_weight(), &[c * k, d])?;
                res.set_item("grad_feats", gf)?;
                res.set_item("grad_weight", gw)?;
            }
            (true, None) => {
                res.set_item(
                    "grad_feats",
                    arrays::to_numpy(py, ws.grad_features(), &[n, d])?,
                )?;
                res.set_item(
                    "grad_weight",
                    arrays::to_numpy(py, ws.grad_weight(), &[c * k, d])?,
                )?;
            }
        }
        Ok(res)
    }

    /// One step in the workspace (made on first use); `grad_ready` says
    /// whether it now holds this head's gradients.
    fn run(&mut self, batch: &Batch<'_, T>, grad: bool) -> arcface::Result<T> {
        self.grad_ready = false;
        let ws = match &mut self.ws {
            Some(ws) => ws,
            None => self.ws.insert(Workspace::try_new(&self.head, 1)?),
        };
        let v = if grad {
            self.head.forward_backward(batch, ws)?
        } else {
            self.head.loss(batch, ws)?
        };
        self.grad_ready = grad;
        Ok(v)
    }

    /// `head(feats)`: inference logits; `head(feats, labels)`: the training
    /// logits (margin at the label).
    pub fn logits<'py>(
        &self,
        feats: &Bound<'py, PyAny>,
        labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = feats.py();
        let (c, _, d) = self.dims();
        let (x, free) = arrays::floats::<T>(feats, "feats", &[Dim::Any("N"), Dim::Is(d)])?;
        let x = arrays::slice(&x);
        let z = match labels {
            None => py.detach(|| self.head.logits(x)),
            Some(l) => {
                let y = arrays::labels(l, "labels")?;
                let y = y.as_slice()?;
                arrays::check_labels_len(y, free[0])?;
                py.detach(|| self.head.logits_train(x, y))
            }
        }
        .map_err(to_py)?;
        arrays::to_numpy(py, &z, &[free[0], c])
    }

    /// `predict`: mmpretrain's `pred_score` (softmax) and `pred_label`
    /// (argmax, the first on ties), and the `topk` best labels and scores.
    pub fn predict<'py>(
        &self,
        feats: &Bound<'py, PyAny>,
        topk: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let py = feats.py();
        let (c, _, d) = self.dims();
        let (x, free) = arrays::floats::<T>(feats, "feats", &[Dim::Any("N"), Dim::Is(d)])?;
        let n = free[0];
        let x = arrays::slice(&x);
        let (p, top) = py
            .detach(|| {
                let p = self.head.predict(x)?;
                let top = p.topk(topk);
                Ok((p, top))
            })
            .map_err(to_py)?;
        let k = topk.min(c);
        let labels: Vec<i64> = p.labels.iter().map(|&l| l as i64).collect();
        let top_labels: Vec<i64> = top.iter().flatten().map(|&(l, _)| l as i64).collect();
        let top_scores: Vec<T> = top.iter().flatten().map(|&(_, s)| s).collect();
        let out = PyDict::new(py);
        out.set_item("pred_score", arrays::to_numpy(py, &p.scores, &[n, c])?)?;
        out.set_item("pred_label", arrays::to_numpy(py, &labels, &[n])?)?;
        out.set_item("topk_labels", arrays::to_numpy(py, &top_labels, &[n, k])?)?;
        out.set_item("topk_scores", arrays::to_numpy(py, &top_scores, &[n, k])?)?;
        Ok(out)
    }

    /// Adds classes from embeddings (weight imprinting); the workspace
    /// follows the grown head. `labels` None: one class from every row.
    pub fn enrol(
        &mut self,
        emb: &Bound<'_, PyAny>,
        labels: Option<&Bound<'_, PyAny>>,
        how: &Enrolment,
    ) -> PyResult<Vec<usize>> {
        let py = emb.py();
        let d = self.dims().2;
        let (x, free) = arrays::floats::<T>(emb, "embeddings", &[Dim::Any("n"), Dim::Is(d)])?;
        let x = arrays::slice(&x);
        let y = labels.map(|l| arrays::labels(l, "labels")).transpose()?;
        let y = match &y {
            Some(y) => {
                let y = y.as_slice()?;
                arrays::check_labels_len(y, free[0])?;
                Some(y)
            }
            None => None,
        };
        let (head, ws) = (&mut self.head, &mut self.ws);
        let new = py
            .detach(|| {
                let new = match y {
                    Some(y) => head.enrol_many(x, y, how)?,
                    None => vec![head.enrol(x, how)?],
                };
                if let Some(ws) = ws {
                    ws.fit(head)?;
                }
                Ok(new)
            })
            .map_err(to_py)?;
        self.grad_ready = false;
        Ok(new)
    }

    /// Replaces the weights with `w` (any float array, converted to `T`).
    pub fn set_weight(&mut self, w: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = w.py();
        let (c, k, d) = self.dims();
        let np = py.import("numpy")?;
        let dt = numpy::dtype::<T>(py);
        let w = np.call_method1("ascontiguousarray", (w, dt))?;
        let (w, _) = arrays::floats::<T>(&w, state_key(), &[Dim::Is(c * k), Dim::Is(d)])?;
        let w = arrays::slice(&w);
        py.detach(|| self.head.set_weight(w)).map_err(to_py)?;
        self.grad_ready = false;
        Ok(())
    }
}

/// A precision the bindings compute in: picks its variant out of the
/// dtype-tagged enums.
pub trait Precision: Real + Element {
    /// The head's state, when it computes in this precision.
    fn state(inner: &mut Inner) -> Option<&mut State<Self>>;
    /// The optimiser, when it is of this precision.
    fn opt(o: &mut crate::optim::OptInner) -> Option<&mut arcface::Optimizer<Self>>;
    /// Tags an optimiser of this precision.
    fn wrap_opt(o: arcface::Optimizer<Self>) -> crate::optim::OptInner;
}

macro_rules! precision {
    ($T:ty, $v:ident) => {
        impl Precision for $T {
            fn state(inner: &mut Inner) -> Option<&mut State<Self>> {
                match inner {
                    Inner::$v(s) => Some(s),
                    _ => None,
                }
            }
            fn opt(o: &mut crate::optim::OptInner) -> Option<&mut arcface::Optimizer<Self>> {
                match o {
                    crate::optim::OptInner::$v(o) => Some(o),
                    _ => None,
                }
            }
            fn wrap_opt(o: arcface::Optimizer<Self>) -> crate::optim::OptInner {
                crate::optim::OptInner::$v(o)
            }
        }
    };
}
precision!(f32, F32);
precision!(f64, F64);
