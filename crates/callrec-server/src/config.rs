//! Server settings: [`Config`], readable from TOML.

use core::fmt;
use core::ops::RangeInclusive;
use core::str::FromStr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::Error;

/// The documented default control port.
pub const DEFAULT_CONTROL_PORT: u16 = 7700;

/// What the server writes per recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OutputFormat {
    /// A WAV file (A-law/µ-law as received; G.722 decoded to 16 kHz PCM).
    Wav,
    /// The phone's own container (`callrec-file`), as `.rec`.
    Rec,
    /// Both, side by side.
    Both,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wav" => Ok(Self::Wav),
            "rec" => Ok(Self::Rec),
            "both" => Ok(Self::Both),
            other => Err(format!("unknown format {other:?} (wav, rec or both)")),
        }
    }
}

/// An inclusive range of UDP ports, written `LO-HI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange(RangeInclusive<u16>);

impl PortRange {
    /// `first..=last`.
    ///
    /// # Errors
    /// A message when `first` is 0 or greater than `last`.
    pub fn new(first: u16, last: u16) -> Result<Self, String> {
        if first == 0 || first > last {
            return Err(format!("need 1 <= LO <= HI, got {first}-{last}"));
        }
        Ok(Self(first..=last))
    }

    /// The ports.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.0.clone()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0.start(), self.0.end())
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (lo, hi) = s
            .split_once('-')
            .ok_or_else(|| format!("expected LO-HI, got {s:?}"))?;
        let lo: u16 = lo.trim().parse().map_err(|e| format!("{lo:?}: {e}"))?;
        let hi: u16 = hi.trim().parse().map_err(|e| format!("{hi:?}: {e}"))?;
        Self::new(lo, hi)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Configuration keys renamed, and their new names.
const RENAMED_KEYS: &[(&str, &str)] = &[
    ("max_sessions", "max_recordings"),
    (
        "max_sessions_per_connection",
        "max_recordings_per_connection",
    ),
];

/// Everything the server can be told. `Config::default()` holds the
/// documented defaults; [`Config::from_toml`] reads the same fields from a
/// file (unknown keys are errors, so a typo never goes unnoticed).
///
/// ```
/// let config = callrec_server::Config::from_toml(r#"
///     listen = "127.0.0.1:7700"
///     rtp_ports = "41000-41099"
///     dir = "/var/lib/callrec"
///     allow = ["10.0.0.0/8"]
/// "#)?;
/// assert_eq!(config.rtp_ports.ports(), 41000..=41099);
/// assert_eq!(config.max_silence_secs, 600);
/// # Ok::<(), callrec_server::Error>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Control address (TCP), `HOST:PORT`; a host name is resolved at bind.
    pub listen: String,
    /// UDP ports for RTP, one per recording.
    pub rtp_ports: PortRange,
    /// Where recordings go.
    pub dir: PathBuf,
    /// Host name or address put in `server=` (default: the local address of
    /// each control connection).
    pub advertise: Option<String>,
    /// Recordings open at once, server-wide (TOML key `max_recordings`;
    /// `max_sessions`, its old name, still works, with a warning).
    #[serde(alias = "max_sessions")]
    pub max_recordings: usize,
    /// Control connections open at once.
    pub max_connections: usize,
    /// Control connections open at once from one address.
    pub max_connections_per_ip: usize,
    /// Recordings one connection may hold open (old name:
    /// `max_sessions_per_connection`).
    #[serde(alias = "max_sessions_per_connection")]
    pub max_recordings_per_connection: usize,
    /// A connection holding no recording for this long is closed, whatever
    /// it sends.
    pub idle_timeout_secs: u64,
    /// TCP keepalive idle time on control connections (0: off): a phone
    /// that vanished without closing is found and its recording finalized.
    pub keepalive_secs: u64,
    /// A recording that gets no RTP for this long logs it (once per
    /// silence); the recording goes on for as long as its control
    /// connection.
    pub silence_log_secs: u64,
    /// Longest silence kept as real time in a recording; a longer one is cut
    /// to this and noted in the sidecar as a discontinuity.
    pub max_silence_secs: u64,
    /// How far a call's media time may run ahead of the time since its first
    /// packet arrived, milliseconds: gaps are shortened and then payloads
    /// dropped beyond it, so no input makes a recording longer than the
    /// call. (Raise it only for test phones that send faster than real
    /// time.)
    pub max_lead_ms: u64,
    /// How long a call's RTP source must be silent before another source
    /// (address, port and SSRC) may replace it.
    pub source_switch_secs: u64,
    /// What to write per recording.
    pub format: OutputFormat,
    /// WAV header rewrite interval, milliseconds of audio.
    pub header_interval_ms: u64,
    /// Sidecar rewrite interval while a call runs, seconds (each call's
    /// rewrites are staggered within the interval, so a thousand calls that
    /// started together do not rewrite together).
    pub sidecar_interval_secs: u64,
    /// Start requests are refused (`storage full`) while the recordings
    /// file system has less free space than this, in bytes. Running calls
    /// go on until writes fail, so a filling disk refuses new calls first.
    pub min_free_space: u64,
    /// Phones allowed to record (CIDR networks); empty: every address.
    pub allow: Vec<IpNet>,
    /// Receive buffer asked for each RTP socket, in bytes.
    pub rtp_recv_buffer: usize,
    /// Payload type of RFC 4733 telephone-events (DTMF).
    pub dtmf_payload_type: u8,
    /// Benchmark baseline: receive and count RTP, write nothing.
    pub discard_rtp: bool,
    /// SIPREC: the SIP address (`HOST:PORT`, UDP and TCP) on which the
    /// server takes recording sessions from a PBX or SBC; `None`: off.
    /// Sessions count against `max_recordings`, their RTP ports come from
    /// `rtp_ports`, and `allow` applies to their senders.
    pub sip: Option<String>,
    /// SIPREC: recording sessions from one address at once.
    pub sip_max_sessions_per_address: usize,
    /// SIPREC: the longest SIP message taken, in bytes.
    pub sip_max_message_len: usize,
    /// SIPREC: TCP connections open at once (each from an SBC or a proxy).
    pub sip_max_connections: usize,
    /// SIPREC: TCP connections open at once from one address.
    pub sip_max_connections_per_address: usize,
    /// SIPREC: a TCP connection that brings no whole message (nor a CRLF
    /// keep-alive) for this long is closed, seconds.
    pub sip_idle_timeout_secs: u64,
    /// File descriptors the rest of the process may hold at once (a
    /// node's HTTP API connections, its live listeners among them). When
    /// the descriptor limit is low, they are set aside before the
    /// recordings' and control connections' share is sized. Not a TOML
    /// key: the node that runs the server sets it.
    #[serde(skip)]
    pub other_descriptors: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: format!("0.0.0.0:{DEFAULT_CONTROL_PORT}"),
            rtp_ports: PortRange(40000..=40999),
            dir: PathBuf::from("recordings"),
            advertise: None,
            max_recordings: 1000,
            max_connections: 2000,
            max_connections_per_ip: 256,
            max_recordings_per_connection: 4,
            idle_timeout_secs: 10,
            keepalive_secs: 30,
            silence_log_secs: 30,
            max_silence_secs: 600,
            max_lead_ms: 1000,
            source_switch_secs: 2,
            format: OutputFormat::Wav,
            header_interval_ms: 1000,
            sidecar_interval_secs: 30,
            min_free_space: 256 << 20,
            allow: Vec::new(),
            rtp_recv_buffer: 256 << 10,
            dtmf_payload_type: 101,
            discard_rtp: false,
            sip: None,
            sip_max_sessions_per_address: 500,
            sip_max_message_len: 64 << 10,
            sip_max_connections: 256,
            sip_max_connections_per_address: 16,
            sip_idle_timeout_secs: 300,
            other_descriptors: 0,
        }
    }
}

