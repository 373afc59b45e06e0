//! The argon2 computation (RFC 9106), with the lanes of a hash filled side by side so that the
//! memory reads of one lane overlap the compression of the others.
//!
//! Why our own fill instead of the `argon2` crate's: a PIN at privacyIDEA's cost (64 MiB, 9 passes,
//! 4 lanes) is 589,824 block compressions, each reading one block at a pseudo-random place in the
//! 64 MiB. The crate fills one lane after the other, so every compression first waits for its
//! reference block to arrive from memory: 0.47–0.50 µs per block against 0.26 µs when the memory
//! fits in the cache (a 2-vCPU Xeon VM). The lanes of one slice are independent by construction (a
//! block references only its own lane's current segment and other lanes' finished slices), so they
//! can be computed in turns: as soon as a lane's block is done, the index of its next reference
//! block is known (from the new block's first word, or from the address block), and that block is
//! prefetched while the other lanes compress. Output is bit for bit the RFC's; only the order of
//! independent steps changes.
//!
//! Trust: the `argon2` crate parses and formats the PHC strings and validates the
//! parameters; this module computes the tag. Its tests check it against the RFC 9106 test
//! vectors and, over a sweep of algorithms, versions, costs, lane counts, output lengths and
//! inputs, against the crate's own implementation (an independent one), and crypto.rs checks
//! PHC strings made by libargon2.
//!
//! Side channels: the same as the RFC's. Argon2id and Argon2i choose the reference blocks of
//! the first half pass from public data only; the prefetches follow the same indices the
//! compression reads anyway. The working memory is the caller's (argon2_memory.rs wipes it);
//! the values derived from the password that this module holds itself are wiped before it
//! returns.

use argon2::{Algorithm, Error, Params, Version};
use blake2::digest::{Update, VariableOutput};
use blake2::{Blake2b512, Blake2bVar, Digest};
use zeroize::{Zeroize, Zeroizing};

const BLOCK_WORDS: usize = 128;
const BLOCK_BYTES: usize = BLOCK_WORDS * 8;
/// Slices per pass (synchronisation points).
const SLICES: usize = 4;
/// Reference indices one address block yields (data-independent addressing).
const ADDRESSES_PER_BLOCK: usize = BLOCK_WORDS;

/// One 1 KiB block of argon2's working memory, aligned to cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Block(pub(crate) [u64; BLOCK_WORDS]);

impl Block {
    pub const ZERO: Block = Block([0; BLOCK_WORDS]);

    fn xor_of(a: &Block, b: &Block) -> Block {
        let mut out = Block::ZERO;
        for ((o, x), y) in out.0.iter_mut().zip(&a.0).zip(&b.0) {
            *o = x ^ y;
        }
        out
    }

