//! Property tests: what the writer writes, every reader reads back; whole
//! buffer and streaming reads agree on arbitrary and on damaged files.

use core::time::Duration;
use std::io::Cursor;

use callrec_file::{
    CodecName, HEADER_LEN, Header, ReadMode, Reader, Recording, Writer, fuzzing, inspect,
};
use proptest::prelude::*;

fn codec_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~]{1,63}").unwrap()
}

/// (codec, rtpLen, increment, frames)
fn recording() -> impl Strategy<Value = (String, u16, u16, Vec<Vec<u8>>)> {
    (codec_name(), 1u16..=1500, 1u16..=u16::MAX, 0usize..20).prop_flat_map(
        |(codec, rtp_len, increment, count)| {
            let frame = proptest::collection::vec(any::<u8>(), usize::from(rtp_len));
            (
                Just(codec),
                Just(rtp_len),
                Just(increment),
                proptest::collection::vec(frame, count),
            )
        },
    )
}

fn write(codec: &str, rtp_len: u16, increment: u16, frames: &[Vec<u8>]) -> (Header, Vec<u8>) {
    let header = Header::new(CodecName::new(codec).unwrap(), rtp_len, increment).unwrap();
    let mut w = Writer::new(Cursor::new(Vec::new()), header).unwrap();
    for f in frames {
        w.append(f).unwrap();
    }
    let (header, cursor) = w.finish_into_inner().unwrap();
    (header, cursor.into_inner())
}

proptest! {
    #[test]
    fn write_then_read((codec, rtp_len, increment, frames) in recording()) {
        let (header, bytes) = write(&codec, rtp_len, increment, &frames);
        prop_assert_eq!(bytes.len(), HEADER_LEN + frames.len() * usize::from(rtp_len));

        // Header round trip.
        let parsed = Header::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, header);
        prop_assert_eq!(parsed.codec().as_str(), codec.as_str());
        prop_assert_eq!(parsed.rtp_len(), rtp_len);
        prop_assert_eq!(parsed.increment(), increment);
        prop_assert_eq!(parsed.frame_count() as usize, frames.len());

        // Whole-buffer view.
        let rec = Recording::parse(&bytes).unwrap();
        prop_assert!(rec.frames().eq(frames.iter().map(Vec::as_slice)));
        prop_assert_eq!(rec.recovery(), None);

        // Streaming reader.
        let mut r = Reader::new(Cursor::new(&bytes)).unwrap();
        let mut i = 0;
        while let Some(f) = r.next_frame().unwrap() {
            prop_assert_eq!(f, &frames[i][..]);
            i += 1;
        }
        prop_assert_eq!(i, frames.len());

        // inspect sees the same header without reading frames.
        let (seen, recovery) = inspect(&mut Cursor::new(&bytes), ReadMode::Strict).unwrap();
        prop_assert_eq!(seen, header);
        prop_assert_eq!(recovery, None);
    }

    /// Seeking to the start time of any frame lands on that frame.
    #[test]
    fn seek_by_time((codec, rtp_len, increment, frames) in recording(), pick in any::<prop::sample::Index>()) {
        prop_assume!(!frames.is_empty());
        let (header, bytes) = write(&codec, rtp_len, increment, &frames);
        let clock = core::num::NonZeroU32::new(8000).unwrap();
        let timeline = header.timeline_with_clock(clock);
        let index = pick.index(frames.len()) as u32;
        let at = timeline.time_of_frame(index);
        prop_assert_eq!(timeline.frame_at(at), index);
        let mut r = Reader::new(Cursor::new(&bytes)).unwrap();
        r.set_clock_rate(clock);
        prop_assert_eq!(r.seek_to_time(at).unwrap(), index);
        prop_assert_eq!(r.next_frame().unwrap(), Some(&frames[index as usize][..]));
        prop_assert_eq!(timeline.duration(), timeline.time_of_frame(u32::MAX));
        prop_assert!(timeline.duration() >= Duration::ZERO);
    }

    /// A file cut anywhere and with any dataSize reads in recover mode as
    /// the whole frames that are there, and both readers agree.
    #[test]
    fn damaged_files_recover((codec, rtp_len, increment, frames) in recording(),
                             cut in any::<prop::sample::Index>(),
                             data_size in any::<u32>(),
                             splits in proptest::collection::vec(any::<u8>(), 0..4)) {
        let (_, mut bytes) = write(&codec, rtp_len, increment, &frames);
        bytes.truncate(HEADER_LEN + cut.index(bytes.len() - HEADER_LEN + 1));
        bytes[72..76].copy_from_slice(&data_size.to_le_bytes());
        let body_len = bytes.len() - HEADER_LEN;
        let rec = Recording::parse_with(&bytes, ReadMode::Recover).unwrap();
        let whole = body_len / usize::from(rtp_len);
        prop_assert_eq!(rec.frame_count() as usize, whole);
        prop_assert!(rec.frames().eq(frames[..whole].iter().map(Vec::as_slice)));
        let consistent = data_size as usize == body_len && body_len % usize::from(rtp_len) == 0;
        prop_assert_eq!(rec.recovery().is_none(), consistent);
        prop_assert_eq!(Recording::parse(&bytes).is_ok(), consistent);
        fuzzing::check_whole_and_streaming_agree(&bytes, &splits);
    }

    /// Header-shaped input with small, sometimes invalid, fields and any
    /// body: never a panic, and both readers agree.
    #[test]
    fn near_valid_files_agree(codec in proptest::collection::vec(any::<u8>(), 64),
                              nul in 0usize..65,
                              rtp_len in -2i32..12,
                              increment in -1i32..3,
                              data_size in 0u32..64,
                              body in proptest::collection::vec(any::<u8>(), 0..64),
                              splits in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut bytes = codec;
        if nul < 64 {
            bytes[nul] = 0;
        }
        bytes.extend_from_slice(&rtp_len.to_le_bytes());
        bytes.extend_from_slice(&increment.to_le_bytes());
        bytes.extend_from_slice(&data_size.to_le_bytes());
        bytes.extend_from_slice(&body);
        fuzzing::check_whole_and_streaming_agree(&bytes, &splits);
    }

    /// Arbitrary bytes: never a panic, and both readers agree.
    #[test]
    fn arbitrary_bytes_agree(data in proptest::collection::vec(any::<u8>(), 0..400),
                             splits in proptest::collection::vec(any::<u8>(), 0..4)) {
        fuzzing::check_whole_and_streaming_agree(&data, &splits);
    }
}
