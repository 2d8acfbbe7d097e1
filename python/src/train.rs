//! `Trainer`: the library's training loop (seeded shuffled batches, the
//! learning-rate schedule, evaluation after each epoch), and `SplitMix64`,
//! the library's one random generator, for reproducing its shuffles.

use crate::arrays::{self, Dim};
use crate::head::ArcFaceClsHead;
use crate::optim::Optimizer;
use crate::state::Precision;
use crate::to_py;
use arcface::{Dataset, EpochInfo, LrSchedule, TrainConfig, TrainReport, Trainer as RustTrainer};
use numpy::PyReadwriteArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::ops::ControlFlow;

/// The library's training loop on one head.
///
/// `Trainer(head, optimizer=None, *, epochs=20, batch_size=128, lr=None,
/// schedule='cosine', eta_min=0.0, step_size=None, gamma=0.1,
/// warmup_epochs=0, warmup_start_factor=0.001, seed=0, drop_last=False,
/// adaptive_margins=None, eval_every=1, sample_rate=1.0)`: the defaults are the library's
/// (`TrainConfig`). `optimizer` is an `SGD` or `AdamW` of the same head
/// (its state carries on and is kept; `lr` defaults to its `lr`); without
/// one, SGD with its defaults. `schedule` is 'cosine' (down to `eta_min`),
/// 'step' (×`gamma` every `step_size` epochs, default a third of the run)
/// or 'constant'. `adaptive_margins` is a dict of the hook's parameters
/// (`margin_min`, `margin_max`, `power`), applied to the training labels
/// before the first step. `sample_rate` in (0, 1] trains with PartialFC's
/// sampling (the batch's classes and a seeded sample of the others, ⌈r·C⌉
/// in all; 1, the default, is the full head).
#[pyclass(module = "arcface", name = "Trainer")]
pub struct Trainer {
    head: Py<ArcFaceClsHead>,
    optimizer: Option<Py<Optimizer>>,
    cfg: TrainConfig,
}

#[pymethods]
impl Trainer {
    #[new]
    #[pyo3(signature = (head, optimizer=None, *, epochs=None, batch_size=None, lr=None,
        schedule="cosine", eta_min=None, step_size=None, gamma=None, warmup_epochs=None,
        warmup_start_factor=None, seed=None, drop_last=None, adaptive_margins=None,
        eval_every=None, sample_rate=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        head: Py<ArcFaceClsHead>,
        optimizer: Option<Py<Optimizer>>,
        epochs: Option<usize>,
        batch_size: Option<usize>,
        lr: Option<f64>,
        schedule: &str,
        eta_min: Option<f64>,
        step_size: Option<usize>,
        gamma: Option<f64>,
        warmup_epochs: Option<usize>,
        warmup_start_factor: Option<f64>,
        seed: Option<u64>,
        drop_last: Option<bool>,
        adaptive_margins: Option<&Bound<'_, PyDict>>,
        eval_every: Option<usize>,
        sample_rate: Option<f64>,
    ) -> PyResult<Self> {
        let d = TrainConfig::default();
        let epochs = epochs.unwrap_or(d.epochs);
        let schedule = match schedule {
            "cosine" => LrSchedule::Cosine {
                eta_min: eta_min.unwrap_or(0.0),
            },
            "step" => match LrSchedule::default_step(epochs) {
                LrSchedule::Step {
                    step_size: s,
                    gamma: g,
                } => LrSchedule::Step {
                    step_size: step_size.unwrap_or(s),
                    gamma: gamma.unwrap_or(g),
                },
                other => other,
            },
            "constant" => LrSchedule::Constant,
            other => {
                return Err(crate::ArcFaceError::new_err(format!(
                    "schedule is {other:?}, expected 'cosine', 'step' or 'constant'"
                )))
            }
        };
        let (opt_cfg, opt_lr) = match &optimizer {
            Some(o) => {
                let o = o.borrow(py);
                if !o.head.is(&head) {
                    return Err(crate::ArcFaceError::new_err(
                        "the optimizer updates another head than the trainer's",
                    ));
                }
                let cfg = o.inner.config();
                (cfg, Some(o.lr))
            }
            None => (d.optimizer, None),
        };
        let adaptive = adaptive_margins
            .map(|a| -> PyResult<_> {
                let get = |k: &str| -> PyResult<Option<f64>> {
                    a.get_item(k)?.map(|v| v.extract()).transpose()
                };
                Ok(crate::config::adaptive_params(
                    get("margin_min")?,
                    get("margin_max")?,
                    get("power")?,
                ))
            })
            .transpose()?;
        let cfg = TrainConfig {
            epochs,
            batch_size: batch_size.unwrap_or(d.batch_size),
            lr: lr.or(opt_lr).unwrap_or(opt_cfg.default_lr()),
            optimizer: opt_cfg,
            schedule,
            warmup_epochs: warmup_epochs.unwrap_or(d.warmup_epochs),
            warmup_start_factor: warmup_start_factor.unwrap_or(d.warmup_start_factor),
            seed: seed.unwrap_or(d.seed),
            drop_last: drop_last.unwrap_or(d.drop_last),
            adaptive_margins: adaptive,
            eval_every: eval_every.unwrap_or(d.eval_every),
            sample_rate: sample_rate.unwrap_or(d.sample_rate),
            ..d
        };
        cfg.validate().map_err(to_py)?;
        Ok(Self {
            head,
            optimizer,
            cfg,
        })
    }

    /// Trains the head on `feats` (N, in_channels; the head's dtype,
    /// C-contiguous) and `labels` (N,), evaluating on `val_feats` /
    /// `val_labels` when given. Returns a dict: `history` (one dict per
    /// epoch: `epoch`, `lr`, `train_loss`, `train_top1` (or None), `val_loss`,
    /// `val_top1`, `val_top5` (or None), `seconds`), `steps`, `samples`,
    /// `seconds`. The head (and the optimizer given) hold the result; if a
    /// step fails (a diverging run), the error is raised and the head keeps
    /// its weights from before `fit`.
    #[pyo3(signature = (feats, labels, val_feats=None, val_labels=None))]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        feats: &Bound<'py, PyAny>,
        labels: &Bound<'py, PyAny>,
        val_feats: Option<&Bound<'py, PyAny>>,
        val_labels: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let f32_head = matches!(self.head.borrow(py).inner, crate::state::Inner::F32(_));
        let rep = if f32_head {
            self.fit_typed::<f32>(py, feats, labels, val_feats, val_labels)?
        } else {
            self.fit_typed::<f64>(py, feats, labels, val_feats, val_labels)?
        };
        report(py, &rep)
    }
}

