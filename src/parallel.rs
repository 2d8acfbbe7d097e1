//! The thread policy: whether a piece of the step runs on more than one
//! thread, into how many blocks of rows it is split, and the one helper,
//! [`for_blocks`], that runs those blocks.
//!
//! Every split follows one rule ([`RowSplit::new`]): `rows` are cut into
//! contiguous blocks of `ceil(rows / wanted)` rows, so a block count depends
//! only on the shape, the thread count and the host's core count, never on
//! timing. Partial results (maxima, sums, partial ∂X̂) are combined by the
//! callers in block order. The same input and thread count therefore give
//! the same bits on a given host, run after run.
//!
//! # When to split
//!
//! Each threshold below is where splitting stopped costing more than it
//! saved on the reference host (two cores; the measurements and the
//! commands that produced them are in `docs/perf.md`). Waking a rayon
//! worker and merging partial results costs tens of microseconds, so a
//! piece of work runs on one thread until it is clearly larger than that.
//!
//! # Physical cores and SMT siblings
//!
//! The small-batch path (N ≤ [`crate::SMALL_BATCH`]) streams W once, each
//! block of rows against every sample, and accumulates its share of ∂X̂ in
//! an N×D buffer of its own (16 KiB at N = 8, D = 512, f32), next to a
//! per-block scratch. Two blocks on two SMT siblings of one core share that
//! core's L1 data cache (32–48 KiB), load ports and prefetchers: the two
//! accumulators and the two W streams evict each other, so the split runs
//! slower than one thread instead of merely no faster. That is the likely
//! reason why two threads lost to one at (8, 512, 10 000, 1) on an AMD EPYC
//! host while they win on the Intel reference host, whose two vCPUs are
//! separate cores (`lscpu`: one thread per core). The small-batch split
//! therefore uses at most one block per physical core of the CPUs this
//! process may run on ([`physical_cores`], read once from Linux's sysfs;
//! where it cannot be read, no cap). The count is fixed for a host, so the
//! result stays deterministic per thread count; should it report too few
//! cores, the worst case is the one-thread speed. A pool larger
//! than the core count splits this path like one of the core count. The
//! products (faer, register-blocked, compute-bound) and the class pass keep
//! their thresholds: no host was reported slower there with more threads.

use std::ops::Range;
use std::sync::OnceLock;

/// How many threads the head may use.
///
/// ```
/// use arcface::Threads;
/// assert_eq!(Threads::default(), Threads::Rayon);
/// assert_eq!(Threads::Sequential.count(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    /// Everything on the calling thread.
    Sequential,
    /// The current rayon pool (`rayon::current_num_threads()`); small
    /// problems still run on one thread, where that is faster.
    #[default]
    Rayon,
}

impl Threads {
    /// The number of threads this setting stands for here and now.
    ///
    /// ```
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    /// assert_eq!(pool.install(|| arcface::Threads::Rayon.count()), 2);
    /// ```
    pub fn count(self) -> usize {
        match self {
            Threads::Sequential => 1,
            Threads::Rayon => rayon::current_num_threads().max(1),
        }
    }
}

/// The small-batch forward and backward stream W on one thread below this
/// many bytes of W: one core already draws most of the bandwidth there.
const SMALL_BATCH_PAR_MIN_BYTES: usize = 4 << 20;

/// A matrix product runs on one thread below this many flops...
const PRODUCT_PAR_MIN_FLOPS: f64 = 48e6;
/// ...unless it streams an operand of at least this many bytes
/// (memory-bound products).
const PRODUCT_PAR_MIN_BYTES: usize = 4 << 20;

/// When the backward products are too small to split, the two of them
/// (∂X̂ and ∂W) still run side by side on two threads from this many flops
/// each: below it, waking a thread costs more than it saves.
const OVERLAP_MIN_FLOPS: f64 = 10e6;

/// A pass over the weight rows (the normalisation Jacobian of ∂W) runs on
/// one thread below this many elements.
const ROW_PASS_PAR_MIN_ELEMS: usize = 1 << 17;

/// A pass over samples that gathers rows of W per sample (sub-centre
/// cleaning: N·K·D elements read) runs on one thread below this many
/// elements, like a pass over weight rows: the same memory-bound work.
const SAMPLE_PASS_PAR_MIN_ELEMS: usize = ROW_PASS_PAR_MIN_ELEMS;

/// The class pass splits its class blocks over threads from this many
/// products N·C·K: each of its phases is one parallel region, and below it
/// the regions cost more than they saved.
const CLASS_PASS_PAR_MIN_PRODUCTS: usize = 1 << 20;

