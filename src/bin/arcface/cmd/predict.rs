//! `arcface predict`: the top-k labels and softmax scores of each sample,
//! as JSON or CSV, on stdout or into `--output`.

use super::footprint;
use super::restore::{self, Restored};
use super::run_typed;
use crate::args::{PredictArgs, PredictFormat};
use crate::output::{Files, Outputs};
use crate::report::predictions::{Format, Writer};
use crate::CliError;
use arcface::half::{bf16, f16};
use arcface::{ArcFaceHead, HalfFloat, HalfHead, Real, WeightDtype};
use std::io::Write;

/// What predicts: the head in `--dtype`, or, for f32 arithmetic and a
/// checkpoint whose weights are stored in f16 or bf16, a [`HalfHead`]
/// holding them as stored (half the memory: no f32 head is built).
enum Server<T: Real> {
    Full(Box<ArcFaceHead<T>>),
    F16(HalfHead<f16>),
    Bf16(HalfHead<bf16>),
}

impl<T: Real> Server<T> {
    fn new(r: &Restored) -> Result<Self, CliError> {
        fn half<H: HalfFloat>(r: &Restored) -> Result<HalfHead<H>, CliError> {
            HalfHead::from_checkpoint(&r.ck, Some(r.cfg.clone())).map_err(|e| r.error(e))
        }
        Ok(match (T::NAME, r.ck.dtype()) {
            ("f32", WeightDtype::F16) => Server::F16(half(r)?),
            ("f32", WeightDtype::BF16) => Server::Bf16(half(r)?),
            _ => Server::Full(Box::new(r.head::<T>()?)),
        })
    }

    /// The `k` best (class, score) pairs of each sample of `chunk`.
    fn topk(&self, chunk: &[T], k: usize) -> Result<Vec<Vec<(usize, f64)>>, CliError> {
        fn wide<R: Real>(rows: Vec<Vec<(usize, R)>>) -> Vec<Vec<(usize, f64)>> {
            rows.into_iter()
                .map(|r| r.into_iter().map(|(c, s)| (c, s.to_f64())).collect())
                .collect()
        }
        // f32 features (a half head serves only when T is f32: exact)
        let x32 = || {
            chunk
                .iter()
                .map(|v| v.to_f64() as f32)
                .collect::<Vec<f32>>()
        };
        Ok(match self {
            Server::Full(h) => wide(h.predict(chunk)?.topk(k)),
            Server::F16(h) => wide(h.predict(&x32())?.topk(k)),
            Server::Bf16(h) => wide(h.predict(&x32())?.topk(k)),
        })
    }
}

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
    let restored = restore::checkpoint(&a.checkpoint, "predict")?;
    let cfg = &restored.cfg;
    let input = restore::input::<T>(&a.data, &a.synthetic, None, (&restored.ck, ck_path), cfg)?;
    restore::check_dim(cfg, &input)?;
    let k = a.output.top_k.min(cfg.num_classes);
    let d = input.split.d.max(1);
    let n = input.split.x.len() / d;
    let rows_per_chunk = a.infer.batch_size.min(n.max(1));
    let threads = rayon::current_num_threads();
    // sized for the head in T (an upper bound for a half-precision one)
    restore::check_work::<T>(cfg, |s| {
        footprint::prediction(s, rows_per_chunk, threads, k)
    })?;
    let server = Server::<T>::new(&restored)?;
    drop(restored);
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
        for top in server.topk(chunk, k)? {
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