    fn from_le_bytes(bytes: &[u8; BLOCK_BYTES]) -> Block {
        let mut block = Block::ZERO;
        for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *word = u64::from_le_bytes(le);
        }
        block
    }

    fn to_le_bytes(self) -> Zeroizing<[u8; BLOCK_BYTES]> {
        let mut bytes = Zeroizing::new([0u8; BLOCK_BYTES]);
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(&self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

impl Zeroize for Block {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Default for Block {
    fn default() -> Block {
        Block::ZERO
    }
}

impl AsRef<[u64]> for Block {
    fn as_ref(&self) -> &[u64] {
        &self.0
    }
}

impl AsMut<[u64]> for Block {
    fn as_mut(&mut self) -> &mut [u64] {
        &mut self.0
    }
}

/// Compute the argon2 tag of `password` and `salt` into `out` (its length is the tag length),
/// using `memory` (at least `params.block_count()` blocks, any contents) as working memory.
/// Errors and their conditions are the `argon2` crate's `hash_password_into`'s.
pub fn hash_into(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    memory: &mut [Block],
    out: &mut [u8],
) -> Result<(), Error> {
    hash_with_secret(algorithm, version, params, password, salt, &[], memory, out)
}

/// `hash_into` with the RFC's optional secret key K (the daemon has none; the RFC's test
/// vectors use one).
#[allow(clippy::too_many_arguments)]
fn hash_with_secret(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    memory: &mut [Block],
    out: &mut [u8],
) -> Result<(), Error> {
    if out.len() < params.output_len().unwrap_or(Params::MIN_OUTPUT_LEN) {
        return Err(Error::OutputTooShort);
    }
    if out.len() > Params::MAX_OUTPUT_LEN {
        return Err(Error::OutputTooLong);
    }
    if salt.len() < argon2::MIN_SALT_LEN {
        return Err(Error::SaltTooShort);
    }
    if u32::try_from(salt.len()).is_err() {
        return Err(Error::SaltTooLong);
    }
    if u32::try_from(password.len()).is_err() {
        return Err(Error::PwdTooLong);
    }
    if u32::try_from(secret.len()).is_err() {
        return Err(Error::SecretTooLong);
    }
    let shape = Shape::of(params, algorithm, version);
    let memory = memory
        .get_mut(..shape.blocks())
        .ok_or(Error::MemoryTooLittle)?;

    // H0, the first two blocks of every lane from it (RFC 9106 §3.2 steps 1–4).
    let mut h0 = Blake2b512::new();
    for word in [
        params.p_cost(),
        out.len() as u32,
        params.m_cost(),
        params.t_cost(),
        version as u32,
        algorithm as u32,
    ] {
        Digest::update(&mut h0, word.to_le_bytes());
    }
    for field in [password, salt, secret, params.data()] {
        Digest::update(&mut h0, (field.len() as u32).to_le_bytes());
        Digest::update(&mut h0, field);
    }
    let h0 = Zeroizing::new(<[u8; 64]>::from(h0.finalize()));
    let mut first_blocks = Zeroizing::new([0u8; BLOCK_BYTES]);
    for lane in 0..shape.lanes {
        for column in 0..2 {
            variable_hash(
                &[
                    &h0[..],
                    &(column as u32).to_le_bytes(),
                    &(lane as u32).to_le_bytes(),
                ],
                &mut first_blocks[..],
            )?;
            memory[shape.index(lane, column)] = Block::from_le_bytes(&first_blocks);
        }
    }

    fill(memory, &shape);

    // The tag: H' of the XOR of every lane's last block (step 7).
    let mut last = Block::ZERO;
    for lane in 0..shape.lanes {
        last = Block::xor_of(&last, &memory[shape.index(lane, shape.lane_len - 1)]);
    }
    let tag = variable_hash(&[&last.to_le_bytes()[..]], out);
    last.zeroize();
    tag
}

/// H' (RFC 9106 §3.3): Blake2b stretched to any output length (at least 4 bytes, checked by
/// the caller; Blake2b's own length errors cannot happen).
fn variable_hash(inputs: &[&[u8]], out: &mut [u8]) -> Result<(), Error> {
    let len_prefix = (out.len() as u32).to_le_bytes();
    if out.len() <= 64 {
        let mut h = Blake2bVar::new(out.len()).map_err(|_| Error::OutputTooShort)?;
        h.update(&len_prefix);
        inputs.iter().for_each(|input| h.update(input));
        return h.finalize_variable(out).map_err(|_| Error::OutputTooShort);
    }
    let mut h = Blake2b512::new();
    Digest::update(&mut h, len_prefix);
    inputs
        .iter()
        .for_each(|input| Digest::update(&mut h, input));
    let mut v = Zeroizing::new(<[u8; 64]>::from(h.finalize()));
    // Every intermediate hash contributes its first half; the last one is cut to what is left.
    let full_halves = out.len().div_ceil(32) - 2;
    for half in 0..full_halves {
        out[half * 32..half * 32 + 32].copy_from_slice(&v[..32]);
        if half + 1 < full_halves {
            *v = Blake2b512::digest(&v[..]).into();
        }
    }
    let rest = &mut out[full_halves * 32..];
    let mut h = Blake2bVar::new(rest.len()).map_err(|_| Error::OutputTooLong)?;
    h.update(&v[..]);
    h.finalize_variable(rest).map_err(|_| Error::OutputTooLong)
}

/// The geometry and mode of one hash.
struct Shape {
    lanes: usize,
    lane_len: usize,
    segment_len: usize,
    passes: usize,
    algorithm: Algorithm,
    /// Version 0x13 XORs a block into its previous value from the second pass on; 0x10
    /// overwrites it.
    xor_later_passes: bool,
}

impl Shape {
    fn of(params: &Params, algorithm: Algorithm, version: Version) -> Shape {
        let lanes = params.p_cost() as usize;
        // `block_count` is m_cost rounded down to a multiple of 4 × lanes (at least 8 × lanes).
        let lane_len = params.block_count() / lanes;
        Shape {
            lanes,
            lane_len,
            segment_len: lane_len / SLICES,
            passes: params.t_cost() as usize,
            algorithm,
            xor_later_passes: version == Version::V0x13,
        }
    }

    fn blocks(&self) -> usize {
        self.lanes * self.lane_len
    }

    fn index(&self, lane: usize, column: usize) -> usize {
        lane * self.lane_len + column
    }
}

/// Where in the fill a segment is.
#[derive(Clone, Copy)]
struct Segment {
    pass: usize,
    slice: usize,
    /// Argon2i everywhere, Argon2id in the first half of the first pass: reference blocks
    /// chosen from a counter (address blocks), not from the memory's contents.
    data_independent: bool,
    /// The first two blocks of each lane come from H0.
    first: usize,
}

/// A lane's progress through the current segment.
struct Lane {
    /// Reference indices for data-independent addressing, and the input that makes them.
    addresses: Block,
    address_input: Block,
    /// Reference block of the lane's next block, already prefetched.
    next_reference: usize,
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.addresses.zeroize();
        self.address_input.zeroize();
    }
}

fn fill(memory: &mut [Block], shape: &Shape) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked on the line above), the only requirement of a
        // `target_feature(enable = "avx2")` function.
        #[allow(unsafe_code)]
        unsafe {
            fill_with_avx2(memory, shape)
        };
        return;
    }
    fill_lanes_in_turn(memory, shape);
}

