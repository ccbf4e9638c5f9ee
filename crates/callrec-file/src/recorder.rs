//! The phone-side local recording session: files on a USB drive, rotation at
//! a size limit, free-space checks, pause/resume. No clock reads: time is
//! passed in.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU32;
use core::time::Duration;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use crate::header::ticks_to_duration;
use crate::{Error, HEADER_LEN, Header, Writer};

/// Default size limit of one file: 4 GiB − 1, the FAT32 file size limit of
/// USB drives, which is also the largest file a `u32` `dataSize` allows.
pub const DEFAULT_MAX_FILE_SIZE: u64 = u32::MAX as u64;

/// Default free-space threshold below which no new file is opened: 1 MiB,
/// about two minutes of G.711.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 1 << 20;

/// Default header patch interval: 250 frames, 5 s of 20 ms frames.
pub const DEFAULT_HEADER_INTERVAL: u32 = 250;

/// Highest `_N` suffix tried when names are taken.
const MAX_NAME_SUFFIX: u32 = 9999;

/// A file the recorder can write, seek, truncate and make durable.
pub trait RecordFile: Write + Seek {
    /// Truncates (or extends) the file to `len` bytes.
    ///
    /// # Errors
    /// As the storage reports.
    fn set_len(&mut self, len: u64) -> io::Result<()>;

    /// Makes the written data durable (fsync), so the drive can be pulled.
    ///
    /// # Errors
    /// As the storage reports.
    fn sync_all(&mut self) -> io::Result<()>;
}

impl RecordFile for File {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        Self::set_len(self, len)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        Self::sync_all(self)
    }
}

/// Where recordings go: a directory on a USB drive ([`DirStorage`]), or
/// anything else firmware provides (a test double, a raw flash layer).
pub trait Storage {
    /// The file type.
    type File: RecordFile;

    /// Bytes free for new data.
    ///
    /// # Errors
    /// As the storage reports.
    fn available_space(&mut self) -> io::Result<u64>;

    /// Creates `name`, failing with [`io::ErrorKind::AlreadyExists`] if it
    /// exists (so two recorders cannot overwrite each other).
    ///
    /// # Errors
    /// As the storage reports.
    fn create_new(&mut self, name: &str) -> io::Result<Self::File>;

    /// Removes `name`; used only for a file whose header could not be written.
    ///
    /// # Errors
    /// As the storage reports.
    fn remove(&mut self, name: &str) -> io::Result<()>;
}

/// Files in a directory; free space from the file system (via `fs4`,
/// `statvfs` on Unix, `GetDiskFreeSpaceExW` on Windows).
#[derive(Debug, Clone)]
pub struct DirStorage {
    dir: PathBuf,
}

impl DirStorage {
    /// Records into `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a recorded file's name.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Storage for DirStorage {
    type File = File;

    fn available_space(&mut self) -> io::Result<u64> {
        fs4::available_space(&self.dir)
    }

    fn create_new(&mut self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.dir.join(name))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }
}

