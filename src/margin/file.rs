//! Margins from a file: one decimal number per line, parsed strictly
//! (deviation D10).

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
    let lines: Vec<&str> = Lines::new(text.as_bytes())
        .map(|line| &text[line.start..line.end])
        .collect();
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
    let bytes = crate::io::read(path.as_ref())?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = 1 + Lines::new(valid).filter(|l| l.ended).count();
        file_err(line, "is not valid UTF-8".into())
    })?;
    parse_margins_file(text, num_classes)
}

/// One line of a margins file: its byte range, and whether a line end
/// follows it (the last line may have none).
struct Line {
    start: usize,
    end: usize,
    ended: bool,
}

/// The lines of a file under universal newlines: `\n`, `\r\n` and `\r` each
/// end a line; the text after the last line end is a line when not empty.
struct Lines<'a> {
    bytes: &'a [u8],
    start: usize,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, start: 0 }
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        let (b, start) = (self.bytes, self.start);
        if start >= b.len() {
            return None;
        }
        for i in start..b.len() {
            let end_len = match b[i] {
                b'\n' => 1,
                b'\r' if b.get(i + 1) == Some(&b'\n') => 2,
                b'\r' => 1,
                _ => continue,
            };
            self.start = i + end_len;
            return Some(Line {
                start,
                end: i,
                ended: true,
            });
        }
        self.start = b.len();
        Some(Line {
            start,
            end: b.len(),
            ended: false,
        })
    }
}

/// An [`Error::MarginsFile`] about 1-based line `line` (0: the whole file).
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
