//! Reading embeddings and labels: `.npy` (what users dump from PyTorch and
//! NumPy) and CSV files, the built-in sets, the hold-out split and the
//! standardisation. Every problem is an error naming the file and what is
//! wrong; nothing here panics on bad bytes.

pub mod builtin;
pub mod csv;
pub mod npy;
pub mod npy_write;
pub mod preprocess;
pub mod split;

pub use csv::Delimiter;

use crate::CliError;
use arcface::Real;
use std::fs::File;
use std::io::{BufReader, Read, Seek};

/// Features (N×D, row-major) and labels (N; empty for unlabelled features).
#[derive(Debug, Clone)]
pub struct Split<T> {
    pub x: Vec<T>,
    pub y: Vec<i64>,
    pub d: usize,
}

impl<T> From<csv::Table<T>> for Split<T> {
    fn from(t: csv::Table<T>) -> Self {
        Split {
            x: t.x,
            y: t.y,
            d: t.d,
        }
    }
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

fn io_err(path: &str, e: std::io::Error) -> CliError {
    CliError::input(path, e.to_string())
}

/// Whether the file at `path` starts with the `.npy` magic string.
fn is_npy(path: &str) -> Result<bool, CliError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path, e)),
        }
    }
    Ok(head[..n] == *npy::MAGIC)
}

/// A `.npy` file, streamed: its header, then `read` over its data (with
/// the number of data bytes the file holds).
fn npy_file<V>(
    path: &str,
    read: impl FnOnce(&npy::Header, &mut BufReader<File>, u64) -> Result<V, npy::NpyError>,
) -> Result<V, CliError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut r = BufReader::new(file);
    let bad = |e: npy::NpyError| CliError::input(path, e.0);
    let h = npy::read_header(&mut r).map_err(bad)?;
    let start = r.stream_position().map_err(|e| io_err(path, e))?;
    read(&h, &mut r, len.saturating_sub(start)).map_err(bad)
}

/// A text file, whole (the standard library reserves its buffer fallibly).
fn text_file(path: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    String::from_utf8(bytes).map_err(|_| CliError::input(path, "is not UTF-8 text"))
}

fn neither(path: &str) -> CliError {
    CliError::input(path, "is neither a .npy file nor a .csv/.txt/.tsv file")
}

fn npy_features<T: Real>(path: &str) -> Result<Split<T>, CliError> {
    let (x, d) = npy_file(path, |h, r, n| npy::features_from::<T, _>(h, r, n))?;
    Ok(Split {
        x,
        y: Vec::new(),
        d,
    })
}

fn csv_table<T: Real>(
    path: &str,
    label_last: bool,
    sep: Option<Delimiter>,
) -> Result<Split<T>, CliError> {
    csv::table::<T>(&text_file(path)?, label_last, sep)
        .map(Split::from)
        .map_err(|e| CliError::input(path, e))
}

fn labels_file(path: &str) -> Result<Vec<i64>, CliError> {
    if is_npy(path)? {
        npy_file(path, npy::labels_from)
    } else {
        csv::labels(&text_file(path)?).map_err(|e| CliError::input(path, e))
    }
}

/// Features and labels from files, `.npy` or CSV (fields separated by
/// `sep`, else as the first line says). Without `labels`, a CSV features
/// file carries the label in its last column.
pub fn load_labelled<T: Real>(
    features: &str,
    labels: Option<&str>,
    sep: Option<Delimiter>,
) -> Result<Split<T>, CliError> {
    let mut split = if is_npy(features)? {
        if labels.is_none() {
            return Err(CliError::Usage(format!(
                "{features} is a .npy file: give the labels with --labels"
            )));
        }
        npy_features::<T>(features)?
    } else if csv::is_csv(features) {
        csv_table::<T>(features, labels.is_none(), sep)?
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
pub fn load_features<T: Real>(
    features: &str,
    sep: Option<Delimiter>,
) -> Result<Split<T>, CliError> {
    if is_npy(features)? {
        npy_features::<T>(features)
    } else if csv::is_csv(features) {
        csv_table::<T>(features, false, sep)
    } else {
        Err(neither(features))
    }
}