/// A wall-clock time supplied by the caller (the phone's local time), used
/// to name files `Record_YYYYMMDD_HHMMSS.wav`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl RecordTime {
    /// A validated calendar time (proleptic Gregorian, years 0..=9999).
    ///
    /// # Errors
    /// [`Error::TimeOutOfRange`] naming the field.
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<Self, Error> {
        let check = |field: &'static str, value: u64, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::TimeOutOfRange { field, value })
            }
        };
        check("year", year.into(), year <= 9999)?;
        check("month", month.into(), (1..=12).contains(&month))?;
        check(
            "day",
            day.into(),
            day >= 1 && day <= days_in_month(year, month),
        )?;
        check("hour", hour.into(), hour < 24)?;
        check("minute", minute.into(), minute < 60)?;
        check("second", second.into(), second < 60)?;
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The UTC calendar time of a Unix timestamp.
    ///
    /// # Errors
    /// [`Error::TimeOutOfRange`] past the year 9999.
    pub fn from_unix_seconds(secs: u64) -> Result<Self, Error> {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let year =
            u16::try_from(year)
                .ok()
                .filter(|&y| y <= 9999)
                .ok_or(Error::TimeOutOfRange {
                    field: "year",
                    value: year,
                })?;
        Self::new(
            year,
            month,
            day,
            (rem / 3600) as u8,
            (rem / 60 % 60) as u8,
            (rem % 60) as u8,
        )
    }

    /// The Unix timestamp of this time taken as UTC; `None` before 1970.
    pub fn to_unix_seconds(&self) -> Option<u64> {
        // H. Hinnant's `days_from_civil`, for years from 1970.
        let y = u64::from(self.year).checked_sub(u64::from(self.month <= 2))?;
        let m = u64::from(self.month);
        let era = y / 400;
        let yoe = y % 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + u64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = (era * 146_097 + doe).checked_sub(719_468)?;
        let secs =
            u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second);
        Some(days * 86_400 + secs)
    }

    /// The year, 0..=9999.
    pub const fn year(&self) -> u16 {
        self.year
    }

    /// The month, 1..=12.
    pub const fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub const fn day(&self) -> u8 {
        self.day
    }

    /// The hour, 0..=23.
    pub const fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0..=59.
    pub const fn minute(&self) -> u8 {
        self.minute
    }

    /// The second, 0..=59.
    pub const fn second(&self) -> u8 {
        self.second
    }

    /// `Record_YYYYMMDD_HHMMSS`, the phone's file name without extension.
    pub fn file_stem(&self) -> String {
        format!(
            "Record_{:04}{:02}{:02}_{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for RecordTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's
/// `civil_from_days`, for non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// How a [`Recorder`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    format: Header,
    max_file_size: u64,
    min_free_space: u64,
    header_interval: Option<NonZeroU32>,
}

impl RecorderConfig {
    /// Records frames of `format`'s codec, `rtpLen` and `increment`, with the
    /// default limits.
    pub fn new(format: Header) -> Self {
        Self {
            format,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
            header_interval: NonZeroU32::new(DEFAULT_HEADER_INTERVAL),
        }
    }

    /// Size limit of one file, header included (default
    /// [`DEFAULT_MAX_FILE_SIZE`]); never more than `dataSize` allows.
    #[must_use]
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// No file is opened with less free space than this (default
    /// [`DEFAULT_MIN_FREE_SPACE`]).
    #[must_use]
    pub fn min_free_space(mut self, bytes: u64) -> Self {
        self.min_free_space = bytes;
        self
    }

    /// Patch the header every this many frames (default
    /// [`DEFAULT_HEADER_INTERVAL`]); `None` only when a file is finished.
    #[must_use]
    pub fn header_interval(mut self, frames: Option<NonZeroU32>) -> Self {
        self.header_interval = frames;
        self
    }

    /// The largest file this configuration writes.
    fn file_size_limit(&self) -> u64 {
        self.max_file_size
            .min(HEADER_LEN as u64 + u64::from(u32::MAX))
    }
}

/// What a recorder is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecorderState {
    /// No recording: before `start`, after `stop`, or after an error ended it.
    Idle,
    /// Frames are written.
    Recording,
    /// Frames are dropped until `resume`.
    Paused,
}

/// One file of a recording session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedFile {
    /// File name within the storage.
    pub name: String,
    /// Its header; `dataSize` is what the file holds (so far, for the file
    /// being written).
    pub header: Header,
}

/// A snapshot of a recorder: see [`Recorder::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderStatus {
    /// What the recorder is doing.
    pub state: RecorderState,
    /// Frames recorded in this (or the last) session.
    pub frames: u64,
    /// Frames dropped while paused.
    pub frames_dropped: u64,
    /// Recorded media time, for codecs with a known clock rate.
    pub duration: Option<Duration>,
    /// Files of this (or the last) session, in order; the last one is being
    /// written while recording.
    pub files: Vec<RecordedFile>,
}

