//! Any byte string fed to the blocking reader or the tokio codec must give a message or an
//! error — never a panic, never an allocation beyond the frame limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use protocol::{Request, Response};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    let _ = protocol::frame::read_frame::<_, Request>(&mut r);
    let mut r = data;
    let _ = protocol::frame::read_frame::<_, Response>(&mut r);
    let mut codec = protocol::codec::FrameCodec::<Request, Response>::default();
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
});
