//! Message framing over TCP: one splitter, used directly on a `BytesMut`
//! and by the tokio-util codec.

use bytes::{Buf, BytesMut};

use crate::{Message, MessageError, MessageErrorKind};

/// Default longest message, terminator excluded: 4 KiB. The longest message
/// this crate encodes (every field at its limit, fully percent-escaped) is
/// about 2.5 KiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 4096;

/// Splits a byte stream into messages.
///
/// The protocol description does not say how messages are delimited, so the
/// splitter is liberal: a message ends at `\n`, `\r\n` or `\0`, empty
/// messages (blank lines, NUL padding) are skipped, and at end of stream an
/// unterminated final message still counts. A message longer than the limit
/// is reported once as [`MessageErrorKind::TooLong`] and discarded up to the
/// next terminator, holding at most `max + 2` bytes meanwhile.
///
/// Like tokio-util's `LinesCodec`, it remembers how far it has searched, so
/// bytes are scanned once however the input is split.
///
/// ```
/// use bytes::BytesMut;
/// use callrec_control::MessageSplitter;
///
/// let mut splitter = MessageSplitter::new();
/// let mut buf = BytesMut::from(&b"cmd=RecordStopResponse&id=a1&result=success\r\ncmd=Rec"[..]);
/// let first = splitter.next_message(&mut buf).unwrap()?;
/// assert_eq!(first.id().as_str(), "a1");
/// assert!(splitter.next_message(&mut buf).is_none()); // waits for more bytes
/// # Ok::<(), callrec_control::MessageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageSplitter {
    max_len: usize,
    /// Bytes of the buffer already searched for a terminator.
    next_index: usize,
    /// Dropping the rest of an over-long message.
    discarding: bool,
}

impl Default for MessageSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageSplitter {
    /// A splitter with the default 4 KiB limit.
    pub fn new() -> Self {
        Self::with_max_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A splitter with a custom limit (at least 1 byte).
    pub fn with_max_len(max_len: usize) -> Self {
        Self {
            max_len: max_len.max(1),
            next_index: 0,
            discarding: false,
        }
    }

    /// The limit in bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Splits the next message's bytes (terminator removed) off `buf`.
    ///
    /// `None`: more bytes are needed. `Some(Err)`: a message over the limit,
    /// now being discarded.
    pub fn split_frame(&mut self, buf: &mut BytesMut) -> Option<Result<BytesMut, MessageError>> {
        loop {
            // A terminator further out than this means the message is too long.
            let window = buf.len().min(self.max_len + 2);
            let start = self.next_index.min(window);
            let found = memchr::memchr2(b'\n', 0, &buf[start..window]).map(|offset| start + offset);
            match (self.discarding, found) {
                (true, Some(end)) => {
                    buf.advance(end + 1);
                    self.next_index = 0;
                    self.discarding = false;
                }
                (true, None) => {
                    buf.advance(window);
                    self.next_index = 0;
                    if buf.is_empty() {
                        return None;
                    }
                }
                (false, Some(end)) => {
                    self.next_index = 0;
                    let mut frame = buf.split_to(end + 1);
                    let crlf = frame[end] == b'\n' && end > 0 && frame[end - 1] == b'\r';
                    frame.truncate(if crlf { end - 1 } else { end });
                    if frame.len() > self.max_len {
                        return Some(Err(self.too_long(&frame)));
                    }
                    if !frame.is_empty() {
                        return Some(Ok(frame));
                    }
                }
                (false, None) if window > self.max_len + 1 => {
                    // No terminator within max + 2 bytes: too long whatever
                    // follows. Drop what we hold and the rest up to the next
                    // terminator.
                    let error = self.too_long(&buf[..window]);
                    buf.advance(window);
                    self.next_index = 0;
                    self.discarding = true;
                    return Some(Err(error));
                }
                (false, None) => {
                    self.next_index = window;
                    return None;
                }
            }
        }
    }

    /// At end of stream: like [`split_frame`](Self::split_frame), then the
    /// unterminated rest as a final message (a trailing `\r` removed).
    pub fn split_frame_eof(
        &mut self,
        buf: &mut BytesMut,
    ) -> Option<Result<BytesMut, MessageError>> {
        if let Some(frame) = self.split_frame(buf) {
            return Some(frame);
        }
        self.next_index = 0;
        if self.discarding {
            self.discarding = false;
            buf.clear();
            return None;
        }
        let mut frame = buf.split();
        if frame.last() == Some(&b'\r') {
            frame.truncate(frame.len() - 1);
        }
        match frame.len() {
            0 => None,
            n if n > self.max_len => Some(Err(self.too_long(&frame))),
            _ => Some(Ok(frame)),
        }
    }

    /// The next message from `buf`, decoded.
    pub fn next_message(&mut self, buf: &mut BytesMut) -> Option<Result<Message, MessageError>> {
        self.split_frame(buf)
            .map(|frame| frame.and_then(|f| Message::parse(&f)))
    }

    /// At end of stream: the next message, including an unterminated last one.
    pub fn next_message_eof(
        &mut self,
        buf: &mut BytesMut,
    ) -> Option<Result<Message, MessageError>> {
        self.split_frame_eof(buf)
            .map(|frame| frame.and_then(|f| Message::parse(&f)))
    }

    /// The error for an over-long message, with the `cmd` and `id` read from
    /// its first `max_len` bytes, so a server can still answer it.
    fn too_long(&self, message: &[u8]) -> MessageError {
        let error = MessageError::new(MessageErrorKind::TooLong { max: self.max_len });
        Message::context_of_head(&message[..message.len().min(self.max_len)], error)
    }
}

/// Writes `message` and its `\r\n` terminator to `out`.
///
/// # Errors
/// As [`Message::to_vec`]; nothing is written then.
pub fn write_frame(message: &Message, out: &mut BytesMut) -> Result<(), MessageError> {
    let wire = message.to_vec()?;
    out.reserve(wire.len() + 2);
    out.extend_from_slice(&wire[..]);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(feature = "tokio")]
pub use self::codec::ControlCodec;

#[cfg(feature = "tokio")]
mod codec {
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    use super::{MessageSplitter, write_frame};
    use crate::{CodecError, Message, MessageError};

