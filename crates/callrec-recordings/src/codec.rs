//! The archive's audio formats: a recording's WAV encoded as Ogg Opus
//! (RFC 7845, through libopus) or FLAC, and an archive decoded back to
//! 16-bit PCM, a chunk at a time (memory stays at a chunk, whatever the
//! recording's length).

use core::fmt;
use core::str::FromStr;
use std::io::{self, Read, Seek, SeekFrom, Write};

use callrec_audio::wav::{MAX_HEADER_LEN, SampleFormat, WavHeader};
use flacenc::component::BitRepr;
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};
use ogg::writing::PacketWriteEndInfo;

/// How a final recording is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchiveFormat {
    /// The WAV as recorded (nothing is converted).
    #[default]
    Wav,
    /// Ogg Opus (RFC 7845), lossy, voice mode.
    Opus,
    /// FLAC, lossless.
    Flac,
}

impl ArchiveFormat {
    /// The file name extension: `wav`, `opus` or `flac`.
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Opus => "opus",
            Self::Flac => "flac",
        }
    }

    /// The media type a download names.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Opus => "audio/ogg; codecs=opus",
            Self::Flac => "audio/flac",
        }
    }

    /// The format of a file of kind `kind` (a sidecar's file kind, which is
    /// the extension).
    pub(crate) fn of_kind(kind: &str) -> Option<Self> {
        kind.parse().ok()
    }
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for ArchiveFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wav" => Ok(Self::Wav),
            "opus" => Ok(Self::Opus),
            "flac" => Ok(Self::Flac),
            other => Err(format!(
                "archive format {other:?} is none of opus, flac, wav"
            )),
        }
    }
}

/// Rate and channels of 16-bit PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcmSpec {
    pub(crate) rate: u32,
    pub(crate) channels: u16,
}

/// A WAV's samples as 16-bit PCM, read a chunk at a time.
pub(crate) struct WavSamples<R> {
    reader: R,
    format: SampleFormat,
    spec: PcmSpec,
    /// Sample frames not read yet.
    left: u64,
    frames: u64,
    bytes: Vec<u8>,
}

impl<R: Read + Seek> WavSamples<R> {
    /// The samples of the WAV `reader` holds, `len` bytes long.
    pub(crate) fn new(mut reader: R, len: u64) -> Result<Self, String> {
        let mut head = vec![0u8; MAX_HEADER_LEN.min(len as usize)];
        reader
            .read_exact(&mut head)
            .map_err(|e| format!("cannot read its header: {e}"))?;
        let header =
            WavHeader::parse(&head).map_err(|e| format!("not a WAV callrec reads: {e}"))?;
        let spec = header.spec();
        let offset = header.data_offset() as u64;
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| format!("cannot read it: {e}"))?;
        // The length on disk, not the header's: a recording cut off by a
        // crash has a header that says less.
        let frames = len.saturating_sub(offset) / u64::from(spec.block_align());
        Ok(Self {
            reader,
            format: spec.format(),
            spec: PcmSpec {
                rate: spec.sample_rate(),
                channels: spec.channels(),
            },
            left: frames,
            frames,
            bytes: Vec::new(),
        })
    }

    /// Rate and channels of the audio.
    pub(crate) fn spec(&self) -> PcmSpec {
        self.spec
    }

    /// Sample frames (per channel) it holds.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends up to `max` sample frames to `out`; how many (0 at the end).
    fn read_frames(&mut self, max: usize, out: &mut Vec<i16>) -> Result<usize, String> {
        let frames = (max as u64).min(self.left) as usize;
        let width = usize::from(self.format.bytes_per_sample());
        let samples = frames * usize::from(self.spec.channels);
        self.bytes.resize(samples * width, 0);
        self.reader
            .read_exact(&mut self.bytes)
            .map_err(|e| format!("cannot read its audio: {e}"))?;
        match self.format.law() {
            Some(law) => {
                let start = out.len();
                out.resize(start + samples, 0);
                law.decode(&self.bytes, &mut out[start..]);
            }
            None => out.extend(
                self.bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            ),
        }
        self.left -= frames as u64;
        Ok(frames)
    }
}

