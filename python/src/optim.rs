//! `SGD` and `AdamW`: PyTorch's update rules and parameter names, bound to
//! one head as `torch.optim` is bound to its parameters. `step()` applies
//! the gradient the head's last `loss` left (or an explicit one); the
//! update is all or nothing.

use crate::arrays::{self, Dim};
use crate::head::ArcFaceClsHead;
use crate::state::{with_state, Precision};
use crate::to_py;
use arcface::{Optimizer as RustOptimizer, OptimizerConfig};
use pyo3::prelude::*;
use std::path::PathBuf;

/// An optimiser of either precision (the head's).
pub enum OptInner {
    F32(RustOptimizer<f32>),
    F64(RustOptimizer<f64>),
}

impl OptInner {
    /// The updates taken so far.
    pub fn steps(&self) -> u64 {
        match self {
            OptInner::F32(o) => o.steps(),
            OptInner::F64(o) => o.steps(),
        }
    }

    /// The rule and its hyper-parameters.
    pub fn config(&self) -> OptimizerConfig {
        match self {
            OptInner::F32(o) => *o.config(),
            OptInner::F64(o) => *o.config(),
        }
    }
}

/// The base class of `SGD` and `AdamW`.
#[pyclass(module = "arcface", name = "Optimizer", subclass)]
pub struct Optimizer {
    pub head: Py<ArcFaceClsHead>,
    pub inner: OptInner,
    /// The learning rate of `step()` (`param_groups[0]['lr']` in PyTorch).
    #[pyo3(get, set)]
    pub lr: f64,
}

impl Optimizer {
    fn new(head: Py<ArcFaceClsHead>, cfg: OptimizerConfig, lr: Option<f64>) -> PyResult<Self> {
        let lr = lr.unwrap_or(cfg.default_lr());
        let inner = Python::attach(|py| {
            let h = head.borrow(py);
            with_state!(&h.inner, s, T => RustOptimizer::<T>::new(cfg, &s.head)
                .map(T::wrap_opt)
                .map_err(to_py))
        })?;
        Ok(Self { head, inner, lr })
    }

    fn step_typed<T: Precision>(
        &mut self,
        py: Python<'_>,
        grad: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let lr = self.lr;
        let mut h = self.head.borrow_mut(py);
        let (Some(s), Some(opt)) = (T::state(&mut h.inner), T::opt(&mut self.inner)) else {
            unreachable!("the optimiser was made for this head's dtype");
        };
        // a head grown by enrolment: zero state for its new rows
        opt.fit(&s.head).map_err(to_py)?;
        let cfg = s.head.config();
        let shape = [
            Dim::Is(cfg.num_classes * cfg.num_subcenters),
            Dim::Is(cfg.in_channels),
        ];
        match grad {
            Some(g) => {
                let (g, _) = arrays::floats::<T>(g, "grad", &shape)?;
                let g = arrays::slice(&g);
                py.detach(|| opt.step(&mut s.head, g, lr)).map_err(to_py)?;
            }
            None => {
                let ws =
                    match (&s.ws, s.grad_ready) {
                        (Some(ws), true) => ws,
                        _ => return Err(crate::ArcFaceError::new_err(
                            "no gradient: call head.loss(feats, labels) (with grad=True) before \
                             step(), or pass grad=",
                        )),
                    };
                let g = ws.grad_weight();
                py.detach(|| opt.step(&mut s.head, g, lr)).map_err(to_py)?;
            }
        }
        // the gradient belonged to the weights before this update
        s.grad_ready = false;
        Ok(())
    }
}

