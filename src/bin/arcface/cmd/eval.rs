//! `arcface eval`: mean loss, top-1 and top-5 accuracy of a checkpoint on
//! labelled data, as a table or JSON.

use super::footprint;
use super::{restore, run_typed};
use crate::args::{EvalArgs, EvalFormat};
use crate::report::{json, table};
use crate::CliError;
use arcface::{evaluate, Real};
use std::time::Instant;

/// Runs `eval`.
pub fn run(a: &EvalArgs) -> Result<(), CliError> {
    run_typed!(a.infer.compute, eval(a))
}

fn eval<T: Real>(a: &EvalArgs) -> Result<(), CliError> {
    a.synthetic.params(a.data.data).map_err(CliError::Usage)?;
    let ck_path = &a.checkpoint.checkpoint;
    let (ck, head) = restore::head::<T>(&a.checkpoint, "eval")?;
    let input = restore::labelled_input::<T>(
        &a.data,
        &a.synthetic,
        a.labels.labels.as_deref(),
        (&ck, ck_path),
        &head,
    )?;
    let batch = a.infer.batch_size.min(input.split.len());
    let threads = rayon::current_num_threads();
    restore::check_work::<T>(head.config(), |s| footprint::evaluation(s, batch, threads))?;
    let t = Instant::now();
    let m = evaluate(&head, input.split.dataset(), batch)?;
    let secs = t.elapsed().as_secs_f64();
    match a.format {
        EvalFormat::Json => println!("{}", json::eval_line(ck_path, &m, secs)),
        EvalFormat::Table => table::print_eval(ck_path, &input.features, &m, secs),
    }
    Ok(())
}
