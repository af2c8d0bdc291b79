//! Stable content hashes: the same input gives the same hash on every machine, version and
//! process, which `plan-hash` needs (the reconciler and the status mutator compare hashes written
//! by other replicas). `std`'s hasher gives no such promise; SHA-256 from ring (already in the
//! tree through rustls) does.

use ring::digest::{Context, SHA256};

/// Hex of the first 8 bytes of SHA-256 over the parts, each length-prefixed so that
/// `["ab", "c"]` and `["a", "bc"]` differ.
pub fn hex_digest(parts: &[&[u8]]) -> String {
    let mut context = Context::new(&SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part);
    }
    let digest = context.finish();
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hex_digest;

    #[test]
    fn parts_are_delimited_and_output_is_stable() {
        assert_ne!(hex_digest(&[b"ab", b"c"]), hex_digest(&[b"a", b"bc"]));
        assert_eq!(hex_digest(&[b"abc"]), hex_digest(&[b"abc"]));
        assert_eq!(hex_digest(&[]).len(), 16);
        // SHA-256 of the 8-byte little-endian length 3 followed by "abc": pinned so that a change of
        // algorithm, which would make every replica rewrite every ISVC, cannot pass unnoticed.
        assert_eq!(hex_digest(&[b"abc"]), PINNED_ABC);
    }

    const PINNED_ABC: &str = "ce91dc5eec0139ad";
}