/// Blocks wanted by the small-batch forward and backward, which stream
/// `w_bytes` of W: at most one per thread, per-thread buffer `slots` and
/// physical core (see the module docs).
pub(crate) fn small_batch_blocks(w_bytes: usize, threads: usize, slots: usize) -> usize {
    small_batch_blocks_on(w_bytes, threads, slots, physical_cores())
}

/// [`small_batch_blocks`] on a host with `cores` physical cores (`None`:
/// unknown, no cap).
fn small_batch_blocks_on(
    w_bytes: usize,
    threads: usize,
    slots: usize,
    cores: Option<usize>,
) -> usize {
    if threads > 1 && w_bytes >= SMALL_BATCH_PAR_MIN_BYTES {
        threads.min(slots).min(cores.unwrap_or(usize::MAX)).max(1)
    } else {
        1
    }
}

/// Blocks wanted by a product of `flops` whose largest operand has
/// `big_operand_bytes`.
pub(crate) fn product_blocks(flops: f64, big_operand_bytes: usize, threads: usize) -> usize {
    if threads > 1 && (flops >= PRODUCT_PAR_MIN_FLOPS || big_operand_bytes >= PRODUCT_PAR_MIN_BYTES)
    {
        threads
    } else {
        1
    }
}

/// Whether the two backward products, each of `flops` and each too small to
/// split (`product_blocks == 1`), should run side by side on two threads.
/// Each stays a sequential product: the same bits as on one thread.
pub(crate) fn overlap_backward(flops: f64, product_blocks: usize, threads: usize) -> bool {
    threads > 1 && flops >= OVERLAP_MIN_FLOPS && product_blocks == 1
}

/// Blocks wanted by a pass over `elems` elements of weight rows.
pub(crate) fn row_pass_blocks(elems: usize, threads: usize) -> usize {
    if threads > 1 && elems >= ROW_PASS_PAR_MIN_ELEMS {
        threads
    } else {
        1
    }
}

/// Blocks wanted by a pass over samples that reads `elems` elements.
pub(crate) fn sample_pass_blocks(elems: usize, threads: usize) -> usize {
    if threads > 1 && elems >= SAMPLE_PASS_PAR_MIN_ELEMS {
        threads
    } else {
        1
    }
}

/// Blocks of classes wanted by the class pass over `products` = N·C·K, at
/// most one per per-thread buffer `slots`.
pub(crate) fn class_pass_blocks(products: usize, threads: usize, slots: usize) -> usize {
    if threads > 1 && products >= CLASS_PASS_PAR_MIN_PRODUCTS {
        threads.min(slots).max(1)
    } else {
        1
    }
}

/// Contiguous blocks of rows, the first ones full and the last one
/// possibly shorter: the one way this crate splits work over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowSplit {
    rows: usize,
    per: usize,
    blocks: usize,
}

impl RowSplit {
    /// `rows` in at most `wanted` blocks of `ceil(rows / wanted)` rows (at
    /// least one block, and no empty block).
    pub(crate) fn new(rows: usize, wanted: usize) -> Self {
        let per = rows.div_ceil(wanted.max(1)).max(1);
        Self {
            rows,
            per,
            blocks: rows.div_ceil(per).max(1),
        }
    }

    /// The number of blocks.
    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }

    /// Block `index`.
    pub(crate) fn block(&self, index: usize) -> Block {
        let first = (index * self.per).min(self.rows);
        Block {
            index,
            rows: first..(first + self.per).min(self.rows),
        }
    }
}

/// One block of a [`RowSplit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// Its position, 0-based: the slot of its per-block buffers.
    pub(crate) index: usize,
    /// The rows it covers.
    pub(crate) rows: Range<usize>,
}

/// A buffer cut along with the blocks of a [`RowSplit`]: each block's
/// closure receives its own piece.
pub(crate) trait Parts: Send + Sized {
    /// What one block receives.
    type Piece: Send;
    /// Splits after the first `blocks` blocks (counted from this part's
    /// first block).
    fn split_at(self, split: &RowSplit, blocks: usize) -> (Self, Self);
    /// The piece of the one block this part covers.
    fn piece(self) -> Self::Piece;
}

/// A row-major buffer of `.1` elements a row, one row per split row: each
/// block gets its rows.
pub(crate) struct Rows<'a, A>(pub &'a mut [A], pub usize);

/// A buffer of `.1` elements per block (per-thread scratch, partial
/// results): block `b` gets elements `b·len .. (b + 1)·len`.
pub(crate) struct PerBlock<'a, A>(pub &'a mut [A], pub usize);

impl<'a, A: Send> Parts for Rows<'a, A> {
    type Piece = &'a mut [A];
    fn split_at(self, split: &RowSplit, blocks: usize) -> (Self, Self) {
        let at = (blocks * split.per * self.1).min(self.0.len());
        let (a, b) = self.0.split_at_mut(at);
        (Rows(a, self.1), Rows(b, self.1))
    }
    fn piece(self) -> &'a mut [A] {
        self.0
    }
}