/// The phone's local recording session.
///
/// `start` opens `Record_YYYYMMDD_HHMMSS.wav` (or `…_1.wav`, `…_2.wav` when
/// taken) after checking free space; frames are appended; when the next
/// frame would pass the size limit the file is finished and recording goes
/// on in the next `_N` file; `pause` drops frames until `resume`; `stop`
/// finishes. A write error (drive full or pulled) finishes what was written,
/// truncated to whole frames, and ends the session with
/// [`Error::Interrupted`].
///
/// ```
/// use callrec_file::{CodecName, DirStorage, Header, RecordTime, Recorder, RecorderConfig};
///
/// # let dir = tempfile::tempdir()?;
/// let config = RecorderConfig::new(Header::new(CodecName::PCMA, 160, 160)?).min_free_space(0);
/// let mut rec = Recorder::new(DirStorage::new(dir.path()), config)?;
/// rec.start(RecordTime::new(2026, 11, 22, 10, 15, 0)?)?;
/// for _ in 0..50 {
///     rec.write_frame(&[0xd5; 160])?;
/// }
/// let files = rec.stop()?;
/// assert_eq!(files[0].name, "Record_20261122_101500.wav");
/// assert_eq!(files[0].header.duration(), Some(std::time::Duration::from_secs(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Recorder<S: Storage> {
    storage: S,
    config: RecorderConfig,
    state: RecorderState,
    /// The file being written and its name; `Some` exactly while not idle.
    // Unbuffered on purpose: a frame is either in the file or reported as
    // failed, so a full drive never strands buffered frames that cannot be
    // flushed, and the writer can seek back to the last whole frame.
    current: Option<(String, Writer<S::File>)>,
    stem: String,
    next_suffix: u32,
    files: Vec<RecordedFile>,
    frames: u64,
    frames_dropped: u64,
}

impl<S: Storage> Recorder<S> {
    /// A recorder writing to `storage`.
    ///
    /// # Errors
    /// [`Error::MaxFileSizeTooSmall`] if the limit cannot hold the header
    /// and one frame.
    pub fn new(storage: S, config: RecorderConfig) -> Result<Self, Error> {
        let required = HEADER_LEN as u64 + u64::from(config.format.rtp_len());
        if config.file_size_limit() < required {
            return Err(Error::MaxFileSizeTooSmall {
                max_file_size: config.max_file_size,
                required,
            });
        }
        Ok(Self {
            storage,
            config,
            state: RecorderState::Idle,
            current: None,
            stem: String::new(),
            next_suffix: 0,
            files: Vec::new(),
            frames: 0,
            frames_dropped: 0,
        })
    }

    /// Starts a recording named after `time`.
    ///
    /// # Errors
    /// [`Error::AlreadyRecording`]; [`Error::StorageFull`] below the
    /// free-space threshold; [`Error::NamesExhausted`]; [`Error::Io`]. On
    /// error the recorder stays idle.
    pub fn start(&mut self, time: RecordTime) -> Result<(), Error> {
        if self.state != RecorderState::Idle {
            return Err(Error::AlreadyRecording);
        }
        self.stem = time.file_stem();
        self.next_suffix = 0;
        self.files.clear();
        self.frames = 0;
        self.frames_dropped = 0;
        self.open_next()?;
        self.state = RecorderState::Recording;
        Ok(())
    }

    /// Records one frame (dropped while paused).
    ///
    /// # Errors
    /// [`Error::NotRecording`]; [`Error::FrameLen`] (nothing written, the
    /// recording goes on); [`Error::StorageFull`] when the size limit was
    /// reached and too little space remains for another file, and
    /// [`Error::Interrupted`] when writing failed: both end the recording
    /// with every file finished.
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<(), Error> {
        match self.state {
            RecorderState::Idle => return Err(Error::NotRecording),
            RecorderState::Paused => {
                self.frames_dropped += 1;
                return Ok(());
            }
            RecorderState::Recording => {}
        }
        let rtp_len = self.config.format.rtp_len();
        if frame.len() != usize::from(rtp_len) {
            return Err(Error::FrameLen {
                expected: rtp_len,
                actual: frame.len(),
            });
        }
        let full = self.current.as_ref().is_some_and(|(_, w)| {
            w.file_len() + u64::from(rtp_len) > self.config.file_size_limit()
        });
        if full {
            self.close_current()?;
            if let Err(e) = self.open_next() {
                self.state = RecorderState::Idle;
                return Err(e);
            }
        }
        let result = match &mut self.current {
            Some((_, w)) => w.append(frame),
            None => Err(Error::NotRecording),
        };
        match result {
            Ok(()) => {
                self.frames += 1;
                Ok(())
            }
            Err(Error::Io(source)) => Err(self.interrupt(source)),
            Err(e) => Err(e),
        }
    }

