//! Upper tails of the count distributions the spike test uses: P(X ≥ x) for a Poisson and for a
//! negative binomial with a given mean. Written for counts from 0 to tens of thousands and for
//! non-integer (severity-weighted) counts, which are read through the continuous forms of the
//! same tails (the regularized incomplete gamma and beta functions).
//!
//! Everything is computed in log space or by continued fractions that only ever produce the
//! smaller of the two tails directly, so a tail of 1e-300 comes out as such rather than as
//! `1 - 1`; results are clamped to [0, 1] and never NaN for finite, non-negative inputs.

use std::f64::consts::PI;

/// Enough for the continued fractions to converge for arguments up to about 10^8.
const MAX_ITERATIONS: usize = 200_000;
const EPS: f64 = 1e-15;
const TINY: f64 = 1e-300;

/// ln Γ(z) for z > 0: Stirling's series past 10, shifted there by the recurrence
/// Γ(z + 1) = z Γ(z) below it. Accurate to about 1e-14 relative.
pub fn ln_gamma(z: f64) -> f64 {
    if z <= 0.0 {
        return f64::INFINITY;
    }
    let mut shift = 0.0;
    let mut z = z;
    while z < 10.0 {
        shift += z.ln();
        z += 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Bernoulli terms B_2k / (2k (2k - 1) z^(2k - 1)).
    let series = inv
        * (1.0 / 12.0
            - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0 - inv2 / 1188.0))));
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series - shift
}

