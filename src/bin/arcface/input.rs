//! Reading embeddings and labels: `.npy` (the format users dump from
//! PyTorch/NumPy) and CSV, the embedded digits set, and the synthetic
//! long-tailed set. Every problem is an error naming the file and what is
//! wrong; nothing here panics on bad bytes.

use crate::CliError;
use arcface::Real;

/// Features (N×D row-major) and labels (N).
#[derive(Debug, Clone)]
pub struct Split<T> {
    pub x: Vec<T>,
    pub y: Vec<i64>,
    pub d: usize,
}

impl<T: Copy> Split<T> {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn dataset(&self) -> arcface::Dataset<'_, T>
    where
        T: Real,
    {
        arcface::Dataset::new(&self.x, &self.y)
    }
}

fn bad(path: &str, reason: impl Into<String>) -> CliError {
    CliError::Input {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn read(path: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| bad(path, e.to_string()))
}

// ---------------------------------------------------------------- .npy

/// A parsed `.npy` array: dtype descriptor, shape, and raw data bytes.
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
            let q = c;
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != q {
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

/// Parses the `.npy` container (versions 1, 2, 3).
pub fn parse_npy<'a>(bytes: &'a [u8], path: &str) -> Result<Npy<'a>, CliError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(path, "is not a .npy file (no \\x93NUMPY magic)"));
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(path, "truncated .npy header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(path, format!("unsupported .npy format version {v}"))),
    };
    let header = bytes
        .get(start..start.saturating_add(hlen))
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(path, ".npy header is not text"))?;
    let toks = tokenize(header).map_err(|e| bad(path, e))?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    let mut i = 0;
    let expect = |i: usize, t: Tok| -> Result<(), CliError> {
        if toks.get(i) == Some(&t) {
            Ok(())
        } else {
            Err(bad(path, "malformed .npy header"))
        }
    };
    expect(0, Tok::Punct('{'))?;
    i += 1;
    while i < toks.len() && toks[i] != Tok::Punct('}') {
        let key = match &toks[i] {
            Tok::Str(s) => s.clone(),
            _ => return Err(bad(path, "malformed .npy header")),
        };
        expect(i + 1, Tok::Punct(':'))?;
        i += 2;
        match key.as_str() {
            "descr" => match toks.get(i) {
                Some(Tok::Str(s)) => {
                    descr = Some(s.clone());
                    i += 1;
                }
                _ => {
                    return Err(bad(
                        path,
                        "unsupported dtype: structured arrays are not supported",
                    ))
                }
            },
            "fortran_order" => match toks.get(i) {
                Some(Tok::Ident(s)) if s == "True" || s == "False" => {
                    fortran = Some(s == "True");
                    i += 1;
                }
                _ => return Err(bad(path, "malformed .npy header (fortran_order)")),
            },
            "shape" => {
                expect(i, Tok::Punct('('))?;
                i += 1;
                let mut dims = Vec::new();
                loop {
                    match toks.get(i) {
                        Some(Tok::Int(v)) => {
                            dims.push(
                                usize::try_from(*v)
                                    .map_err(|_| bad(path, "dimension too large"))?,
                            );
                            i += 1;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        Some(Tok::Punct(')')) => {
                            i += 1;
                            break;
                        }
                        _ => return Err(bad(path, "malformed .npy header (shape)")),
                    }
                }
                shape = Some(dims);
            }
            _ => {
                // skip an unknown value
                i += 1;
            }
        }
        if toks.get(i) == Some(&Tok::Punct(',')) {
            i += 1;
        }
    }
    let descr = descr.ok_or_else(|| bad(path, ".npy header has no 'descr'"))?;
    let shape = shape.ok_or_else(|| bad(path, ".npy header has no 'shape'"))?;
    if fortran.ok_or_else(|| bad(path, ".npy header has no 'fortran_order'"))? {
        return Err(bad(
            path,
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

fn check_len(npy: &Npy<'_>, item: usize, path: &str) -> Result<usize, CliError> {
    let count = npy
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(path, "shape is too large"))?;
    let want = count
        .checked_mul(item)
        .ok_or_else(|| bad(path, "shape is too large"))?;
    if npy.data.len() < want {
        return Err(bad(
            path,
            format!(
                "is truncated: its shape {:?} needs {want} bytes of data, the file holds {}",
                npy.shape,
                npy.data.len()
            ),
        ));
    }
    if npy.data.len() > want {
        return Err(bad(
            path,
            format!(
                "has {} bytes after the data its shape {:?} describes",
                npy.data.len() - want,
                npy.shape
            ),
        ));
    }
    Ok(count)
}

/// Features from a `.npy`: float32, float16 or float64, little-endian, C
/// order, shape (N, D).
pub fn npy_features<T: Real>(bytes: &[u8], path: &str) -> Result<Split<T>, CliError> {
    let npy = parse_npy(bytes, path)?;
    let item = match npy.descr.as_str() {
        "<f4" => 4,
        "<f2" => 2,
        "<f8" => 8,
        d => {
            return Err(bad(
                path,
                format!(
                    "has dtype {}; features must be float32, float16 or float64, little-endian",
                    dtype_name(d)
                ),
            ))
        }
    };
    let (n, d) = match npy.shape.as_slice() {
        [n, d] if *n > 0 && *d > 0 => (*n, *d),
        s => {
            return Err(bad(
                path,
                format!("has shape {s:?}; features must be a non-empty 2-D array (N, D)"),
            ))
        }
    };
    check_len(&npy, item, path)?;
    let x: Vec<T> = match item {
        4 => npy
            .data
            .chunks_exact(4)
            .map(|b| T::from_f64(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64))
            .collect(),
        2 => npy
            .data
            .chunks_exact(2)
            .map(|b| T::from_f64(half::f16::from_le_bytes([b[0], b[1]]).to_f64()))
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
    if let Some(p) = x.iter().position(|v| !v.is_finite_()) {
        return Err(bad(
            path,
            format!(
                "holds a NaN or infinite value at row {}, column {}",
                p / d,
                p % d
            ),
        ));
    }
    debug_assert_eq!(x.len(), n * d);
    Ok(Split {
        x,
        y: Vec::new(),
        d,
    })
}

/// Labels from a `.npy`: int64 (or int32), shape (N,) or (N, 1).
pub fn npy_labels(bytes: &[u8], path: &str) -> Result<Vec<i64>, CliError> {
    let npy = parse_npy(bytes, path)?;
    let item = match npy.descr.as_str() {
        "<i8" => 8,
        "<i4" => 4,
        d => {
            return Err(bad(
                path,
                format!(
                    "has dtype {}; labels must be int64 (or int32), little-endian",
                    dtype_name(d)
                ),
            ))
        }
    };
    match npy.shape.as_slice() {
        [n] if *n > 0 => {}
        [n, 1] if *n > 0 => {}
        s => {
            return Err(bad(
                path,
                format!("has shape {s:?}; labels must be a non-empty 1-D array (N,) or (N, 1)"),
            ))
        }
    }
    check_len(&npy, item, path)?;
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

// ---------------------------------------------------------------- CSV

fn is_csv(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with(".csv") || p.ends_with(".txt") || p.ends_with(".tsv")
}

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split([',', '\t', ';']).map(str::trim)
}

/// Rows of numbers from CSV text (comma, tab or semicolon separated). A
/// first line that is not numeric is a header; `#` lines and blank lines
/// are skipped. With `label_last`, the last column is an integer label.
pub fn csv_table<T: Real>(text: &str, path: &str, label_last: bool) -> Result<Split<T>, CliError> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut width = None;
    let mut first = true;
    for (k, line) in text.lines().enumerate() {
        let lineno = k + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = fields(t).collect();
        if first {
            first = false;
            if cells.iter().any(|c| c.parse::<f64>().is_err()) {
                continue; // header
            }
        }
        let w = *width.get_or_insert(cells.len());
        if cells.len() != w {
            return Err(bad(
                path,
                format!(
                    "line {lineno} has {} fields, the first data line has {w}",
                    cells.len()
                ),
            ));
        }
        let nfeat = if label_last { w - 1 } else { w };
        if nfeat == 0 {
            return Err(bad(path, format!("line {lineno} has no feature columns")));
        }
        for (j, c) in cells[..nfeat].iter().enumerate() {
            let v: f64 = c.parse().map_err(|_| {
                bad(
                    path,
                    format!("line {lineno}, column {}: {c:?} is not a number", j + 1),
                )
            })?;
            if !v.is_finite() {
                return Err(bad(
                    path,
                    format!("line {lineno}, column {}: {c:?} is not finite", j + 1),
                ));
            }
            x.push(T::from_f64(v));
        }
        if label_last {
            let c = cells[w - 1];
            let v: i64 = c.parse().map_err(|_| {
                bad(
                    path,
                    format!("line {lineno}, last column: {c:?} is not an integer label"),
                )
            })?;
            y.push(v);
        }
    }
    let d = match width {
        Some(w) if label_last => w - 1,
        Some(w) => w,
        None => return Err(bad(path, "holds no data rows")),
    };
    Ok(Split { x, y, d })
}

/// One integer label per line (a header line is skipped).
pub fn csv_labels(text: &str, path: &str) -> Result<Vec<i64>, CliError> {
    let mut y = Vec::new();
    let mut first = true;
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = fields(t).collect();
        if cells.len() != 1 {
            return Err(bad(
                path,
                format!(
                    "line {} has {} fields; labels must be one integer per line",
                    k + 1,
                    cells.len()
                ),
            ));
        }
        match cells[0].parse::<i64>() {
            Ok(v) => y.push(v),
            Err(_) if first && cells[0].parse::<f64>().is_err() => {}
            Err(_) => {
                return Err(bad(
                    path,
                    format!("line {}: {:?} is not an integer label", k + 1, cells[0]),
                ))
            }
        }
        first = false;
    }
    if y.is_empty() {
        return Err(bad(path, "holds no labels"));
    }
    Ok(y)
}

/// Features (and labels) from files: `.npy` or CSV. Without `labels`, a CSV
/// features file carries the label in its last column.
pub fn load_files<T: Real>(features: &str, labels: Option<&str>) -> Result<Split<T>, CliError> {
    let fb = read(features)?;
    let mut split = if is_csv(features) {
        let text = std::str::from_utf8(&fb).map_err(|_| bad(features, "is not UTF-8 text"))?;
        csv_table::<T>(text, features, labels.is_none())?
    } else if fb.starts_with(b"\x93NUMPY") {
        if labels.is_none() {
            return Err(CliError::Usage(format!(
                "{features} is a .npy file: give the labels with --labels"
            )));
        }
        npy_features::<T>(&fb, features)?
    } else {
        return Err(bad(
            features,
            "is neither a .npy file nor a .csv/.txt/.tsv file",
        ));
    };
    if let Some(lp) = labels {
        let lb = read(lp)?;
        split.y = if lb.starts_with(b"\x93NUMPY") {
            npy_labels(&lb, lp)?
        } else {
            let text = std::str::from_utf8(&lb).map_err(|_| bad(lp, "is not UTF-8 text"))?;
            csv_labels(text, lp)?
        };
    }
    let n = split.x.len() / split.d;
    if split.y.len() != n {
        return Err(bad(
            labels.unwrap_or(features),
            format!(
                "holds {} labels but {features} holds {n} feature rows",
                split.y.len()
            ),
        ));
    }
    if let Some((i, &l)) = split.y.iter().enumerate().find(|(_, &l)| l < 0) {
        return Err(bad(
            labels.unwrap_or(features),
            format!("label {l} of sample {i} is negative"),
        ));
    }
    Ok(split)
}

/// Features only (for `predict`), `.npy` or CSV (every column a feature).
pub fn load_features<T: Real>(features: &str) -> Result<Split<T>, CliError> {
    let fb = read(features)?;
    if fb.starts_with(b"\x93NUMPY") {
        npy_features::<T>(&fb, features)
    } else if is_csv(features) {
        let text = std::str::from_utf8(&fb).map_err(|_| bad(features, "is not UTF-8 text"))?;
        csv_table::<T>(text, features, false)
    } else {
        Err(bad(
            features,
            "is neither a .npy file nor a .csv/.txt/.tsv file",
        ))
    }
}

// ---------------------------------------------------------------- splits, preprocessing

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }
    pub fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A stratified split: about `fraction` of each class goes to the second
/// part, chosen by a seeded shuffle; both parts keep the original order.
pub fn stratified_split<T: Copy>(all: &Split<T>, fraction: f64, seed: u64) -> (Split<T>, Split<T>) {
    let d = all.d;
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &l) in all.y.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut rng = Rng(seed);
    let mut held = vec![false; all.y.len()];
    for idx in by_class.values_mut() {
        rng.shuffle(idx);
        let k = (idx.len() as f64 * fraction).round() as usize;
        for &i in &idx[..k.min(idx.len())] {
            held[i] = true;
        }
    }
    let mut a = Split {
        x: Vec::new(),
        y: Vec::new(),
        d,
    };
    let mut b = Split {
        x: Vec::new(),
        y: Vec::new(),
        d,
    };
    for (i, &h) in held.iter().enumerate() {
        let s = if h { &mut b } else { &mut a };
        s.x.extend_from_slice(&all.x[i * d..(i + 1) * d]);
        s.y.push(all.y[i]);
    }
    (a, b)
}