    /// tokio-util codec for control connections.
    ///
    /// Items are `Result<Message, MessageError>`: a malformed or over-long
    /// message is an `Err` item and the stream goes on (a `Decoder` error
    /// would end a `FramedRead` for good, since tokio-util 0.6.9). Only I/O
    /// failures are [`CodecError`]s.
    ///
    /// ```
    /// use callrec_control::ControlCodec;
    /// use futures_util::StreamExt;
    /// use tokio_util::codec::FramedRead;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bytes: &[u8] = b"cmd=RecordStopResponse&id=a1&result=success\r\nbogus\ncmd=RecordStopResponse&id=a2&result=success";
    /// let mut frames = FramedRead::new(bytes, ControlCodec::new());
    /// assert_eq!(frames.next().await.unwrap()?.unwrap().id().as_str(), "a1");
    /// assert!(frames.next().await.unwrap()?.is_err()); // reported, not fatal
    /// assert_eq!(frames.next().await.unwrap()?.unwrap().id().as_str(), "a2"); // at EOF
    /// assert!(frames.next().await.is_none());
    /// # Ok::<(), callrec_control::CodecError>(())
    /// # }).unwrap();
    /// ```
    #[derive(Debug, Clone, Default)]
    pub struct ControlCodec {
        splitter: MessageSplitter,
    }

    impl ControlCodec {
        /// A codec with the default 4 KiB message limit.
        pub fn new() -> Self {
            Self::default()
        }

        /// A codec with a custom message limit.
        pub fn with_max_len(max_len: usize) -> Self {
            Self {
                splitter: MessageSplitter::with_max_len(max_len),
            }
        }
    }

    impl Decoder for ControlCodec {
        type Item = Result<Message, MessageError>;
        type Error = CodecError;

        fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
            Ok(self.splitter.next_message(buf))
        }

        fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
            Ok(self.splitter.next_message_eof(buf))
        }
    }

    impl Encoder<&Message> for ControlCodec {
        type Error = CodecError;

        fn encode(&mut self, message: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
            Ok(write_frame(message, dst)?)
        }
    }

    impl Encoder<Message> for ControlCodec {
        type Error = CodecError;

        fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
            self.encode(&message, dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP_A: &[u8] = b"cmd=RecordStopResponse&id=a&result=success";
    const STOP_B: &[u8] = b"cmd=RecordStopResponse&id=b&result=success";

    fn frames(splitter: &mut MessageSplitter, input: &[u8]) -> Vec<Result<Vec<u8>, MessageError>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = splitter.split_frame_eof(&mut buf) {
            out.push(f.map(|b| b.to_vec()));
        }
        out
    }

    #[test]
    fn every_terminator() {
        let mut s = MessageSplitter::new();
        for sep in [&b"\n"[..], b"\r\n", b"\0"] {
            let input = [STOP_A, sep, STOP_B, sep].concat();
            assert_eq!(
                frames(&mut s, &input),
                [Ok(STOP_A.to_vec()), Ok(STOP_B.to_vec())],
                "{sep:?}"
            );
        }
    }

    #[test]
    fn blank_lines_and_padding_are_skipped() {
        let mut s = MessageSplitter::new();
        let input = [&b"\r\n\n\0\0"[..], STOP_A, b"\r\n\r\n\0", STOP_B].concat();
        assert_eq!(
            frames(&mut s, &input),
            [Ok(STOP_A.to_vec()), Ok(STOP_B.to_vec())]
        );
    }

    #[test]
    fn unterminated_last_message_counts_at_eof_only() {
        let mut s = MessageSplitter::new();
        let mut buf = BytesMut::from(STOP_A);
        assert!(s.split_frame(&mut buf).is_none());
        assert_eq!(
            s.split_frame_eof(&mut buf),
            Some(Ok(BytesMut::from(STOP_A)))
        );
        let mut buf = BytesMut::from(&[STOP_A, b"\r"].concat()[..]);
        assert_eq!(
            s.split_frame_eof(&mut buf),
            Some(Ok(BytesMut::from(STOP_A)))
        );
        assert_eq!(s.split_frame_eof(&mut buf), None);
    }

    #[test]
    fn overlong_message_is_discarded_once() {
        let mut s = MessageSplitter::with_max_len(8);
        let too_long = || Err(MessageError::new(MessageErrorKind::TooLong { max: 8 }));
        // Exactly the limit, with CRLF: fine.
        assert_eq!(frames(&mut s, b"12345678\r\n"), [Ok(b"12345678".to_vec())]);
        // One over, terminated within the window.
        assert_eq!(
            frames(&mut s, b"123456789\nabc\n"),
            [too_long(), Ok(b"abc".to_vec())]
        );
        // Far over: one error, then the next message.
        let input = [&[b'x'; 100][..], b"\r\nabc\r\n"].concat();
        assert_eq!(frames(&mut s, &input), [too_long(), Ok(b"abc".to_vec())]);
        // Far over at EOF: one error, nothing else.
        assert_eq!(frames(&mut s, &[b'x'; 100]), [too_long()]);
    }

    #[test]
    fn discarding_holds_bounded_memory() {
        let mut s = MessageSplitter::with_max_len(16);
        let mut buf = BytesMut::new();
        let mut errors = 0;
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'y'; 7]);
            while let Some(f) = s.split_frame(&mut buf) {
                assert!(f.is_err());
                errors += 1;
            }
            assert!(buf.len() <= 18, "{}", buf.len());
        }
        buf.extend_from_slice(b"\nok\n");
        assert_eq!(
            s.split_frame(&mut buf),
            Some(Ok(BytesMut::from(&b"ok"[..])))
        );
        assert_eq!(errors, 1);
    }

    #[test]
    fn garbage_between_messages_is_reported_and_skipped() {
        let mut s = MessageSplitter::new();
        let input = [STOP_A, b"\r\n\xff\xfegarbage\r\n", STOP_B, b"\r\n"].concat();
        let mut buf = BytesMut::from(&input[..]);
        let got: Vec<_> = core::iter::from_fn(|| s.next_message(&mut buf)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap().id().as_str(), "a");
        assert_eq!(
            got[1].as_ref().unwrap_err().to_string(),
            "missing key \"cmd\""
        );
        assert_eq!(got[2].as_ref().unwrap().id().as_str(), "b");
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let stream = [
            STOP_A,
            b"\r\n\0junk\n",
            STOP_B,
            b"\n",
            &[b'z'; 60][..],
            b"\r\n",
            STOP_A,
        ]
        .concat();
        let mut s = MessageSplitter::with_max_len(48);
        let mut buf = BytesMut::from(&stream[..]);
        let kinds: Vec<_> = core::iter::from_fn(|| s.next_message_eof(&mut buf))
            .map(|m| m.map(|m| m.id().to_string()).map_err(|e| e.kind().clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                Ok("a".into()),
                Err(MessageErrorKind::MissingKey("cmd")),
                Ok("b".into()),
                Err(MessageErrorKind::TooLong { max: 48 }),
                Ok("a".into())
            ]
        );
        for split in 0..=stream.len() {
            for size in [1u8, 2, 3, 5] {
                crate::fuzzing::check_split_independent(&stream[..split], &[size], 48);
                crate::fuzzing::check_split_independent(&stream, &[size, split as u8], 48);
            }
        }
    }
}
