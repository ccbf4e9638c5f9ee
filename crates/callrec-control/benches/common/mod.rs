//! The workload both control benches share.

use callrec_control::{Codec, Direction, Message, RecordStartRequest, SessionId};

/// A realistic start request: a 32-hex-digit id, a `+49 …` number and a
/// name with umlauts and a comma, so escapes must be decoded (206 bytes).
pub(crate) fn start_request() -> Message {
    let mut r = RecordStartRequest::new(
        SessionId::new("9b2f6c1e4d8a0b3c5e7f9a1b2c3d4e5f").unwrap(),
        "00:15:65:aa:bb:cc".parse().unwrap(),
        Direction::In,
        Codec::Pcma,
    );
    r.remote_number = "+49 30 1234567".into();
    r.remote_name = "Müller, Jürgen".into();
    r.local_number = "1009".into();
    r.local_name = "Front Desk".into();
    r.into()
}

/// The start request as a plain derived struct: what an application would
/// get from `serde_urlencoded` alone (owned strings, as `Message` holds; no
/// field validation). The peer in the decode benches.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub(crate) struct StartRequestForm {
    cmd: String,
    id: String,
    device: String,
    remote_number: String,
    remote_name: String,
    local_number: String,
    local_name: String,
    dir: String,
    codec: String,
}
