//! Serving audio: HTTP byte ranges (RFC 9110 §14), and the WAV converted
//! to 16-bit PCM on the fly for browsers, which do not play A-law or µ-law
//! WAV. The conversion is sample by sample, so any byte range of the PCM
//! file maps onto a range of the stored one: players can seek in it too.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use callrec_audio::wav::{MAX_HEADER_LEN, SampleFormat, WavHeader, WavSpec};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::path::Path as Key;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::codec::{ArchiveFormat, Decoder};
use crate::seal::ReadSeek;
use crate::store::ObjectStore;

/// Where a stored file is read from: this node's disk, or the object
/// store (ranged GETs).
pub(crate) enum Source {
    /// A file on this node's disk.
    File {
        /// The open file.
        file: File,
        /// Its path, for messages.
        path: PathBuf,
    },
    /// An object.
    Object {
        /// The store.
        store: ObjectStore,
        /// The object.
        key: Key,
    },
    /// A sealed file's plaintext, decrypted as it is read.
    Sealed {
        /// The decrypting reader (blocking; used on blocking threads).
        reader: std::sync::Arc<std::sync::Mutex<Box<dyn ReadSeek>>>,
        /// The plaintext's length.
        len: u64,
    },
}

impl Source {
    /// The plaintext of a sealed file, from its decrypting reader.
    pub(crate) async fn sealed(mut reader: Box<dyn ReadSeek>) -> Result<Self, String> {
        let (reader, len) = tokio::task::spawn_blocking(move || {
            let len = reader
                .seek(SeekFrom::End(0))
                .and_then(|len| reader.seek(SeekFrom::Start(0)).map(|_| len));
            (reader, len)
        })
        .await
        .map_err(|e| e.to_string())?;
        let len = len.map_err(|e| format!("cannot decrypt it: {e}"))?;
        Ok(Self::Sealed {
            reader: std::sync::Arc::new(std::sync::Mutex::new(reader)),
            len,
        })
    }

    /// The decrypting reader of a sealed source, for a blocking decoder.
    pub(crate) fn into_sealed_reader(self) -> Option<Box<dyn ReadSeek>> {
        match self {
            Self::Sealed { reader, .. } => std::sync::Arc::try_unwrap(reader)
                .ok()
                .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())),
            _ => None,
        }
    }
}

impl Source {
    /// The length of the file.
    pub(crate) async fn len(&mut self) -> Result<u64, String> {
        match self {
            Self::File { file, path } => file
                .metadata()
                .await
                .map(|m| m.len())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Self::Object { store, key } => store.len(key).await.map_err(|e| e.to_string()),
            Self::Sealed { len, .. } => Ok(*len),
        }
    }

    /// `len` bytes at `offset` (fewer only at the end of the file).
    pub(crate) async fn read_at(&mut self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        match self {
            Self::File { file, .. } => {
                file.seek(SeekFrom::Start(offset)).await?;
                let mut buf = Vec::with_capacity(len as usize);
                file.take(len).read_to_end(&mut buf).await?;
                Ok(buf)
            }
            Self::Object { store, key } => store
                .read(key, offset..offset + len)
                .await
                .map(|b| b.to_vec())
                .map_err(std::io::Error::other),
            Self::Sealed { reader, .. } => {
                let reader = reader.clone();
                tokio::task::spawn_blocking(move || {
                    use std::io::{Read, Seek};
                    let mut reader = reader.lock().unwrap_or_else(|e| e.into_inner());
                    reader.seek(SeekFrom::Start(offset))?;
                    let mut buf = Vec::with_capacity(len as usize);
                    (&mut *reader).take(len).read_to_end(&mut buf)?;
                    Ok(buf)
                })
                .await
                .map_err(std::io::Error::other)?
            }
        }
    }

    /// Bytes `start..end` of the file as they are read.
    pub(crate) async fn stream(
        self,
        start: u64,
        end: u64,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, String> {
        match self {
            Self::File { mut file, path } => {
                file.seek(SeekFrom::Start(start))
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok(
                    tokio_util::io::ReaderStream::with_capacity(file.take(end - start), 64 << 10)
                        .boxed(),
                )
            }
            Self::Object { store, key } => store
                .stream(&key, start..end)
                .await
                .map_err(|e| e.to_string()),
            sealed @ Self::Sealed { .. } => Ok(futures_util::stream::try_unfold(
                (sealed, start),
                move |(mut source, pos)| async move {
                    if pos >= end {
                        return Ok(None);
                    }
                    let chunk = source.read_at(pos, (end - pos).min(CHUNK)).await?;
                    if chunk.is_empty() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the sealed file ended early",
                        ));
                    }
                    let next = pos + chunk.len() as u64;
                    Ok(Some((Bytes::from(chunk), (source, next))))
                },
            )
            .boxed()),
        }
    }
}

/// Bytes read from the stored file per chunk sent.
const CHUNK: u64 = 64 << 10;

