//! Where a recording goes: path components from phone input, sanitised, and
//! UTC timestamps without a time-zone database.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use callrec_file::RecordTime;

/// Longest path component taken from phone input, in bytes.
pub(crate) const MAX_COMPONENT_LEN: usize = 64;

/// One path component from untrusted text: only ASCII letters, digits and
/// `+ - _ .` survive (everything else becomes `_`), a leading `.` becomes
/// `_` (so never `.` or `..`), at most [`MAX_COMPONENT_LEN`] bytes, never
/// empty. Separators, NUL and control characters cannot pass.
pub(crate) fn sanitize_component(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_COMPONENT_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// A new recording id (see [`Sidecar::recording_id`](crate::Sidecar)):
/// the current Unix time in milliseconds as 12 hex digits, then 80 random
/// bits from the operating system.
pub(crate) fn new_recording_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 10];
    if getrandom::fill(&mut random).is_err() {
        // No OS randomness (never seen on Linux): still unique within this
        // process, from a counter and the process id.
        use core::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        random[..8].copy_from_slice(&n.to_be_bytes());
        random[8..].copy_from_slice(&(std::process::id() as u16).to_be_bytes());
    }
    recording_id(ms, random)
}

/// The id of a recording started at `unix_ms` with these random bits.
pub(crate) fn recording_id(unix_ms: u64, random: [u8; 10]) -> String {
    let mut id = format!("{:012x}", unix_ms & 0xffff_ffff_ffff);
    for b in random {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// A UTC time, to the second: callrec-file's `RecordTime` (which owns the
/// calendar conversion), formatted for paths and the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime(RecordTime);

impl UtcTime {
    pub(crate) fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix(secs)
    }

    /// The calendar time of a Unix timestamp (clamped to the year 9999).
    pub(crate) fn from_unix(secs: u64) -> Self {
        const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        Self(RecordTime::from_unix_seconds(secs.min(LAST)).expect("within the year 9999"))
    }

    /// `YYYY-MM-DD`.
    pub(crate) fn date(&self) -> String {
        let t = &self.0;
        format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
    }

    /// `HHMMSS`.
    pub(crate) fn hms(&self) -> String {
        let t = &self.0;
        format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
    }

    /// RFC 3339, `Z`.
    pub(crate) fn rfc3339(&self) -> String {
        let t = &self.0;
        format!(
            "{}T{:02}:{:02}:{:02}Z",
            self.date(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// `dir/<device>/<YYYY-MM-DD>/<HHMMSS>_<dir>_<remote_number>_<id>` without
/// an extension; every component from the phone is sanitised.
pub(crate) fn recording_stem(
    dir: &Path,
    device: &str,
    time: &UtcTime,
    direction: &str,
    remote_number: &str,
    id: &str,
) -> PathBuf {
    let name = format!(
        "{}_{}_{}_{}",
        time.hms(),
        sanitize_component(direction),
        sanitize_component(remote_number),
        sanitize_component(id)
    );
    dir.join(sanitize_component(device))
        .join(time.date())
        .join(name)
}

/// `stem.ext`. Not `Path::with_extension`, which would replace whatever
/// follows a `.` inside the stem (a session id may contain dots).
pub(crate) fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    stem.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_ids_sort_by_time_and_differ() {
        let id = recording_id(0x0123_4567_89ab, [0xff; 10]);
        assert_eq!(id, "0123456789abffffffffffffffffffff");
        assert!(recording_id(1, [0xff; 10]) < recording_id(2, [0; 10]));
        let (a, b) = (new_recording_id(), new_recording_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn hostile_components_stay_inside() {
        for hostile in [
            "../../x",
            "/etc/passwd",
            "a\0b",
            "..",
            ".",
            "",
            "a/b\\c",
            "\u{202e}x",
        ] {
            let c = sanitize_component(hostile);
            assert!(!c.contains(['/', '\\', '\0']), "{c}");
            assert!(!c.starts_with('.'), "{c}");
            assert!(!c.is_empty());
        }
        assert_eq!(
            sanitize_component(&"x".repeat(10_000)).len(),
            MAX_COMPONENT_LEN
        );
        assert_eq!(sanitize_component("+49 30 1234"), "+49_30_1234");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(UtcTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UtcTime::from_unix(951_782_400).date(), "2000-02-29");
        assert_eq!(
            UtcTime::from_unix(1_795_342_500).rfc3339(),
            "2026-11-22T10:15:00Z"
        );
    }
}
