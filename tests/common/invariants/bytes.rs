//! The byte cursor every decoder reads from, and the value decoders that
//! several targets share: margins, data values and labels, each a tag byte
//! choosing an edge case (±0, subnormals, NaN, ±∞, π ± ulps, past f32's
//! range, ...) plus a payload.

/// A cursor over fuzz input; reads past the end give zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        r
    }
}

/// `x` moved by `k` units in the last place (`k > 0` towards +∞), through
/// the bit pattern; for finite, non-zero `x` of one sign only.
pub fn ulps_f32(x: f32, k: i32) -> f32 {
    let b = x.to_bits() as i64;
    let step = if x > 0.0 { k as i64 } else { -(k as i64) };
    f32::from_bits((b + step) as u32)
}

/// [`ulps_f32`] for f64.
pub fn ulps_f64(x: f64, k: i64) -> f64 {
    let b = x.to_bits() as i128;
    let step = if x > 0.0 { k as i128 } else { -(k as i128) };
    f64::from_bits((b + step) as u64)
}

/// A margin of any sign and size, NaN and ±∞ included (tag byte + payload).
pub fn decode_margin_value(b: &mut Bytes) -> f64 {
    use std::f64::consts::PI;
    let tag = b.u8() % 12;
    let p = b.u64();
    let sign = if p & 1 == 0 { 1.0 } else { -1.0 };
    match tag {
        0 => 0.5,
        1 => f64::from_bits(p), // anything, NaN and ±∞ included
        2 => 0.0 * sign,
        3 => sign * f64::from_bits((p >> 1) & 0x000F_FFFF_FFFF_FFFF), // subnormal
        4 => sign * 1e-300 * ((p >> 1) % 1000) as f64,                // tiny
        5 => ulps_f64(PI, (p >> 1) as i8 as i64),                     // π ± 128 ulps
        6 => (PI as f32) as f64 * (1.0 + ((p >> 1) as i8 as f64) * 2f64.powi(-24)), // f32's π ± ulps
        7 => PI + ((p >> 1) % 10_000) as f64 / 1000.0,                              // above π
        8 => -(((p >> 1) % 100_000) as f64) / 10_000.0, // negative, down to −10
        9 => ((p >> 1) % 65_536) as f64 / 65_536.0 * PI, // usual range
        10 => sign * 10f64.powi(((p >> 1) % 309) as i32), // huge, also beyond f32
        _ => sign * f32::MAX as f64 * (1.0 + ((p >> 1) as i8 as f64) * 2f64.powi(-26)), // f32 overflow edge
    }
}

/// A datum: mostly small multiples of 1/16, plus ±0, huge and tiny powers
/// of two (2^±1016, also past f32's range), ~1e-13 (a row of those is below
/// the 1e-12 normalisation epsilon), f32 subnormals, ±f32::MAX, NaN, ±∞ and
/// raw f32/f64 bit patterns.
pub fn decode_value(b: &mut Bytes) -> f64 {
    let tag = b.u8();
    match tag {
        0..=0xDF => ((tag as i32 + 112) % 224 - 112) as f64 / 16.0, // 0 → 0.0
        0xE0 => 0.0,
        0xE1 => -0.0,
        0xE2 => 2f64.powi((b.u8() as i8 as i32) * 8),
        0xE3 => -(2f64.powi((b.u8() as i8 as i32) * 8)),
        0xE4 => f32::from_bits(b.u32()) as f64,
        0xE5 => f64::from_bits(b.u64()),
        0xE6 => f32::from_bits(b.u16() as u32) as f64,
        0xE7 => 1e-13 * (b.u8() as f64 - 128.0) / 16.0,
        0xE8 => f32::MAX as f64,
        0xE9 => -(f32::MAX as f64),
        0xEA => f64::NAN,
        0xEB => f64::INFINITY,
        0xEC => f64::NEG_INFINITY,
        _ => (tag as i32 - 0xF5) as f64, // −9..=10
    }
}

/// A label for `c` classes: mostly in `0..c`, else −1, `c`, `c + x`,
/// `i64::MIN` or `i64::MAX`.
pub fn decode_label(b: &mut Bytes, c: usize) -> i64 {
    let tag = b.u8();
    let c = c as i64;
    match tag {
        0xF0 => -1,
        0xF1 => c,
        0xF2 => i64::MIN,
        0xF3 => i64::MAX,
        0xF4 => c + b.u8() as i64,
        _ => tag as i64 % c.max(1),
    }
}