impl Config {
    /// Reads a configuration from TOML text.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and what was wrong.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        Self::parse(text, None)
    }

    /// Reads a configuration file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, and the key or the read error.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: Some(path.to_owned()),
            message: e.to_string(),
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, Error> {
        let config = toml::from_str(text).map_err(|e| Error::Config {
            path: path.map(Path::to_owned),
            message: e.message().to_owned(),
        })?;
        // Keys renamed for what they set: the old ones still work.
        if let Ok(table) = toml::from_str::<toml::Table>(text) {
            for (old, new) in RENAMED_KEYS {
                if table.contains_key(*old) {
                    tracing::warn!(
                        "configuration key {old} is now called {new}; the old name still works"
                    );
                }
            }
        }
        Ok(config)
    }

    /// Whether `ip` may record.
    pub fn allows(&self, ip: core::net::IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_is_an_error_that_names_the_key() {
        let e = Config::from_toml("listen = \"127.0.0.1:1\"\nmax_sesions = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_sesions"), "{e}");
        let e = Config::from_toml("rtp_ports = \"9-1\"").unwrap_err();
        assert!(e.to_string().contains("9-1"), "{e}");
        let e = Config::from_toml("allow = [\"10.0.0.0/33\"]").unwrap_err();
        assert!(e.to_string().contains("invalid"), "{e}");
    }

    #[test]
    fn allow_lists() {
        let c = Config::from_toml("allow = [\"10.1.0.0/16\", \"::1/128\"]").unwrap();
        assert!(c.allows("10.1.2.3".parse().unwrap()));
        assert!(c.allows("::1".parse().unwrap()));
        assert!(!c.allows("10.2.0.1".parse().unwrap()));
        assert!(Config::default().allows("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn the_old_names_of_renamed_keys_still_work() {
        let config =
            Config::from_toml("max_sessions = 7\nmax_sessions_per_connection = 2").unwrap();
        assert_eq!(config.max_recordings, 7);
        assert_eq!(config.max_recordings_per_connection, 2);
        let config = Config::from_toml("max_recordings = 9").unwrap();
        assert_eq!(config.max_recordings, 9);
    }
}
