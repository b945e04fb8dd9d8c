//! Shannon entropy of a byte string, used to tell random-looking secrets from words.

/// Shannon entropy in bits per byte (0.0 for an empty input, at most `log2(len)` and 8.0).
///
/// Random base62 text scores about 5.2-5.9, hex about 3.6-4.0, English words and identifiers
/// usually below 3.3. Counts live on the stack: no allocation. `libm::log2` (a Rust port of
/// musl's, like glibc's within an ulp) rather than `f64::log2`, which would make libguard, loaded
/// into every process of the tree, pull in the C libm for this one call.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let len = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * libm::log2(p)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_inputs() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaaaaaa"), 0.0);
        // Two symbols, equally likely: exactly one bit.
        assert!((shannon_entropy(b"abababab") - 1.0).abs() < 1e-12);
        // Eight distinct symbols once each: exactly three bits.
        assert!((shannon_entropy(b"abcdefgh") - 3.0).abs() < 1e-12);
        let all: Vec<u8> = (0..=255u8).collect();
        assert!((shannon_entropy(&all) - 8.0).abs() < 1e-12);
    }

    #[test]
    fn words_score_lower_than_random_tokens() {
        let word = shannon_entropy(b"tokenizer");
        let random = shannon_entropy(b"q7Zp2LmX9vRt4KwB8nYc");
        assert!(word < 3.2, "{word}");
        assert!(random > 4.0, "{random}");
    }
}