impl<'a, A: Send> Parts for PerBlock<'a, A> {
    type Piece = &'a mut [A];
    fn split_at(self, _: &RowSplit, blocks: usize) -> (Self, Self) {
        let at = (blocks * self.1).min(self.0.len());
        let (a, b) = self.0.split_at_mut(at);
        (PerBlock(a, self.1), PerBlock(b, self.1))
    }
    fn piece(self) -> &'a mut [A] {
        let len = self.1.min(self.0.len());
        &mut self.0[..len]
    }
}

macro_rules! tuple_parts {
    ($($p:ident $v:ident $i:tt),+) => {
        impl<$($p: Parts),+> Parts for ($($p,)+) {
            type Piece = ($($p::Piece,)+);
            fn split_at(self, split: &RowSplit, blocks: usize) -> (Self, Self) {
                $(let $v = self.$i.split_at(split, blocks);)+
                (($($v.0,)+), ($($v.1,)+))
            }
            fn piece(self) -> Self::Piece {
                ($(self.$i.piece(),)+)
            }
        }
    };
}
tuple_parts!(A a 0, B b 1);
tuple_parts!(A a 0, B b 1, C c 2);
tuple_parts!(A a 0, B b 1, C c 2, D d 3);

/// Runs `f(block, piece)` for every block of `split`, on the current rayon
/// pool when there is more than one block (on the calling thread
/// otherwise), and folds the results with `combine`. The blocks are halved
/// recursively, so the fold's grouping depends only on the block count.
pub(crate) fn for_blocks<P, R, F, C>(split: &RowSplit, parts: P, f: F, combine: C) -> R
where
    P: Parts,
    R: Send,
    F: Fn(Block, P::Piece) -> R + Sync,
    C: Fn(R, R) -> R + Sync,
{
    run(split, 0..split.blocks, parts, &f, &combine)
}

fn run<P, R, F, C>(split: &RowSplit, blocks: Range<usize>, parts: P, f: &F, combine: &C) -> R
where
    P: Parts,
    R: Send,
    F: Fn(Block, P::Piece) -> R + Sync,
    C: Fn(R, R) -> R + Sync,
{
    if blocks.len() <= 1 {
        return f(split.block(blocks.start), parts.piece());
    }
    let mid = blocks.start + blocks.len() / 2;
    let (a, b) = parts.split_at(split, mid - blocks.start);
    let (x, y) = rayon::join(
        || run(split, blocks.start..mid, a, f, combine),
        || run(split, mid..blocks.end, b, f, combine),
    );
    combine(x, y)
}

/// Physical cores among the CPUs this process may run on: distinct sets of
/// SMT siblings, read once from Linux's `/proc` and sysfs. `None` where
/// they cannot be read (other systems, masked sysfs).
pub(crate) fn physical_cores() -> Option<usize> {
    static CORES: OnceLock<Option<usize>> = OnceLock::new();
    *CORES.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
        count_cores(allowed, |cpu| {
            let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
            std::fs::read_to_string(format!("{dir}/core_cpus_list"))
                .or_else(|_| std::fs::read_to_string(format!("{dir}/thread_siblings_list")))
                .ok()
        })
    })
}