/// What encoding wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// Sample frames (per channel) of the recording.
    pub(crate) frames: u64,
    pub(crate) spec: PcmSpec,
}

/// The Ogg stream's serial number (one logical stream per file).
const SERIAL: u32 = 0x6361_6c6c; // "call"

/// Opus packets per Ogg page: a page a second, so a reader seeking by
/// granule position reads a second at most.
const PACKETS_PER_PAGE: u64 = 50;

/// Encodes `wav` as Ogg Opus at `bitrate` bits a second into `out`.
pub(crate) fn encode_opus<R: Read + Seek, W: Write>(
    mut wav: WavSamples<R>,
    out: W,
    bitrate: u32,
) -> Result<Encoded, String> {
    let spec = wav.spec;
    if !matches!(spec.rate, 8000 | 12000 | 16000 | 24000 | 48000) {
        return Err(format!("Opus does not take {} Hz audio", spec.rate));
    }
    let channels = match spec.channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        n => return Err(format!("an Opus archive holds 1 or 2 channels, not {n}")),
    };
    let opus_error = |e: opus::Error| format!("libopus: {e}");
    let mut encoder =
        opus::Encoder::new(spec.rate, channels, opus::Application::Voip).map_err(opus_error)?;
    encoder
        .set_bitrate(opus::Bitrate::Bits(
            i32::try_from(bitrate).unwrap_or(i32::MAX),
        ))
        .map_err(opus_error)?;
    encoder
        .set_signal(opus::Signal::Voice)
        .map_err(opus_error)?;
    let lookahead = u64::try_from(encoder.get_lookahead().map_err(opus_error)?).unwrap_or(0);
    let factor = u64::from(48_000 / spec.rate);
    let pre_skip = lookahead * factor;

    let mut writer = ogg::writing::PacketWriter::new(out);
    let write_error = |e: io::Error| format!("cannot write: {e}");
    writer
        .write_packet(
            opus_head(spec, u16::try_from(pre_skip).unwrap_or(u16::MAX)),
            SERIAL,
            PacketWriteEndInfo::EndPage,
            0,
        )
        .map_err(write_error)?;
    writer
        .write_packet(opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0)
        .map_err(write_error)?;

    let total = wav.frames;
    let frame = spec.rate as usize / 50;
    let width = usize::from(spec.channels);
    // The encoder's lookahead delays the audio: feed that much silence
    // past the end so the last samples come out.
    let needed = total + lookahead;
    let end_granule = pre_skip + total * factor;
    let (mut fed, mut packets) = (0u64, 0u64);
    let (mut pcm, mut packet) = (Vec::with_capacity(frame * width), vec![0u8; 4000]);
    // One packet is held back: the last one ends the stream.
    let mut held: Option<(Vec<u8>, u64)> = None;
    while fed < needed {
        pcm.clear();
        wav.read_frames(frame, &mut pcm)?;
        pcm.resize(frame * width, 0);
        let len = encoder.encode(&pcm, &mut packet).map_err(opus_error)?;
        fed += frame as u64;
        let granule = (fed * factor).min(end_granule);
        if let Some((data, granule)) = held.take() {
            packets += 1;
            let end = if packets % PACKETS_PER_PAGE == 0 {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            writer
                .write_packet(data, SERIAL, end, granule)
                .map_err(write_error)?;
        }
        held = Some((packet[..len].to_vec(), granule));
    }
    let (data, granule) = held.unwrap_or_default();
    writer
        .write_packet(data, SERIAL, PacketWriteEndInfo::EndStream, granule)
        .map_err(write_error)?;
    writer.inner_mut().flush().map_err(write_error)?;
    Ok(Encoded {
        frames: total,
        spec,
    })
}

/// The identification header (RFC 7845 §5.1), channel mapping family 0.
fn opus_head(spec: PcmSpec, pre_skip: u16) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(spec.channels as u8);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&spec.rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The comment header (RFC 7845 §5.2): the vendor, no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = format!(
        "callrec {} ({})",
        env!("CARGO_PKG_VERSION"),
        opus::version()
    );
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

