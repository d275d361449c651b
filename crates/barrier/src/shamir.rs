//! Shamir secret sharing over GF(2^8), the seal's key-splitting scheme.
//!
//! The module owns splitting a secret into shares and combining shares back.
//! The layout is OpenBao's, so shares printed by `bao operator init` combine
//! here and ours are accepted by the same tooling: every byte of the secret is
//! the constant term of its own random polynomial of degree `threshold - 1`,
//! the x-coordinates are the first `parts` entries of a random permutation of
//! `1..=255`, and each share is the y bytes followed by its x-coordinate.
//!
//! Field arithmetic uses the AES polynomial `x^8 + x^4 + x^3 + x + 1` (0x11b)
//! and is branch-free and table-free, so timing does not depend on share or
//! secret bytes. Shamir sharing detects nothing: a forged share silently
//! yields a different secret, which the barrier then refuses as a wrong key.

use zeroize::Zeroizing;

/// Why a secret could not be split or shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// The secret to split is empty.
    #[error("cannot split an empty secret")]
    EmptySecret,
    /// The threshold is below 2 (a single share would be the secret).
    #[error("threshold must be at least 2")]
    ThresholdTooSmall,
    /// The threshold exceeds the number of shares.
    #[error("parts cannot be less than the threshold")]
    ThresholdAboveParts,
    /// More than 255 shares were asked for (x-coordinates are non-zero bytes).
    #[error("parts cannot exceed 255")]
    TooManyParts,
    /// Fewer than two shares were given to combine.
    #[error("less than two parts cannot be used to reconstruct the secret")]
    TooFewShares,
    /// A share is shorter than two bytes (one y byte plus the x-coordinate).
    #[error("parts must be at least two bytes")]
    ShareTooShort,
    /// The shares do not all have the same length.
    #[error("all parts must be the same length")]
    LengthMismatch,
    /// Two shares have the same x-coordinate.
    #[error("duplicate part detected")]
    DuplicateShare,
}

/// Multiplies in GF(2^8) modulo 0x11b, in constant time (no branches or
/// table look-ups on the operands).
fn mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut r = 0u8;
    for _ in 0..8 {
        // Add `a` when the low bit of `b` is set: the mask is 0xff or 0x00.
        r ^= a & 0u8.wrapping_sub(b & 1);
        // Multiply `a` by x, reducing by 0x1b when the top bit falls off.
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    r
}

/// The multiplicative inverse in GF(2^8), as `a^254` (so `inv(0) == 0`), in
/// constant time.
fn inv(a: u8) -> u8 {
    // a^254 = a^2 * a^4 * a^8 * a^16 * a^32 * a^64 * a^128.
    let mut square = mul(a, a);
    let mut r = square;
    for _ in 0..6 {
        square = mul(square, square);
        r = mul(r, square);
    }
    r
}

/// Fills `buf` from aws-lc's CSPRNG.
fn fill_random(buf: &mut [u8]) {
    // Invariant: aws-lc's RNG only fails when the operating system cannot
    // provide entropy; continuing with predictable coefficients would leak
    // the secret, so stopping is the only safe answer.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(buf).expect("the system random number generator failed");
}

/// The first `parts` entries of a uniformly random permutation of `1..=255`
/// (partial Fisher-Yates with rejection sampling, so no modulo bias).
fn random_x_coordinates(parts: usize) -> Vec<u8> {
    let mut all: Vec<u8> = (1..=255).collect();
    for i in 0..parts {
        let remaining = all.len() - i; // 1..=255
        let j = i + uniform_below(remaining);
        all.swap(i, j);
    }
    all.truncate(parts);
    all
}

/// A uniform random number in `0..n`, for `1 <= n <= 256`.
fn uniform_below(n: usize) -> usize {
    // Accept bytes below the largest multiple of n that fits in 256.
    let limit = 256 - (256 % n);
    loop {
        let mut b = [0u8; 1];
        fill_random(&mut b);
        let v = usize::from(b[0]);
        if v < limit {
            return v % n;
        }
    }
}

