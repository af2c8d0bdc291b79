//! Stable content hashes: the same input gives the same hash on every machine, version and
//! process, which `plan-hash` needs (the reconciler and the status mutator compare hashes written
//! by other replicas). `std`'s hasher gives no such promise; SHA-256 from ring (already in the
//! tree through rustls) does.

use ring::digest::{Context, SHA256};

/// Hex of the first 8 bytes of SHA-256 over the parts, each length-prefixed so that
/// `["ab", "c"]` and `["a", "bc"]` differ.
pub fn hex_digest(parts: &[&[u8]]) -> String {
    let mut hasher = StableHasher::new();
    for part in parts {
        hasher.part(part);
    }
    hasher.finish_hex()
}

/// Incremental form of [`hex_digest`]; as an `io::Write` it takes a serialiser's output
/// directly, so hashing a structure needs no heap buffer. Serialisers write a few bytes at a
/// time, and each digest update has a fixed cost, so writes are gathered in a small inline
/// buffer first (this halved the cost of `plan-hash`).
pub struct StableHasher {
    context: Context,
    pending: [u8; PENDING_CAPACITY],
    pending_length: usize,
}

const PENDING_CAPACITY: usize = 512;

impl StableHasher {
    pub fn new() -> Self {
        Self {
            context: Context::new(&SHA256),
            pending: [0; PENDING_CAPACITY],
            pending_length: 0,
        }
    }

    /// Adds one length-prefixed part.
    pub fn part(&mut self, bytes: &[u8]) {
        self.absorb(&(bytes.len() as u64).to_le_bytes());
        self.absorb(bytes);
    }

    fn absorb(&mut self, bytes: &[u8]) {
        if self.pending_length + bytes.len() > PENDING_CAPACITY {
            self.context.update(&self.pending[..self.pending_length]);
            self.pending_length = 0;
        }
        if bytes.len() >= PENDING_CAPACITY {
            self.context.update(bytes);
        } else {
            self.pending[self.pending_length..self.pending_length + bytes.len()]
                .copy_from_slice(bytes);
            self.pending_length += bytes.len();
        }
    }

    pub fn finish_hex(mut self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.context.update(&self.pending[..self.pending_length]);
        let digest = self.context.finish();
        let mut hex = String::with_capacity(16);
        for byte in &digest.as_ref()[..8] {
            hex.push(HEX[usize::from(byte >> 4)] as char);
            hex.push(HEX[usize::from(byte & 0xf)] as char);
        }
        hex
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::io::Write for StableHasher {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.absorb(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
        let mut streamed = super::StableHasher::new();
        std::io::Write::write_all(&mut streamed, &3u64.to_le_bytes()).unwrap();
        std::io::Write::write_all(&mut streamed, b"abc").unwrap();
        assert_eq!(streamed.finish_hex(), PINNED_ABC);
        // Input larger than the inline buffer, in pieces of every size, hashes as one piece.
        let long: Vec<u8> = (0..5000u32).map(|index| (index % 251) as u8).collect();
        let mut pieces = super::StableHasher::new();
        let mut offset = 0;
        for size in (1..).step_by(37) {
            let end = (offset + size).min(long.len());
            std::io::Write::write_all(&mut pieces, &long[offset..end]).unwrap();
            offset = end;
            if offset == long.len() {
                break;
            }
        }
        let one_shot = ring::digest::digest(&ring::digest::SHA256, &long);
        let expected: String = one_shot.as_ref()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(pieces.finish_hex(), expected);
    }

    const PINNED_ABC: &str = "ce91dc5eec0139ad";
}
