//! Margins from a file (deviation D10) and adaptive margins from class
//! counts (`SetAdaptiveMarginsHook`, deviations D5 and D6).

use crate::config::validate_margins;
use crate::error::{Error, Result};

/// Parses a margins file: one finite decimal number per line.
///
/// Lines end with `\n`, `\r\n` or `\r`; a final line end is optional; spaces
/// and tabs around a number are ignored. A blank or whitespace-only line, a
/// byte-order mark, a comma decimal (`0,5`), two numbers on a line, Python's
/// `1_0.5`, `inf`, `nan`, or a line count other than `num_classes` is an error
/// naming the line (deviation D10: upstream accepts any Python `float()`
/// syntax and requires the name to end in `.txt`).
///
/// ```
/// use arcface::parse_margins_file;
/// assert_eq!(parse_margins_file("0.1\r\n 0.2\t\n3e-1", 3).unwrap(), vec![0.1, 0.2, 0.3]);
/// let err = parse_margins_file("0.1\n\n0.3\n", 3).unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// ```
pub fn parse_margins_file(text: &str, num_classes: usize) -> Result<Vec<f64>> {
    if text.starts_with('\u{feff}') {
        return Err(file_err(1, "starts with a byte-order mark (U+FEFF)".into()));
    }
    // Universal newlines: "\n", "\r\n" and "\r" each end a line.
    let mut lines: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    let mut out = Vec::with_capacity(lines.len().min(num_classes.saturating_add(1)));
    for (k, raw) in lines.iter().enumerate() {
        let line = k + 1;
        let s = raw.trim_matches([' ', '\t']);
        if s.is_empty() {
            return Err(file_err(line, "is empty; expected one number".into()));
        }
        if !is_decimal(s) {
            return Err(file_err(line, format!("{s:?} is not a decimal number")));
        }
        let v: f64 = s
            .parse()
            .map_err(|_| file_err(line, format!("{s:?} is not a number")))?;
        if !v.is_finite() {
            return Err(file_err(line, format!("{s:?} is out of the range of f64")));
        }
        out.push(v);
        if out.len() > num_classes {
            break;
        }
    }
    if lines.len() != num_classes {
        return Err(file_err(
            0,
            format!(
                "holds {} lines, expected one per class ({num_classes})",
                lines.len()
            ),
        ));
    }
    validate_margins(&out, num_classes)?;
    Ok(out)
}

/// Reads and parses a margins file (any file name; see [`parse_margins_file`]).
///
/// ```
/// let path = std::env::temp_dir().join("arcface_doc_margins.txt");
/// std::fs::write(&path, "0.5\n0.25\n").unwrap();
/// assert_eq!(arcface::load_margins_file(&path, 2).unwrap(), vec![0.5, 0.25]);
/// ```
pub fn load_margins_file(
    path: impl AsRef<std::path::Path>,
    num_classes: usize,
) -> Result<Vec<f64>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        // count line ends as the parser does: "\r\n", "\r" and "\n"
        let ok = &bytes[..e.valid_up_to()];
        let mut line = 1;
        let mut i = 0;
        while i < ok.len() {
            match ok[i] {
                b'\n' => line += 1,
                b'\r' => {
                    line += 1;
                    if ok.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        file_err(line, "is not valid UTF-8".into())
    })?;
    parse_margins_file(text, num_classes)
}

fn file_err(line: usize, reason: String) -> Error {
    Error::MarginsFile { line, reason }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let d0 = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - d0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f0 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - f0;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e0 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e0 {
            return false;
        }
    }
    i == b.len()
}

/// Upstream's `SetAdaptiveMarginsHook(margin_min=0.05, margin_max=0.5, power=-0.25)`:
/// margins from the class frequencies of the training labels.
///
/// $$n_c = \max(\#\{i : y_i = c\}, 1),\quad p_c = n_c^{\,p},\quad
/// m_c = \frac{p_c - \min p}{\max p - \min p}(m_{max} - m_{min}) + m_{min}$$
///
/// With $p < 0$ the rarest class gets `margin_max`. Counts run over all
/// `num_classes` classes, an absent class counting as 1 (D6); when every
/// $p_c$ is equal (one class, equal counts, $p = 0$) every margin is
/// `margin_max` instead of upstream's NaN (D5).
///
/// ```
/// use arcface::AdaptiveMargins;
/// let m = AdaptiveMargins::default().compute(&[0, 0, 0, 0, 1, 2, 2], 4).unwrap();
/// assert_eq!(m.len(), 4);
/// assert!((m[0] - 0.05).abs() < 1e-12);      // most frequent
/// assert!((m[3] - 0.5).abs() < 1e-12);       // absent: rarest
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveMargins {
    /// Margin of the most frequent class (for `power < 0`).
    pub margin_min: f64,
    /// Margin of the rarest class (for `power < 0`).
    pub margin_max: f64,
    /// Exponent applied to the counts.
    pub power: f64,
}

impl Default for AdaptiveMargins {
    fn default() -> Self {
        Self {
            margin_min: 0.05,
            margin_max: 0.5,
            power: -0.25,
        }
    }
}

impl AdaptiveMargins {
    /// Computes the per-class margins from training labels.
    ///
    /// Errors: no labels, a label outside `0..num_classes` (naming the
    /// sample), non-finite parameters, or a result that is not finite.
    ///
    /// ```
    /// let err = arcface::AdaptiveMargins::default().compute(&[0, 5], 3).unwrap_err();
    /// assert!(err.to_string().contains("sample 1"));
    /// ```
    pub fn compute(&self, labels: &[i64], num_classes: usize) -> Result<Vec<f64>> {
        let bad = |reason: String| Error::AdaptiveMargins { reason };
        for (name, v) in [
            ("margin_min", self.margin_min),
            ("margin_max", self.margin_max),
            ("power", self.power),
        ] {
            if !v.is_finite() {
                return Err(bad(format!("{name} is {v}, must be finite")));
            }
        }
        if num_classes == 0 {
            return Err(bad("num_classes is 0".into()));
        }
        if labels.is_empty() {
            return Err(bad("no labels were given".into()));
        }
        let mut counts: Vec<u64> = Vec::new();
        counts.try_reserve_exact(num_classes).map_err(|_| {
            bad(format!(
                "num_classes = {num_classes} does not fit in memory"
            ))
        })?;
        counts.resize(num_classes, 0);
        crate::error::check_labels(labels, num_classes)?;
        for &label in labels {
            counts[label as usize] += 1;
        }
        let pf: Vec<f64> = counts
            .iter()
            .map(|&n| (n.max(1) as f64).powf(self.power))
            .collect();
        let lo = pf.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = self.margin_max - self.margin_min;
        let out: Vec<f64> = if hi == lo {
            vec![self.margin_max; num_classes]
        } else {
            pf.iter()
                .map(|p| (p - lo) / (hi - lo) * span + self.margin_min)
                .collect()
        };
        if let Some((c, v)) = out.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!("margin of class {c} came out as {v}")));
        }
        Ok(out)
    }
}