impl Trainer {
    fn fit_typed<T: Precision>(
        &self,
        py: Python<'_>,
        feats: &Bound<'_, PyAny>,
        labels: &Bound<'_, PyAny>,
        val_feats: Option<&Bound<'_, PyAny>>,
        val_labels: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TrainReport> {
        let mut h = self.head.borrow_mut(py);
        let s = T::state(&mut h.inner).expect("dtype checked by fit");
        let d = s.head.config().in_channels;
        let (x, _) = arrays::floats::<T>(feats, "feats", &[Dim::Any("N"), Dim::Is(d)])?;
        let y = arrays::labels(labels, "labels")?;
        let val = match (val_feats, val_labels) {
            (Some(vx), Some(vy)) => Some((
                arrays::floats::<T>(vx, "val_feats", &[Dim::Any("M"), Dim::Is(d)])?.0,
                arrays::labels(vy, "val_labels")?,
            )),
            (None, None) => None,
            _ => {
                return Err(crate::ArcFaceError::new_err(
                    "val_feats and val_labels go together",
                ))
            }
        };
        let train = Dataset::new(arrays::slice(&x), y.as_slice()?);
        let val = match &val {
            Some((vx, vy)) => Some(Dataset::new(arrays::slice(vx), vy.as_slice()?)),
            None => None,
        };
        let mut opt_ref = self.optimizer.as_ref().map(|o| o.borrow_mut(py));
        let mut opt = match &mut opt_ref {
            Some(o) => Some(T::opt(&mut o.inner).expect("the optimiser has the head's dtype")),
            None => None,
        };
        let cfg = self.cfg.clone();
        let head = &mut s.head;
        if let Some(o) = opt.as_deref_mut() {
            // a head grown by enrolment: zero state for its new rows
            o.fit(head).map_err(to_py)?;
        }
        let (rep, new_head, new_opt) = py
            .detach(|| {
                let mut t = match &opt {
                    Some(o) => RustTrainer::with_optimizer(head.clone(), cfg, (**o).clone())?,
                    None => RustTrainer::new(head.clone(), cfg)?,
                };
                let rep = t.fit(train, val, |_| ControlFlow::Continue(()))?;
                let (h, o) = t.into_parts();
                Ok((rep, h, o))
            })
            .map_err(to_py)?;
        *head = new_head;
        s.grad_ready = false;
        if let Some(o) = opt {
            *o = new_opt;
        }
        Ok(rep)
    }
}

fn epoch_dict<'py>(py: Python<'py>, e: &EpochInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", e.epoch)?;
    d.set_item("lr", e.lr)?;
    d.set_item("train_loss", e.train_loss)?;
    d.set_item("train_top1", e.train_top1)?;
    d.set_item("val_loss", e.val.map(|v| v.loss))?;
    d.set_item("val_top1", e.val.map(|v| v.top1))?;
    d.set_item("val_top5", e.val.map(|v| v.top5))?;
    d.set_item("seconds", e.seconds)?;
    Ok(d)
}

fn report<'py>(py: Python<'py>, r: &TrainReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let hist = PyList::empty(py);
    for e in &r.history {
        hist.append(epoch_dict(py, e)?)?;
    }
    d.set_item("history", hist)?;
    d.set_item("steps", r.steps)?;
    d.set_item("samples", r.samples)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("stopped_early", r.stopped_early)?;
    Ok(d)
}

/// The library's random generator (SplitMix64), as the `arcface` program
/// uses it for its data splits: `SplitMix64(seed)`, `next_u64()`,
/// `shuffle(a)` (Fisher–Yates in place on a writable 1-D int64 array).
#[pyclass(module = "arcface", name = "SplitMix64")]
pub struct SplitMix64(arcface::SplitMix64);

#[pymethods]
impl SplitMix64 {
    #[new]
    fn new(seed: u64) -> Self {
        Self(arcface::SplitMix64::new(seed))
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Shuffles the int64 array `a` in place, as the library shuffles.
    fn shuffle(&mut self, mut a: PyReadwriteArray1<'_, i64>) -> PyResult<()> {
        let s = a.as_slice_mut()?;
        self.0.shuffle(s);
        Ok(())
    }
}
