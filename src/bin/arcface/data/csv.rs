//! Text tables of numbers (CSV, TSV, semicolon- or space-separated):
//! features with an optional label in the last column, or one label per
//! line. A first line that is not numeric is a header; `#` lines and blank
//! lines are skipped. Errors are phrases that follow the file's name.
//!
//! One separator per file: `--delimiter`, or else the first line decides
//! (see [`Delimiter::detect`]), so that a decimal comma is never read as a
//! separator: `0,5;1,25` is an error pointing at the decimal comma, not the
//! four numbers 0, 5, 1, 25. Space-separated files (NumPy's `np.savetxt`)
//! are read too, and an integral number such as `3.000000000000000000e+00`
//! is a label.
//!
//! Self-contained on purpose: it depends on `std` and the `arcface` library
//! only, so that the `csv` fuzz target (fuzz/fuzz_targets/) compiles this
//! very file. Nothing here panics on any text, and the values read never
//! outnumber the text's bytes.

use arcface::Real;

/// The field separator of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Semicolon,
    Tab,
    /// One or more spaces (or tabs).
    Space,
}

impl Delimiter {
    /// The separator of a file whose first line is `line`: `;` when it has
    /// one (a decimal-comma file has its commas inside the fields), else a
    /// tab, else `,`, else spaces.
    pub fn detect(line: &str) -> Self {
        let t = line.trim();
        if t.contains(';') {
            Delimiter::Semicolon
        } else if t.contains('\t') {
            Delimiter::Tab
        } else if t.contains(',') {
            Delimiter::Comma
        } else if t.contains(' ') {
            Delimiter::Space
        } else {
            Delimiter::Comma
        }
    }

    /// How error messages show it.
    pub fn shown(self) -> &'static str {
        match self {
            Delimiter::Comma => "','",
            Delimiter::Semicolon => "';'",
            Delimiter::Tab => "a tab",
            Delimiter::Space => "spaces",
        }
    }

    fn split(self, line: &str) -> Vec<&str> {
        match self {
            Delimiter::Space => line.split_whitespace().collect(),
            Delimiter::Comma => line.split(',').map(str::trim).collect(),
            Delimiter::Semicolon => line.split(';').map(str::trim).collect(),
            Delimiter::Tab => line.split('\t').map(str::trim).collect(),
        }
    }
}

/// Whether `path` names a text table, by its extension.
pub fn is_csv(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with(".csv") || p.ends_with(".txt") || p.ends_with(".tsv")
}

/// Rows of numbers, `d` per row; `y` holds the last column's labels when
/// they were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<T> {
    pub x: Vec<T>,
    pub y: Vec<i64>,
    pub d: usize,
}

/// The lines that hold data or a header: numbered from 1, trimmed, neither
/// blank nor `#` comments.
fn content(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(k, l)| (k + 1, l.trim()))
        .filter(|(_, t)| !t.is_empty() && !t.starts_with('#'))
}

/// `0,5`: a number written with a decimal comma.
fn decimal_comma(cell: &str) -> bool {
    cell.contains(',') && cell.replace(',', ".").parse::<f64>().is_ok()
}

/// A first line is a header when a field is not a number (and is not one
/// written with a decimal comma, which is an error instead).
fn is_header(cells: &[&str]) -> bool {
    cells.iter().any(|c| c.parse::<f64>().is_err()) && !cells.iter().any(|c| decimal_comma(c))
}

/// Why `cell` is not a number, with a hint for a decimal comma or a
/// separator other than the file's.
fn not_a_number(cell: &str, lineno: usize, column: usize, sep: Delimiter) -> String {
    let hint = if decimal_comma(cell) {
        " (a decimal comma? numbers must use a decimal point)".to_string()
    } else if cell.contains([',', ';', '\t', ' ']) {
        format!(
            " (this file's fields are separated by {}; see --delimiter)",
            sep.shown()
        )
    } else {
        String::new()
    };
    format!("line {lineno}, column {column}: {cell:?} is not a number{hint}")
}