/// What to send for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// The whole representation (no range, or one that is ignored: not a
    /// single `bytes` range, or malformed).
    Full,
    /// `206`: bytes `start..end` (end exclusive).
    Partial(u64, u64),
    /// `416`: the range starts past the end.
    Unsatisfiable,
}

/// The answer to `range` (a `Range` header's value) for a representation
/// of `len` bytes. Multiple ranges are answered with the whole file, as
/// RFC 9110 allows.
pub(crate) fn parse_range(range: Option<&str>, len: u64) -> RangeAnswer {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial(len.saturating_sub(n), len)
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|end| end < start) {
                return RangeAnswer::Full;
            }
            if start >= len {
                return RangeAnswer::Unsatisfiable;
            }
            let end = end.map_or(len, |end| end.saturating_add(1).min(len));
            RangeAnswer::Partial(start, end)
        }
        _ => RangeAnswer::Full,
    }
}

/// A stored WAV seen as a 16-bit PCM WAV.
#[derive(Debug, Clone)]
pub(crate) struct Pcm16View {
    header: Vec<u8>,
    /// Where the stored samples start.
    data_offset: u64,
    /// The stored format.
    format: SampleFormat,
    /// Samples (all channels) stored.
    samples: u64,
}

impl Pcm16View {
    /// The view of a stored WAV whose first bytes are `head` and whose
    /// length is `file_len`.
    pub(crate) fn new(head: &[u8], file_len: u64) -> Result<Self, String> {
        let header = WavHeader::parse(head).map_err(|e| format!("not a WAV callrec reads: {e}"))?;
        let spec = header.spec();
        let data_offset = header.data_offset() as u64;
        let bytes_per_sample = u64::from(spec.format().bytes_per_sample());
        let block = u64::from(spec.block_align());
        let data = file_len.saturating_sub(data_offset);
        let samples = (data - data % block) / bytes_per_sample;
        let pcm = WavSpec::new(SampleFormat::Pcm16, spec.sample_rate(), spec.channels())
            .map_err(|e| e.to_string())?;
        let data_len = u32::try_from(samples * 2)
            .unwrap_or(pcm.max_data_len())
            .min(pcm.max_data_len());
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = pcm.write_header(data_len, &mut buf);
        Ok(Self {
            header: buf[..n].to_vec(),
            data_offset,
            format: spec.format(),
            samples: u64::from(data_len) / 2,
        })
    }

    /// Length of the PCM WAV.
    pub(crate) fn len(&self) -> u64 {
        self.header.len() as u64 + self.samples * 2
    }

    /// Bytes `start..end` of the PCM WAV, read from the stored file.
    pub(crate) fn stream(
        self,
        source: Source,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        let end = end.min(self.len());
        futures_util::stream::try_unfold(
            (self, source, start),
            move |(view, mut source, pos)| async move {
                if pos >= end {
                    return Ok(None);
                }
                let head = view.header.len() as u64;
                if pos < head {
                    let chunk =
                        Bytes::copy_from_slice(&view.header[pos as usize..head.min(end) as usize]);
                    let next = pos + chunk.len() as u64;
                    return Ok(Some((chunk, (view, source, next))));
                }
                // Output sample `first` holds byte `pos`.
                let first = (pos - head) / 2;
                let last = ((end - head).div_ceil(2)).min(view.samples);
                let count = (last - first).min(CHUNK / 2);
                let width = u64::from(view.format.bytes_per_sample());
                let stored = source
                    .read_at(view.data_offset + first * width, count * width)
                    .await?;
                if stored.len() as u64 != count * width {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the stored file ended early",
                    ));
                }
                let mut pcm = match view.format.law() {
                    Some(law) => {
                        let mut samples = vec![0i16; stored.len()];
                        law.decode(&stored, &mut samples);
                        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
                    }
                    None => stored,
                };
                let skip = ((pos - head) % 2) as usize;
                let keep = ((end - pos) as usize).min(pcm.len() - skip);
                pcm.drain(..skip);
                pcm.truncate(keep);
                let next = pos + pcm.len() as u64;
                Ok(Some((Bytes::from(pcm), (view, source, next))))
            },
        )
    }
}

/// An archive (Ogg Opus or FLAC) seen as a 16-bit PCM WAV: decoded on
/// the fly on a blocking thread, from its start (neither format maps a
/// byte of PCM onto a byte of the archive), the bytes before the range
/// decoded and dropped.
#[derive(Debug, Clone)]
pub(crate) struct ArchivePcmView {
    header: Vec<u8>,
    format: ArchiveFormat,
    /// Bytes of PCM (the index's length, which the archive was checked
    /// to decode to).
    data_len: u64,
}

/// Where an archive is decoded from.
pub(crate) enum ArchiveInput {
    /// A file on this node's disk.
    File(std::fs::File),
    /// An object, read whole.
    Bytes(Vec<u8>),
    /// A sealed file's plaintext.
    Sealed(Box<dyn ReadSeek>),
}

