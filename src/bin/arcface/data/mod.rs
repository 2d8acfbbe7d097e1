//! Reading embeddings and labels: `.npy` (what users dump from PyTorch and
//! NumPy) and CSV files, the built-in sets, the hold-out split and the
//! standardisation. Every problem is an error naming the file and what is
//! wrong; nothing here panics on bad bytes.

pub mod builtin;
pub mod csv;
pub mod npy;
pub mod preprocess;
pub mod split;

use crate::CliError;
use arcface::Real;

/// Features (N×D, row-major) and labels (N; empty for unlabelled features).
#[derive(Debug, Clone)]
pub struct Split<T> {
    pub x: Vec<T>,
    pub y: Vec<i64>,
    pub d: usize,
}

impl<T: Copy> Split<T> {
    /// No samples, `d` features each.
    pub fn empty(d: usize) -> Self {
        Split {
            x: Vec::new(),
            y: Vec::new(),
            d,
        }
    }

    /// Labelled samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// The library's view of the split.
    pub fn dataset(&self) -> arcface::Dataset<'_, T>
    where
        T: Real,
    {
        arcface::Dataset::new(&self.x, &self.y)
    }

    /// The largest label (0 when there are none).
    pub fn max_label(&self) -> i64 {
        self.y.iter().copied().max().unwrap_or(0)
    }

    /// Every label in `0..c`, else an error naming `path` (where the labels
    /// came from), the sample, and `why` `c` is the bound.
    pub fn check_labels(&self, c: usize, path: &str, why: &str) -> Result<(), CliError> {
        match self
            .y
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l as u64 >= c as u64)
        {
            Some((i, l)) => Err(CliError::input(
                path,
                format!("label {l} of sample {i} is outside 0..{c} ({why})"),
            )),
            None => Ok(()),
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::input(path, e.to_string()))
}

fn text<'a>(bytes: &'a [u8], path: &str) -> Result<&'a str, CliError> {
    std::str::from_utf8(bytes).map_err(|_| CliError::input(path, "is not UTF-8 text"))
}

fn neither(path: &str) -> CliError {
    CliError::input(path, "is neither a .npy file nor a .csv/.txt/.tsv file")
}

fn npy_features<T: Real>(bytes: &[u8], path: &str) -> Result<Split<T>, CliError> {
    let (x, d) = npy::features::<T>(bytes).map_err(|e| CliError::input(path, e.0))?;
    Ok(Split {
        x,
        y: Vec::new(),
        d,
    })
}

fn labels_file(path: &str) -> Result<Vec<i64>, CliError> {
    let bytes = read(path)?;
    if bytes.starts_with(npy::MAGIC) {
        npy::labels(&bytes).map_err(|e| CliError::input(path, e.0))
    } else {
        csv::labels(text(&bytes, path)?).map_err(|e| CliError::input(path, e))
    }
}

/// Features and labels from files, `.npy` or CSV. Without `labels`, a CSV
/// features file carries the label in its last column.
pub fn load_labelled<T: Real>(features: &str, labels: Option<&str>) -> Result<Split<T>, CliError> {
    let fb = read(features)?;
    let mut split = if csv::is_csv(features) {
        csv::table::<T>(text(&fb, features)?, labels.is_none())
            .map_err(|e| CliError::input(features, e))?
    } else if fb.starts_with(npy::MAGIC) {
        if labels.is_none() {
            return Err(CliError::Usage(format!(
                "{features} is a .npy file: give the labels with --labels"
            )));
        }
        npy_features::<T>(&fb, features)?
    } else {
        return Err(neither(features));
    };
    if let Some(lp) = labels {
        split.y = labels_file(lp)?;
    }
    let labels_path = labels.unwrap_or(features);
    let n = split.x.len() / split.d;
    if split.y.len() != n {
        return Err(CliError::input(
            labels_path,
            format!(
                "holds {} labels but {features} holds {n} feature rows",
                split.y.len()
            ),
        ));
    }
    if let Some((i, &l)) = split.y.iter().enumerate().find(|(_, &l)| l < 0) {
        return Err(CliError::input(
            labels_path,
            format!("label {l} of sample {i} is negative"),
        ));
    }
    Ok(split)
}

/// Features only (for `predict`), `.npy` or CSV (every column a feature).
pub fn load_features<T: Real>(features: &str) -> Result<Split<T>, CliError> {
    let fb = read(features)?;
    if fb.starts_with(npy::MAGIC) {
        npy_features::<T>(&fb, features)
    } else if csv::is_csv(features) {
        csv::table::<T>(text(&fb, features)?, false).map_err(|e| CliError::input(features, e))
    } else {
        Err(neither(features))
    }
}