    /// Pauses: frames are dropped until [`Recorder::resume`]. The header is
    /// patched now, so the file is complete while paused.
    ///
    /// # Errors
    /// [`Error::NotRecording`]; [`Error::Interrupted`] if patching failed.
    pub fn pause(&mut self) -> Result<(), Error> {
        match self.state {
            RecorderState::Idle => Err(Error::NotRecording),
            RecorderState::Paused => Ok(()),
            RecorderState::Recording => {
                let result = match &mut self.current {
                    Some((_, w)) => w.patch_header(),
                    None => Ok(()),
                };
                match result {
                    Ok(()) => {
                        self.state = RecorderState::Paused;
                        Ok(())
                    }
                    Err(Error::Io(source)) => Err(self.interrupt(source)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Resumes after [`Recorder::pause`], in the same file.
    ///
    /// # Errors
    /// [`Error::NotRecording`] when idle.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.state == RecorderState::Idle {
            return Err(Error::NotRecording);
        }
        self.state = RecorderState::Recording;
        Ok(())
    }

    /// Stops and finishes the recording; returns its files.
    ///
    /// # Errors
    /// [`Error::NotRecording`]; [`Error::Interrupted`] if finishing the last
    /// file failed (it still reads in recover mode). The recorder is idle
    /// afterwards either way.
    pub fn stop(&mut self) -> Result<Vec<RecordedFile>, Error> {
        if self.state == RecorderState::Idle {
            return Err(Error::NotRecording);
        }
        self.state = RecorderState::Idle;
        self.close_current()?;
        Ok(self.files.clone())
    }

    /// What the recorder is doing, what it has recorded and into which files.
    pub fn status(&self) -> RecorderStatus {
        let mut files = self.files.clone();
        if let Some((name, w)) = &self.current {
            files.push(RecordedFile {
                name: name.clone(),
                header: *w.header(),
            });
        }
        let format = &self.config.format;
        RecorderStatus {
            state: self.state,
            frames: self.frames,
            frames_dropped: self.frames_dropped,
            duration: format.clock_rate().map(|rate| {
                ticks_to_duration(
                    self.frames.saturating_mul(u64::from(format.increment())),
                    rate,
                )
            }),
            files,
        }
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Opens the next file of the session after checking free space.
    fn open_next(&mut self) -> Result<(), Error> {
        let available = self.storage.available_space()?;
        if available < self.config.min_free_space {
            return Err(Error::StorageFull {
                available,
                required: self.config.min_free_space,
            });
        }
        let (name, file) = loop {
            if self.next_suffix > MAX_NAME_SUFFIX {
                return Err(Error::NamesExhausted {
                    base: self.stem.clone(),
                });
            }
            let name = match self.next_suffix {
                0 => format!("{}.wav", self.stem),
                n => format!("{}_{n}.wav", self.stem),
            };
            self.next_suffix += 1;
            match self.storage.create_new(&name) {
                Ok(file) => break (name, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        };
        match Writer::new(file, self.config.format) {
            Ok(mut writer) => {
                writer.set_header_interval(self.config.header_interval);
                self.current = Some((name, writer));
                Ok(())
            }
            Err(e) => {
                // Not even a header: nothing a player could open. Best effort.
                let _ = self.storage.remove(&name);
                Err(e)
            }
        }
    }

    /// Finishes the current file: header patched, flushed, truncated to
    /// whole frames, synced.
    fn close_current(&mut self) -> Result<(), Error> {
        let Some((name, writer)) = self.current.take() else {
            return Ok(());
        };
        let header = *writer.header();
        let result = finish_file(writer);
        self.files.push(RecordedFile {
            name: name.clone(),
            header,
        });
        result.map_err(|source| {
            self.state = RecorderState::Idle;
            Error::Interrupted {
                file: name,
                data_size: header.data_size(),
                finalized: false,
                source,
            }
        })
    }

    /// A write failed: finish what is there and end the session.
    fn interrupt(&mut self, source: io::Error) -> Error {
        self.state = RecorderState::Idle;
        let Some((name, writer)) = self.current.take() else {
            return Error::Io(source);
        };
        let header = *writer.header();
        let finalized = finish_file(writer).is_ok();
        self.files.push(RecordedFile {
            name: name.clone(),
            header,
        });
        Error::Interrupted {
            file: name,
            data_size: header.data_size(),
            finalized,
            source,
        }
    }
}

fn finish_file<F: RecordFile>(writer: Writer<F>) -> io::Result<()> {
    let (header, mut file) = writer.finish_into_inner().map_err(|e| match e {
        Error::Io(e) => e,
        other => io::Error::other(other),
    })?;
    file.set_len(header.frame_offset(header.frame_count()))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodecName, ReadMode, Recording};
    use alloc::collections::BTreeMap;
    use alloc::rc::Rc;
    use alloc::string::ToString;
    use alloc::vec;
    use core::cell::{Cell, RefCell};
    use proptest::prelude::*;
    use std::io::SeekFrom;

    /// In-memory storage that can run full (writes that grow a file fail
    /// once the budget is spent; overwrites still succeed, as on a real file
    /// system) or be pulled (everything fails).
    type SharedBytes = Rc<RefCell<Vec<u8>>>;

    #[derive(Debug, Clone, Default)]
    struct MemStorage {
        files: Rc<RefCell<BTreeMap<String, SharedBytes>>>,
        available: Rc<Cell<u64>>,
        /// Bytes files may still grow by; `None`: unlimited.
        growth_budget: Rc<Cell<Option<usize>>>,
        pulled: Rc<Cell<bool>>,
    }

    impl MemStorage {
        fn new() -> Self {
            let s = Self::default();
            s.available.set(u64::MAX);
            s
        }
        fn bytes(&self, name: &str) -> Vec<u8> {
            self.files.borrow()[name].borrow().clone()
        }
        fn names(&self) -> Vec<String> {
            self.files.borrow().keys().cloned().collect()
        }
    }

    #[derive(Debug)]
    struct MemFile {
        data: SharedBytes,
        pos: usize,
        storage: MemStorage,
    }

    impl MemFile {
        fn check_attached(&self) -> io::Result<()> {
            if self.storage.pulled.get() {
                return Err(io::ErrorKind::NotConnected.into());
            }
            Ok(())
        }
    }

    impl Write for MemFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.check_attached()?;
            let mut data = self.data.borrow_mut();
            let growth = (self.pos + buf.len()).saturating_sub(data.len());
            let n = match self.storage.growth_budget.get() {
                Some(b) if growth > b => {
                    let n = buf.len() - (growth - b);
                    if n == 0 {
                        return Err(io::ErrorKind::StorageFull.into());
                    }
                    n
                }
                _ => buf.len(),
            };
            let end = self.pos + n;
            if data.len() < end {
                if let Some(b) = self.storage.growth_budget.get() {
                    self.storage.growth_budget.set(Some(b - (end - data.len())));
                }
                data.resize(end, 0);
            }
            data[self.pos..end].copy_from_slice(&buf[..n]);
            self.pos = end;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.check_attached()
        }
    }

    impl Seek for MemFile {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.check_attached()?;
            self.pos = match pos {
                SeekFrom::Start(p) => p as usize,
                SeekFrom::End(d) => (self.data.borrow().len() as i64 + d) as usize,
                SeekFrom::Current(d) => (self.pos as i64 + d) as usize,
            };
            Ok(self.pos as u64)
        }
    }

    impl RecordFile for MemFile {
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.check_attached()?;
            self.data.borrow_mut().resize(len as usize, 0);
            Ok(())
        }
        fn sync_all(&mut self) -> io::Result<()> {
            self.check_attached()
        }
    }

    impl Storage for MemStorage {
        type File = MemFile;
        fn available_space(&mut self) -> io::Result<u64> {
            Ok(self.available.get())
        }
        fn create_new(&mut self, name: &str) -> io::Result<MemFile> {
            let mut files = self.files.borrow_mut();
            if files.contains_key(name) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            let data = Rc::new(RefCell::new(Vec::new()));
            files.insert(name.into(), data.clone());
            Ok(MemFile {
                data,
                pos: 0,
                storage: self.clone(),
            })
        }
        fn remove(&mut self, name: &str) -> io::Result<()> {
            self.files.borrow_mut().remove(name);
            Ok(())
        }
    }

    fn t0() -> RecordTime {
        RecordTime::new(2026, 11, 22, 10, 15, 0).unwrap()
    }

    fn config(rtp_len: u16) -> RecorderConfig {
        RecorderConfig::new(Header::new(CodecName::PCMU, rtp_len, 8).unwrap())
    }

    #[test]
    fn record_times() {
        assert_eq!(t0().file_stem(), "Record_20261122_101500");
        assert_eq!(t0().to_string(), "2026-11-22 10:15:00");
        let t = RecordTime::from_unix_seconds(0).unwrap();
        assert_eq!(t.file_stem(), "Record_19700101_000000");
        let t = RecordTime::from_unix_seconds(951_782_400).unwrap();
        assert_eq!(t.file_stem(), "Record_20000229_000000");
        let t = RecordTime::from_unix_seconds(1_700_000_000).unwrap();
        assert_eq!(t.file_stem(), "Record_20231114_221320");
        let t = RecordTime::from_unix_seconds(253_402_300_799).unwrap();
        assert_eq!(t.file_stem(), "Record_99991231_235959");
        assert_eq!(t.to_unix_seconds(), Some(253_402_300_799));
        assert_eq!(t0().to_unix_seconds(), Some(1_795_342_500));
        assert_eq!(
            RecordTime::new(1969, 12, 31, 23, 59, 59)
                .unwrap()
                .to_unix_seconds(),
            None
        );
        assert_eq!(
            RecordTime::new(0, 1, 1, 0, 0, 0).unwrap().to_unix_seconds(),
            None
        );
        for secs in [
            0,
            59,
            86_399,
            86_400,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
        ] {
            let t = RecordTime::from_unix_seconds(secs).unwrap();
            assert_eq!(t.to_unix_seconds(), Some(secs), "{t}");
        }
        assert!(matches!(
            RecordTime::from_unix_seconds(253_402_300_800),
            Err(Error::TimeOutOfRange {
                field: "year",
                value: 10000
            })
        ));
        assert!(matches!(
            RecordTime::new(2025, 2, 29, 0, 0, 0),
            Err(Error::TimeOutOfRange {
                field: "day",
                value: 29
            })
        ));
        assert!(RecordTime::new(2024, 2, 29, 0, 0, 0).is_ok());
        assert!(RecordTime::new(1900, 2, 29, 0, 0, 0).is_err());
        let e = RecordTime::new(2026, 13, 1, 0, 0, 0).unwrap_err();
        assert_eq!(e.to_string(), "record time month out of range, got 13");
    }

    #[test]
    fn records_pauses_and_stops() {
        let storage = MemStorage::new();
        let mut rec = Recorder::new(storage.clone(), config(4)).unwrap();
        assert!(matches!(rec.write_frame(&[0; 4]), Err(Error::NotRecording)));
        rec.start(t0()).unwrap();
        assert!(matches!(rec.start(t0()), Err(Error::AlreadyRecording)));
        rec.write_frame(&[1; 4]).unwrap();
        rec.pause().unwrap();
        // The header is patched on pause: the file is complete as it stands.
        let snapshot = storage.bytes("Record_20261122_101500.wav");
        assert_eq!(Recording::parse(&snapshot).unwrap().frame_count(), 1);
        rec.write_frame(&[2; 4]).unwrap();
        rec.resume().unwrap();
        rec.write_frame(&[3; 4]).unwrap();
        assert!(matches!(
            rec.write_frame(&[3; 5]),
            Err(Error::FrameLen {
                expected: 4,
                actual: 5
            })
        ));
        let status = rec.status();
        assert_eq!(status.state, RecorderState::Recording);
        assert_eq!((status.frames, status.frames_dropped), (2, 1));
        // increment 8 at 8 kHz: 1 ms per frame.
        assert_eq!(status.duration, Some(Duration::from_millis(2)));
        let files = rec.stop().unwrap();
        assert_eq!(files.len(), 1);
        let bytes = storage.bytes(&files[0].name);
        let r = Recording::parse(&bytes).unwrap();
        assert_eq!(r.data(), &[1, 1, 1, 1, 3, 3, 3, 3]);
        assert_eq!(rec.status().state, RecorderState::Idle);
        assert!(matches!(rec.stop(), Err(Error::NotRecording)));
    }

    #[test]
    fn names_do_not_collide() {
        let storage = MemStorage::new();
        let mut rec = Recorder::new(storage.clone(), config(4)).unwrap();
        for _ in 0..3 {
            rec.start(t0()).unwrap();
            rec.stop().unwrap();
        }
        assert_eq!(
            storage.names(),
            [
                "Record_20261122_101500.wav",
                "Record_20261122_101500_1.wav",
                "Record_20261122_101500_2.wav"
            ]
        );
    }

    #[test]
    fn rotates_at_the_size_limit() {
        let storage = MemStorage::new();
        // Header plus two 4-byte frames per file.
        let cfg = config(4).max_file_size(76 + 8 + 3);
        let mut rec = Recorder::new(storage.clone(), cfg).unwrap();
        rec.start(t0()).unwrap();
        for i in 0..5u8 {
            rec.write_frame(&[i; 4]).unwrap();
        }
        let files = rec.stop().unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Record_20261122_101500.wav",
                "Record_20261122_101500_1.wav",
                "Record_20261122_101500_2.wav"
            ]
        );
        let sizes: Vec<_> = files.iter().map(|f| f.header.data_size()).collect();
        assert_eq!(sizes, [8, 8, 4]);
        let third = storage.bytes(&files[2].name);
        assert_eq!(Recording::parse(&third).unwrap().data(), &[4; 4]);
    }

    #[test]
    fn refuses_to_start_without_space() {
        let storage = MemStorage::new();
        storage.available.set(1000);
        let mut rec = Recorder::new(storage.clone(), config(4).min_free_space(1001)).unwrap();
        let e = rec.start(t0()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "storage has 1000 bytes free, below the 1001-byte minimum"
        );
        assert_eq!(rec.status().state, RecorderState::Idle);
        assert!(storage.names().is_empty());
    }

    #[test]
    fn stops_when_rotation_finds_no_space() {
        let storage = MemStorage::new();
        let cfg = config(4).max_file_size(76 + 8).min_free_space(100);
        let mut rec = Recorder::new(storage.clone(), cfg).unwrap();
        rec.start(t0()).unwrap();
        rec.write_frame(&[1; 4]).unwrap();
        rec.write_frame(&[2; 4]).unwrap();
        storage.available.set(50);
        assert!(matches!(
            rec.write_frame(&[3; 4]),
            Err(Error::StorageFull {
                available: 50,
                required: 100
            })
        ));
        let status = rec.status();
        assert_eq!(status.state, RecorderState::Idle);
        assert_eq!(status.files.len(), 1);
        let bytes = storage.bytes(&status.files[0].name);
        assert_eq!(Recording::parse(&bytes).unwrap().frame_count(), 2);
    }

    #[test]
    fn full_drive_finalizes_what_was_written() {
        let storage = MemStorage::new();
        let mut rec = Recorder::new(storage.clone(), config(4)).unwrap();
        rec.start(t0()).unwrap();
        for i in 0..300u32 {
            rec.write_frame(&[(i % 251) as u8; 4]).unwrap();
        }
        // The drive takes 10 more bytes: two frames and half of a third.
        storage.growth_budget.set(Some(10));
        rec.write_frame(&[7; 4]).unwrap();
        rec.write_frame(&[8; 4]).unwrap();
        let e = rec.write_frame(&[9; 4]).unwrap_err();
        let Error::Interrupted {
            file,
            data_size,
            finalized,
            source,
        } = &e
        else {
            panic!("expected Interrupted, got {e:?}");
        };
        assert_eq!(file, "Record_20261122_101500.wav");
        assert_eq!(*data_size, 302 * 4);
        assert!(*finalized);
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            e.to_string(),
            "writing Record_20261122_101500.wav failed after 1208 bytes of frames: \
             no storage space (recording stopped; file finalized and playable)"
        );
        assert_eq!(rec.status().state, RecorderState::Idle);
        assert!(matches!(rec.write_frame(&[0; 4]), Err(Error::NotRecording)));
        // Header patched, partial frame truncated: a strict read works.
        let bytes = storage.bytes(file);
        let r = Recording::parse(&bytes).unwrap();
        assert_eq!(r.frame_count(), 302);
        assert_eq!(r.frame(301), Some(&[8; 4][..]));
    }

    #[test]
    fn pulled_drive_leaves_a_recoverable_file() {
        let storage = MemStorage::new();
        let cfg = config(4).header_interval(NonZeroU32::new(10));
        let mut rec = Recorder::new(storage.clone(), cfg).unwrap();
        rec.start(t0()).unwrap();
        for _ in 0..25 {
            rec.write_frame(&[5; 4]).unwrap();
        }
        storage.pulled.set(true);
        let e = rec.write_frame(&[5; 4]).unwrap_err();
        assert!(matches!(
            e,
            Error::Interrupted {
                finalized: false,
                data_size: 100,
                ..
            }
        ));
        let bytes = storage.bytes("Record_20261122_101500.wav");
        // The last header patch was at frame 20; the body holds 25 frames.
        assert_eq!(Header::parse(&bytes).unwrap().data_size(), 80);
        let r = Recording::parse_with(&bytes, ReadMode::Recover).unwrap();
        assert_eq!(r.frame_count(), 25);
        assert_eq!(r.recovery().unwrap().header_data_size, 80);
    }

    #[test]
    fn rejects_impossible_limits() {
        let e = Recorder::new(MemStorage::new(), config(160).max_file_size(200)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "max file size 200 cannot hold the header and one frame (236 bytes)"
        );
    }

    #[test]
    fn records_into_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(160).min_free_space(0);
        let mut rec = Recorder::new(DirStorage::new(dir.path()), cfg).unwrap();
        rec.start(t0()).unwrap();
        for _ in 0..100 {
            rec.write_frame(&[0xff; 160]).unwrap();
        }
        let files = rec.stop().unwrap();
        let path = rec.storage().path(&files[0].name);
        let bytes = std::fs::read(path).unwrap();
        let r = Recording::parse(&bytes).unwrap();
        assert_eq!(r.frame_count(), 100);
        // The real free-space source answers.
        assert!(DirStorage::new(dir.path()).available_space().unwrap() > 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Frame(u8),
        Pause,
        Resume,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => any::<u8>().prop_map(Op::Frame),
            1 => Just(Op::Pause),
            1 => Just(Op::Resume),
        ]
    }

    proptest! {
        /// Every file reads strictly, stays within the limit, every file but
        /// the last is full, and together they hold exactly the frames
        /// written while not paused, in order.
        #[test]
        fn rotation_and_pause(
            rtp_len in 1u16..=8,
            frames_per_file in 1u64..=5,
            slack in 0u64..8,
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            let storage = MemStorage::new();
            let limit = 76 + frames_per_file * u64::from(rtp_len) + slack % u64::from(rtp_len);
            let cfg = config(rtp_len).max_file_size(limit);
            let mut rec = Recorder::new(storage.clone(), cfg).unwrap();
            rec.start(t0()).unwrap();
            let mut expected = Vec::new();
            let mut paused = false;
            for op in &ops {
                match op {
                    Op::Frame(b) => {
                        let frame = vec![*b; usize::from(rtp_len)];
                        rec.write_frame(&frame).unwrap();
                        if !paused {
                            expected.extend_from_slice(&frame);
                        }
                    }
                    Op::Pause => { rec.pause().unwrap(); paused = true; }
                    Op::Resume => { rec.resume().unwrap(); paused = false; }
                }
            }
            let files = rec.stop().unwrap();
            let mut got = Vec::new();
            for (i, f) in files.iter().enumerate() {
                let bytes = storage.bytes(&f.name);
                prop_assert!(bytes.len() as u64 <= limit);
                let r = Recording::parse(&bytes).unwrap();
                prop_assert_eq!(r.header(), &f.header);
                if i + 1 < files.len() {
                    prop_assert_eq!(u64::from(r.frame_count()), frames_per_file);
                }
                got.extend_from_slice(r.data());
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(storage.names().len(), files.len());
        }
    }
}
