//! tokio codec for the daemon: the same framing as `frame.rs`, non-blocking.
//!
//! The decoder checks the announced length before reserving anything, so a peer cannot make the
//! daemon buffer more than `MAX_FRAME` bytes per connection.

use crate::error::FrameError;
use crate::frame::{self, LEN_BYTES};
use bytes::{Buf, BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder};

/// Decodes `In`, encodes `Out`.
pub struct FrameCodec<In, Out> {
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        FrameCodec {
            _types: PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
        if src.len() < LEN_BYTES {
            return Ok(None);
        }
        let announced = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let len = frame::check_len(announced)?;
        if src.len() < LEN_BYTES + len {
            src.reserve(LEN_BYTES + len - src.len());
            return Ok(None);
        }
        src.advance(LEN_BYTES);
        let mut payload = src.split_to(len);
        let result = frame::decode_payload(&payload);
        zeroize::Zeroize::zeroize(&mut payload[..]);
        result.map(Some)
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = FrameError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
        let mut bytes = frame::encode(&item)?;
        dst.reserve(bytes.len());
        dst.put_slice(&bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};

    #[test]
    fn codec_decodes_what_frame_encodes_even_byte_by_byte() {
        let frame = frame::encode(&Request::Status).unwrap();
        let mut codec = FrameCodec::<Request, Response>::default();
        let mut buf = BytesMut::new();
        for (i, b) in frame.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode(&mut buf).unwrap();
            if i + 1 < frame.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(got, Some(Request::Status));
            }
        }
    }

    #[test]
    fn codec_refuses_oversized_length_before_buffering() {
        let mut codec = FrameCodec::<Request, Response>::default();
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge(_))
        ));
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Empty)));
    }
}
