//! Deterministic randomness: seeded ChaCha8 streams, one per modality (and per second for
//! logs and traces, so a pass can be regenerated or split), a counter-based hash for noise
//! that must be identical across recomputations, and the few distributions the simulator
//! needs (normal, log-normal, the normal CDF) plus identifier helpers.
//!
//! Nothing here reads the clock or iterates a hash map: the same seed always gives the
//! same numbers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The independent random streams. Each modality draws from its own stream so that, for
/// example, changing the log rate never changes a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Topology = 1,
    Plan = 2,
    Logs = 5,
    Traces = 6,
    Pods = 7,
    Batch = 8,
}

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash step.
pub(crate) const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a sequence of integers (order matters).
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_C0FF_EE15_BAD5, |acc, &p| {
        splitmix64(acc ^ splitmix64(p))
    })
}

/// A uniform number in `[0, 1)` from a hash value.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform number in `[-1, 1)` that depends only on its arguments.
pub(crate) fn jitter(parts: &[u64]) -> f64 {
    unit(hash(parts)) * 2.0 - 1.0
}

/// A fresh ChaCha8 stream for `(seed, stream, index)`.
pub(crate) fn rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash(&[seed, stream as u64, index]))
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given mean and log-space standard deviation.
pub(crate) fn lognormal_mean<R: Rng + ?Sized>(rng: &mut R, mean: f64, sigma: f64) -> f64 {
    mean * (sigma * normal(rng) - sigma * sigma / 2.0).exp()
}

/// Uniform in `[lo, hi)`.
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Randomised rounding: an integer whose expectation is `x` (for `x >= 0`).
pub(crate) fn round_random<R: Rng + ?Sized>(rng: &mut R, x: f64) -> u64 {
    if x <= 0.0 {
        return 0;
    }
    let base = x.floor();
    base as u64 + u64::from(rng.random::<f64>() < x - base)
}

/// The error function, Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
pub(crate) fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

/// `P(X <= x)` for a log-normal `X` with the given mean and log-space deviation.
pub(crate) fn lognormal_cdf(x: f64, mean: f64, sigma: f64) -> f64 {
    if x <= 0.0 || mean <= 0.0 {
        return if mean <= 0.0 && x >= 0.0 { 1.0 } else { 0.0 };
    }
    let mu = mean.ln() - sigma * sigma / 2.0;
    0.5 * (1.0 + erf((x.ln() - mu) / (sigma * std::f64::consts::SQRT_2)))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `2 * bytes` lowercase hex digits.
pub(crate) fn push_hex<R: Rng + ?Sized>(rng: &mut R, bytes: usize, out: &mut Vec<u8>) {
    let mut left = bytes;
    while left > 0 {
        let word: u64 = rng.random();
        for i in 0..left.min(8) {
            let b = (word >> (i * 8)) as u8;
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        left = left.saturating_sub(8);
    }
}

/// A random lowercase hex string of `2 * bytes` digits.
pub(crate) fn hex_string<R: Rng + ?Sized>(rng: &mut R, bytes: usize) -> String {
    let mut out = Vec::with_capacity(bytes * 2);
    push_hex(rng, bytes, &mut out);
    String::from_utf8(out).expect("hex is ascii")
}

/// A random UUID (version 4 layout).
pub(crate) fn uuid<R: Rng + ?Sized>(rng: &mut R) -> String {
    let hex = hex_string(rng, 16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
const K8S_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A Kubernetes-style random suffix of `len` characters (`x2k9q`).
pub(crate) fn k8s_suffix<R: Rng + ?Sized>(rng: &mut R, len: usize) -> String {
    (0..len)
        .map(|_| char::from(K8S_ALPHABET[rng.random_range(0..K8S_ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_close_to_known_values() {
        assert!((erf(0.0)).abs() < 1e-6);
        assert!((erf(1.0) - 0.842_700_79).abs() < 1e-6);
        assert!((erf(-2.0) + 0.995_322_27).abs() < 1e-6);
    }

    #[test]
    fn lognormal_cdf_median_is_half() {
        let (mean, sigma) = (100.0_f64, 0.5_f64);
        let median = mean * (-sigma * sigma / 2.0).exp();
        assert!((lognormal_cdf(median, mean, sigma) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng(7, Stream::Logs, 3).random();
        let b: u64 = rng(7, Stream::Logs, 3).random();
        let c: u64 = rng(7, Stream::Traces, 3).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ids_have_the_right_shape() {
        let mut r = rng(1, Stream::Plan, 0);
        assert_eq!(hex_string(&mut r, 16).len(), 32);
        assert_eq!(uuid(&mut r).len(), 36);
        assert_eq!(k8s_suffix(&mut r, 5).len(), 5);
    }
}
