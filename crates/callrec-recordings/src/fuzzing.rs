//! Entry points for the fuzz targets in `fuzz/` (not a stable API): every
//! parser of input that reaches the service from outside, each with the
//! property it must keep.

use std::path::Path;

use crate::api::{SearchParams, query_of};
use crate::audio::{Pcm16View, RangeAnswer, parse_range};
use crate::index::Cursor;
use crate::time::{format_time_ms, parse_time_ms};
use crate::tokens::Tokens;

/// Feeds `data` to the query-string, recording id, `Host`, time, cursor, range,
/// tokens-file, audit-log and PCM16-view parsers; panics when one panics or breaks its
/// property (times and cursors round-trip, ranges stay inside the
/// representation, a parsed audit log verifies the same again).
pub fn check_inputs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(params) = serde_urlencoded::from_str::<SearchParams>(&text) {
        if let Ok(query) = query_of(params) {
            assert!(query.limit <= crate::MAX_LIMIT);
            for term in [&query.device, &query.number, &query.text]
                .into_iter()
                .flatten()
            {
                assert!(!term.chars().any(char::is_control), "{term:?}");
            }
            if let (Some(from), Some(to)) = (query.from_ms, query.to_ms) {
                assert!(from < to);
            }
        }
    }
    // A recording id from a path is only letters and digits (it becomes a
    // file name and an index key).
    if let Ok(id) = crate::api::recording_id(&text) {
        assert!(
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id:?}"
        );
    }
    // A Host the loopback mode serves names no other machine.
    if crate::api::is_loopback_host(&text) {
        assert!(
            !text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c)),
            "{text:?}"
        );
    }
    if let Some(ms) = parse_time_ms(&text) {
        assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms), "{text:?}");
    }
    if let Ok(cursor) = text.parse::<Cursor>() {
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
    }
    let len = data
        .iter()
        .take(4)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if let RangeAnswer::Partial(start, end) = parse_range(Some(&text), len) {
        assert!(
            start < end && end <= len,
            "{text:?} of {len}: {start}..{end}"
        );
    }
    if let Ok(tokens) = Tokens::parse(&text) {
        for line in text.lines() {
            if let Some(token) = line.split_whitespace().nth(2) {
                if !line.trim_start().starts_with('#') {
                    assert!(tokens.check(token).is_some(), "{token:?}");
                }
            }
        }
    }
    let path = Path::new("fuzz.jsonl");
    if let Ok(first) = crate::audit::verify_reader(data, path, None) {
        let again = crate::audit::verify_reader(data, path, None).ok();
        assert_eq!(again.as_ref(), Some(&first));
        // The chain's own end is an anchor it matches.
        let anchor = crate::AuditAnchor::new(first.entries, first.head.clone());
        let anchored = crate::audit::verify_reader(data, path, Some(&anchor));
        assert!(anchored.is_ok_and(|a| a.anchored && a.entries == first.entries));
    }
    if let Ok(view) = Pcm16View::new(data, len) {
        assert!(view.len() >= 44);
    }
}

/// Feeds `data` to what the service reads back from its storage or from an
/// import: an archive (Ogg Opus and FLAC decoders), a sealed file's age
/// header, a phone recording's file name, and a WAV to be archived;
/// panics when one panics or breaks its property (a header ends inside
/// the input, a file name round-trips, a WAV archived as FLAC decodes to
/// its length).
pub fn check_stored(data: &[u8]) {
    use std::io::Cursor;

    use crate::codec::{ArchiveFormat, Decoder, WavSamples, encode_flac};

    for format in [ArchiveFormat::Opus, ArchiveFormat::Flac] {
        if let Ok(mut decoder) = Decoder::new(format, Cursor::new(data)) {
            let _ = decoder.count_frames();
        }
    }
    if let Ok(header) = crate::seal::parse_header(data) {
        assert!(header.mac_input_len < header.len && header.len <= data.len());
    }
    let text = String::from_utf8_lossy(data);
    if let Some((time, part)) = crate::import::parse_name(Path::new(&*text)) {
        let name = match part {
            0 => format!("{}.wav", time.file_stem()),
            n => format!("{}_{n}.wav", time.file_stem()),
        };
        assert_eq!(
            crate::import::parse_name(Path::new(&name)),
            Some((time, part)),
            "{text:?}"
        );
    }
    if let Ok(wav) = WavSamples::new(Cursor::new(data), data.len() as u64) {
        let frames = wav.frames();
        let mut flac = Cursor::new(Vec::new());
        if encode_flac(wav, &mut flac).is_ok() {
            let decoded = Decoder::new(ArchiveFormat::Flac, Cursor::new(flac.get_ref()))
                .and_then(|mut d| d.count_frames());
            assert_eq!(decoded, Ok(frames), "FLAC of a WAV of {frames} frames");
        }
    }
}
