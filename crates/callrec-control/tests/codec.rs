//! The tokio-util codec and both sessions over a real TCP connection on
//! 127.0.0.1.

use core::num::NonZeroU16;
use std::time::Instant;

use callrec_control::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, FramedRead};

struct FixedPort;

impl PortAllocator for FixedPort {
    fn allocate(&mut self, _: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        Ok(RtpTarget::new(
            "127.0.0.1".parse().unwrap(),
            NonZeroU16::new(40000).unwrap(),
        ))
    }
    fn release(&mut self, _: &SessionId, _: &RtpTarget) {}
}

#[tokio::test]
async fn phone_and_server_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut frames = FramedRead::new(read, ControlCodec::new());
        let mut session = ServerSession::new(FixedPort, ServerConfig::default(), Instant::now());
        let mut events = Vec::new();
        while let Some(item) = frames.next().await {
            session.handle_message(item.unwrap(), Instant::now());
            if let Some(bytes) = session.poll_transmit() {
                write.write_all(&bytes).await.unwrap();
            }
            events.extend(core::iter::from_fn(|| session.poll_event()));
        }
        session.connection_lost();
        events.extend(core::iter::from_fn(|| session.poll_event()));
        events
    });

    let socket = TcpStream::connect(addr).await.unwrap();
    let mut framed = Framed::new(socket, ControlCodec::new());
    let req = RecordStartRequest::new(
        SessionId::new("tcp-1").unwrap(),
        "001565aabbcc".parse().unwrap(),
        Direction::In,
        Codec::Pcmu,
    );
    framed.send(Message::from(req.clone())).await.unwrap();
    let answer = framed.next().await.unwrap().unwrap().unwrap();
    assert_eq!(
        answer,
        Message::StartResponse(RecordStartResponse::success(
            req.id.clone(),
            "127.0.0.1".parse().unwrap(),
            NonZeroU16::new(40000).unwrap()
        ))
    );
    framed
        .send(Message::from(RecordStopRequest::for_start(&req, "hangup")))
        .await
        .unwrap();
    let answer = framed.next().await.unwrap().unwrap().unwrap();
    assert_eq!(
        answer,
        Message::StopResponse(RecordStopResponse::success(req.id.clone()))
    );
    drop(framed);
    let events = server.await.unwrap();
    assert!(matches!(
        events[..],
        [ServerEvent::Started { .. }, ServerEvent::Stop { .. }]
    ));
}

#[tokio::test]
async fn bad_lines_do_not_end_the_stream() {
    let input: &[u8] = b"cmd=RecordStopResponse&id=a&result=success\r\n\
        cmd=Nope\r\n\
        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\
        cmd=RecordStopResponse&id=b&result=success";
    let items: Vec<_> = FramedRead::new(input, ControlCodec::with_max_len(64))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|r| {
            r.unwrap()
                .map(|m| m.id().to_string())
                .map_err(|e| e.to_string())
        })
        .collect();
    assert_eq!(
        items,
        [
            Ok("a".to_owned()),
            Err("unknown cmd \"Nope\"".to_owned()),
            Err("message longer than 64 bytes; discarded".to_owned()),
            Ok("b".to_owned()),
        ]
    );
}
