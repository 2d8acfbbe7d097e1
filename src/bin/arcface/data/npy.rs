//! The `.npy` container (NumPy's format, versions 1 to 3): the header, a
//! Python dict literal, read by a small tokenizer; then features (float32,
//! float16, float64) and labels (int64, int32), little-endian, C order.
//!
//! Self-contained on purpose: it depends on `std` and the `arcface` library
//! only, so that the `npy_header` fuzz target (fuzz/fuzz_targets/) compiles
//! this very file. Nothing here panics on bad bytes, and nothing allocates
//! more than a small multiple of the input's size: the header's tokens are
//! bounded by the header, and the data is decoded only after its length
//! matches the shape exactly.

use arcface::Real;
use std::fmt;

/// The magic string every `.npy` file starts with.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Why a `.npy` file was refused: a phrase that follows the file's name
/// ("x.npy: is truncated: ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyError(pub String);

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(reason: impl Into<String>) -> NpyError {
    NpyError(reason.into())
}

/// A parsed `.npy` array: dtype descriptor, shape, and raw data bytes.
#[derive(Debug)]
pub struct Npy<'a> {
    pub descr: String,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

#[derive(Debug, PartialEq)]
enum Tok {
    Str(String),
    Int(u64),
    Ident(String),
    Punct(char),
}

/// Splits the header's Python literal into strings, integers (a Python 2
/// `L` suffix allowed), identifiers and the punctuation `{}():,`.
fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if "{}():,".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else if c == '\'' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != c {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated string in header".into());
            }
            out.push(Tok::Str(b[start..i].iter().collect()));
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == 'L') {
                i += 1;
            }
            let t: String = b[start..i].iter().filter(|c| **c != 'L').collect();
            out.push(Tok::Int(
                t.parse()
                    .map_err(|_| format!("dimension {t} is too large"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c:?} in header"));
        }
    }
    Ok(out)
}

/// The header's length and where it starts, by format version.
fn header_span(bytes: &[u8]) -> Result<(usize, usize), NpyError> {
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err(err("is not a .npy file (no \\x93NUMPY magic)"));
    }
    match bytes[6] {
        1 => Ok((u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("truncated .npy header"));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            Ok((len as usize, 12))
        }
        v => Err(err(format!("unsupported .npy format version {v}"))),
    }
}

/// The header dict's three keys; other keys are skipped.
#[derive(Default)]
struct Header {
    descr: Option<String>,
    fortran: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// Reads `(d0, d1, ...)` from `toks[i]` on; returns the index after `)`.
fn parse_shape(toks: &[Tok], mut i: usize) -> Result<(Vec<usize>, usize), NpyError> {
    if toks.get(i) != Some(&Tok::Punct('(')) {
        return Err(err("malformed .npy header"));
    }
    i += 1;
    let mut dims = Vec::new();
    loop {
        match toks.get(i) {
            Some(Tok::Int(v)) => {
                dims.push(usize::try_from(*v).map_err(|_| err("dimension too large"))?);
                i += 1;
            }
            Some(Tok::Punct(',')) => i += 1,
            Some(Tok::Punct(')')) => return Ok((dims, i + 1)),
            _ => return Err(err("malformed .npy header (shape)")),
        }
    }
}

/// Reads the dict `{'descr': ..., 'fortran_order': ..., 'shape': (...)}`.
fn parse_dict(toks: &[Tok]) -> Result<Header, NpyError> {
    let malformed = || err("malformed .npy header");
    if toks.first() != Some(&Tok::Punct('{')) {
        return Err(malformed());
    }
    let mut h = Header::default();
    let mut i = 1;
    while i < toks.len() && toks[i] != Tok::Punct('}') {
        let Tok::Str(key) = &toks[i] else {
            return Err(malformed());
        };
        if toks.get(i + 1) != Some(&Tok::Punct(':')) {
            return Err(malformed());
        }
        i += 2;
        match key.as_str() {
            "descr" => match toks.get(i) {
                Some(Tok::Str(s)) => {
                    h.descr = Some(s.clone());
                    i += 1;
                }
                _ => {
                    return Err(err(
                        "unsupported dtype: structured arrays are not supported",
                    ))
                }
            },
            "fortran_order" => match toks.get(i) {
                Some(Tok::Ident(s)) if s == "True" || s == "False" => {
                    h.fortran = Some(s == "True");
                    i += 1;
                }
                _ => return Err(err("malformed .npy header (fortran_order)")),
            },
            "shape" => {
                let (dims, next) = parse_shape(toks, i)?;
                h.shape = Some(dims);
                i = next;
            }
            _ => i += 1, // an unknown key's (single-token) value
        }
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        }
    }
    Ok(h)
}