/// Samples per FLAC frame: 4096, the reference encoder's default.
const FLAC_BLOCK: usize = 4096;

/// Length of the FLAC stream's head: `fLaC` and the STREAMINFO block.
const FLAC_HEAD_LEN: u64 = 42;

/// Encodes `wav` as FLAC into `out`, a frame at a time; the head is
/// written again at the end with the length and MD5 of the audio.
pub(crate) fn encode_flac<R: Read + Seek, W: Write + Seek>(
    mut wav: WavSamples<R>,
    mut out: W,
) -> Result<Encoded, String> {
    let spec = wav.spec;
    let channels = usize::from(spec.channels);
    let flac_error = |e: &dyn fmt::Display| format!("FLAC encoder: {e}");
    let write_error = |e: io::Error| format!("cannot write: {e}");
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|(_, e)| flac_error(&e))?;
    let mut stream = flacenc::component::Stream::new(spec.rate as usize, channels, 16)
        .map_err(|e| flac_error(&e))?;
    stream
        .stream_info_mut()
        .set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
        .map_err(|e| flac_error(&e))?;
    out.write_all(&flac_head(&stream)?).map_err(write_error)?;
    let mut buffers = (
        FrameBuf::with_size(channels, FLAC_BLOCK).map_err(|e| flac_error(&e))?,
        Context::new(16, channels),
    );
    let (mut pcm, mut ints) = (Vec::new(), Vec::new());
    loop {
        pcm.clear();
        let frames = wav.read_frames(FLAC_BLOCK, &mut pcm)?;
        if frames == 0 {
            break;
        }
        ints.clear();
        ints.extend(pcm.iter().map(|&s| i32::from(s)));
        buffers
            .fill_interleaved(&ints)
            .map_err(|e| flac_error(&e))?;
        let number = buffers.1.current_frame_number().unwrap_or(0);
        let frame =
            flacenc::encode_fixed_size_frame(&config, &buffers.0, number, stream.stream_info())
                .map_err(|e| flac_error(&e))?;
        stream.stream_info_mut().update_frame_info(&frame);
        let mut sink = flacenc::bitsink::ByteSink::new();
        frame.write(&mut sink).map_err(|e| flac_error(&e))?;
        out.write_all(sink.as_slice()).map_err(write_error)?;
    }
    let info = stream.stream_info_mut();
    // The smallest block size excludes the last block (RFC 9639 §8.2), as
    // decoders check: a last block of fewer than 16 samples would
    // otherwise make the stream unreadable.
    info.set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
        .map_err(|e| flac_error(&e))?;
    info.set_md5_digest(&buffers.1.md5_digest());
    info.set_total_samples(buffers.1.total_samples());
    out.seek(SeekFrom::Start(0)).map_err(write_error)?;
    out.write_all(&flac_head(&stream)?).map_err(write_error)?;
    out.flush().map_err(write_error)?;
    Ok(Encoded {
        frames: wav.frames,
        spec,
    })
}

/// `fLaC` and the STREAMINFO block of `stream` (which has no frames).
fn flac_head(stream: &flacenc::component::Stream) -> Result<Vec<u8>, String> {
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| format!("FLAC encoder: {e}"))?;
    let head = sink.as_slice().to_vec();
    if head.len() as u64 != FLAC_HEAD_LEN {
        return Err(format!(
            "FLAC encoder: a head of {} bytes, not {FLAC_HEAD_LEN}",
            head.len()
        ));
    }
    Ok(head)
}

/// Most bytes of one Ogg Opus packet read back (RFC 6716 allows 1275 per
/// frame, 120 ms in a packet).
const MAX_OPUS_PACKET: usize = 8 * 1275;

/// An archive decoded to interleaved 16-bit PCM, a chunk at a time.
pub(crate) enum Decoder<R: Read + Seek> {
    /// Ogg Opus.
    Opus(Box<OpusDecoder<R>>),
    /// FLAC.
    Flac(Box<FlacDecoder<R>>),
}