/// Per-column mean and standard deviation (1 where a column is constant).
pub fn column_stats<T: Real>(s: &Split<T>) -> (Vec<f64>, Vec<f64>) {
    let d = s.d;
    let n = s.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for row in s.x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v.to_f64();
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; d];
    for row in s.x.chunks_exact(d) {
        for ((v2, v), m) in var.iter_mut().zip(row).zip(&mean) {
            let t = v.to_f64() - m;
            *v2 += t * t;
        }
    }
    let std = var
        .iter()
        .map(|v| (v / n).sqrt())
        .map(|s| if s > 1e-12 { s } else { 1.0 })
        .collect();
    (mean, std)
}

/// `x ← (x − mean) / std`, column-wise.
pub fn standardize<T: Real>(s: &mut Split<T>, mean: &[f64], std: &[f64]) {
    let d = s.d;
    for row in s.x.chunks_exact_mut(d) {
        for ((v, m), sd) in row.iter_mut().zip(mean).zip(std) {
            *v = T::from_f64((v.to_f64() - m) / sd);
        }
    }
}

// ---------------------------------------------------------------- built-in data

/// The UCI optical digits (CC BY 4.0; see data/README.md), gzip CSV.
static DIGITS_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// Seed of the fixed digits train/test split.
pub const DIGITS_SPLIT_SEED: u64 = 0x0D16_1275;