/// P(X ≥ x) for X ~ Poisson(mean). For integer x this is the regularized lower incomplete gamma
/// function P(x, mean).
pub fn poisson_upper(x: f64, mean: f64) -> f64 {
    if x <= 0.0 || x.is_nan() {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    clamp(gamma_lower_regularized(x, mean))
}

/// P(X ≥ x) for X negative binomial with the given mean and dispersion α, so that
/// Var X = mean + α mean². α = 0 is the Poisson.
///
/// With r = 1/α and q = mean / (r + mean), P(X ≥ x) = I_q(x, r), the regularized incomplete beta.
pub fn negbin_upper(x: f64, mean: f64, alpha: f64) -> f64 {
    if x <= 0.0 || x.is_nan() {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    // Below this the negative binomial is the Poisson to within rounding, and the beta's
    // continued fraction would need r (huge) iterations.
    if alpha * mean < 1e-9 || alpha <= 0.0 {
        return poisson_upper(x, mean);
    }
    let r = 1.0 / alpha;
    let q = mean / (r + mean);
    clamp(beta_regularized(q, x, r))
}

fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// P(a, z) = γ(a, z) / Γ(a): the series below a + 1, one minus the continued fraction for
/// Q(a, z) above it, so that the small tail is always the one computed directly.
fn gamma_lower_regularized(a: f64, z: f64) -> f64 {
    let log_prefix = a * z.ln() - z - ln_gamma(a);
    if z < a + 1.0 {
        // Σ z^n / (a (a+1) … (a+n)).
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut ap = a;
        for _ in 0..MAX_ITERATIONS {
            ap += 1.0;
            term *= z / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        (log_prefix + sum.ln()).exp()
    } else {
        // Q(a, z) by the modified Lentz method on its continued fraction.
        let mut b = z + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITERATIONS {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        1.0 - (log_prefix + h.ln()).exp()
    }
}

/// I_x(a, b), the regularized incomplete beta function, for 0 ≤ x ≤ 1 and a, b > 0.
fn beta_regularized(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_prefix = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    // The continued fraction converges fast below the mean of the beta; above it, the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) keeps the directly computed side the small one.
    if x < (a + 1.0) / (a + b + 2.0) {
        (log_prefix + beta_fraction(x, a, b).ln() - a.ln()).exp()
    } else {
        1.0 - (log_prefix + beta_fraction(1.0 - x, b, a).ln() - b.ln()).exp()
    }
}

/// The continued fraction of I_x(a, b) (without its prefix), by the modified Lentz method.
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..MAX_ITERATIONS {
        let m = m as f64;
        let m2 = 2.0 * m;
        // The even step: m (b - m) x / ((a + 2m - 1)(a + 2m)).
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + even * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // The odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + odd * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X ≥ k) by summing the probability mass below k.
    fn exact_upper(k: u64, pmf: impl Fn(u64) -> f64) -> f64 {
        1.0 - (0..k).map(pmf).sum::<f64>()
    }

    fn poisson_pmf(n: u64, mean: f64) -> f64 {
        (n as f64 * mean.ln() - mean - ln_gamma(n as f64 + 1.0)).exp()
    }

    fn negbin_pmf(n: u64, mean: f64, alpha: f64) -> f64 {
        let r = 1.0 / alpha;
        let n = n as f64;
        (ln_gamma(n + r) - ln_gamma(r) - ln_gamma(n + 1.0)
            + r * (r / (r + mean)).ln()
            + n * (mean / (r + mean)).ln())
        .exp()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 + 1e-7 * b.abs()
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            fact *= n as f64;
            let got = ln_gamma(n as f64 + 1.0);
            assert!((got - fact.ln()).abs() < 1e-10, "{n}: {got}");
        }
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn poisson_tail_matches_exact_sums() {
        for mean in [0.2, 1.0, 3.5, 12.0, 40.0] {
            for k in [1u64, 2, 3, 5, 10, 20, 50, 80] {
                let exact = exact_upper(k, |n| poisson_pmf(n, mean));
                let got = poisson_upper(k as f64, mean);
                assert!(close(got, exact), "mean {mean} k {k}: {got} vs {exact}");
            }
        }
        assert_eq!(poisson_upper(0.0, 3.0), 1.0);
    }

    #[test]
    fn negbin_tail_matches_exact_sums() {
        for mean in [0.2, 1.0, 3.5, 12.0, 40.0] {
            for alpha in [0.01, 0.1, 0.5, 2.0] {
                for k in [1u64, 2, 3, 5, 10, 20, 50, 80] {
                    let exact = exact_upper(k, |n| negbin_pmf(n, mean, alpha));
                    let got = negbin_upper(k as f64, mean, alpha);
                    assert!(
                        close(got, exact),
                        "mean {mean} alpha {alpha} k {k}: {got} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn negbin_tends_to_poisson_and_is_wider() {
        let p = poisson_upper(30.0, 15.0);
        assert!(close(negbin_upper(30.0, 15.0, 1e-12), p));
        assert!(negbin_upper(30.0, 15.0, 0.2) > p);
    }

    #[test]
    fn small_tails_keep_their_precision() {
        // Far in the tail, where 1 - (sum of the rest) would give 0 or noise.
        let p = poisson_upper(60.0, 5.0);
        let by_terms: f64 = (60..200).map(|n| poisson_pmf(n, 5.0)).sum();
        assert!((p / by_terms - 1.0).abs() < 1e-8, "{p} vs {by_terms}");
        let nb = negbin_upper(400.0, 10.0, 0.1);
        let by_terms: f64 = (400..5000).map(|n| negbin_pmf(n, 10.0, 0.1)).sum();
        assert!((nb / by_terms - 1.0).abs() < 1e-8, "{nb} vs {by_terms}");
    }

    #[test]
    fn large_counts_give_finite_probabilities() {
        for (x, mean) in [
            (13_479.0, 85.0),
            (13_479.0, 12_000.0),
            (20_000.0, 20_000.0),
            (500_000.0, 480_000.0),
            (1.0, 1e6),
            (2e6, 1e6),
        ] {
            for alpha in [0.0, 1e-6, 0.01, 0.3, 5.0] {
                let p = negbin_upper(x, mean, alpha);
                assert!(
                    p.is_finite() && (0.0..=1.0).contains(&p),
                    "{x} {mean} {alpha}: {p}"
                );
            }
        }
        // Near the mean of a large Poisson the tail is about one half.
        let p = poisson_upper(20_000.0, 20_000.0);
        assert!((p - 0.5).abs() < 0.01, "{p}");
        // Five standard deviations above a mean of 10^4 (~2.9e-7 by the normal).
        let p = poisson_upper(10_500.0, 10_000.0);
        assert!(p > 1e-7 && p < 1e-6, "{p}");
    }

    #[test]
    fn non_integer_counts_sit_between_their_neighbours() {
        let lo = negbin_upper(7.0, 3.0, 0.2);
        let mid = negbin_upper(7.5, 3.0, 0.2);
        let hi = negbin_upper(8.0, 3.0, 0.2);
        assert!(lo > mid && mid > hi, "{lo} {mid} {hi}");
    }
}
