//! `train`'s flags as the library's configurations: [`head_config`] over a
//! base (the library's defaults or the checkpoint's own), and [`train_config`]
//! over [`TrainConfig::default`] and the optimisers' defaults.

use super::flag_error;
use crate::args::{OptimizerName, ScheduleName, TrainArgs, ADAMW_LR};
use crate::CliError;
use arcface::{
    AdamW, AdaptiveMargins, HeadConfig, LossConfig, LrSchedule, OptimizerConfig, Sgd, TrainConfig,
};

/// `--class-weight`: one finite number per line (blank lines skipped), one
/// per class (no more than `n` are kept, whatever the file's length).
fn number_lines(path: &str, n: usize) -> Result<Vec<f64>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::input(path, e.to_string()))?;
    let mut v = Vec::new();
    let mut count = 0usize;
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let x: f64 = t
            .parse()
            .map_err(|_| CliError::input(path, format!("line {}: {t:?} is not a number", k + 1)))?;
        if !x.is_finite() {
            return Err(CliError::input(
                path,
                format!("line {}: {t:?} is not finite", k + 1),
            ));
        }
        count += 1;
        if count <= n {
            v.try_reserve(1)
                .map_err(|_| CliError::input(path, "does not fit in memory"))?;
            v.push(x);
        }
    }
    if count != n {
        return Err(CliError::input(
            path,
            format!("holds {count} numbers, expected one per class ({n})"),
        ));
    }
    Ok(v)
}

/// The head configuration: `base` with every head and loss flag given applied.
pub fn head_config(a: &TrainArgs, base: HeadConfig) -> Result<HeadConfig, CliError> {
    let mut cfg = base;
    let c = cfg.num_classes;
    let (shape, loss) = (&a.shape, &a.loss);
    if let Some(k) = shape.num_subcenters {
        cfg.num_subcenters = k;
    }
    if let Some(s) = shape.scale {
        cfg.scale = s;
    }
    if loss.easy_margin {
        cfg.easy_margin = true;
    }
    if let Some(m) = &shape.margins {
        cfg.margins = m.resolve(c)?;
    }
    if let Some(g) = loss.margin_grad {
        cfg.margin_grad = g.into();
    }
    if let Some(eps) = loss.label_smooth_val {
        let base = cfg.loss.clone();
        let mut smooth = LossConfig::label_smooth(eps);
        if let Some(mode) = loss.mode {
            smooth = smooth.with_smooth_mode(mode.into());
        }
        cfg.loss = LossConfig {
            loss_weight: base.loss_weight,
            class_weight: base.class_weight,
            reduction: base.reduction,
            ..smooth
        };
    }
    if let Some(w) = loss.loss_weight {
        cfg.loss.loss_weight = w;
    }
    if let Some(r) = loss.reduction {
        cfg.loss.reduction = r.into();
    }
    if let Some(p) = &loss.class_weight {
        cfg.loss.class_weight = Some(number_lines(p, c)?);
    }
    cfg.validate().map_err(|e| flag_error("train", e))?;
    Ok(cfg)
}

/// Refuses the flags of the optimiser not chosen.
fn check_optimizer_flags(a: &TrainArgs) -> Result<(), CliError> {
    let o = &a.optimizer;
    let (chosen, other, foreign) = match o.optimizer {
        OptimizerName::AdamW => (
            "AdamW",
            "SGD",
            [
                ("momentum", o.momentum.is_some()),
                ("dampening", o.dampening.is_some()),
                ("nesterov", o.nesterov),
            ],
        ),
        OptimizerName::Sgd => (
            "SGD",
            "AdamW",
            [
                ("betas", o.betas.is_some()),
                ("eps", o.eps.is_some()),
                ("", false),
            ],
        ),
    };
    match foreign.iter().find(|f| f.1) {
        Some((f, _)) => Err(CliError::Usage(format!(
            "--{f} is an {other} option; --optimizer is {chosen}"
        ))),
        None => Ok(()),
    }
}

fn optimizer(a: &TrainArgs) -> Result<OptimizerConfig, CliError> {
    check_optimizer_flags(a)?;
    let o = &a.optimizer;
    Ok(match o.optimizer {
        OptimizerName::AdamW => {
            let d = AdamW::default();
            let (beta1, beta2) = o.betas.unwrap_or((d.beta1, d.beta2));
            OptimizerConfig::AdamW(AdamW {
                beta1,
                beta2,
                eps: o.eps.unwrap_or(d.eps),
                weight_decay: o.weight_decay.unwrap_or(d.weight_decay),
            })
        }
        OptimizerName::Sgd => {
            let d = Sgd::default();
            OptimizerConfig::Sgd(Sgd {
                momentum: o.momentum.unwrap_or(d.momentum),
                dampening: o.dampening.unwrap_or(d.dampening),
                nesterov: o.nesterov,
                weight_decay: o.weight_decay.unwrap_or(d.weight_decay),
            })
        }
    })
}

/// `--train-classes`: frozen rows only make sense for a head that was
/// trained before, so the flag needs `--init` or `--resume` (a fresh head's
/// frozen rows would stay random). The library checks the classes against
/// the head.
fn train_classes(a: &TrainArgs) -> Result<Option<Vec<usize>>, CliError> {
    let t = &a.training;
    match &t.train_classes {
        Some(_) if t.init.is_none() && t.resume.is_none() => Err(CliError::Usage(
            "--train-classes freezes the other classes' rows: it needs a trained head to \
             start from (--init or --resume)"
                .into(),
        )),
        c => Ok(c.clone()),
    }
}