/// The fill compiled for AVX2 (the compression's 64-bit adds, multiplies and XORs four at a
/// time): 0.18–0.19 s instead of 0.26 s per hash at privacyIDEA's cost.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_with_avx2(memory: &mut [Block], shape: &Shape) {
    fill_lanes_in_turn(memory, shape);
}

/// RFC 9106 §3.2 steps 5–6, the lanes of each segment interleaved block by block.
#[inline(always)]
fn fill_lanes_in_turn(memory: &mut [Block], shape: &Shape) {
    let mut lanes: Vec<Lane> = (0..shape.lanes)
        .map(|_| Lane {
            addresses: Block::ZERO,
            address_input: Block::ZERO,
            next_reference: 0,
        })
        .collect();
    for pass in 0..shape.passes {
        for slice in 0..SLICES {
            let segment = Segment {
                pass,
                slice,
                data_independent: match shape.algorithm {
                    Algorithm::Argon2i => true,
                    Algorithm::Argon2d => false,
                    Algorithm::Argon2id => pass == 0 && slice < SLICES / 2,
                },
                first: if pass == 0 && slice == 0 { 2 } else { 0 },
            };
            for (number, lane) in lanes.iter_mut().enumerate() {
                lane.address_input = Block::ZERO;
                if segment.data_independent {
                    lane.address_input.0[..6].copy_from_slice(&[
                        pass as u64,
                        number as u64,
                        slice as u64,
                        shape.blocks() as u64,
                        shape.passes as u64,
                        shape.algorithm as u64,
                    ]);
                }
                lane.next_reference =
                    reference_block(memory, shape, segment, number, lane, segment.first);
                prefetch(&memory[lane.next_reference]);
            }
            let xor_into = shape.xor_later_passes && pass > 0;
            for column_in_segment in segment.first..shape.segment_len {
                for (number, lane) in lanes.iter_mut().enumerate() {
                    let current =
                        shape.index(number, slice * shape.segment_len + column_in_segment);
                    let previous = if slice == 0 && column_in_segment == 0 {
                        current + shape.lane_len - 1
                    } else {
                        current - 1
                    };
                    compress_into(memory, previous, lane.next_reference, current, xor_into);
                    if column_in_segment + 1 < shape.segment_len {
                        lane.next_reference = reference_block(
                            memory,
                            shape,
                            segment,
                            number,
                            lane,
                            column_in_segment + 1,
                        );
                        prefetch(&memory[lane.next_reference]);
                        // The block the lane writes next (read first, from the second pass on).
                        prefetch(&memory[current + 1]);
                    }
                }
            }
        }
    }
}

