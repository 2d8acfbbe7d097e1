//! The `.npy` container (NumPy's format, versions 1 to 3): the header, a
//! Python dict literal, read by a small tokenizer; then features (float32,
//! float16, float64) and labels (int64, int32), little-endian, C order.
//!
//! A file is read as a stream ([`read_header`], then [`features_from`] or
//! [`labels_from`]): the values are decoded chunk by chunk straight into
//! their final buffer, so reading N values of T takes N·size(T) bytes and
//! a small fixed chunk, never a second copy of the file. The slice
//! functions ([`parse`], [`features`], [`labels`]) run the same code over
//! bytes in memory.
//!
//! Self-contained on purpose: it depends on `std` and the `arcface` library
//! only, so that the `npy_header` fuzz target (fuzz/fuzz_targets/) compiles
//! this very file. Nothing here panics on bad bytes, and nothing allocates
//! more than a small multiple of the input's size: the header is at most
//! [`MAX_HEADER`] bytes, and the values' buffer is reserved (fallibly) only
//! after the data's length matches the shape exactly.

use arcface::Real;
use std::fmt;
use std::io::Read;

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

/// The longest header read. NumPy writes headers of a few hundred bytes
/// (and by default refuses to read any over 10 000).
pub const MAX_HEADER: usize = 1 << 20;

/// The bytes decoded at a time.
const CHUNK: usize = 1 << 16;

/// A parsed `.npy` header: dtype descriptor and shape of a C-ordered array.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub descr: String,
    pub shape: Vec<usize>,
}

// the slice API serves the npy_header fuzz target and the tests
#[cfg_attr(not(test), allow(dead_code))]
/// A parsed `.npy` array in memory: dtype descriptor, shape, and raw data bytes.
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

/// Fills `buf` from `r` as far as the input goes; returns the bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, NpyError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(format!("cannot be read: {e}"))),
        }
    }
    Ok(n)
}

/// Reads exactly `buf.len()` bytes; a short input is `short`.
fn read_all<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    short: impl FnOnce() -> NpyError,
) -> Result<(), NpyError> {
    if read_up_to(r, buf)? < buf.len() {
        return Err(short());
    }
    Ok(())
}

/// The magic string, the format version, and the header's length.
fn header_len<R: Read>(r: &mut R) -> Result<usize, NpyError> {
    let mut pre = [0u8; 10];
    if read_up_to(r, &mut pre)? < pre.len() || !pre.starts_with(MAGIC) {
        return Err(err("is not a .npy file (no \\x93NUMPY magic)"));
    }
    match pre[6] {
        1 => Ok(u16::from_le_bytes([pre[8], pre[9]]) as usize),
        2 | 3 => {
            let mut hi = [0u8; 2];
            read_all(r, &mut hi, || err("truncated .npy header"))?;
            Ok(u32::from_le_bytes([pre[8], pre[9], hi[0], hi[1]]) as usize)
        }
        v => Err(err(format!("unsupported .npy format version {v}"))),
    }
}