/// The digits set split 80/20 (stratified, fixed seed), not standardised.
pub fn digits<T: Real>() -> Result<(Split<T>, Split<T>), CliError> {
    let raw = crate::gz::gunzip(DIGITS_GZ).map_err(|e| bad("<embedded digits.csv.gz>", e))?;
    let text =
        std::str::from_utf8(&raw).map_err(|_| bad("<embedded digits.csv.gz>", "is not UTF-8"))?;
    let all = csv_table::<T>(text, "<embedded digits.csv.gz>", true)?;
    Ok(stratified_split(&all, 0.2, DIGITS_SPLIT_SEED))
}

/// Parameters of the synthetic set (see [`synthetic`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthParams {
    pub classes: usize,
    pub dim: usize,
    pub seed: u64,
}

impl SynthParams {
    pub fn tag(&self) -> String {
        format!(
            "synthetic:classes={},dim={},seed={}",
            self.classes, self.dim, self.seed
        )
    }
    pub fn from_tag(tag: &str) -> Option<Self> {
        let rest = tag.strip_prefix("synthetic:")?;
        let mut p = SynthParams {
            classes: 0,
            dim: 0,
            seed: 0,
        };
        for kv in rest.split(',') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "classes" => p.classes = v.parse().ok()?,
                "dim" => p.dim = v.parse().ok()?,
                "seed" => p.seed = v.parse().ok()?,
                _ => return None,
            }
        }
        (p.classes >= 2 && p.dim >= 2 && p.classes <= SYNTH_MAX_CLASSES && p.dim <= SYNTH_MAX_DIM)
            .then_some(p)
    }
}