/// The index of the block that block `column_in_segment` of `lane_number` in `segment`
/// references (RFC 9106 §3.4). Its previous block must be computed already.
#[inline(always)]
fn reference_block(
    memory: &[Block],
    shape: &Shape,
    segment: Segment,
    lane_number: usize,
    lane: &mut Lane,
    column_in_segment: usize,
) -> usize {
    let column = segment.slice * shape.segment_len + column_in_segment;
    let pseudo_random = if segment.data_independent {
        let slot = column_in_segment % ADDRESSES_PER_BLOCK;
        if slot == 0 || column_in_segment == segment.first {
            next_addresses(lane);
        }
        lane.addresses.0[slot]
    } else {
        let previous = if column == 0 {
            shape.lane_len - 1
        } else {
            column - 1
        };
        memory[shape.index(lane_number, previous)].0[0]
    };
    let j1 = pseudo_random & 0xffff_ffff;
    let j2 = pseudo_random >> 32;
    let first_slice_of_first_pass = segment.pass == 0 && segment.slice == 0;
    let reference_lane = if first_slice_of_first_pass {
        lane_number
    } else {
        (j2 % shape.lanes as u64) as usize
    };
    // The blocks it may reference: every finished block of the lane's own, except the
    // previous one; of other lanes, those of finished slices (minus the last one if this is a
    // segment's first block).
    let own_lane = reference_lane == lane_number;
    let finished_columns = if segment.pass == 0 {
        segment.slice * shape.segment_len
    } else {
        shape.lane_len - shape.segment_len
    };
    let area = if own_lane {
        finished_columns + column_in_segment - 1
    } else {
        finished_columns - usize::from(column_in_segment == 0)
    };
    let x = (j1 * j1) >> 32;
    let y = (area as u64 * x) >> 32;
    let relative = area - 1 - y as usize;
    let start = if segment.pass > 0 && segment.slice < SLICES - 1 {
        (segment.slice + 1) * shape.segment_len
    } else {
        0
    };
    shape.index(reference_lane, (start + relative) % shape.lane_len)
}

/// The next address block: G(0, G(0, input)) with the input's counter advanced.
#[inline(always)]
fn next_addresses(lane: &mut Lane) {
    lane.address_input.0[6] += 1;
    let once = compress(&Block::ZERO, &lane.address_input);
    lane.addresses = compress(&Block::ZERO, &once);
}

/// G(X, Y) = P(X ⊕ Y) ⊕ X ⊕ Y (RFC 9106 §3.5), of two blocks in the memory, written over
/// (or XORed into) a third.
#[inline(always)]
fn compress_into(memory: &mut [Block], x: usize, y: usize, into: usize, xor_into: bool) {
    let r = Block::xor_of(&memory[x], &memory[y]);
    let z = permute(&r);
    let target = &mut memory[into];
    if xor_into {
        for ((t, z), r) in target.0.iter_mut().zip(&z.0).zip(&r.0) {
            *t ^= z ^ r;
        }
    } else {
        for ((t, z), r) in target.0.iter_mut().zip(&z.0).zip(&r.0) {
            *t = z ^ r;
        }
    }
}

#[inline(always)]
fn compress(x: &Block, y: &Block) -> Block {
    let r = Block::xor_of(x, y);
    Block::xor_of(&permute(&r), &r)
}

/// P applied to the block's eight rows of 16 words, then to its eight columns of 8 pairs.
#[inline(always)]
fn permute(r: &Block) -> Block {
    let mut q = *r;
    for row in q.0.chunks_exact_mut(16) {
        let mut v = [0u64; 16];
        v.copy_from_slice(row);
        round(&mut v);
        row.copy_from_slice(&v);
    }
    for column in 0..8 {
        let mut v = [0u64; 16];
        for pair in 0..8 {
            v[2 * pair] = q.0[2 * column + 16 * pair];
            v[2 * pair + 1] = q.0[2 * column + 16 * pair + 1];
        }
        round(&mut v);
        for pair in 0..8 {
            q.0[2 * column + 16 * pair] = v[2 * pair];
            q.0[2 * column + 16 * pair + 1] = v[2 * pair + 1];
        }
    }
    q
}