/// Splits `secret` into `parts` shares, any `threshold` of which rebuild it.
///
/// Each share is `secret.len() + 1` bytes: the y values, then the
/// x-coordinate. Requires `2 <= threshold <= parts <= 255` and a non-empty
/// secret.
pub fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if parts > 255 {
        return Err(ShamirError::TooManyParts);
    }
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if parts < threshold {
        return Err(ShamirError::ThresholdAboveParts);
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }

    let xs = random_x_coordinates(parts);
    let mut shares: Vec<Zeroizing<Vec<u8>>> = xs
        .iter()
        .map(|&x| {
            let mut share = Zeroizing::new(vec![0u8; secret.len() + 1]);
            share[secret.len()] = x;
            share
        })
        .collect();

    // coefficients[0] is the secret byte, the rest are random.
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (idx, &byte) in secret.iter().enumerate() {
        coefficients[0] = byte;
        fill_random(&mut coefficients[1..]);
        for (share, &x) in shares.iter_mut().zip(&xs) {
            share[idx] = evaluate(&coefficients, x);
        }
    }
    Ok(shares)
}

/// Evaluates the polynomial with the given coefficients (constant term
/// first) at `x`, by Horner's rule.
fn evaluate(coefficients: &[u8], x: u8) -> u8 {
    coefficients
        .iter()
        .rev()
        .fold(0u8, |acc, &c| mul(acc, x) ^ c)
}