/// The largest synthetic set the program makes.
pub const SYNTH_MAX_CLASSES: usize = 100_000;
/// The largest synthetic dimension.
pub const SYNTH_MAX_DIM: usize = 4096;

/// Modes per class.
pub const SYNTH_MODES: usize = 3;
/// Probability of each mode (dominant, secondary, rare).
const SYNTH_MODE_P: [f64; SYNTH_MODES] = [0.6, 0.3, 0.1];
/// Training samples of the most frequent class, and of the rarest.
const SYNTH_N_MAX: f64 = 200.0;
const SYNTH_N_MIN: usize = 5;
/// Zipf exponent of the class frequencies.
const SYNTH_ALPHA: f64 = 0.5;
/// Noise radius relative to the unit mode direction.
const SYNTH_NOISE: f64 = 1.0;
/// Fraction of training labels replaced by a random other class.
const SYNTH_FLIP: f64 = 0.1;
/// Test samples per class (balanced, clean labels).
const SYNTH_TEST_PER_CLASS: usize = 10;

/// Long-tailed, noisy, clustered embeddings on the unit sphere.
///
/// Each class has three modes (random directions, near-orthogonal in high
/// dimension) drawn with probabilities 0.6 / 0.3 / 0.1, and a sample is a
/// mode plus isotropic Gaussian noise (of about the mode's length), normalised.
/// Training counts follow a Zipf law (200 samples for the most frequent class
/// down to 5, exponent 0.5, classes in random order) and 10 % of the training labels
/// are flipped to a random other class. The test split is balanced (10 per
/// class) with clean labels, so the tail counts as much as the head.
pub fn synthetic<T: Real>(p: SynthParams) -> (Split<T>, Split<T>) {
    let (c, d) = (p.classes, p.dim);
    let mut rng = Rng(p.seed ^ 0x5EED_5EED_5EED_5EED);
    let mut modes = vec![0.0f64; c * SYNTH_MODES * d];
    for m in modes.chunks_exact_mut(d) {
        for v in m.iter_mut() {
            *v = rng.normal();
        }
        let n = m.iter().map(|v| v * v).sum::<f64>().sqrt();
        m.iter_mut().for_each(|v| *v /= n);
    }
    let mut order: Vec<usize> = (0..c).collect();
    rng.shuffle(&mut order);
    let mut counts = vec![0usize; c];
    for (rank, &cls) in order.iter().enumerate() {
        counts[cls] = ((SYNTH_N_MAX * ((rank + 1) as f64).powf(-SYNTH_ALPHA)).round() as usize)
            .max(SYNTH_N_MIN);
    }
    let sigma = SYNTH_NOISE / (d as f64).sqrt();
    let sample = |rng: &mut Rng, cls: usize, out: &mut Vec<T>| {
        let u = rng.uniform();
        let mut j = 0;
        let mut acc = SYNTH_MODE_P[0];
        while u >= acc && j + 1 < SYNTH_MODES {
            j += 1;
            acc += SYNTH_MODE_P[j];
        }
        let mode = &modes[(cls * SYNTH_MODES + j) * d..(cls * SYNTH_MODES + j + 1) * d];
        let v: Vec<f64> = mode.iter().map(|m| m + sigma * rng.normal()).collect();
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        out.extend(v.iter().map(|x| T::from_f64(x / n)));
    };
    let mut train = Split {
        x: Vec::new(),
        y: Vec::new(),
        d,
    };
    for (cls, &k) in counts.iter().enumerate() {
        for _ in 0..k {
            sample(&mut rng, cls, &mut train.x);
            let label = if c > 1 && rng.uniform() < SYNTH_FLIP {
                let other = rng.below(c - 1);
                if other >= cls {
                    other + 1
                } else {
                    other
                }
            } else {
                cls
            };
            train.y.push(label as i64);
        }
    }
    let mut test = Split {
        x: Vec::new(),
        y: Vec::new(),
        d,
    };
    for cls in 0..c {
        for _ in 0..SYNTH_TEST_PER_CLASS {
            sample(&mut rng, cls, &mut test.x);
            test.y.push(cls as i64);
        }
    }
    (train, test)
}