/// Blake2b's round with BlaMka's multiplications (the permutation P).
#[inline(always)]
fn round(v: &mut [u64; 16]) {
    mix(v, 0, 4, 8, 12);
    mix(v, 1, 5, 9, 13);
    mix(v, 2, 6, 10, 14);
    mix(v, 3, 7, 11, 15);
    mix(v, 0, 5, 10, 15);
    mix(v, 1, 6, 11, 12);
    mix(v, 2, 7, 8, 13);
    mix(v, 3, 4, 9, 14);
}

/// GB: Blake2b's G with each addition a + b replaced by a + b + 2 · lo32(a) · lo32(b).
#[inline(always)]
fn mix(v: &mut [u64; 16], a: usize, b: usize, c: usize, d: usize) {
    #[inline(always)]
    fn blamka(x: u64, y: u64) -> u64 {
        let product = (x & 0xffff_ffff).wrapping_mul(y & 0xffff_ffff);
        x.wrapping_add(y).wrapping_add(product.wrapping_mul(2))
    }
    v[a] = blamka(v[a], v[b]);
    v[d] = (v[d] ^ v[a]).rotate_right(32);
    v[c] = blamka(v[c], v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(24);
    v[a] = blamka(v[a], v[b]);
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = blamka(v[c], v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(63);
}

/// Ask the CPU to start loading a block into the cache. A hint: it never faults and changes
/// nothing a program can observe but time.
#[inline(always)]
fn prefetch(block: &Block) {
    #[cfg(target_arch = "x86_64")]
    for line in block.0.chunks_exact(8) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching is not a memory access: it cannot fault, whatever the address,
        // and this one is inside a live block anyway.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = block;
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Argon2, AssociatedData, ParamsBuilder};

    const ALGORITHMS: [Algorithm; 3] =
        [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id];

    /// One hash to compute both ways.
    struct Case<'a> {
        algorithm: Algorithm,
        version: Version,
        params: &'a Params,
        password: &'a [u8],
        salt: &'a [u8],
        out_len: usize,
    }

    impl Case<'_> {
        fn ours(&self) -> Result<Vec<u8>, Error> {
            self.ours_in(&mut vec![Block::ZERO; self.params.block_count()])
        }

        fn ours_in(&self, memory: &mut [Block]) -> Result<Vec<u8>, Error> {
            let mut out = vec![0u8; self.out_len];
            let (algorithm, version, params) = (self.algorithm, self.version, self.params);
            hash_into(
                algorithm,
                version,
                params,
                self.password,
                self.salt,
                memory,
                &mut out,
            )?;
            Ok(out)
        }

        fn the_crates(&self) -> Result<Vec<u8>, Error> {
            let mut out = vec![0u8; self.out_len];
            Argon2::new(self.algorithm, self.version, self.params.clone()).hash_password_into(
                self.password,
                self.salt,
                &mut out,
            )?;
            Ok(out)
        }

        fn assert_same_tag(&self) {
            let p = self.params;
            assert_eq!(
                self.ours().unwrap(),
                self.the_crates().unwrap(),
                "{:?} {:?} m={} t={} p={} tag {} bytes",
                self.algorithm,
                self.version,
                p.m_cost(),
                p.t_cost(),
                p.p_cost(),
                self.out_len
            );
        }
    }

    fn params(m: u32, t: u32, p: u32, data: &[u8]) -> Params {
        ParamsBuilder::new()
            .m_cost(m)
            .t_cost(t)
            .p_cost(p)
            .data(AssociatedData::new(data).unwrap())
            .build()
            .unwrap()
    }

    /// RFC 9106 §5.1–5.3: 32 KiB, 3 passes, 4 lanes, with a secret and associated data.
    #[test]
    fn the_rfc_9106_test_vectors_come_out() {
        let vectors = [
            (
                Algorithm::Argon2d,
                "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
            ),
            (
                Algorithm::Argon2i,
                "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
            ),
            (
                Algorithm::Argon2id,
                "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
            ),
        ];
        let params = params(32, 3, 4, &[0x04; 12]);
        for (algorithm, expected) in vectors {
            let mut memory = vec![Block::ZERO; params.block_count()];
            let mut tag = [0u8; 32];
            hash_with_secret(
                algorithm,
                Version::V0x13,
                &params,
                &[0x01; 32],
                &[0x02; 16],
                &[0x03; 8],
                &mut memory,
                &mut tag,
            )
            .unwrap();
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected, "{algorithm:?}");
        }
    }

    /// Every branch of the fill: one to five lanes (one lane has nothing to interleave), memory
    /// at the minimum (8 blocks a lane) and rounded down to whole segments, one to four passes,
    /// data-independent and dependent addressing across address-block boundaries (128 blocks),
    /// both versions, tags from 4 bytes to past H''s 64-byte step, passwords empty to long.
    #[test]
    fn tags_match_the_argon2_crate_for_every_algorithm_version_and_shape() {
        let shapes = [
            (8, 1, 1),
            (9, 2, 1),
            (16, 3, 2),
            (24, 1, 3),
            (37, 4, 2),
            (64, 2, 5),
            (300, 1, 1),
            (600, 2, 4),
            (1031, 3, 3),
        ];
        let out_lens = [4, 16, 32, 33, 64, 65, 97, 128, 300];
        let passwords: [&[u8]; 3] = [b"", b"123456", &[0xA5; 200]];
        let mut case = 0usize;
        for (m, t, p) in shapes {
            for algorithm in ALGORITHMS {
                for version in [Version::V0x10, Version::V0x13] {
                    case += 1;
                    let data: &[u8] = if case.is_multiple_of(3) {
                        b"associated"
                    } else {
                        b""
                    };
                    let params = params(m, t, p, data);
                    let out_len = out_lens[case % out_lens.len()];
                    let password = passwords[case % passwords.len()];
                    let salt = &b"a salt of some length"[..8 + case % 13];
                    Case {
                        algorithm,
                        version,
                        params: &params,
                        password,
                        salt,
                        out_len,
                    }
                    .assert_same_tag();
                }
            }
        }
    }

    /// At privacyIDEA's memory and lanes, where the interleaving and prefetching matter (one
    /// pass: the data-dependent half and the wrap-around of the second pass are covered above).
    #[test]
    fn a_64_mib_four_lane_hash_matches_the_argon2_crate() {
        let params = params(65536, 1, 4, b"");
        for algorithm in ALGORITHMS {
            Case {
                algorithm,
                version: Version::V0x13,
                params: &params,
                password: b"1234",
                salt: b"saltsaltsalt",
                out_len: 32,
            }
            .assert_same_tag();
        }
    }

    fn pin_case<'a>(params: &'a Params, salt: &'a [u8], out_len: usize) -> Case<'a> {
        Case {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            params,
            password: b"pin",
            salt,
            out_len,
        }
    }

    #[test]
    fn what_the_working_memory_held_before_does_not_matter() {
        let params = params(64, 2, 2, b"");
        let case = pin_case(&params, b"saltsalt", 32);
        let mut dirty = vec![Block([0x5A5A_5A5A_5A5A_5A5A; BLOCK_WORDS]); 100];
        assert_eq!(case.ours_in(&mut dirty).unwrap(), case.ours().unwrap());
    }

    #[test]
    fn bad_inputs_get_the_argon2_crates_errors_and_no_tag() {
        let params = params(64, 1, 1, b"");
        let fixed_len = ParamsBuilder::new()
            .m_cost(64)
            .t_cost(1)
            .output_len(32)
            .build()
            .unwrap();
        let cases = [
            (pin_case(&params, b"7 bytes", 32), Error::SaltTooShort),
            (pin_case(&params, b"saltsalt", 3), Error::OutputTooShort),
            (pin_case(&fixed_len, b"saltsalt", 16), Error::OutputTooShort),
        ];
        for (case, error) in cases {
            assert_eq!(case.the_crates(), Err(error));
            assert_eq!(case.ours(), Err(error));
        }
        let case = pin_case(&params, b"saltsalt", 32);
        assert_eq!(
            case.ours_in(&mut vec![Block::ZERO; 63]),
            Err(Error::MemoryTooLittle)
        );
    }
}
