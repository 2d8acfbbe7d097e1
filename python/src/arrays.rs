//! numpy arguments: borrowed in place, or refused with a message that says
//! what to pass instead.
//!
//! A float argument (features, soft targets, sample weights, weights,
//! gradients) must be a numpy array of the head's dtype, C-contiguous, of the
//! expected shape: then the call reads its memory directly (no copy), with the
//! GIL released. Anything else is a `TypeError` (not an array, wrong dtype)
//! or a `ValueError` (shape, layout), never a silent copy: the fix (for
//! instance `np.ascontiguousarray(x, dtype=np.float32)`) stays visible in the
//! caller's code. Labels are small (N values) and are the one exception:
//! any integer array or sequence is accepted, and copied into int64 unless it
//! already is a C-contiguous int64 array.

use numpy::{
    dtype, Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// One expected dimension: a fixed size, or any size (written `N`).
#[derive(Clone, Copy)]
pub enum Dim {
    Any(&'static str),
    Is(usize),
}

fn describe(shape: &[Dim]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| match d {
            Dim::Any(name) => name.to_string(),
            Dim::Is(n) => n.to_string(),
        })
        .collect();
    format!("({})", dims.join(", "))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `obj` as a borrowed array of `T` with the given shape; the sizes matched
/// by `Dim::Any` are returned in order.
pub fn floats<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    shape: &[Dim],
) -> PyResult<(PyReadonlyArrayDyn<'py, T>, Vec<usize>)> {
    let py = obj.py();
    let want = dtype::<T>(py);
    let Ok(arr) = obj.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a numpy array of {want} with shape {}, got {}",
            describe(shape),
            type_name(obj)
        )));
    };
    if !arr.dtype().is_equiv_to(&want) {
        return Err(PyTypeError::new_err(format!(
            "{name} has dtype {}, but this head computes in {want}: pass {name}.astype(np.{want}) \
             (arrays are borrowed, never converted behind your back)",
            arr.dtype()
        )));
    }
    let got = arr.shape();
    let fits = got.len() == shape.len()
        && got.iter().zip(shape).all(|(g, d)| match d {
            Dim::Is(n) => g == n,
            Dim::Any(_) => true,
        });
    if !fits {
        return Err(PyValueError::new_err(format!(
            "{name} has shape {got:?}, expected {}",
            describe(shape)
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} is not C-contiguous (a transposed or strided view): pass \
             np.ascontiguousarray({name})"
        )));
    }
    let typed = obj.cast::<PyArrayDyn<T>>()?;
    let ro = typed.try_readonly().map_err(|e| {
        PyValueError::new_err(format!("{name} is being written by another call: {e}"))
    })?;
    let free = got
        .iter()
        .zip(shape)
        .filter(|(_, d)| matches!(d, Dim::Any(_)))
        .map(|(g, _)| *g)
        .collect();
    Ok((ro, free))
}

/// `obj`'s memory as a slice (the array was checked C-contiguous).
pub fn slice<'a, T: Element>(a: &'a PyReadonlyArrayDyn<'_, T>) -> &'a [T] {
    // a C-contiguous array (checked in `floats`) always has a slice
    a.as_slice().unwrap_or(&[])
}

/// Labels as int64: borrowed when `obj` is a C-contiguous int64 array,
/// otherwise converted (copied) from any integer array or sequence.
pub fn labels<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr: Bound<'py, PyAny> = if obj.cast::<PyUntypedArray>().is_ok() {
        obj.clone()
    } else {
        np.call_method1("asarray", (obj,)).map_err(|e| {
            PyTypeError::new_err(format!("{name} must be a sequence of integers: {e}"))
        })?
    };
    let untyped = arr.cast::<PyUntypedArray>()?;
    let kind = untyped.dtype().kind();
    let empty = untyped.len() == 0;
    if !(kind == b'i' || kind == b'u' || empty) {
        return Err(PyTypeError::new_err(format!(
            "{name} must hold integers (class indices), got dtype {}",
            untyped.dtype()
        )));
    }
    if untyped.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "{name} has shape {:?}, expected (N,)",
            untyped.shape()
        )));
    }
    let typed = match arr.cast::<PyArray1<i64>>() {
        Ok(a) if a.is_c_contiguous() => a.clone(),
        _ => np
            .call_method(
                "ascontiguousarray",
                (arr.clone(),),
                Some(&kwargs_dtype(py, "int64")?),
            )?
            .cast_into::<PyArray1<i64>>()?,
    };
    typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name} is being written by another call: {e}")))
}

fn kwargs_dtype<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("dtype", name)?;
    Ok(d)
}

/// A new numpy array holding a copy of `data` with shape `shape`.
pub fn to_numpy<'py, T: Element>(
    py: Python<'py>,
    data: &[T],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let a = numpy::PyArray1::from_slice(py, data);
    Ok(a.reshape(shape)?.into_any())
}

/// `ValueError` unless the labels are one per feature row.
pub fn check_labels_len(labels: &[i64], rows: usize) -> PyResult<()> {
    if labels.len() != rows {
        return Err(PyValueError::new_err(format!(
            "labels has {} entries but feats has {rows} rows",
            labels.len()
        )));
    }
    Ok(())
}

/// Copies `data` into the caller's array `dst` (writable, C-contiguous, of
/// `T` and shape `shape`).
pub fn copy_into<T: Element + Copy>(
    dst: &Bound<'_, PyAny>,
    name: &str,
    data: &[T],
    shape: &[usize],
) -> PyResult<()> {
    let dims: Vec<Dim> = shape.iter().map(|&s| Dim::Is(s)).collect();
    let (ro, _) = floats::<T>(dst, name, &dims)?;
    drop(ro);
    let typed = dst.cast::<PyArrayDyn<T>>()?;
    let mut rw = typed
        .try_readwrite()
        .map_err(|e| PyValueError::new_err(format!("{name} cannot be written: {e}")))?;
    rw.as_slice_mut()?.copy_from_slice(data);
    Ok(())
}
