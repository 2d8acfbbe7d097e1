//! `margins_file` cases: `parse_margins_file` against the strict grammar of
//! D10 applied to upstream's own reading of the file's lines.

use super::super::invariants::margins_file::strict_decimal;
use super::json::list;
use arcface::parse_margins_file;
use serde_json::Value;

/// Checks one `margins_file` case: the crate's answer under D10 is the
/// values of upstream's lines when each is a strict decimal and there are
/// `num_classes` of them (and no byte-order mark), else an error; where
/// upstream parsed the file, the values agree with Python's.
pub fn check_margins_file_case(v: &Value) -> Result<String, String> {
    let c = v["config"]["num_classes"].as_u64().unwrap() as usize;
    let content = v["inputs"]["content"].as_str().unwrap();
    let got = parse_margins_file(content, c);
    let lines = v["diagnostics"]["list_from_file_lines"].as_array();
    // the crate's expected answer under D10
    let want: Option<Vec<f64>> = if content.starts_with('\u{feff}') {
        None
    } else {
        lines.and_then(|ls| {
            let vals: Option<Vec<f64>> = ls
                .iter()
                .map(|l| strict_decimal(l.as_str().unwrap_or("")))
                .collect();
            vals.filter(|v| v.len() == c)
        })
    };
    let upstream = &v["upstream"];
    let upstream_ok = upstream.get("margins_py_float").is_some();
    let note = match (&want, upstream_ok) {
        (Some(_), false) | (None, true) => "  [D10]",
        _ => "",
    };
    match (got, want) {
        (Ok(g), Some(w)) => {
            if upstream_ok {
                let py = list(&upstream["margins_py_float"]);
                if py != w {
                    return Err(format!("reference {w:?} disagrees with Python's {py:?}"));
                }
            }
            if g == w {
                Ok(format!("{} margins parsed{note}", g.len()))
            } else {
                Err(format!("parsed {g:?}, expected {w:?}"))
            }
        }
        (Err(e), None) => Ok(format!("rejected: {e}{note}")),
        (Ok(g), None) => Err(format!("accepted {g:?}; D10 requires an error")),
        (Err(e), Some(w)) => Err(format!("rejected ({e}) but expected {w:?}")),
    }
}
