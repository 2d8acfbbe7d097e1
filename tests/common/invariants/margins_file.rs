//! Margins files from arbitrary bytes, through `parse_margins_file` (as
//! text) or `load_margins_file` (as a file), against an independent oracle
//! of the accepted grammar (D10).

use super::bytes::Bytes;
use arcface::{load_margins_file, parse_margins_file, Error};

/// A margins file: the class count, the route (text or a real file), bytes.
#[derive(Debug, Clone)]
pub struct FileCase {
    pub num_classes: usize,
    pub via_load: bool,
    pub bytes: Vec<u8>,
}

/// `num_classes` is 0..=39 or huge (`usize::MAX`, `isize::MAX`, 2^32 + x):
/// parsing allocates by the file, never by the class count.
fn decode_num_classes(b: &mut Bytes) -> usize {
    match b.u8() {
        0xF0 => usize::MAX,
        0xF1 => isize::MAX as usize,
        0xF2 => (1usize << 32) + b.u8() as usize,
        t => t as usize % 40,
    }
}

pub fn decode_file(data: &[u8]) -> FileCase {
    let mut b = Bytes::new(data);
    let num_classes = decode_num_classes(&mut b);
    let via_load = b.u8() & 1 != 0;
    FileCase {
        num_classes,
        via_load,
        bytes: b.rest().to_vec(),
    }
}

/// The D10 grammar (README, "Where arcface departs from upstream"),
/// written again as an oracle:
/// `Ok(values)` or `Err(line)` (0 = the whole file). Lines end with `\n`,
/// `\r\n` or `\r`; a final line end is optional; each line, stripped of
/// spaces and tabs at both ends, is `[+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?` and
/// finite in f64. Like the implementation, it reports the first bad line
/// among the first `num_classes + 1` lines, else a wrong count (line 0).
pub fn oracle_margins_file(text: &str, num_classes: usize) -> Result<Vec<f64>, usize> {
    if text.starts_with('\u{feff}') {
        return Err(1);
    }
    let lines = split_universal(text);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().take(num_classes.saturating_add(1)) {
        match strict_decimal(line) {
            Some(v) => out.push(v),
            None => return Err(i + 1),
        }
    }
    if lines.len() != num_classes {
        return Err(0);
    }
    Ok(out)
}

fn split_universal(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            None => {
                lines.push(rest);
                break;
            }
            Some(p) => {
                lines.push(&rest[..p]);
                let skip = if rest[p..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[p + skip..];
            }
        }
    }
    lines
}

/// The 1-based line (universal newlines) holding byte offset `at`.
pub fn line_of_offset(bytes: &[u8], at: usize) -> usize {
    let mut line = 1;
    let mut i = 0;
    while i < at.min(bytes.len()) {
        match bytes[i] {
            b'\n' => line += 1,
            b'\r' => {
                line += 1;
                if bytes.get(i + 1) == Some(&b'\n') && i + 1 < at {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    line
}

/// One line of a margins file under D10: stripped of spaces and tabs at
/// both ends, `[+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?` and finite in f64.
/// Shared with the golden margins-file cases.
pub fn strict_decimal(line: &str) -> Option<f64> {
    let s = line.trim_matches([' ', '\t']);
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

fn temp_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "arcface-robustness-{}-{:?}.txt",
        std::process::id(),
        std::thread::current().id()
    ))
}

/// Invariants of a margins file: a typed
/// [`Error::MarginsFile`] or exactly `num_classes` finite margins; the same
/// verdict, values (bit for bit) and error line as the oracle above; no
/// panic and no allocation beyond the file's size, whatever the class count.
/// Through `load_margins_file`, bytes that are not UTF-8 are an error naming
/// the line (universal newlines, as the parser counts them) of the first bad
/// byte.
pub fn check_file(case: &FileCase) {
    let nc = case.num_classes;
    let (got, text): (Result<Vec<f64>, Error>, String) = if case.via_load {
        let path = temp_path();
        std::fs::write(&path, &case.bytes).expect("temp file");
        let r = load_margins_file(&path, nc);
        let _ = std::fs::remove_file(&path);
        match std::str::from_utf8(&case.bytes) {
            Ok(t) => (r, t.to_owned()),
            Err(e) => {
                let want = line_of_offset(&case.bytes, e.valid_up_to());
                match r {
                    Err(Error::MarginsFile { line, .. }) => assert_eq!(
                        line, want,
                        "invalid UTF-8 reported on the wrong line: {case:?}"
                    ),
                    other => panic!("invalid UTF-8 gave {other:?}: {case:?}"),
                }
                return;
            }
        }
    } else {
        let t = String::from_utf8_lossy(&case.bytes).into_owned();
        (parse_margins_file(&t, nc), t)
    };
    let want = oracle_margins_file(&text, nc);
    match (got, want) {
        (Ok(v), Ok(w)) => {
            assert_eq!(v.len(), nc);
            assert!(v.iter().all(|m| m.is_finite()));
            assert_eq!(
                bits_f64(&v),
                bits_f64(&w),
                "values differ from the oracle: {case:?}"
            );
        }
        (Err(Error::MarginsFile { line, reason }), Err(want_line)) => {
            assert_eq!(line, want_line, "error line ({reason}) vs oracle: {case:?}");
        }
        (got, want) => panic!("parser {got:?} but oracle {want:?}: {case:?}"),
    }
}

fn bits_f64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}