/// Parses the `.npy` container (versions 1, 2, 3): a C-ordered array's
/// dtype descriptor, shape and data bytes (not yet checked against each other).
pub fn parse(bytes: &[u8]) -> Result<Npy<'_>, NpyError> {
    let (hlen, start) = header_span(bytes)?;
    let header = bytes
        .get(start..start.saturating_add(hlen))
        .ok_or_else(|| err("truncated .npy header"))?;
    let header = std::str::from_utf8(header).map_err(|_| err(".npy header is not text"))?;
    let h = parse_dict(&tokenize(header).map_err(NpyError)?)?;
    let descr = h.descr.ok_or_else(|| err(".npy header has no 'descr'"))?;
    let shape = h.shape.ok_or_else(|| err(".npy header has no 'shape'"))?;
    if h.fortran
        .ok_or_else(|| err(".npy header has no 'fortran_order'"))?
    {
        return Err(err(
            "is stored in Fortran (column-major) order; save a C-ordered array \
             (np.ascontiguousarray(x)) instead",
        ));
    }
    Ok(Npy {
        descr,
        shape,
        data: &bytes[start + hlen..],
    })
}

/// A descriptor as people know it: `int64 ('<i8')`, `float32 ('>f4', big-endian)`.
fn dtype_name(descr: &str) -> String {
    let name = match descr.trim_start_matches(['<', '>', '|', '=']) {
        "f2" => "float16",
        "f4" => "float32",
        "f8" => "float64",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "b1" => "bool",
        _ => "",
    };
    let big = if descr.starts_with('>') {
        ", big-endian"
    } else {
        ""
    };
    if name.is_empty() {
        format!("'{descr}'")
    } else {
        format!("{name} ('{descr}'{big})")
    }
}

/// The element count, once the data holds exactly `count × item` bytes.
fn check_len(npy: &Npy<'_>, item: usize) -> Result<usize, NpyError> {
    let count = npy
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("shape is too large"))?;
    let want = count
        .checked_mul(item)
        .ok_or_else(|| err("shape is too large"))?;
    if npy.data.len() < want {
        return Err(err(format!(
            "is truncated: its shape {:?} needs {want} bytes of data, the file holds {}",
            npy.shape,
            npy.data.len()
        )));
    }
    if npy.data.len() > want {
        return Err(err(format!(
            "has {} bytes after the data its shape {:?} describes",
            npy.data.len() - want,
            npy.shape
        )));
    }
    Ok(count)
}

/// Features: float32, float16 or float64, little-endian, C order, shape
/// (N, D), every value finite in `T`. Returns the N·D values row by row and D.
pub fn features<T: Real>(bytes: &[u8]) -> Result<(Vec<T>, usize), NpyError> {
    let npy = parse(bytes)?;
    let item = match npy.descr.as_str() {
        "<f4" => 4,
        "<f2" => 2,
        "<f8" => 8,
        d => {
            return Err(err(format!(
                "has dtype {}; features must be float32, float16 or float64, little-endian",
                dtype_name(d)
            )))
        }
    };
    let d = match npy.shape.as_slice() {
        [n, d] if *n > 0 && *d > 0 => *d,
        s => {
            return Err(err(format!(
                "has shape {s:?}; features must be a non-empty 2-D array (N, D)"
            )))
        }
    };
    check_len(&npy, item)?;
    let x: Vec<T> = match item {
        4 => npy
            .data
            .chunks_exact(4)
            .map(|b| T::from_f64(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64))
            .collect(),
        2 => npy
            .data
            .chunks_exact(2)
            .map(|b| T::from_f64(arcface::half::f16::from_le_bytes([b[0], b[1]]).to_f64()))
            .collect(),
        _ => npy
            .data
            .chunks_exact(8)
            .map(|b| {
                T::from_f64(f64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            })
            .collect(),
    };
    if let Some(p) = x.iter().position(|v| !v.to_f64().is_finite()) {
        return Err(err(format!(
            "holds a NaN or infinite value at row {}, column {}",
            p / d,
            p % d
        )));
    }
    Ok((x, d))
}

/// Labels: int64 (or int32), little-endian, shape (N,) or (N, 1).
pub fn labels(bytes: &[u8]) -> Result<Vec<i64>, NpyError> {
    let npy = parse(bytes)?;
    let item = match npy.descr.as_str() {
        "<i8" => 8,
        "<i4" => 4,
        d => {
            return Err(err(format!(
                "has dtype {}; labels must be int64 (or int32), little-endian",
                dtype_name(d)
            )))
        }
    };
    match npy.shape.as_slice() {
        [n] | [n, 1] if *n > 0 => {}
        s => {
            return Err(err(format!(
                "has shape {s:?}; labels must be a non-empty 1-D array (N,) or (N, 1)"
            )))
        }
    }
    check_len(&npy, item)?;
    Ok(if item == 8 {
        npy.data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect()
    } else {
        npy.data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .collect()
    })
}

// The path is explicit so that the file also resolves where this module is
// included by `#[path]` (the fuzz target).
#[cfg(test)]
#[path = "npy/tests.rs"]
mod tests;