/// The header dict's three keys; other keys are skipped.
#[derive(Default)]
struct Dict {
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
fn parse_dict(toks: &[Tok]) -> Result<Dict, NpyError> {
    let malformed = || err("malformed .npy header");
    if toks.first() != Some(&Tok::Punct('{')) {
        return Err(malformed());
    }
    let mut h = Dict::default();
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

/// Reads the `.npy` container's preamble and header (versions 1, 2, 3)
/// from `r`, leaving it at the first data byte: a C-ordered array's dtype
/// descriptor and shape (not yet checked against each other or the data).
pub fn read_header<R: Read>(r: &mut R) -> Result<Header, NpyError> {
    let hlen = header_len(r)?;
    if hlen > MAX_HEADER {
        return Err(err(format!(
            "has a header of {hlen} bytes, more than the {MAX_HEADER} any .npy file needs"
        )));
    }
    // grown as bytes arrive, so a short input costs no more than its length
    let mut header = Vec::new();
    r.by_ref()
        .take(hlen as u64)
        .read_to_end(&mut header)
        .map_err(|e| err(format!("cannot be read: {e}")))?;
    if header.len() < hlen {
        return Err(err("truncated .npy header"));
    }
    let header = std::str::from_utf8(&header).map_err(|_| err(".npy header is not text"))?;
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
    Ok(Header { descr, shape })
}

// the slice API serves the npy_header fuzz target and the tests
#[cfg_attr(not(test), allow(dead_code))]
/// Parses the `.npy` container in memory (see [`read_header`]).
pub fn parse(bytes: &[u8]) -> Result<Npy<'_>, NpyError> {
    let mut rest = bytes;
    let Header { descr, shape } = read_header(&mut rest)?;
    Ok(Npy {
        descr,
        shape,
        data: rest,
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

/// The element count, once the data (`available` bytes) holds exactly
/// `count × item` bytes.
fn check_len(shape: &[usize], item: usize, available: u64) -> Result<usize, NpyError> {
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("shape is too large"))?;
    let want = count
        .checked_mul(item)
        .ok_or_else(|| err("shape is too large"))? as u64;
    if available < want {
        return Err(err(format!(
            "is truncated: its shape {shape:?} needs {want} bytes of data, the file holds {available}"
        )));
    }
    if available > want {
        return Err(err(format!(
            "has {} bytes after the data its shape {shape:?} describes",
            available - want
        )));
    }
    Ok(count)
}

/// Reads `count` values of `item` bytes from `r` into a buffer reserved
/// for exactly them, decoding each with `decode` (its index given, for
/// messages), chunk by chunk.
fn decode_into<V, R: Read>(
    r: &mut R,
    count: usize,
    item: usize,
    mut decode: impl FnMut(&[u8], usize) -> Result<V, NpyError>,
) -> Result<Vec<V>, NpyError> {
    let mut out = Vec::new();
    out.try_reserve_exact(count).map_err(|_| {
        err(format!(
            "holds {count} values: {} bytes are more than can be allocated",
            (count as u128) * std::mem::size_of::<V>() as u128
        ))
    })?;
    let mut buf = vec![0u8; CHUNK - CHUNK % item];
    while out.len() < count {
        let n = (count - out.len()).min(buf.len() / item) * item;
        read_all(r, &mut buf[..n], || {
            err("is truncated: it ended while being read")
        })?;
        for b in buf[..n].chunks_exact(item) {
            let v = decode(b, out.len())?;
            out.push(v);
        }
    }
    Ok(out)
}

/// Features: float32, float16 or float64, little-endian, C order, shape
/// (N, D), every value finite in `T`, from `r` holding `available` bytes of
/// data after `h`. Returns the N·D values row by row and D.
pub fn features_from<T: Real, R: Read>(
    h: &Header,
    r: &mut R,
    available: u64,
) -> Result<(Vec<T>, usize), NpyError> {
    let item = match h.descr.as_str() {
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
    let d = match h.shape.as_slice() {
        [n, d] if *n > 0 && *d > 0 => *d,
        s => {
            return Err(err(format!(
                "has shape {s:?}; features must be a non-empty 2-D array (N, D)"
            )))
        }
    };
    let count = check_len(&h.shape, item, available)?;
    let x = decode_into(r, count, item, |b, i| {
        let v = match b.len() {
            4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            2 => arcface::half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
            _ => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        };
        let t = T::from_f64(v);
        if !t.to_f64().is_finite() {
            return Err(err(format!(
                "holds a NaN or infinite value at row {}, column {}",
                i / d,
                i % d
            )));
        }
        Ok(t)
    })?;
    Ok((x, d))
}

// the slice API serves the npy_header fuzz target and the tests
#[cfg_attr(not(test), allow(dead_code))]
/// [`features_from`] over a whole file in memory.
pub fn features<T: Real>(bytes: &[u8]) -> Result<(Vec<T>, usize), NpyError> {
    let mut rest = bytes;
    let h = read_header(&mut rest)?;
    let available = rest.len() as u64;
    features_from(&h, &mut rest, available)
}

/// Labels: int64 (or int32), little-endian, shape (N,) or (N, 1), from `r`
/// holding `available` bytes of data after `h`.
pub fn labels_from<R: Read>(h: &Header, r: &mut R, available: u64) -> Result<Vec<i64>, NpyError> {
    let item = match h.descr.as_str() {
        "<i8" => 8,
        "<i4" => 4,
        d => {
            return Err(err(format!(
                "has dtype {}; labels must be int64 (or int32), little-endian",
                dtype_name(d)
            )))
        }
    };
    match h.shape.as_slice() {
        [n] | [n, 1] if *n > 0 => {}
        s => {
            return Err(err(format!(
                "has shape {s:?}; labels must be a non-empty 1-D array (N,) or (N, 1)"
            )))
        }
    }
    let count = check_len(&h.shape, item, available)?;
    decode_into(r, count, item, |b, _| {
        Ok(if b.len() == 8 {
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        } else {
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
        })
    })
}

// the slice API serves the npy_header fuzz target and the tests
#[cfg_attr(not(test), allow(dead_code))]
/// [`labels_from`] over a whole file in memory.
pub fn labels(bytes: &[u8]) -> Result<Vec<i64>, NpyError> {
    let mut rest = bytes;
    let h = read_header(&mut rest)?;
    let available = rest.len() as u64;
    labels_from(&h, &mut rest, available)
}

// The path is explicit so that the file also resolves where this module is
// included by `#[path]` (the fuzz target).
#[cfg(test)]
#[path = "npy/tests.rs"]
mod tests;
