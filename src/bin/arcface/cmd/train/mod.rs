//! `arcface train`: fits a head, in the steps [`train`] lists: check every
//! file, configure, load the data and the starting checkpoint, standardise,
//! plan the head and check the memory the run needs, build, fit, evaluate,
//! write every output together, print the summary.

mod head;
mod load;
mod write;

use super::run_typed;
use crate::args::TrainArgs;
use crate::report::table::TrainSummary;
use crate::report::{self, progress::Progress};
use crate::CliError;
use arcface::{evaluate, ArcFaceHead, EvalMetrics, Event, Real, TrainConfig, TrainReport};
use load::TrainData;
use std::ops::ControlFlow;
use std::time::Instant;

/// Runs `train`.
pub fn run(a: &TrainArgs) -> Result<(), CliError> {
    run_typed!(a.compute, train(a))
}

fn train<T: Real>(a: &TrainArgs) -> Result<(), CliError> {
    let t_start = Instant::now();
    write::files(a).check()?;
    a.synthetic.params(a.data.data).map_err(CliError::Usage)?;
    let tcfg = super::config::train_config(a)?;
    let mut data = load::load_data::<T>(a)?;
    let start = load::load_start(a)?;
    let standardize = load::standardize(a, start.as_ref(), &mut data)?;
    let c = load::num_classes(a, start.as_ref(), &data)?;
    let plan = head::plan(a, start.as_ref(), &data, c)?;
    head::check_memory(a, &plan, &tcfg, &data)?;
    let mut built = head::build::<T>(plan, start.as_ref(), tcfg.seed)?;
    if let Some(list) = &tcfg.train_classes {
        // checked against the head before the run starts (the trainer sets it for the run)
        built
            .set_trainable_classes(Some(list))
            .and_then(|()| built.set_trainable_classes(None))
            .map_err(|e| super::flag_error("train", e))?;
    }
    let head_desc = report::describe_head(built.config(), tcfg.adaptive_margins.is_some());
    let mut trainer = head::trainer(built, &tcfg, start.as_ref(), data.train.len())?;
    let run = RunShape::new(&tcfg, &data, c);
    let opt_desc = report::describe_optimizer(trainer.config());
    let mut progress = Progress::new(a.output.quiet);
    progress.header(&run.header::<T>(&data), &format!("{head_desc}; {opt_desc}"));
    let report = trainer
        .fit(
            data.train.dataset(),
            data.val.as_ref().map(|v| v.dataset()),
            |e| {
                match e {
                    Event::Step(s) => progress.step(s),
                    Event::Epoch(ep) => progress.epoch(ep),
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(|e| super::flag_error("train", e))?;
    let t_eval = Instant::now();
    let (train_m, val_m) = final_metrics(trainer.head(), &data, &report, tcfg.batch_size)?;
    let eval_seconds = t_eval.elapsed().as_secs_f64();
    let peak = write::write_outputs(
        a,
        &trainer,
        &data,
        standardize.as_ref(),
        &report,
        &head_desc,
        (&train_m, val_m.as_ref()),
    )?;
    let summary = TrainSummary {
        data: run.data_line(&data),
        head: &head_desc,
        optimizer: &opt_desc,
        epochs: report.history.len(),
        steps_per_epoch: run.steps_per_epoch,
        batch: run.batch,
        train: train_m,
        test: val_m,
        train_seconds: report.train_seconds,
        embeddings_per_s: report::rate(report.samples, report.train_seconds),
        eval_seconds: (report.seconds - report.train_seconds) + eval_seconds,
        total_seconds: t_start.elapsed().as_secs_f64(),
        peak_memory: peak,
        threads: run.threads,
        dtype: T::NAME,
        simd: trainer.head().simd_level(),
        checkpoint: write::checkpoint_line(a, trainer.head()),
        files: [("metrics", &a.output.metrics), ("curves", &a.output.curves)]
            .into_iter()
            .filter_map(|(what, p)| p.as_deref().map(|p| (what, p)))
            .collect(),
    };
    summary.print();
    Ok(())
}

/// The run's shape, as the header and the summary show it.
struct RunShape {
    d: usize,
    c: usize,
    epochs: usize,
    steps_per_epoch: usize,
    /// The batch size, or the whole training split when smaller.
    batch: usize,
    threads: usize,
}

impl RunShape {
    fn new<T: Real>(t: &TrainConfig, data: &TrainData<T>, c: usize) -> Self {
        let n = data.train.len();
        RunShape {
            d: data.train.d,
            c,
            epochs: t.epochs,
            steps_per_epoch: if t.drop_last {
                n / t.batch_size
            } else {
                n.div_ceil(t.batch_size)
            },
            batch: t.batch_size.min(n),
            threads: rayon::current_num_threads(),
        }
    }

    fn sizes<T: Real>(&self, data: &TrainData<T>) -> String {
        let test = data
            .val
            .as_ref()
            .map_or(String::new(), |v| format!(" / {} test", v.len()));
        format!("{} train{test}", data.train.len())
    }

    /// The first line of the progress output.
    fn header<T: Real>(&self, data: &TrainData<T>) -> String {
        format!(
            "arcface train: {}, {}, D {}, C {}; {} epochs × {} steps of {}, {}, {} thread{}",
            data.source.describe(),
            self.sizes(data),
            self.d,
            self.c,
            self.epochs,
            self.steps_per_epoch,
            self.batch,
            T::NAME,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }

    /// The summary table's first line.
    fn data_line<T: Real>(&self, data: &TrainData<T>) -> String {
        format!(
            "{} · {} · D {} · C {}",
            data.source.describe(),
            self.sizes(data),
            self.d,
            self.c
        )
    }
}

/// Metrics of the final head on both splits (the last epoch's held-out
/// metrics when the trainer has them).
///
/// It runs in batches of `--batch-size`, so that its memory is what the
/// user chose for training.
fn final_metrics<T: Real>(
    head: &ArcFaceHead<T>,
    data: &TrainData<T>,
    report: &TrainReport,
    batch: usize,
) -> Result<(EvalMetrics, Option<EvalMetrics>), CliError> {
    let train = evaluate(head, data.train.dataset(), batch)?;
    let val = match (report.history.last().and_then(|e| e.val), &data.val) {
        (Some(v), _) => Some(v),
        (None, Some(v)) => Some(evaluate(head, v.dataset(), batch)?),
        (None, None) => None,
    };
    Ok((train, val))
}
