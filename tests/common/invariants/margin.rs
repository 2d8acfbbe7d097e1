//! `margin_target` on arbitrary cosines and margins: the decoder and the
//! checker, whose tolerances are derived on [`check_margin_t`].

use super::bytes::{decode_margin_value, ulps_f32, ulps_f64, Bytes};
use arcface::{margin_target, Branch, MarginConstants, MarginGrad, Real, SIN_THETA_FLOOR};

/// The cosine fed to [`margin_target`], in the precision under test.
#[derive(Debug, Clone, Copy)]
pub enum Cos {
    F32(f32),
    F64(f64),
}

/// One call of [`margin_target`].
#[derive(Debug, Clone, Copy)]
pub struct MarginCase {
    pub cos: Cos,
    pub margin: f64,
    pub easy: bool,
    pub grad: MarginGrad,
}

/// Cosines: exactly ±1, a few ulps beyond or inside ±1, subnormals, ±0,
/// NaN, ±∞, the margin's own threshold ± a few ulps, and anything else.
pub fn decode_margin(data: &[u8]) -> MarginCase {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let margin = decode_margin_value(&mut b);
    let tag = b.u8() % 10;
    let p = b.u64();
    let sign: f64 = if p & 1 == 0 { 1.0 } else { -1.0 };
    let k = ((p >> 1) as i8 as i32).clamp(-16, 16);
    let f64_path = flags & 1 != 0;
    let t = MarginConstants::new(margin).threshold;
    let cos = if f64_path {
        Cos::F64(match tag {
            0 => f64::from_bits(p),
            1 => sign,
            2 => ulps_f64(sign, k as i64),
            3 => 0.0 * sign,
            4 => sign * f64::from_bits((p >> 1) & 0x000F_FFFF_FFFF_FFFF),
            5 => f64::NAN,
            6 => sign * f64::INFINITY,
            7 if t.is_finite() && t != 0.0 => ulps_f64(t, k as i64),
            8 => 1.0 - ((p >> 1) % 4096) as f64 * 2f64.powi(-53), // the SIN_THETA_FLOOR band
            _ => ((p >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0,
        })
    } else {
        let sign = sign as f32;
        Cos::F32(match tag {
            0 => f32::from_bits(p as u32),
            1 => sign,
            2 => ulps_f32(sign, k),
            3 => 0.0 * sign,
            4 => sign * f32::from_bits(((p >> 1) as u32) & 0x007F_FFFF),
            5 => f32::NAN,
            6 => sign * f32::INFINITY,
            7 if (t as f32).is_finite() && t as f32 != 0.0 => ulps_f32(t as f32, k),
            8 => 1.0 - ((p >> 1) % 64) as f32 * 2f32.powi(-24),
            _ => ((p >> 40) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0,
        })
    };
    MarginCase {
        cos,
        margin,
        easy: flags & 2 != 0,
        grad: if flags & 4 != 0 {
            MarginGrad::StraightThrough
        } else {
            MarginGrad::Exact
        },
    }
}

/// Runs [`check_margin_t`] in the precision of the case's cosine.
pub fn check_margin(case: &MarginCase) {
    match case.cos {
        Cos::F32(c) => check_margin_t::<f32>(c, case, f32::EPSILON as f64 / 2.0),
        Cos::F64(c) => check_margin_t::<f64>(c, case, f64::EPSILON / 2.0),
    }
}

/// Invariants of [`margin_target`] for a cosine `c` of type `T` (unit
/// roundoff `u`, 2⁻²⁴ for f32 and 2⁻⁵³ for f64):
///
/// 1. **No panic**, whatever the input (NaN cosine, NaN or infinite margin).
/// 2. **Branch.** With $\bar c = \min(\max(c, -1), 1)$ and the threshold
///    rounded once to `T` (D8), the branch is `Phi` iff $\bar c > 0$ (easy)
///    or $\bar c > t_T$ (normal), with strict `>`; otherwise
///    `EasyCos` or `Fallback`. Against the exact f64 threshold $t$ the
///    branch may differ only for $|\bar c - t| \le 2u|t|$ (one rounding).
/// 3. **Finite.** A finite cosine and a finite margin give a finite value
///    and a finite derivative (D1, D2, D7).
/// 4. **Value.** It agrees with the f64 evaluation of the documented
///    formula at the same $\bar c$ and the exact margin $m$:
///    $|\hat\phi - \cos(\arccos\bar c + m)| \le 4(u + u_{64})(3 + |m|)$.
///    Derivation: $\bar c$ is exact in both; `acos` in `T` has relative
///    error ≤ 2u, so $|\delta\theta| \le 2u\pi$; rounding $m$ to `T` costs
///    $u|m|$; the sum $\theta+m$ costs $u(\pi + |m|)$; `cos` ≤ 2u absolute;
///    the Lipschitz constant of cos is 1. Total $u(3\pi + 2 + 2|m|) \le
///    4u(3 + |m|)$, and the same again for the f64 reference. There is no
///    $\sqrt{u}$ term because both sides start from the same cosine: the
///    ill-conditioning of `acos` at ±1 ($\delta\theta \approx
///    \sqrt{2\delta c}$) applies to errors *in c*, and there are none here
///    (the step target, where the f32 and f64 cosines differ, checks
///    finiteness, not agreement). For $|m| \gtrsim 2^{21}$ in f32 the bound
///    exceeds 2 and only finiteness is left: `T` cannot resolve θ next to m.
///    Fallback: $|\hat\phi - (\bar c - m\sin m)| \le 2(u+u_{64})(1 + |m \sin m|)$
///    (two roundings: $s$ to `T`, the difference), unless $|m\sin m|$ is
///    beyond `T`'s range, where only finiteness is asked; easy fallback:
///    exactly $\bar c$.
/// 5. **Derivative.** Straight-through and both fallbacks: exactly 1.
///    `Exact`: $d = \sin(\theta+m)/\sigma$, $\sigma = \max(\sqrt{(1-\bar c)(1+\bar c)},
///    10^{-6})$ (D2). The numerator carries the value's error $e_v$, σ a
///    relative error ≤ 4u (two products and a square root, the floor
///    rounded to `T`), the division u: $|\hat d - d| \le e_v/\sigma + 8(u+u_{64})|d|$.
pub fn check_margin_t<T: Real>(c: T, case: &MarginCase, u: f64) {
    let k = MarginConstants::new(case.margin);
    let (v, d, branch) = margin_target(c, &k, case.easy, case.grad);
    let cf = c.to_f64();
    if cf.is_nan() {
        return; // only "no panic": a NaN cosine cannot come out of finite data
    }
    let ctx = || format!("{case:?} (T = {})", T::NAME);
    let cc = cf.clamp(-1.0, 1.0);
    check_branch::<T>(branch, cc, &k, case, u, &ctx);

    if !case.margin.is_finite() {
        return; // D7: rejected before it reaches a head; here only "no panic"
    }
    // 3. finite
    assert!(
        v.is_finite_() && d.is_finite_(),
        "finite cosine and margin gave value {v}, derivative {d}, {}",
        ctx()
    );
    check_value::<T>(branch, (v.to_f64(), d.to_f64()), cc, &k, case, u, &ctx);
}

/// Invariant 2: the branch follows the strict-comparison rule in `T`, and
/// differs from the exact f64 rule only within one rounding of the
/// threshold.
fn check_branch<T: Real>(
    branch: Branch,
    cc: f64,
    k: &MarginConstants,
    case: &MarginCase,
    u: f64,
    ctx: &dyn Fn() -> String,
) {
    let cc_t = T::from_f64(cc);
    let t_t = T::from_f64(k.threshold);
    let take_phi = if case.easy {
        cc_t > T::ZERO
    } else {
        cc_t > t_t
    };
    let want = match (take_phi, case.easy) {
        (true, _) => Branch::Phi,
        (false, true) => Branch::EasyCos,
        (false, false) => Branch::Fallback,
    };
    assert_eq!(branch, want, "branch, {}", ctx());
    if !case.easy && k.threshold.is_finite() && (cc > k.threshold) != take_phi {
        assert!(
            (cc - k.threshold).abs() <= 2.0 * u * k.threshold.abs(),
            "branch differs from the exact f64 rule away from the threshold, {}",
            ctx()
        );
    }
}

/// Invariants 4 and 5: the value `v` and derivative `d` (as f64) against
/// the f64 evaluation of the branch's formula at the clamped cosine `cc`.
fn check_value<T: Real>(
    branch: Branch,
    (v, d): (f64, f64),
    cc: f64,
    k: &MarginConstants,
    case: &MarginCase,
    u: f64,
    ctx: &dyn Fn() -> String,
) {
    let uu = u + f64::EPSILON / 2.0;
    let m = case.margin;
    match branch {
        Branch::EasyCos => {
            assert_eq!(v, cc, "easy fallback keeps the cosine, {}", ctx());
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Fallback if k.sinm_m.abs() > T::MAX.to_f64() => {
            // m sin m itself is beyond T: no value to agree with, finite is all
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Fallback => {
            let want = cc - k.sinm_m;
            let tol = 2.0 * uu * (1.0 + k.sinm_m.abs());
            assert!(
                (v - want).abs() <= tol,
                "fallback {v} vs {want} (tol {tol:e}), {}",
                ctx()
            );
            assert_eq!(d, 1.0, "{}", ctx());
        }
        Branch::Phi => {
            let theta = cc.acos();
            let want = (theta + m).cos();
            let tol_v = 4.0 * uu * (3.0 + m.abs());
            assert!(
                (v - want).abs() <= tol_v,
                "phi {v} vs {want} (tol {tol_v:e}), {}",
                ctx()
            );
            match case.grad {
                MarginGrad::StraightThrough => assert_eq!(d, 1.0, "{}", ctx()),
                MarginGrad::Exact => {
                    let sigma = ((1.0 - cc) * (1.0 + cc)).sqrt().max(SIN_THETA_FLOOR);
                    let want_d = (theta + m).sin() / sigma;
                    let tol_d = tol_v / sigma + 8.0 * uu * want_d.abs();
                    assert!(
                        (d - want_d).abs() <= tol_d,
                        "derivative {d} vs {want_d} (tol {tol_d:e}), {}",
                        ctx()
                    );
                }
            }
        }
    }
}