/// Rebuilds the secret from shares made by [`split`] (or by OpenBao).
///
/// Needs at least two shares of equal length (at least two bytes each) with
/// distinct x-coordinates. Giving fewer shares than the threshold, or a
/// forged share, yields a wrong secret rather than an error: Shamir sharing
/// cannot tell.
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let Some(first) = shares.first() else {
        return Err(ShamirError::TooFewShares);
    };
    if shares.len() < 2 {
        return Err(ShamirError::TooFewShares);
    }
    let len = first.len();
    if len < 2 {
        return Err(ShamirError::ShareTooShort);
    }
    if shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::LengthMismatch);
    }
    let secret_len = len - 1;
    let xs: Vec<u8> = shares.iter().map(|s| s[secret_len]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(ShamirError::DuplicateShare);
        }
    }

    // Lagrange basis polynomials evaluated at 0 (addition is XOR, so the
    // numerator 0 - x_j is x_j and the denominator x_i - x_j is x_i ^ x_j,
    // never 0 since the x-coordinates are distinct).
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1u8, |acc, (_, &xj)| mul(acc, mul(xj, inv(xi ^ xj))))
        })
        .collect();

    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    for (share, &b) in shares.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(share.iter()) {
            *out ^= mul(y, b);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Carry-less multiplication followed by reduction, the textbook way.
    fn slow_mul(a: u8, b: u8) -> u8 {
        let mut product: u16 = 0;
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                product ^= u16::from(a) << bit;
            }
        }
        for bit in (8..16).rev() {
            if product & (1 << bit) != 0 {
                product ^= 0x11b << (bit - 8);
            }
        }
        product as u8
    }

    fn random_secret(len: usize) -> Vec<u8> {
        let mut s = vec![0u8; len];
        fill_random(&mut s);
        s
    }

    /// Every subset of `0..n`, as index lists.
    fn subsets(n: usize) -> Vec<Vec<usize>> {
        (0u32..(1 << n))
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn mul_matches_reference_for_all_pairs() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn every_nonzero_element_has_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a} * inv({a})");
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn known_field_values() {
        // FIPS-197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
    }

    #[test]
    fn every_subset_at_threshold_or_above_reconstructs() {
        for parts in 2..=6 {
            for threshold in 2..=parts {
                let secret = random_secret(32);
                let shares = split(&secret, parts, threshold).expect("split");
                assert_eq!(shares.len(), parts);
                for subset in subsets(parts) {
                    let chosen: Vec<&[u8]> = subset.iter().map(|&i| shares[i].as_slice()).collect();
                    match subset.len() {
                        0 | 1 => assert_eq!(combine(&chosen), Err(ShamirError::TooFewShares)),
                        n if n >= threshold => assert_eq!(
                            combine(&chosen).expect("combine").as_slice(),
                            secret.as_slice(),
                            "parts={parts} threshold={threshold} subset={subset:?}"
                        ),
                        _ => assert_ne!(
                            combine(&chosen).expect("combine").as_slice(),
                            secret.as_slice(),
                            "below threshold: parts={parts} threshold={threshold} subset={subset:?}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn share_layout_is_y_bytes_then_distinct_nonzero_x() {
        let secret = random_secret(32);
        let shares = split(&secret, 255, 3).expect("split");
        let mut xs: Vec<u8> = shares.iter().map(|s| s[32]).collect();
        assert!(shares.iter().all(|s| s.len() == 33));
        xs.sort_unstable();
        assert_eq!(xs, (1..=255).collect::<Vec<u8>>());
        let chosen: Vec<&[u8]> = shares[100..103].iter().map(|s| s.as_slice()).collect();
        assert_eq!(combine(&chosen).expect("combine").as_slice(), &secret[..]);
    }

    #[test]
    fn openbao_shares_combine_consistently() {
        // Shares printed by `bao operator init -key-shares=4 -key-threshold=3`
        // (OpenBao 2.x). The secret is unknown, but every 3-subset must agree
        // on it, which only holds if our field and layout match OpenBao's.
        let hex_shares = [
            "8a69550349c3b7f7ee6a9add938b96a815b8a19e388655959c36720eee674aac4a",
            "ff1114c6a8d5b1cc2a4df3ae516cffc9516a6678d5ccb1b4de5431461026734a74",
            "4d759ad508427ed2799f25e56ad777b4dc792fae8a534537927d7a0789c6647da9",
            "b1dca40c16d026c91ec165fab908296720432fa4e8eb3e7311daedc6e6f1c9032c",
        ];
        let shares: Vec<Vec<u8>> = hex_shares
            .iter()
            .map(|h| hex::decode(h).expect("hex"))
            .collect();
        let mut secrets = Vec::new();
        for skip in 0..4 {
            let chosen: Vec<&[u8]> = (0..4)
                .filter(|&i| i != skip)
                .map(|i| shares[i].as_slice())
                .collect();
            secrets.push(combine(&chosen).expect("combine"));
        }
        assert_eq!(secrets[0].len(), 32);
        assert!(secrets.iter().all(|s| *s == secrets[0]));
        let pair = combine(&[&shares[0], &shares[1]]).expect("combine");
        assert_ne!(pair, secrets[0]);
    }

    #[test]
    fn altered_share_yields_a_different_secret() {
        let secret = random_secret(16);
        let shares = split(&secret, 3, 2).expect("split");
        let mut forged = shares[0].to_vec();
        forged[5] ^= 0x01;
        let got = combine(&[&forged, &shares[1]]).expect("combine");
        assert_ne!(got.as_slice(), secret.as_slice());
        // Only the altered byte position changes.
        let diff: Vec<usize> = (0..16).filter(|&i| got[i] != secret[i]).collect();
        assert_eq!(diff, vec![5]);
    }

    #[test]
    fn combine_refuses_bad_input() {
        let shares = split(b"secret", 3, 2).expect("split");
        let a = shares[0].as_slice();
        let b = shares[1].as_slice();
        assert_eq!(combine(&[]), Err(ShamirError::TooFewShares));
        assert_eq!(combine(&[a]), Err(ShamirError::TooFewShares));
        assert_eq!(combine(&[a, a]), Err(ShamirError::DuplicateShare));
        assert_eq!(combine(&[a, &b[1..]]), Err(ShamirError::LengthMismatch));
        assert_eq!(combine(&[&[1], &[2]]), Err(ShamirError::ShareTooShort));
        // Same x-coordinate with different y values is still a duplicate.
        let mut other = b.to_vec();
        other[6] = a[6];
        assert_eq!(combine(&[a, &other]), Err(ShamirError::DuplicateShare));
    }

    #[test]
    fn split_refuses_bad_parameters() {
        assert_eq!(split(b"", 3, 2).err(), Some(ShamirError::EmptySecret));
        assert_eq!(
            split(b"s", 3, 1).err(),
            Some(ShamirError::ThresholdTooSmall)
        );
        assert_eq!(
            split(b"s", 2, 3).err(),
            Some(ShamirError::ThresholdAboveParts)
        );
        assert_eq!(split(b"s", 256, 2).err(), Some(ShamirError::TooManyParts));
        assert_eq!(split(b"s", 255, 255).map(|s| s.len()), Ok(255));
    }

    #[test]
    fn shares_differ_between_splits() {
        // Fresh randomness per split: the same secret never gives the same
        // shares twice (probability 2^-256 per share pair otherwise).
        let secret = [7u8; 32];
        let a = split(&secret, 2, 2).expect("split");
        let b = split(&secret, 2, 2).expect("split");
        assert!(a.iter().all(|s| !b.iter().any(|t| s[..32] == t[..32])));
    }
}