/// One number of a data line, finite in `T`.
fn number<T: Real>(cell: &str, lineno: usize, column: usize, sep: Delimiter) -> Result<T, String> {
    let v: f64 = cell
        .parse()
        .map_err(|_| not_a_number(cell, lineno, column, sep))?;
    let t = T::from_f64(v);
    if !t.to_f64().is_finite() {
        return Err(format!(
            "line {lineno}, column {column}: {cell:?} is not finite in {}",
            T::NAME
        ));
    }
    Ok(t)
}

/// A label: an integer, or a number with an integral value (as
/// `np.savetxt` writes them).
fn label(cell: &str) -> Option<i64> {
    if let Ok(v) = cell.parse::<i64>() {
        return Some(v);
    }
    let v: f64 = cell.parse().ok()?;
    // 2^53: every integer below is exact in f64
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0).then_some(v as i64)
}

/// Rows of numbers separated by `sep` (detected from the first line when
/// `None`). With `label_last`, the last column is an integer label.
pub fn table<T: Real>(
    text: &str,
    label_last: bool,
    sep: Option<Delimiter>,
) -> Result<Table<T>, String> {
    let mut lines = content(text).peekable();
    let sep = sep.unwrap_or_else(|| Delimiter::detect(lines.peek().map_or("", |l| l.1)));
    let mut t = Table {
        x: Vec::new(),
        y: Vec::new(),
        d: 0,
    };
    let mut width = None;
    let mut first = true;
    for (lineno, line) in lines {
        let cells = sep.split(line);
        if std::mem::take(&mut first) && is_header(&cells) {
            continue; // header
        }
        let w = *width.get_or_insert(cells.len());
        let seps = format!("fields separated by {}; see --delimiter", sep.shown());
        if cells.len() != w {
            return Err(format!(
                "line {lineno} has {} fields, the first data line has {w} ({seps})",
                cells.len()
            ));
        }
        let nfeat = if label_last { w - 1 } else { w };
        if nfeat == 0 {
            return Err(format!("line {lineno} has no feature columns ({seps})"));
        }
        if t.x.try_reserve(nfeat).is_err() || t.y.try_reserve(1).is_err() {
            return Err(format!("line {lineno}: out of memory"));
        }
        for (j, c) in cells[..nfeat].iter().enumerate() {
            t.x.push(number(c, lineno, j + 1, sep)?);
        }
        if label_last {
            let c = cells[w - 1];
            let v = label(c).ok_or_else(|| {
                format!("line {lineno}, last column: {c:?} is not an integer label")
            })?;
            t.y.push(v);
        }
    }
    t.d = match width {
        Some(w) if label_last => w - 1,
        Some(w) => w,
        None => return Err("holds no data rows".into()),
    };
    Ok(t)
}

/// One integer label per line (a non-numeric first line is a header).
pub fn labels(text: &str) -> Result<Vec<i64>, String> {
    let mut y = Vec::new();
    let mut first = true;
    for (lineno, t) in content(text) {
        let cells = Delimiter::detect(t).split(t);
        if cells.len() != 1 {
            return Err(format!(
                "line {lineno} has {} fields; labels must be one integer per line",
                cells.len()
            ));
        }
        let cell = cells[0];
        match label(cell) {
            Some(v) => {
                y.try_reserve(1)
                    .map_err(|_| format!("line {lineno}: out of memory"))?;
                y.push(v);
            }
            None if first && cell.parse::<f64>().is_err() => {}
            None => return Err(format!("line {lineno}: {cell:?} is not an integer label")),
        }
        first = false;
    }
    if y.is_empty() {
        return Err("holds no labels".into());
    }
    Ok(y)
}

#[cfg(test)]
#[path = "csv/tests.rs"]
mod tests;
