//! Framing: `u32` big-endian length of what follows, `u16` big-endian protocol version, then the
//! bincode-2 body. This file is the only user of bincode in the workspace, so the encoding can be
//! swapped here alone (bincode is unmaintained upstream).
//!
//! Threat: a peer announcing a huge or empty frame to make us allocate or spin. The length is
//! checked against `MAX_FRAME` before a single body byte is buffered.

use crate::error::FrameError;
use crate::paths::{MAX_FRAME, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;
/// Bytes of the version field.
pub const VERSION_BYTES: usize = 2;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Validate an announced frame length (version + body).
pub fn check_len(len: u32) -> Result<usize, FrameError> {
    let len = len as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if len < VERSION_BYTES {
        return Err(FrameError::Truncated);
    }
    Ok(len)
}

/// Encode a message into a complete frame.
/// Callers that send secrets should zeroise the returned buffer after use (`write_frame` does).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut body = encode_value(msg)?;
    let len = body.len() + VERSION_BYTES;
    if len > MAX_FRAME {
        zeroize::Zeroize::zeroize(&mut body);
        return Err(FrameError::TooLarge(len));
    }
    let mut out = Vec::with_capacity(LEN_BYTES + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.extend_from_slice(&body);
    // PINs and OTPs travel in these buffers: do not leave copies on the heap.
    zeroize::Zeroize::zeroize(&mut body);
    Ok(out)
}

/// Decode what follows the length prefix: version, then body. The whole slice must be consumed.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    if payload.len() < VERSION_BYTES {
        return Err(FrameError::Truncated);
    }
    let version = u16::from_be_bytes([payload[0], payload[1]]);
    if version != PROTOCOL_VERSION {
        return Err(FrameError::Version(version));
    }
    decode_value(&payload[VERSION_BYTES..])
}

/// Serialize a value with the workspace's one binary encoding (also used for store records).
pub fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| FrameError::Encode(e.to_string()))
}

/// Deserialize a value; trailing bytes are an error, so a frame means exactly one thing.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(FrameError::Decode(format!(
            "{} trailing bytes after the message",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Write one frame and flush.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let mut frame = encode(msg)?;
    let result = w.write_all(&frame).and_then(|_| w.flush());
    zeroize::Zeroize::zeroize(&mut frame);
    Ok(result?)
}

/// Read exactly one frame. A clean end of stream before the first byte is `Closed`.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut len = [0u8; LEN_BYTES];
    let mut got = 0;
    while got < LEN_BYTES {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = check_len(u32::from_be_bytes(len))?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    let result = decode_payload(&payload);
    // Answers to prompts travel in this buffer: do not leave them on the heap.
    zeroize::Zeroize::zeroize(&mut payload);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};
    use rand::{Rng, SeedableRng};

    #[test]
    fn zero_length_frame_is_refused() {
        let mut r: &[u8] = &[0, 0, 0, 0];
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::Empty)
        ));
    }

    #[test]
    fn oversized_frame_is_refused_before_reading_the_body() {
        let announced = (MAX_FRAME as u32 + 1).to_be_bytes();
        // Only the header is present: a reader that tried to buffer the body would see EOF instead.
        let mut r: &[u8] = &announced;
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::TooLarge(_))
        ));
        let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let frame = encode(&Request::Status).unwrap();
        for cut in 1..frame.len() {
            let mut r = &frame[..cut];
            assert!(read_frame::<_, Request>(&mut r).is_err(), "cut at {cut}");
        }
        let mut r: &[u8] = &[];
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn other_protocol_version_is_reported_as_version_error() {
        let mut frame = encode(&Request::Status).unwrap();
        frame[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
        let mut r = &frame[..];
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::Version(v)) if v == PROTOCOL_VERSION + 1
        ));
    }

    #[test]
    fn trailing_bytes_after_a_message_are_refused() {
        let mut frame = encode(&Request::Status).unwrap();
        frame.push(0);
        let len = (frame.len() - LEN_BYTES) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let mut r = &frame[..];
        assert!(matches!(
            read_frame::<_, Request>(&mut r),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn invalid_utf8_in_a_string_is_a_decode_error() {
        // Request::AuthBegin (index 1), user = 2 bytes 0xff 0xfe.
        let body = [1u8, 2, 0xff, 0xfe, 0, 0, 0, 0, 0];
        let mut payload = PROTOCOL_VERSION.to_be_bytes().to_vec();
        payload.extend_from_slice(&body);
        assert!(matches!(
            decode_payload::<Request>(&payload),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn announced_string_longer_than_the_limit_is_refused_without_allocating() {
        // AuthBegin with a user whose varint length claims 2^32 bytes.
        let body = [1u8, 252, 0, 0, 0, 1];
        let mut payload = PROTOCOL_VERSION.to_be_bytes().to_vec();
        payload.extend_from_slice(&body);
        assert!(decode_payload::<Request>(&payload).is_err());
    }

    #[test]
    fn random_frames_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let n = rng.gen_range(0..96);
            let mut buf: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            if buf.len() >= 6 && rng.gen_bool(0.7) {
                // Make the header plausible so the body decoder is exercised too.
                let len = (buf.len() - 4) as u32;
                buf[..4].copy_from_slice(&len.to_be_bytes());
                buf[4..6].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
            }
            let mut r = &buf[..];
            let _ = read_frame::<_, Request>(&mut r);
            let mut r = &buf[..];
            let _ = read_frame::<_, Response>(&mut r);
        }
    }
}
