//! CSV (and TSV, semicolon-separated) tables of numbers: features with an
//! optional label in the last column, or one label per line. A first line
//! that is not numeric is a header; `#` lines and blank lines are skipped.
//! Errors are phrases that follow the file's name.

use super::Split;
use arcface::Real;

/// Whether `path` names a text table, by its extension.
pub fn is_csv(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p.ends_with(".csv") || p.ends_with(".txt") || p.ends_with(".tsv")
}

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split([',', '\t', ';']).map(str::trim)
}

/// One finite number of a data line.
fn number(c: &str, lineno: usize, column: usize) -> Result<f64, String> {
    let v: f64 = c
        .parse()
        .map_err(|_| format!("line {lineno}, column {column}: {c:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!(
            "line {lineno}, column {column}: {c:?} is not finite"
        ));
    }
    Ok(v)
}

/// Rows of numbers. With `label_last`, the last column is an integer label.
pub fn table<T: Real>(text: &str, label_last: bool) -> Result<Split<T>, String> {
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
            return Err(format!(
                "line {lineno} has {} fields, the first data line has {w}",
                cells.len()
            ));
        }
        let nfeat = if label_last { w - 1 } else { w };
        if nfeat == 0 {
            return Err(format!("line {lineno} has no feature columns"));
        }
        for (j, c) in cells[..nfeat].iter().enumerate() {
            x.push(T::from_f64(number(c, lineno, j + 1)?));
        }
        if label_last {
            let c = cells[w - 1];
            let v: i64 = c.parse().map_err(|_| {
                format!("line {lineno}, last column: {c:?} is not an integer label")
            })?;
            y.push(v);
        }
    }
    let d = match width {
        Some(w) if label_last => w - 1,
        Some(w) => w,
        None => return Err("holds no data rows".into()),
    };
    Ok(Split { x, y, d })
}

/// One integer label per line (a non-numeric first line is a header).
pub fn labels(text: &str) -> Result<Vec<i64>, String> {
    let mut y = Vec::new();
    let mut first = true;
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = fields(t).collect();
        if cells.len() != 1 {
            return Err(format!(
                "line {} has {} fields; labels must be one integer per line",
                k + 1,
                cells.len()
            ));
        }
        match cells[0].parse::<i64>() {
            Ok(v) => y.push(v),
            Err(_) if first && cells[0].parse::<f64>().is_err() => {}
            Err(_) => {
                return Err(format!(
                    "line {}: {:?} is not an integer label",
                    k + 1,
                    cells[0]
                ))
            }
        }
        first = false;
    }
    if y.is_empty() {
        return Err("holds no labels".into());
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_and_the_label_column_are_recognised() {
        let s = table::<f64>("a,b,label\n1,2,0\n# note\n\n3;4;1\n", true).unwrap();
        assert_eq!((s.x, s.y, s.d), (vec![1.0, 2.0, 3.0, 4.0], vec![0, 1], 2));
        let s = table::<f32>("1\t2\n3\t4\n", false).unwrap();
        assert_eq!((s.x.len(), s.y.len(), s.d), (4, 0, 2));
    }

    #[test]
    fn bad_tables_name_the_line() {
        let e = |t: &str, l| table::<f32>(t, l).unwrap_err();
        assert_eq!(
            e("1,2,3\n4,5\n", false),
            "line 2 has 2 fields, the first data line has 3"
        );
        assert_eq!(
            e("1,x\n2,y\n", false),
            "line 2, column 2: \"y\" is not a number"
        );
        assert_eq!(
            e("1,inf\n", false),
            "line 1, column 2: \"inf\" is not finite"
        );
        assert_eq!(
            e("1,2.5\n", true),
            "line 1, last column: \"2.5\" is not an integer label"
        );
        assert_eq!(e("3\n", true), "line 1 has no feature columns");
        assert_eq!(e("# only\n", false), "holds no data rows");
    }

    #[test]
    fn labels_one_per_line() {
        assert_eq!(labels("label\n1\n\n2\n").unwrap(), vec![1, 2]);
        assert_eq!(
            labels("1\n2\nthree\n").unwrap_err(),
            "line 3: \"three\" is not an integer label"
        );
        assert!(labels("1,2\n")
            .unwrap_err()
            .contains("one integer per line"));
        assert_eq!(labels("header\n").unwrap_err(), "holds no labels");
    }
}
