//! Python bindings of the `arcface` crate: the extension module
//! `arcface._native`, re-exported by the pure-Python package `arcface`
//! (`python/arcface/__init__.py`).
//!
//! - [`head`]: `ArcFaceClsHead`, mmpretrain's head with its constructor
//!   arguments, `loss`, `__call__`, `predict`, margins, `state_dict`,
//!   checkpoints; [`state`]: the head of either precision with its
//!   workspace, and the generic bodies of those methods.
//! - [`optim`]: `SGD` and `AdamW` with PyTorch's parameter names.
//! - [`train`]: `Trainer`, the crate's seeded training loop.
//! - [`arrays`]: every numpy argument goes through here: borrowed without a
//!   copy when it is a C-contiguous array of the head's dtype, refused with a
//!   `TypeError`/`ValueError` otherwise (labels alone may be converted).
//! - [`config`]: mmpretrain's `margins=` and `loss=dict(...)` arguments.
//!
//! Every computation runs with the GIL released (`Python::detach`); the
//! library's errors become `arcface.ArcFaceError`, a `ValueError`.

mod arrays;
mod config;
mod head;
mod optim;
mod state;
mod train;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    ArcFaceError,
    pyo3::exceptions::PyValueError,
    "An error reported by the arcface library: a bad configuration, bad data (a label out of \
     range, a non-finite value, a wrong length), a checkpoint that cannot be read. The message \
     is the library's, naming what and where. A failed call changes nothing."
);

/// The library's error as an `ArcFaceError` carrying its message.
pub(crate) fn to_py(e: arcface::Error) -> PyErr {
    ArcFaceError::new_err(e.to_string())
}

/// `arcface._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ArcFaceError", m.py().get_type::<ArcFaceError>())?;
    m.add_class::<head::ArcFaceClsHead>()?;
    m.add_class::<optim::Optimizer>()?;
    m.add_class::<optim::Sgd>()?;
    m.add_class::<optim::AdamW>()?;
    m.add_class::<train::Trainer>()?;
    m.add_class::<train::SplitMix64>()?;
    m.add_function(wrap_pyfunction!(config::load_margins, m)?)?;
    m.add_function(wrap_pyfunction!(config::adaptive_margins, m)?)?;
    m.add("simd_level", arcface::simd_level())?;
    Ok(())
}