/// The number of distinct sibling sets (`siblings(cpu)`, a CPU list) among
/// the CPUs of the list `allowed`.
fn count_cores(allowed: &str, siblings: impl Fn(usize) -> Option<String>) -> Option<usize> {
    let mut cores: Vec<Vec<usize>> = Vec::new();
    for cpu in parse_cpu_list(allowed)? {
        let set = parse_cpu_list(&siblings(cpu)?)?;
        if !cores.contains(&set) {
            cores.push(set);
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

/// A kernel CPU list such as `0-3,8,10-11`, in order.
fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().ok()?;
                let b: usize = b.trim().parse().ok()?;
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rows_in_full_blocks_and_never_leaves_one_empty() {
        for rows in 0..40 {
            for wanted in 0..12 {
                let s = RowSplit::new(rows, wanted);
                assert!(s.blocks() >= 1 && s.blocks() <= wanted.max(1));
                let mut next = 0;
                for b in 0..s.blocks() {
                    let blk = s.block(b);
                    assert_eq!(blk.rows.start, next);
                    assert!(!blk.rows.is_empty() || rows == 0);
                    next = blk.rows.end;
                }
                assert_eq!(next, rows, "rows {rows}, wanted {wanted}");
            }
        }
        // the historical splits: ceil(rows / wanted) rows a block
        assert_eq!(RowSplit::new(10_000, 2).per, 5_000);
        assert_eq!(RowSplit::new(5, 4).blocks(), 3);
        assert_eq!(RowSplit::new(1000, 64).blocks(), 63);
    }

    #[test]
    fn every_block_gets_its_rows_and_its_slot() {
        let split = RowSplit::new(10, 3);
        let mut rows: Vec<usize> = vec![0; 10 * 2];
        let mut slots = vec![0usize; 3 * 4];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let total = pool.install(|| {
            for_blocks(
                &split,
                (Rows(&mut rows, 2), PerBlock(&mut slots, 4)),
                |b, (r, s)| {
                    assert_eq!(r.len(), b.rows.len() * 2);
                    assert_eq!(s.len(), 4);
                    r.fill(b.index + 1);
                    s.fill(b.index + 1);
                    b.rows.len()
                },
                |x, y| x + y,
            )
        });
        assert_eq!(total, 10);
        assert_eq!(rows[..8], [1; 8]);
        assert_eq!(rows[8..16], [2; 8]);
        assert_eq!(rows[16..], [3; 4]);
        assert_eq!(slots, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
        // one block runs on the caller with the whole buffers
        let one = RowSplit::new(10, 1);
        let n = for_blocks(
            &one,
            (Rows(&mut rows, 2), PerBlock(&mut slots, 4)),
            |b, (r, s)| {
                assert_eq!((b.index, r.len(), s.len()), (0, 20, 4));
                1
            },
            |x: usize, y| x + y,
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn small_batch_split_counts_physical_cores() {
        let big = SMALL_BATCH_PAR_MIN_BYTES;
        // two separate cores (the Intel reference host): two blocks
        assert_eq!(small_batch_blocks_on(big, 2, 2, Some(2)), 2);
        // two SMT siblings of one core: one block
        assert_eq!(small_batch_blocks_on(big, 2, 2, Some(1)), 1);
        // unknown topology: no cap
        assert_eq!(small_batch_blocks_on(big, 4, 8, None), 4);
        // W too small to pay for a second thread
        assert_eq!(small_batch_blocks_on(big - 1, 2, 2, Some(2)), 1);
        assert_eq!(small_batch_blocks_on(big, 1, 2, Some(2)), 1);
        assert_eq!(small_batch_blocks_on(big, 16, 4, Some(8)), 4);
    }

    #[test]
    fn thresholds_decide_as_documented() {
        assert_eq!(product_blocks(PRODUCT_PAR_MIN_FLOPS, 0, 4), 4);
        assert_eq!(product_blocks(1.0, PRODUCT_PAR_MIN_BYTES, 4), 4);
        assert_eq!(product_blocks(1.0, 1, 4), 1);
        assert_eq!(product_blocks(1e12, 1 << 30, 1), 1);
        assert!(overlap_backward(OVERLAP_MIN_FLOPS, 1, 2));
        assert!(!overlap_backward(OVERLAP_MIN_FLOPS, 2, 2));
        assert!(!overlap_backward(OVERLAP_MIN_FLOPS, 1, 1));
        assert_eq!(row_pass_blocks(ROW_PASS_PAR_MIN_ELEMS, 3), 3);
        assert_eq!(row_pass_blocks(ROW_PASS_PAR_MIN_ELEMS - 1, 3), 1);
        assert_eq!(class_pass_blocks(CLASS_PASS_PAR_MIN_PRODUCTS, 8, 2), 2);
        assert_eq!(class_pass_blocks(CLASS_PASS_PAR_MIN_PRODUCTS - 1, 8, 8), 1);
    }

    #[test]
    fn counts_cores_from_sibling_lists() {
        let parse = |s: &str| parse_cpu_list(s).unwrap();
        assert_eq!(parse("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        // two vCPUs on two cores
        let separate = |cpu: usize| Some(format!("{cpu}\n"));
        assert_eq!(count_cores("0-1", separate), Some(2));
        // two vCPUs, SMT siblings of one core
        assert_eq!(count_cores("0-1", |_| Some("0-1\n".into())), Some(1));
        // 16 vCPUs as 8 cores, siblings numbered n and n + 8
        let interleaved = |cpu: usize| Some(format!("{},{}", cpu % 8, cpu % 8 + 8));
        assert_eq!(count_cores("0-15", interleaved), Some(8));
        // restricted to one core's two siblings (taskset -c 0,8)
        assert_eq!(count_cores("0,8", interleaved), Some(1));
        // unreadable topology
        assert_eq!(count_cores("0-1", |_| None), None);
    }

    #[test]
    fn this_host_reads_as_at_least_one_core() {
        // None only where sysfs cannot be read; then nothing is capped
        assert!(physical_cores().is_none_or(|c| c >= 1));
    }
}
