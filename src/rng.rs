//! The crate's one random number generator.
//!
//! Every seeded choice the crate makes (the `nn.Linear`-style weight init,
//! the trainer's shuffle, the program's splits and synthetic data) draws from
//! [`SplitMix64`], so a seed means the same thing everywhere and on every
//! platform.

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by the
/// golden-ratio increment and finalised by two xor-shift-multiply rounds.
/// Small, fast, platform-independent; not for cryptography.
///
/// ```
/// use arcface::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.next_f64();
/// assert!((0.0..1.0).contains(&u));
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    ///
    /// ```
    /// let mut g = arcface::SplitMix64::new(0);
    /// assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
    /// ```
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// let mut g = arcface::SplitMix64::new(1);
    /// assert_ne!(g.next_u64(), g.next_u64());
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in $[0, 1)$ on the 2⁻⁵³ grid (the top 53 bits).
    ///
    /// ```
    /// let mut g = arcface::SplitMix64::new(3);
    /// assert!((0..100).map(|_| g.next_f64()).all(|u| (0.0..1.0).contains(&u)));
    /// ```
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` by multiply-shift (Lemire); the bias is below
    /// n·2⁻⁶⁴. `n = 0` gives 0.
    ///
    /// ```
    /// let mut g = arcface::SplitMix64::new(5);
    /// assert!((0..100).all(|_| g.below(3) < 3));
    /// ```
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal draw (Box–Muller, cosine branch; two uniforms).
    ///
    /// ```
    /// let mut g = arcface::SplitMix64::new(9);
    /// let m = (0..10_000).map(|_| g.normal()).sum::<f64>() / 10_000.0;
    /// assert!(m.abs() < 0.05);
    /// ```
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle in place (from the last element down).
    ///
    /// ```
    /// let mut v: Vec<u32> = (0..10).collect();
    /// arcface::SplitMix64::new(2).shuffle(&mut v);
    /// v.sort();
    /// assert_eq!(v, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
