//! Golden vectors from the real mmpretrain 1.2.0 code (`tests/golden/`, or
//! the directory named by `ARCFACE_GOLDEN_DIR`).
//!
//! Every case file is checked by its `kind` with the comparison rule of
//! `tests/golden/FORMAT.md` ([`compare`]): per row, |a − b| ≤ rtol ·
//! max(max |b| over the row's finite entries, floor), the f64 head against
//! `exact_f64` at 1e-10, the f32 head against `exact_f64` at 1e-4, labels
//! exactly. Where one of the crate's documented deviations (the README's
//! table, D1–D13) changes a case, the checks hold the crate to its own
//! documented behaviour instead of upstream's and name the deviation in the
//! case's message.

pub mod adaptive;
pub mod compare;
pub mod head;
pub mod head_check;
pub mod json;
pub mod margins_api;
pub mod margins_file;
pub mod reference;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// `ARCFACE_GOLDEN_DIR`, or `tests/golden` in this checkout.
pub fn case_dir() -> PathBuf {
    std::env::var_os("ARCFACE_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden"))
}

/// The `*.json` files of `dir`, sorted; an error when it cannot be read or
/// holds none.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read golden directory {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    if files.is_empty() {
        return Err(format!("no golden case (*.json) in {}", dir.display()));
    }
    Ok(files)
}

/// One case file.
pub struct Case {
    /// The file's stem, e.g. `p06_k3_d33_easy_margin`.
    pub name: String,
    /// `head`, `adaptive_margins`, `margins_file` or `margins_api`.
    pub kind: String,
    pub value: Value,
}

/// Reads and parses one case file.
pub fn load(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = value["kind"].as_str().unwrap_or("?").to_string();
    Ok(Case { name, kind, value })
}

/// Checks a case of kind `head`, `adaptive_margins` or `margins_file`: a
/// line saying what agreed (and which deviations applied), or what did not.
/// `margins_api` cases are checked per subcase ([`margins_api`]).
pub fn check(case: &Case) -> Result<String, String> {
    match case.kind.as_str() {
        "head" => head::check_head_case(&case.value),
        "adaptive_margins" => adaptive::check_adaptive_case(&case.value),
        "margins_file" => margins_file::check_margins_file_case(&case.value),
        other => Err(format!("unknown kind {other}")),
    }
}
