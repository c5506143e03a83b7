//! A small deterministic generator (splitmix64) so phantoms are identical for a seed on any machine.

/// splitmix64 stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Two independent standard normal deviates (Box–Muller).
    pub fn gauss_pair(&mut self) -> (f64, f64) {
        let r = (-2.0 * self.unit().ln()).sqrt();
        let t = std::f64::consts::TAU * self.unit();
        (r * t.cos(), r * t.sin())
    }
}

/// A DICOM UID under the 2.25 root (UUID-derived) made deterministically from a seed and a label.
pub fn uid(seed: u64, label: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut r = Rng::new(seed ^ h);
    let v = (u128::from(r.next_u64()) << 64 | u128::from(r.next_u64())) >> 1;
    format!("2.25.{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_valid_uids() {
        assert_eq!(uid(1, "study"), uid(1, "study"));
        assert_ne!(uid(1, "study"), uid(2, "study"));
        let u = uid(7, "series");
        assert!(u.len() <= 64 && u.starts_with("2.25."));
        let mut r = Rng::new(3);
        let n = 20_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let (a, _) = r.gauss_pair();
            s += a;
            s2 += a * a;
        }
        assert!((s / n as f64).abs() < 0.03);
        assert!((s2 / n as f64 - 1.0).abs() < 0.05);
    }
}