/// The training configuration (checked by the library).
pub fn train_config(a: &TrainArgs) -> Result<TrainConfig, CliError> {
    let (s, t) = (&a.schedule, &a.training);
    let optimizer = optimizer(a)?;
    let schedule = match s.lr_schedule {
        ScheduleName::Cosine => LrSchedule::Cosine { eta_min: s.eta_min },
        ScheduleName::Step => LrSchedule::Step {
            step_size: s.step_size.unwrap_or((t.epochs / 3).max(1)),
            gamma: s.gamma,
        },
        ScheduleName::Constant => LrSchedule::Constant,
    };
    let adaptive = a.adaptive.adaptive_margins.then_some(AdaptiveMargins {
        margin_min: a.adaptive.margin_min,
        margin_max: a.adaptive.margin_max,
        power: a.adaptive.power,
    });
    let default_lr = match optimizer {
        OptimizerConfig::AdamW(_) => ADAMW_LR,
        OptimizerConfig::Sgd(_) => TrainConfig::default().lr,
    };
    let cfg = TrainConfig {
        epochs: t.epochs,
        start_epoch: 0,
        batch_size: t.batch_size,
        lr: s.lr.unwrap_or(default_lr),
        optimizer,
        schedule,
        warmup_epochs: s.warmup_epochs,
        warmup_start_factor: s.warmup_start_factor,
        seed: t.seed,
        drop_last: t.drop_last,
        adaptive_margins: adaptive,
        eval_every: t.eval_every,
        train_accuracy: !t.no_train_accuracy,
        sample_rate: t.sample_rate,
        train_classes: train_classes(a)?,
    };
    cfg.validate().map_err(|e| flag_error("train", e))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, STEP_GAMMA};
    use clap::Parser;

    fn train_args(flags: &[&str]) -> Box<TrainArgs> {
        let argv = ["arcface", "train"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Train(a)) => a,
            _ => unreachable!("parsed as train"),
        }
    }

    #[test]
    fn no_flags_give_the_library_defaults() {
        assert_eq!(
            train_config(&train_args(&[])).unwrap(),
            TrainConfig::default()
        );
        let base = HeadConfig::new(3, 4);
        assert_eq!(head_config(&train_args(&[]), base.clone()).unwrap(), base);
    }

    #[test]
    fn adamw_takes_its_own_defaults_and_refuses_sgd_flags() {
        let cfg = train_config(&train_args(&["--optimizer", "adamw"])).unwrap();
        assert_eq!(cfg.optimizer, OptimizerConfig::AdamW(AdamW::default()));
        assert_eq!(cfg.lr, ADAMW_LR);
        let e = train_config(&train_args(&["--optimizer", "AdamW", "--nesterov"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--nesterov is an SGD option; --optimizer is AdamW"
        );
        let e = train_config(&train_args(&["--eps", "1e-6"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--eps is an AdamW option; --optimizer is SGD"
        );
    }

    #[test]
    fn label_smoothing_keeps_the_other_loss_settings() {
        let a = train_args(&[
            "--loss-weight",
            "2",
            "--label-smooth-val",
            "0.1",
            "--mode",
            "classy_vision",
        ]);
        let cfg = head_config(&a, HeadConfig::new(3, 4)).unwrap();
        assert_eq!(cfg.loss.loss_weight, 2.0);
        let ls = cfg.loss.label_smooth.unwrap();
        assert_eq!(
            (ls.label_smooth_val, ls.mode),
            (0.1, arcface::SmoothMode::ClassyVision)
        );
    }

    #[test]
    fn a_value_the_library_refuses_is_a_usage_error_naming_its_flag() {
        let e = train_config(&train_args(&["--lr", "-1"])).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)));
        assert_eq!(
            e.to_string(),
            "invalid value for '--lr <LR>': is -1, must be finite and >= 0"
        );
        let e = train_config(&train_args(&["--epochs", "0"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid value for '--epochs <N>'"),
            "{e}"
        );
        let e = train_config(&train_args(&["--nesterov", "--momentum", "0"])).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid value for '--nesterov'"),
            "{e}"
        );
        let e = head_config(
            &train_args(&["--label-smooth-val", "1.5"]),
            HeadConfig::new(3, 4),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid value for '--label-smooth-val <EPS>'"),
            "{e}"
        );
    }

    #[test]
    fn train_classes_need_a_starting_head() {
        let e = train_config(&train_args(&["--train-classes", "7,8"])).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)), "{e}");
        assert!(e.to_string().contains("(--init or --resume)"), "{e}");
        let cfg = train_config(&train_args(&[
            "--train-classes",
            "7,8",
            "--init",
            "h.safetensors",
        ]))
        .unwrap();
        assert_eq!(cfg.train_classes, Some(vec![7, 8]));
    }

    #[test]
    fn step_schedule_defaults_to_a_third_of_the_epochs() {
        let cfg = train_config(&train_args(&["--lr-schedule", "step", "--epochs", "9"])).unwrap();
        assert_eq!(
            cfg.schedule,
            LrSchedule::Step {
                step_size: 3,
                gamma: STEP_GAMMA
            }
        );
    }
}
