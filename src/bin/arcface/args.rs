//! A small command-line parser: `--name value`, `--name=value` and boolean
//! `--flag`s, each declared once with its help text; unknown or repeated
//! options are errors with a suggestion.

use crate::CliError;
use std::collections::BTreeMap;
use std::str::FromStr;

/// One option: its name (without `--`), a value placeholder (`""` for a
/// boolean flag), and its help line (defaults included).
pub struct Opt {
    pub name: &'static str,
    pub meta: &'static str,
    pub help: &'static str,
}

/// A titled group of options, for the help text.
pub struct Group {
    pub title: &'static str,
    pub opts: &'static [Opt],
}

/// Parsed options.
pub struct Args {
    values: BTreeMap<&'static str, String>,
    command: &'static str,
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn find(groups: &'static [Group], name: &str) -> Option<&'static Opt> {
    groups
        .iter()
        .flat_map(|g| g.opts.iter())
        .find(|o| o.name == name)
}

/// Parses `argv` (after the command name) against `groups`.
pub fn parse(
    command: &'static str,
    argv: &[String],
    groups: &'static [Group],
) -> Result<Args, CliError> {
    let mut values = BTreeMap::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        let Some(body) = a.strip_prefix("--") else {
            return Err(CliError::Usage(format!(
                "unexpected argument {a:?}; options start with --"
            )));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(opt) = find(groups, name) else {
            let best = groups
                .iter()
                .flat_map(|g| g.opts.iter())
                .map(|o| (edit_distance(name, o.name), o.name))
                .min();
            let hint = match best {
                Some((d, n)) if d <= 3 => format!("; did you mean --{n}?"),
                _ => String::new(),
            };
            return Err(CliError::Usage(format!(
                "unknown option --{name} for `arcface {command}`{hint}"
            )));
        };
        let value = if opt.meta.is_empty() {
            if inline.is_some() {
                return Err(CliError::Usage(format!(
                    "--{name} is a flag and takes no value"
                )));
            }
            String::new()
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            match argv.get(i) {
                Some(v) => v.clone(),
                None => {
                    return Err(CliError::Usage(format!(
                        "--{name} needs a value ({})",
                        opt.meta
                    )))
                }
            }
        };
        if values.insert(opt.name, value).is_some() {
            return Err(CliError::Usage(format!("--{name} is given twice")));
        }
        i += 1;
    }
    Ok(Args { values, command })
}

impl Args {
    /// The raw value of `--name`, if given.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `--name` parsed as `T`, if given.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, CliError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|_| {
                CliError::Usage(format!(
                    "--{name}: {v:?} is not a valid {} (see `arcface {} --help`)",
                    kind::<T>(),
                    self.command
                ))
            }),
        }
    }

    /// `--name` parsed as `T`, or `default`.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, CliError> {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// One of `choices` (case-insensitive), or `default`; returns the index.
    pub fn choice(&self, name: &str, choices: &[&str], default: usize) -> Result<usize, CliError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => choices
                .iter()
                .position(|c| c.eq_ignore_ascii_case(v))
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "--{name}: {v:?} is not one of {}",
                        choices.join(", ")
                    ))
                }),
        }
    }
}

fn kind<T>() -> &'static str {
    let n = std::any::type_name::<T>();
    if n.contains("f64") || n.contains("f32") {
        "number"
    } else if n.contains("usize") || n.contains("u64") || n.contains("u32") {
        "non-negative integer"
    } else if n.contains("i64") {
        "integer"
    } else {
        "value"
    }
}

/// The help text of a command.
pub fn help(usage: &str, about: &str, groups: &[Group]) -> String {
    let mut s = format!("{about}\n\nUsage: {usage}\n");
    for g in groups {
        s.push_str(&format!("\n{}:\n", g.title));
        for o in g.opts {
            let left = if o.meta.is_empty() {
                format!("--{}", o.name)
            } else {
                format!("--{} {}", o.name, o.meta)
            };
            if left.len() <= 26 {
                s.push_str(&format!("  {left:<26} {}\n", o.help));
            } else {
                s.push_str(&format!("  {left}\n  {:<26} {}\n", "", o.help));
            }
        }
    }
    s
}
