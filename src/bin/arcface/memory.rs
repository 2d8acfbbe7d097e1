//! Memory the program is about to ask for, checked before it asks: a
//! [`Need`] lists the large buffers of a step (by what they hold), and
//! [`Need::check`] compares their sum with what the machine can give, so
//! that a run that would not fit is an error saying how much it needs
//! instead of an abort on a failed allocation. [`try_vec`] is the fallible
//! allocation every buffer sized by a user or a file goes through.
//!
//! What the machine can give is the least of: the memory Linux reports
//! available (`MemAvailable` plus free swap, from `/proc/meminfo`), the
//! room left under the process's cgroup memory limit, and the room left in
//! its address-space limit (`ulimit -v`). Elsewhere, or when none of these
//! can be read, only the address space bounds it.

use crate::CliError;

/// The most bytes one allocation (or a whole run) can hold: Rust's limit
/// on the size of one object.
const ADDRESS_SPACE: u128 = isize::MAX as u128;

/// Buffers a step will allocate, each with what it holds and its size.
#[derive(Debug, Default)]
pub struct Need {
    parts: Vec<(&'static str, u128)>,
}

impl Need {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `count` elements of `size` bytes for `what` (a part of the same
    /// name adds up).
    pub fn add(&mut self, what: &'static str, count: u128, size: usize) -> &mut Self {
        let bytes = count.saturating_mul(size as u128);
        match self.parts.iter_mut().find(|p| p.0 == what) {
            Some(p) => p.1 = p.1.saturating_add(bytes),
            None => self.parts.push((what, bytes)),
        }
        self
    }

    /// Every part of `other`, added to these.
    pub fn merge(&mut self, other: &Need) -> &mut Self {
        for &(what, bytes) in &other.parts {
            self.add(what, bytes, 1);
        }
        self
    }

    /// The sum, in bytes.
    pub fn total(&self) -> u128 {
        self.parts.iter().fold(0u128, |a, p| a.saturating_add(p.1))
    }

    /// `745.1 GiB (weights 238.4 GiB, gradient 238.4 GiB, …)`: the parts of
    /// at least a hundredth of the total, largest first.
    pub fn describe(&self) -> String {
        let total = self.total();
        let mut parts: Vec<&(&str, u128)> = self
            .parts
            .iter()
            .filter(|p| p.1 > 0 && p.1.saturating_mul(100) >= total)
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        let list: Vec<String> = parts
            .iter()
            .map(|(w, b)| format!("{w} {}", bytes(*b)))
            .collect();
        format!("{} ({})", bytes(total), list.join(", "))
    }

    /// Ok when the sum fits what the machine can give (see the module
    /// documentation); else an error: `{subject} needs about …, more than
    /// the … available{hint}`.
    pub fn check(&self, subject: &str, hint: &str) -> Result<(), CliError> {
        self.check_against(available(), subject, hint)
    }

    fn check_against(
        &self,
        available: Option<u64>,
        subject: &str,
        hint: &str,
    ) -> Result<(), CliError> {
        let total = self.total();
        let largest = self.parts.iter().map(|p| p.1).max().unwrap_or(0);
        let room = match available {
            _ if total > ADDRESS_SPACE || largest > ADDRESS_SPACE => {
                return Err(CliError::Memory(format!(
                    "{subject} needs about {}, more than this machine's address space can hold{hint}",
                    self.describe()
                )))
            }
            Some(a) => a as u128,
            None => return Ok(()),
        };
        if total > room {
            return Err(CliError::Memory(format!(
                "{subject} needs about {}, more than the {} of memory available{hint}",
                self.describe(),
                bytes(room)
            )));
        }
        Ok(())
    }
}

/// `512 B`, `6.2 MiB`, `745.1 GiB`, `2.0e6 TiB`.
pub fn bytes(b: u128) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{b} B"),
        _ if x >= 1e5 => format!("{x:.1e} {}", UNITS[u]),
        _ => format!("{x:.1} {}", UNITS[u]),
    }
}

/// An empty vector with room for `n` elements, or an error naming `what`
/// and the bytes it needed.
pub fn try_vec<T>(n: usize, what: &str) -> Result<Vec<T>, CliError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        CliError::Memory(format!(
            "cannot allocate {} for {what}",
            bytes((n as u128).saturating_mul(std::mem::size_of::<T>() as u128))
        ))
    })?;
    Ok(v)
}

/// The bytes this process can still allocate, where the system says (see
/// the module documentation).
pub fn available() -> Option<u64> {
    [meminfo(), cgroup_room(), address_space_room()]
        .into_iter()
        .flatten()
        .min()
}

/// A `Key:  123 kB` line's value in bytes.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `MemAvailable` plus `SwapFree`.
fn meminfo() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail = kb_field(&s, "MemAvailable:")?;
    Some(avail.saturating_add(kb_field(&s, "SwapFree:").unwrap_or(0)))
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Limit minus usage of the cgroup (v2, else v1), when there is a limit.
fn cgroup_room() -> Option<u64> {
    let (limit, usage) = match read_u64("/sys/fs/cgroup/memory.max") {
        Some(l) => (l, read_u64("/sys/fs/cgroup/memory.current")?),
        None => (
            read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes")?,
            read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes")?,
        ),
    };
    // v1 reports "no limit" as a number near 2^63
    (limit < 1 << 60).then(|| limit.saturating_sub(usage))
}

/// `ulimit -v` minus the address space in use (`VmSize`).
fn address_space_room() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?; // "unlimited" does not parse
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(soft.saturating_sub(kb_field(&status, "VmSize:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes(5 << 40), "5.0 TiB");
    }

    #[test]
    fn a_need_beyond_the_memory_or_the_address_space_is_an_error_listing_its_parts() {
        let mut n = Need::new();
        n.add("weights", 1 << 20, 4).add("gradient", 1 << 20, 4);
        n.add("weights", 1 << 20, 4);
        assert_eq!(n.total(), 12 << 20);
        assert!(n.check_against(Some(13 << 20), "x", "").is_ok());
        assert!(n.check_against(None, "x", "").is_ok());
        let e = n
            .check_against(Some(1 << 20), "the head", "; try less")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the head needs about 12.0 MiB (weights 8.0 MiB, gradient 4.0 MiB), \
             more than the 1.0 MiB of memory available; try less"
        );
        let mut huge = Need::new();
        huge.add("weights", u128::MAX / 2, 8);
        let e = huge.check_against(None, "h", "").unwrap_err().to_string();
        assert!(e.contains("address space"), "{e}");
    }

    #[test]
    fn the_system_reports_some_memory() {
        if cfg!(target_os = "linux") {
            assert!(available().is_some_and(|a| a > 0));
        }
        assert!(try_vec::<u64>(usize::MAX / 16, "a test").is_err());
        assert_eq!(try_vec::<u8>(10, "x").unwrap().capacity(), 10);
    }
}