/// The state of an Ogg Opus decode.
pub(crate) struct OpusDecoder<R: Read + Seek> {
    packets: ogg::reading::PacketReader<R>,
    decoder: opus::Decoder,
    spec: PcmSpec,
    factor: u64,
    pre_skip: u64,
    /// Sample frames still to drop (the pre-skip, at the output rate).
    skip: u64,
    /// Sample frames given out.
    given: u64,
    done: bool,
    out: Vec<i16>,
}

/// The state of a FLAC decode.
pub(crate) struct FlacDecoder<R: Read + Seek> {
    reader: claxon::FlacReader<R>,
    spec: PcmSpec,
    buffer: Vec<i32>,
    out: Vec<i16>,
    done: bool,
}

impl<R: Read + Seek> FlacDecoder<R> {
    fn next_chunk(&mut self) -> Result<Option<&[i16]>, String> {
        if self.done {
            return Ok(None);
        }
        let buffer = core::mem::take(&mut self.buffer);
        match self.reader.blocks().read_next_or_eof(buffer) {
            Ok(Some(block)) => {
                self.out.clear();
                for i in 0..block.duration() {
                    for c in 0..block.channels() {
                        // 16-bit by the head's check.
                        self.out.push(block.sample(c, i) as i16);
                    }
                }
                self.buffer = block.into_buffer();
                Ok(Some(&self.out))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => Err(format!("damaged FLAC: {e}")),
        }
    }
}

impl<R: Read + Seek> Decoder<R> {
    /// Starts decoding the archive in `reader`, of `format`.
    ///
    /// # Errors
    /// A message naming what is wrong with the archive's head.
    pub(crate) fn new(format: ArchiveFormat, reader: R) -> Result<Self, String> {
        match format {
            ArchiveFormat::Opus => OpusDecoder::new(reader).map(|d| Self::Opus(Box::new(d))),
            ArchiveFormat::Flac => {
                let reader =
                    claxon::FlacReader::new(reader).map_err(|e| format!("not FLAC: {e}"))?;
                let info = reader.streaminfo();
                if info.bits_per_sample != 16 || !(1..=8).contains(&info.channels) {
                    return Err(format!(
                        "a FLAC of {} bits and {} channels is not an archive callrec wrote",
                        info.bits_per_sample, info.channels
                    ));
                }
                Ok(Self::Flac(Box::new(FlacDecoder {
                    spec: PcmSpec {
                        rate: info.sample_rate,
                        channels: info.channels as u16,
                    },
                    reader,
                    buffer: Vec::new(),
                    out: Vec::new(),
                    done: false,
                })))
            }
            ArchiveFormat::Wav => Err("a WAV is not decoded".to_owned()),
        }
    }

    /// Rate and channels of the decoded audio.
    pub(crate) fn spec(&self) -> PcmSpec {
        match self {
            Self::Opus(d) => d.spec,
            Self::Flac(d) => d.spec,
        }
    }

    /// The next interleaved samples; `None` at the end.
    ///
    /// # Errors
    /// A message naming what is damaged.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<&[i16]>, String> {
        match self {
            Self::Opus(d) => d.next_chunk(),
            Self::Flac(d) => d.next_chunk(),
        }
    }

    /// Decodes to the end; the sample frames (per channel) decoded.
    pub(crate) fn count_frames(&mut self) -> Result<u64, String> {
        let channels = u64::from(self.spec().channels);
        let mut samples = 0u64;
        while let Some(chunk) = self.next_chunk()? {
            samples += chunk.len() as u64;
        }
        Ok(samples / channels)
    }
}

