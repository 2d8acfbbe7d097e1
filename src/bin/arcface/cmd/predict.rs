//! `arcface predict`: the top-k labels and softmax scores of each sample,
//! as JSON or CSV, on stdout or into `--output`.

use super::footprint;
use super::{restore, run_typed};
use crate::args::{PredictArgs, PredictFormat};
use crate::output::{Files, Outputs};
use crate::report::predictions::{Format, Writer};
use crate::CliError;
use arcface::Real;
use std::io::Write;

/// Runs `predict`.
pub fn run(a: &PredictArgs) -> Result<(), CliError> {
    run_typed!(a.infer.compute, predict(a))
}

fn predict<T: Real>(a: &PredictArgs) -> Result<(), CliError> {
    let ck_path = &a.checkpoint.checkpoint;
    let mut files = Files::new();
    files
        .input("--checkpoint", Some(ck_path))
        .input("--features", a.data.features.as_ref())
        .input(
            "--margins",
            a.checkpoint.shape.margins.as_ref().and_then(|m| m.file()),
        )
        .output("--output", a.output.output.as_ref());
    files.check()?;
    a.synthetic.params(a.data.data).map_err(CliError::Usage)?;
    let (ck, head) = restore::head::<T>(&a.checkpoint, "predict")?;
    let input = restore::input::<T>(&a.data, &a.synthetic, None, (&ck, ck_path), &head)?;
    restore::check_dim(&head, &input)?;
    let k = a.output.top_k.min(head.config().num_classes);
    let d = input.split.d.max(1);
    let n = input.split.x.len() / d;
    let rows_per_chunk = a.infer.batch_size.min(n.max(1));
    let threads = rayon::current_num_threads();
    restore::check_work(&head, |s| {
        footprint::prediction(s, rows_per_chunk, threads, k)
    })?;
    let format = match a.output.format {
        PredictFormat::Json => Format::Json,
        PredictFormat::Csv => Format::Csv,
    };
    let mut w = Writer::new(format, k);
    let full = |_| {
        CliError::Memory(format!(
            "the predictions of {n} samples do not fit in memory"
        ))
    };
    for chunk in input.split.x.chunks(rows_per_chunk.saturating_mul(d)) {
        let p = head.predict(chunk)?;
        for row in p.topk(k) {
            let top: Vec<(usize, f64)> = row.iter().map(|&(c, s)| (c, s.to_f64())).collect();
            w.row(&top).map_err(full)?;
        }
    }
    let text = w.finish().map_err(full)?;
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