/// Chunks of decoded audio in flight to the client at most.
const DECODED_IN_FLIGHT: usize = 4;

impl ArchivePcmView {
    /// The view of an archive of `format` holding `frames` samples per
    /// channel of `channels` at `rate` Hz.
    pub(crate) fn new(
        format: ArchiveFormat,
        rate: u32,
        channels: u16,
        frames: u64,
    ) -> Result<Self, String> {
        let pcm = WavSpec::new(SampleFormat::Pcm16, rate, channels).map_err(|e| e.to_string())?;
        let data_len = frames * u64::from(channels) * 2;
        let data_len32 = u32::try_from(data_len)
            .ok()
            .filter(|&n| n <= pcm.max_data_len())
            .ok_or_else(|| format!("{data_len} bytes of PCM do not fit in a WAV"))?;
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = pcm.write_header(data_len32, &mut buf);
        Ok(Self {
            header: buf[..n].to_vec(),
            format,
            data_len,
        })
    }

    /// Length of the PCM WAV.
    pub(crate) fn len(&self) -> u64 {
        self.header.len() as u64 + self.data_len
    }

    /// Bytes `start..end` of the PCM WAV, decoded from `input`.
    pub(crate) fn stream(
        self,
        input: ArchiveInput,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        let (tx, rx) = tokio::sync::mpsc::channel(DECODED_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let result = match input {
                ArchiveInput::File(file) => {
                    self.decode_into(std::io::BufReader::new(file), start, end, &tx)
                }
                ArchiveInput::Bytes(bytes) => {
                    self.decode_into(std::io::Cursor::new(bytes), start, end, &tx)
                }
                ArchiveInput::Sealed(reader) => self.decode_into(reader, start, end, &tx),
            };
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }

    /// Decodes and sends bytes `start..end`; stops when the client is
    /// gone.
    fn decode_into<R: std::io::Read + std::io::Seek>(
        &self,
        reader: R,
        start: u64,
        end: u64,
        tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<(), String> {
        let end = end.min(self.len());
        let head = self.header.len() as u64;
        let mut pos = start;
        if pos < head {
            let chunk = Bytes::copy_from_slice(&self.header[pos as usize..head.min(end) as usize]);
            pos += chunk.len() as u64;
            if tx.blocking_send(Ok(chunk)).is_err() {
                return Ok(());
            }
        }
        let mut decoder = Decoder::new(self.format, reader)?;
        // Byte offset in the PCM data of the next decoded sample.
        let mut at = 0u64;
        while pos < end {
            let Some(chunk) = decoder.next_chunk()? else {
                return Err(format!("the archive ended {} bytes early", end - pos));
            };
            let bytes = chunk.len() as u64 * 2;
            let (from, to) = (pos - head, end - head);
            if at + bytes > from {
                let skip = from.saturating_sub(at) as usize;
                let mut pcm: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                pcm.truncate((to - at).min(bytes) as usize);
                pcm.drain(..skip);
                pos += pcm.len() as u64;
                if tx.blocking_send(Ok(Bytes::from(pcm))).is_err() {
                    return Ok(());
                }
            }
            at += bytes;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAnswer::*;

    #[test]
    fn ranges() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Full);
        assert_eq!(r("bytes=0-99"), Partial(0, 100));
        assert_eq!(r("bytes=100-"), Partial(100, 1000));
        assert_eq!(r("bytes=-10"), Partial(990, 1000));
        assert_eq!(r("bytes=-5000"), Partial(0, 1000));
        assert_eq!(r("bytes=990-5000"), Partial(990, 1000));
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=5-4"), Full);
        assert_eq!(r("bytes=0-1,5-6"), Full);
        assert_eq!(r("items=0-1"), Full);
        assert_eq!(r("bytes=a-b"), Full);
        assert_eq!(r("bytes=-"), Full);
        assert_eq!(r("bytes=+1-2"), Full);
        assert_eq!(r("bytes=99999999999999999999999-"), Full);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }

    proptest::proptest! {
        #[test]
        fn ranges_stay_inside(header in "\\PC{0,30}", len in 0u64..10_000) {
            if let Partial(start, end) = parse_range(Some(&header), len) {
                proptest::prop_assert!(start < end && end <= len);
            }
        }

        #[test]
        fn numeric_ranges_stay_inside(a in 0u64..20_000, b in 0u64..20_000, len in 0u64..10_000) {
            let header = format!("bytes={a}-{b}");
            match parse_range(Some(&header), len) {
                Partial(start, end) => {
                    proptest::prop_assert_eq!(start, a);
                    proptest::prop_assert_eq!(end, (b + 1).min(len));
                }
                Unsatisfiable => proptest::prop_assert!(a >= len),
                Full => proptest::prop_assert!(b < a),
            }
        }
    }
}
