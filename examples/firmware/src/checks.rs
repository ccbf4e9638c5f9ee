//! What the firmware does with callrec, with no allocator: the same steps a
//! phone takes, each checked. Target-independent: only the console and the
//! exit differ per board (main.rs).

use core::fmt::Write;

use callrec_file::{CodecName, HEADER_LEN, Header, Recording};
use callrec_rtp::rand_core::RngCore;
use callrec_rtp::{Packetizer, PacketizerConfig, PayloadFormat, RtpPacket, RtpPacketBuilder};
use callrec_sip::{Dialog, NameAddr, Record};

/// A check that failed: which one, and why.
pub type Failure = &'static str;

/// An xorshift generator: firmware would use its hardware RNG here.
pub struct XorShift(pub u64);

impl RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn ensure(ok: bool, failure: Failure) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(failure) }
}

/// A local recording: header and two 20 ms A-law frames written into a
/// buffer, parsed back.
pub fn recording(log: &mut impl Write) -> Result<(), Failure> {
    const FRAME: usize = 160;
    let mut file = [0u8; HEADER_LEN + 2 * FRAME];
    let header = Header::new(CodecName::PCMA, FRAME as u16, FRAME as u16)
        .map_err(|_| "recording: Header::new refused PCMA/160/160")?
        .with_data_size(2 * FRAME as u32);
    let (head, body) = file.split_at_mut(HEADER_LEN);
    let head: &mut [u8; HEADER_LEN] = head.try_into().map_err(|_| "recording: header size")?;
    header.write(head);
    body[..FRAME].fill(0xd5);
    body[FRAME..].fill(0x55);
    let parsed =
        Recording::parse(&file).map_err(|_| "recording: the written file does not parse")?;
    ensure(
        parsed.header() == &header,
        "recording: header did not round-trip",
    )?;
    ensure(parsed.frame_count() == 2, "recording: frame count is not 2")?;
    let mut frames = parsed.frames();
    ensure(
        frames.next() == Some(&[0xd5; FRAME][..]) && frames.next() == Some(&[0x55; FRAME][..]),
        "recording: frames differ",
    )?;
    ensure(frames.next().is_none(), "recording: a third frame")?;
    // A header cut short is an error, not a panic.
    ensure(
        Recording::parse(&file[..HEADER_LEN - 1]).is_err(),
        "recording: a short header parsed",
    )?;
    let _ = writeln!(log, "recording: header + 2 frames written and parsed");
    Ok(())
}

/// RTP: a packet built into a buffer and parsed, then a packetizer's
/// stream with the sequence number wrapping.
pub fn rtp(log: &mut impl Write) -> Result<(), Failure> {
    let audio = [0xd5u8; 160];
    let mut buf = [0u8; 200];
    let n = RtpPacketBuilder::new()
        .payload_type(8)
        .sequence_number(7)
        .timestamp(1120)
        .ssrc(0xdead_beef)
        .marker(true)
        .payload(&audio)
        .write(&mut buf)
        .map_err(|_| "rtp: the builder refused a 172-byte packet in 200 bytes")?;
    ensure(n == 172, "rtp: packet length is not 172")?;
    let packet = RtpPacket::parse(&buf[..n]).map_err(|_| "rtp: the built packet does not parse")?;
    ensure(
        (
            packet.sequence_number(),
            packet.timestamp(),
            packet.ssrc(),
            packet.marker(),
        ) == (7, 1120, 0xdead_beef, true),
        "rtp: header fields differ",
    )?;
    ensure(packet.payload() == &audio[..], "rtp: payload differs")?;
    ensure(
        RtpPacket::parse(&buf[..11]).is_err(),
        "rtp: 11 bytes parsed",
    )?;

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let config = PacketizerConfig::new(&PayloadFormat::PCMA)
        .sequence_number(65535)
        .timestamp(0);
    let mut packetizer = Packetizer::new(config, &mut rng);
    let mut expected_seq = 65535u16;
    for i in 0..3u32 {
        let n = packetizer
            .packetize(&audio, 160, &mut buf)
            .map_err(|_| "rtp: the packetizer refused a frame")?;
        let p =
            RtpPacket::parse(&buf[..n]).map_err(|_| "rtp: a packetized frame does not parse")?;
        ensure(p.sequence_number() == expected_seq, "rtp: sequence number")?;
        ensure(p.timestamp() == 160 * i, "rtp: timestamp")?;
        ensure(
            p.marker() == (i == 0),
            "rtp: marker only on the first packet",
        )?;
        expected_seq = expected_seq.wrapping_add(1);
    }
    let _ = writeln!(
        log,
        "rtp: packet built and parsed; 3 packetized, sequence wrapped"
    );
    Ok(())
}

/// SIP: the `Record: on` INFO for a dialog, written into a buffer.
pub fn sip(log: &mut impl Write) -> Result<(), Failure> {
    let mut rng = XorShift(7);
    let mut dialog = Dialog::new("0_2080113283@10.3.20.14")
        .local(NameAddr::new("sip:1009@10.3.20.6:5060").tag("1385842459"))
        .remote(NameAddr::new("sip:1010@10.3.20.6:5060").tag("2383911905"))
        .remote_target("sip:1010@10.3.20.6:5060")
        .local_contact("sip:1009@10.3.20.14:5060")
        .sent_by("10.3.20.14:5060");
    let mut buf = [0u8; 512];
    let n = dialog
        .record_info(Record::On)
        .user_agent("callrec firmware")
        .write(&mut rng, &mut buf)
        .map_err(|_| "sip: the INFO was refused")?;
    let info = &buf[..n];
    ensure(
        info.starts_with(b"INFO sip:1010@10.3.20.6:5060 SIP/2.0\r\n"),
        "sip: request line",
    )?;
    ensure(
        info.ends_with(b"\r\nRecord: on\r\nContent-Length: 0\r\n\r\n"),
        "sip: Record header",
    )?;
    ensure(dialog.local_cseq == 2, "sip: CSeq did not advance")?;
    // Too small a buffer is an error naming the sizes, and the CSeq stays.
    let mut small = [0u8; 64];
    ensure(
        dialog
            .record_info(Record::Off)
            .write(&mut rng, &mut small)
            .is_err()
            && dialog.local_cseq == 2,
        "sip: a 64-byte buffer was accepted",
    )?;
    let _ = writeln!(log, "sip: Record: on INFO written ({n} bytes)");
    Ok(())
}

/// Every check, in order.
pub fn run(log: &mut impl Write) -> Result<(), Failure> {
    recording(log)?;
    rtp(log)?;
    sip(log)
}