impl<R: Read + Seek> OpusDecoder<R> {
    fn new(reader: R) -> Result<Self, String> {
        let mut packets = ogg::reading::PacketReader::new(reader);
        let head = packets
            .read_packet()
            .map_err(|e| format!("not Ogg: {e}"))?
            .ok_or("an empty Ogg stream")?;
        let head = &head.data;
        if head.len() < 19 || &head[..8] != b"OpusHead" || head[8] & 0xf0 != 0 {
            return Err("its first packet is not an OpusHead".to_owned());
        }
        let channels = match head[9] {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            n => return Err(format!("an Opus stream of {n} channels")),
        };
        if head[18] != 0 {
            return Err(format!("Opus channel mapping family {}", head[18]));
        }
        let pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
        let input_rate = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let rate = if matches!(input_rate, 8000 | 12000 | 16000 | 24000) {
            input_rate
        } else {
            48_000
        };
        let tags = packets
            .read_packet()
            .map_err(|e| format!("damaged Ogg: {e}"))?
            .ok_or("no OpusTags packet")?;
        if !tags.data.starts_with(b"OpusTags") {
            return Err("its second packet is not OpusTags".to_owned());
        }
        let factor = u64::from(48_000 / rate);
        let decoder = opus::Decoder::new(rate, channels).map_err(|e| format!("libopus: {e}"))?;
        Ok(Self {
            packets,
            decoder,
            spec: PcmSpec {
                rate,
                channels: u16::from(head[9]),
            },
            factor,
            pre_skip,
            skip: pre_skip / factor,
            given: 0,
            done: false,
            out: Vec::new(),
        })
    }