#[pymethods]
impl Optimizer {
    /// One update of the head's weights at `lr`: from `grad`
    /// ((num_classes·num_subcenters, in_channels), the head's dtype) or,
    /// without it, from the gradient of the head's last `loss` (which it
    /// then consumes). Nothing changes when it fails.
    #[pyo3(signature = (grad=None))]
    fn step(&mut self, py: Python<'_>, grad: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        match self.inner {
            OptInner::F32(_) => self.step_typed::<f32>(py, grad),
            OptInner::F64(_) => self.step_typed::<f64>(py, grad),
        }
    }

    /// Forgets the head's last gradient (PyTorch's `zero_grad`).
    fn zero_grad(&self, py: Python<'_>) {
        with_state!(&mut self.head.borrow_mut(py).inner, s, T => s.grad_ready = false)
    }

    /// The updates taken so far.
    #[getter]
    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    /// The head this optimiser updates.
    #[getter]
    fn head(&self, py: Python<'_>) -> Py<ArcFaceClsHead> {
        self.head.clone_ref(py)
    }

    /// Saves the state (moments, step count, configuration) to a
    /// safetensors file, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let h = self.head.borrow(py);
        match (&h.inner, &self.inner) {
            (crate::state::Inner::F32(s), OptInner::F32(o)) => {
                py.detach(|| arcface::save_optimizer(o, &s.head, &path))
            }
            (crate::state::Inner::F64(s), OptInner::F64(o)) => {
                py.detach(|| arcface::save_optimizer(o, &s.head, &path))
            }
            _ => unreachable!("the optimiser was made for this head's dtype"),
        }
        .map_err(to_py)
    }

    /// Replaces the state (and the configuration) with a file written by
    /// `save`; `lr` is kept.
    fn load(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let h = self.head.borrow(py);
        self.inner = with_state!(&h.inner, s, T => py
            .detach(|| arcface::load_optimizer::<T>(&path, &s.head))
            .map(T::wrap_opt)
            .map_err(to_py)?);
        Ok(())
    }
}

/// `torch.optim.SGD`'s rule: `SGD(head, lr=0.1, momentum=0.9,
/// dampening=0.0, weight_decay=1e-4, nesterov=False)` (this library's
/// defaults; the names and the update are PyTorch's).
#[pyclass(module = "arcface", name = "SGD", extends = Optimizer)]
pub struct Sgd;

#[pymethods]
impl Sgd {
    #[new]
    #[pyo3(signature = (head, lr=None, momentum=None, dampening=None, weight_decay=None,
        nesterov=None))]
    fn new(
        head: Py<ArcFaceClsHead>,
        lr: Option<f64>,
        momentum: Option<f64>,
        dampening: Option<f64>,
        weight_decay: Option<f64>,
        nesterov: Option<bool>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let d = arcface::Sgd::default();
        let cfg = OptimizerConfig::Sgd(arcface::Sgd {
            momentum: momentum.unwrap_or(d.momentum),
            dampening: dampening.unwrap_or(d.dampening),
            weight_decay: weight_decay.unwrap_or(d.weight_decay),
            nesterov: nesterov.unwrap_or(d.nesterov),
        });
        Ok(PyClassInitializer::from(Optimizer::new(head, cfg, lr)?).add_subclass(Sgd))
    }
}

/// `torch.optim.AdamW`: `AdamW(head, lr=1e-3, betas=(0.9, 0.999),
/// eps=1e-8, weight_decay=0.01)`.
#[pyclass(module = "arcface", name = "AdamW", extends = Optimizer)]
pub struct AdamW;

#[pymethods]
impl AdamW {
    #[new]
    #[pyo3(signature = (head, lr=None, betas=None, eps=None, weight_decay=None))]
    fn new(
        head: Py<ArcFaceClsHead>,
        lr: Option<f64>,
        betas: Option<(f64, f64)>,
        eps: Option<f64>,
        weight_decay: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let d = arcface::AdamW::default();
        let (beta1, beta2) = betas.unwrap_or((d.beta1, d.beta2));
        let cfg = OptimizerConfig::AdamW(arcface::AdamW {
            beta1,
            beta2,
            eps: eps.unwrap_or(d.eps),
            weight_decay: weight_decay.unwrap_or(d.weight_decay),
        });
        Ok(PyClassInitializer::from(Optimizer::new(head, cfg, lr)?).add_subclass(AdamW))
    }
}
