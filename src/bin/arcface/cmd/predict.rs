//! `arcface predict`: the top-k labels and softmax scores of each sample,
//! as JSON or CSV, on stdout or into `--output`.

use super::{restore, run_typed};
use crate::args::{PredictArgs, PredictFormat};
use crate::output::{self, Outputs};
use crate::report::predictions::{Format, Writer};
use crate::CliError;
use arcface::Real;
use std::io::Write;

/// Runs `predict`.
pub fn run(a: &PredictArgs) -> Result<(), CliError> {
    run_typed!(a.infer.compute, predict(a))
}

fn predict<T: Real>(a: &PredictArgs) -> Result<(), CliError> {
    if let Some(p) = &a.output.output {
        output::check_writable(p, "output")?;
    }
    let ck_path = &a.checkpoint.checkpoint;
    let (ck, head) = restore::head::<T>(&a.checkpoint)?;
    let input = restore::input::<T>(&a.data, &a.synthetic, None, &ck, ck_path)?;
    restore::check_dim(&head, &input)?;
    let format = match a.output.format {
        PredictFormat::Json => Format::Json,
        PredictFormat::Csv => Format::Csv,
    };
    let k = a.output.top_k.min(head.config().num_classes);
    let mut w = Writer::new(format, k);
    let d = input.split.d.max(1);
    let n = input.split.x.len() / d;
    let rows_per_chunk = a.infer.batch_size.min(n.max(1));
    for chunk in input.split.x.chunks(rows_per_chunk.saturating_mul(d)) {
        let p = head.predict(chunk)?;
        for row in p.topk(k) {
            let top: Vec<(usize, f64)> = row.iter().map(|&(c, s)| (c, s.to_f64())).collect();
            w.row(&top);
        }
    }
    let text = w.finish();
    match &a.output.output {
        Some(p) => {
            let mut out = Outputs::new();
            out.stage(p, text.as_bytes())?;
            out.commit()?;
        }
        None => {
            // a closed pipe (`| head`) is not an error worth a message
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    Ok(())
}