    fn next_chunk(&mut self) -> Result<Option<&[i16]>, String> {
        let channels = usize::from(self.spec.channels);
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(packet) = self
                .packets
                .read_packet()
                .map_err(|e| format!("damaged Ogg: {e}"))?
            else {
                self.done = true;
                return Ok(None);
            };
            if packet.data.len() > MAX_OPUS_PACKET {
                return Err(format!("an Opus packet of {} bytes", packet.data.len()));
            }
            let max = self.spec.rate as usize * 120 / 1000;
            self.out.resize(max * channels, 0);
            let frames = self
                .decoder
                .decode(&packet.data, &mut self.out, false)
                .map_err(|e| format!("damaged Opus packet: {e}"))?;
            let mut start = 0;
            let mut end = frames as u64;
            if self.skip > 0 {
                let dropped = self.skip.min(end);
                self.skip -= dropped;
                start = dropped;
            }
            if packet.last_in_stream() {
                self.done = true;
                // End trimming (RFC 7845 §4.4): the last page's granule
                // position says how much of the last packet is audio.
                let total = packet.absgp_page().saturating_sub(self.pre_skip) / self.factor;
                let room = total.saturating_sub(self.given);
                end = end.min(start + room);
            }
            if end <= start {
                continue;
            }
            self.given += end - start;
            return Ok(Some(
                &self.out[start as usize * channels..end as usize * channels],
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callrec_audio::wav::WavSpec;
    use std::io::Cursor;

    /// A WAV of `spec` holding `frames` of a tone (a 1 kHz sine per
    /// channel, channel `c` at `1 + c` kHz), and those samples as 16-bit.
    fn tone_wav(spec: WavSpec, frames: usize) -> (Vec<u8>, Vec<i16>) {
        let channels = usize::from(spec.channels());
        let mut pcm = Vec::new();
        for n in 0..frames {
            for c in 0..channels {
                let f = 1000.0 * (c + 1) as f64;
                let t = n as f64 / f64::from(spec.sample_rate());
                pcm.push((8000.0 * (2.0 * core::f64::consts::PI * f * t).sin()) as i16);
            }
        }
        let data: Vec<u8> = match spec.format().law() {
            Some(law) => {
                let mut coded = vec![0u8; pcm.len()];
                law.encode(&pcm, &mut coded);
                let mut back = vec![0i16; coded.len()];
                law.decode(&coded, &mut back);
                pcm = back;
                coded
            }
            None => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = spec.write_header(data.len() as u32, &mut head);
        ([&head[..n], &data].concat(), pcm)
    }

    fn samples(wav: &[u8]) -> WavSamples<Cursor<&[u8]>> {
        WavSamples::new(Cursor::new(wav), wav.len() as u64).unwrap()
    }

    fn decode_all(format: ArchiveFormat, archive: &[u8]) -> (PcmSpec, Vec<i16>) {
        let mut decoder = Decoder::new(format, Cursor::new(archive)).unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = decoder.next_chunk().unwrap() {
            all.extend_from_slice(chunk);
        }
        (decoder.spec(), all)
    }

    #[test]
    fn flac_gives_back_every_sample() {
        for (spec, frames) in [
            (WavSpec::g711(callrec_audio::g711::Law::Alaw), 12_345),
            (WavSpec::pcm16_mono(true), 4096),
            (WavSpec::pcm16_mono(false).stereo(), 9000),
            (WavSpec::pcm16_mono(false), 0),
            // A last block shorter than FLAC's smallest (16), found by the
            // fuzzer: 2 × 4096 + 10, and 10 alone.
            (WavSpec::g711(callrec_audio::g711::Law::Alaw), 8202),
            (WavSpec::pcm16_mono(false), 10),
        ] {
            let (wav, pcm) = tone_wav(spec, frames);
            let mut out = Cursor::new(Vec::new());
            let encoded = encode_flac(samples(&wav), &mut out).unwrap();
            assert_eq!(encoded.frames, frames as u64);
            let (decoded_spec, decoded) = decode_all(ArchiveFormat::Flac, out.get_ref());
            assert_eq!(decoded_spec, encoded.spec);
            assert!(decoded == pcm, "FLAC changed the samples of {spec:?}");
        }
    }

    #[test]
    fn opus_keeps_the_length_and_the_tone() {
        for (spec, frames, bitrate) in [
            (
                WavSpec::g711(callrec_audio::g711::Law::Ulaw),
                8000 * 3 + 77,
                12_000,
            ),
            (WavSpec::pcm16_mono(true), 16000 * 2 + 5, 24_000),
            (WavSpec::pcm16_mono(false).stereo(), 8000 * 2, 24_000),
            (WavSpec::pcm16_mono(false), 10, 12_000),
        ] {
            let (wav, pcm) = tone_wav(spec, frames);
            let mut out = Vec::new();
            let encoded = encode_opus(samples(&wav), &mut out, bitrate).unwrap();
            let (decoded_spec, decoded) = decode_all(ArchiveFormat::Opus, &out);
            assert_eq!(decoded_spec, encoded.spec);
            assert_eq!(decoded.len(), pcm.len(), "length of {spec:?}");
            // Lossy, but the tone is there: the energy is within 3 dB.
            let energy = |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            if frames > 1000 {
                let ratio = energy(&decoded) / energy(&pcm);
                assert!(
                    (0.5..2.0).contains(&ratio),
                    "energy ratio {ratio} of {spec:?}"
                );
            }
            let seconds = frames as f64 / f64::from(spec.sample_rate());
            if seconds >= 2.0 {
                let bits = out.len() as f64 * 8.0 / seconds;
                assert!(
                    bits < f64::from(bitrate) * 1.3,
                    "{bits} bit/s for a {bitrate} bit/s target"
                );
            }
        }
    }

    #[test]
    fn damaged_archives_are_errors_not_panics() {
        let (wav, _) = tone_wav(WavSpec::pcm16_mono(false), 8000);
        let mut opus = Vec::new();
        encode_opus(samples(&wav), &mut opus, 12_000).unwrap();
        let mut flac = Cursor::new(Vec::new());
        encode_flac(samples(&wav), &mut flac).unwrap();
        let flac = flac.into_inner();
        for (format, good) in [(ArchiveFormat::Opus, &opus), (ArchiveFormat::Flac, &flac)] {
            for cut in [0, 10, 40, good.len() / 2] {
                let _ = Decoder::new(format, Cursor::new(&good[..cut]))
                    .and_then(|mut d| d.count_frames());
            }
            for at in (0..good.len()).step_by(97) {
                let mut bad = good.clone();
                bad[at] ^= 0x5a;
                let _ = Decoder::new(format, Cursor::new(&bad)).and_then(|mut d| d.count_frames());
            }
        }
        assert!(Decoder::new(ArchiveFormat::Opus, Cursor::new(&flac)).is_err());
        assert!(Decoder::new(ArchiveFormat::Flac, Cursor::new(&opus)).is_err());
    }

    #[test]
    fn formats_read_and_name_a_bad_value() {
        assert_eq!("opus".parse(), Ok(ArchiveFormat::Opus));
        let e = "mp3".parse::<ArchiveFormat>().unwrap_err();
        assert!(e.contains("\"mp3\""), "{e}");
    }
}
