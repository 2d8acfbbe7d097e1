//! `predict`'s output: per sample, the top-k labels and softmax scores, as
//! a JSON array (one object per line) or as CSV. Scores are rounded by
//! [`super::probability`] in both. The text grows by fallible reservations:
//! its size is the number of samples times `--top-k`.

use serde::Serialize;
use std::collections::TryReserveError;

/// The output formats of `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// One sample's JSON object.
#[derive(Serialize)]
struct Row<'a> {
    sample: usize,
    labels: &'a [usize],
    scores: &'a [f64],
}

/// Predictions, rendered row by row into one string.
pub struct Writer {
    format: Format,
    out: String,
    rows: usize,
}

impl Writer {
    /// Starts the output (CSV header or `[`) for `k` labels per sample.
    pub fn new(format: Format, k: usize) -> Self {
        let mut out = String::new();
        match format {
            Format::Csv => {
                out.push_str("sample");
                for j in 1..=k {
                    out.push_str(&format!(",label_{j},score_{j}"));
                }
                out.push('\n');
            }
            Format::Json => out.push('['),
        }
        Self {
            format,
            out,
            rows: 0,
        }
    }

    /// Adds the next sample's (label, score) pairs, best first.
    pub fn row(&mut self, top: &[(usize, f64)]) -> Result<(), TryReserveError> {
        let i = self.rows;
        let mut line = String::new();
        match self.format {
            Format::Csv => {
                line.push_str(&i.to_string());
                for (c, s) in top {
                    line.push_str(&format!(",{c},{}", super::probability(*s)));
                }
                line.push('\n');
            }
            Format::Json => {
                let labels: Vec<usize> = top.iter().map(|p| p.0).collect();
                // the rounded score as the number its text reads as (NaN → null)
                let scores: Vec<f64> = top
                    .iter()
                    .map(|p| super::probability(p.1).parse().unwrap_or(f64::NAN))
                    .collect();
                let row = Row {
                    sample: i,
                    labels: &labels,
                    scores: &scores,
                };
                line.push_str(if i == 0 { "\n" } else { ",\n" });
                line.push_str(
                    &serde_json::to_string(&row)
                        .unwrap_or_else(|e| unreachable!("JSON of a plain struct: {e}")),
                );
            }
        }
        self.out.try_reserve(line.len())?;
        self.out.push_str(&line);
        self.rows += 1;
        Ok(())
    }

    /// The finished output.
    pub fn finish(mut self) -> Result<String, TryReserveError> {
        if self.format == Format::Json {
            self.out.try_reserve(3)?;
            self.out.push_str("\n]\n");
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_one_object_per_line_and_csv_a_header() {
        let mut w = Writer::new(Format::Json, 2);
        w.row(&[(3, 0.75), (1, 0.125)]).unwrap();
        w.row(&[(0, 1.0), (2, 0.25)]).unwrap();
        assert_eq!(
            w.finish().unwrap(),
            "[\n{\"sample\":0,\"labels\":[3,1],\"scores\":[0.75,0.125]},\n\
             {\"sample\":1,\"labels\":[0,2],\"scores\":[1.0,0.25]}\n]\n"
        );
        let mut w = Writer::new(Format::Csv, 1);
        w.row(&[(3, 0.123456789)]).unwrap();
        assert_eq!(
            w.finish().unwrap(),
            "sample,label_1,score_1\n0,3,0.1234568\n"
        );
    }

    #[test]
    fn json_scores_read_back_as_the_rounded_csv_scores() {
        let scores = [0.123456789, 1.2345678e-5, 3.0e-12, f64::NAN];
        let (mut j, mut c) = (Writer::new(Format::Json, 4), Writer::new(Format::Csv, 4));
        let top: Vec<(usize, f64)> = scores.iter().map(|&s| (0, s)).collect();
        j.row(&top).unwrap();
        c.row(&top).unwrap();
        let v: serde_json::Value = serde_json::from_str(&j.finish().unwrap()).unwrap();
        let csv = c.finish().unwrap();
        let cells: Vec<&str> = csv
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .skip(2)
            .step_by(2)
            .collect();
        for (k, cell) in cells.iter().enumerate() {
            match cell.parse::<f64>() {
                Ok(x) => assert_eq!(v[0]["scores"][k].as_f64(), Some(x)),
                Err(_) => assert!(v[0]["scores"][k].is_null() && *cell == "null"),
            }
        }
    }
}
