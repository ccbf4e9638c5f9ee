//! The hex example in `docs/recording-file.md` parses to what the page says.

use callrec::file::{Codec, Recording};
use core::time::Duration;

/// Bytes of the first ```hex block in `markdown` (`offset: xx xx …` lines).
fn hex_block(markdown: &str) -> Vec<u8> {
    let start = markdown.find("```hex\n").expect("a ```hex block") + 7;
    let end = start + markdown[start..].find("```").expect("closing fence");
    let mut bytes = Vec::new();
    for line in markdown[start..end].lines() {
        let (offset, hex) = line.split_once(": ").expect("offset: bytes");
        assert_eq!(
            usize::from_str_radix(offset, 16).unwrap(),
            bytes.len(),
            "offset column"
        );
        for byte in hex.split_whitespace() {
            bytes.push(u8::from_str_radix(byte, 16).unwrap());
        }
    }
    bytes
}

#[test]
fn recording_file_example() {
    let bytes = hex_block(include_str!("../docs/recording-file.md"));
    let rec = Recording::parse(&bytes).unwrap();
    let h = rec.header();
    assert_eq!(h.codec().codec(), Some(Codec::Pcmu));
    assert_eq!((h.rtp_len(), h.increment(), h.data_size()), (80, 80, 160));
    assert_eq!(rec.frame(0), Some(&[0xff; 80][..]));
    let second: Vec<u8> = (0..80).map(|i| 0xff - i).collect();
    assert_eq!(rec.frame(1), Some(&second[..]));
    assert_eq!(rec.duration(), Some(Duration::from_millis(20)));
    // And the writer produces these exact bytes.
    assert_eq!(h.to_bytes()[..], bytes[..76]);
}
