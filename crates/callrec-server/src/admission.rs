//! Who may connect and who may record: the server's admission policy,
//! sans-IO. Addresses, the free space and the observers' answers come in as
//! values, so the server and its fuzz target run this same code, and tests
//! drive it without sockets.

use core::net::IpAddr;
use std::collections::HashMap;
use std::path::PathBuf;

use callrec_control::Rejection;

use crate::Config;

/// Why a connection or a recording was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// [`Config::max_connections`] connections are open.
    TooManyConnections(usize),
    /// [`Config::max_connections_per_ip`] connections from this address.
    TooManyFromAddress(IpAddr),
    /// The phone's address is not in [`Config::allow`].
    NotAllowed(IpAddr),
    /// [`Config::max_recordings`] recordings are running.
    TooManyRecordings,
    /// Less free space than [`Config::min_free_space`].
    StorageFull {
        /// Free bytes.
        free: u64,
        /// The reserve.
        reserve: u64,
        /// Where recordings go.
        dir: PathBuf,
    },
    /// An observer said no (an index that does not answer), and why.
    Unavailable(String),
}

impl Refusal {
    /// What the phone is told.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            Self::TooManyRecordings => Rejection::TooManySessions,
            Self::NotAllowed(ip) => {
                Rejection::Other(format!("phone address {ip} is not allowed to record"))
            }
            Self::StorageFull { free, reserve, dir } => Rejection::Other(format!(
                "storage full: {} MiB free in {} (reserve {} MiB)",
                free >> 20,
                dir.display(),
                reserve >> 20
            )),
            Self::Unavailable(reason) => Rejection::Other(reason.clone()),
            Self::TooManyConnections(open) => {
                Rejection::Other(format!("{open} connections open (max_connections)"))
            }
            Self::TooManyFromAddress(ip) => {
                Rejection::Other(format!("{ip} has max_connections_per_ip connections open"))
            }
        }
    }
}

/// The limits, and what is open against them.
#[derive(Debug)]
pub(crate) struct Admission {
    allow: Vec<ipnet::IpNet>,
    max_connections: usize,
    max_connections_per_ip: usize,
    max_recordings: usize,
    min_free_space: u64,
    dir: PathBuf,
    per_address: HashMap<IpAddr, usize>,
    recordings: usize,
}

impl Admission {
    /// The limits of `config`, nothing open.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            allow: config.allow.clone(),
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            max_recordings: config.max_recordings,
            min_free_space: config.min_free_space,
            dir: config.dir.clone(),
            per_address: HashMap::new(),
            recordings: 0,
        }
    }

    /// A connection from `ip` while `open` connections are open: counted
    /// against the address's limit until [`connection_closed`](Self::connection_closed).
    pub(crate) fn admit_connection(&mut self, ip: IpAddr, open: usize) -> Result<(), Refusal> {
        if open >= self.max_connections {
            return Err(Refusal::TooManyConnections(open));
        }
        let count = self.per_address.entry(ip).or_insert(0);
        if *count >= self.max_connections_per_ip {
            return Err(Refusal::TooManyFromAddress(ip));
        }
        *count += 1;
        Ok(())
    }

    /// A connection from `ip` admitted before has closed.
    pub(crate) fn connection_closed(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
    }

    /// A recording for the phone at `ip`, checked in order of cost: the
    /// allow-list, the number running, then `free_space()` (a system call)
    /// against the reserve, then `observers()`. Counted until
    /// [`recording_ended`](Self::recording_ended).
    pub(crate) fn admit_recording(
        &mut self,
        ip: IpAddr,
        free_space: impl FnOnce() -> u64,
        observers: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), Refusal> {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip));
        if !allowed {
            return Err(Refusal::NotAllowed(ip));
        }
        if self.recordings >= self.max_recordings {
            return Err(Refusal::TooManyRecordings);
        }
        // A filling disk refuses new calls before running ones fail.
        let free = free_space();
        if free < self.min_free_space {
            return Err(Refusal::StorageFull {
                free,
                reserve: self.min_free_space,
                dir: self.dir.clone(),
            });
        }
        observers().map_err(Refusal::Unavailable)?;
        self.recordings += 1;
        Ok(())
    }

    /// A recording admitted before has ended (or could not start after all).
    pub(crate) fn recording_ended(&mut self) {
        self.recordings = self.recordings.saturating_sub(1);
    }

    /// Recordings admitted and not ended.
    pub(crate) fn recordings(&self) -> usize {
        self.recordings
    }

    /// Addresses with a connection open.
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.per_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: IpAddr = IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, 5));
    const OTHER: IpAddr = IpAddr::V4(core::net::Ipv4Addr::new(192, 168, 1, 9));

    fn admission(toml: &str) -> Admission {
        let mut config = Config::from_toml(toml).unwrap();
        config.dir = "/rec".into();
        Admission::new(&config)
    }

    fn plenty() -> u64 {
        u64::MAX
    }

    #[test]
    fn connections_are_bounded_in_total_and_per_address_and_given_back() {
        let mut a = admission("max_connections = 3\nmax_connections_per_ip = 2");
        assert_eq!(a.admit_connection(PHONE, 0), Ok(()));
        assert_eq!(a.admit_connection(PHONE, 1), Ok(()));
        assert_eq!(
            a.admit_connection(PHONE, 2),
            Err(Refusal::TooManyFromAddress(PHONE))
        );
        assert_eq!(
            a.admit_connection(OTHER, 3),
            Err(Refusal::TooManyConnections(3))
        );
        a.connection_closed(PHONE);
        assert_eq!(a.admit_connection(PHONE, 2), Ok(()));
        a.connection_closed(PHONE);
        a.connection_closed(PHONE);
        assert_eq!(a.addresses(), 0, "no entry outlives its connections");
        // A close the admission never saw changes nothing.
        a.connection_closed(OTHER);
        assert_eq!(a.addresses(), 0);
    }

    #[test]
    fn recordings_are_checked_allow_list_then_count_then_space_then_observers() {
        let mut a =
            admission("allow = [\"10.0.0.0/8\"]\nmax_recordings = 1\nmin_free_space = 1000");
        let mut asked = Vec::new();
        let refused = a.admit_recording(
            OTHER,
            || {
                asked.push("space");
                plenty()
            },
            || Ok(()),
        );
        assert_eq!(refused, Err(Refusal::NotAllowed(OTHER)));
        assert!(asked.is_empty(), "no system call for a phone not allowed");
        let full = a.admit_recording(PHONE, || 999, || Err("never asked".into()));
        assert_eq!(
            full,
            Err(Refusal::StorageFull {
                free: 999,
                reserve: 1000,
                dir: "/rec".into()
            })
        );
        let down = a.admit_recording(PHONE, plenty, || Err("index down".into()));
        assert_eq!(down, Err(Refusal::Unavailable("index down".into())));
        assert_eq!(a.recordings(), 0, "refusals hold no place");
        assert_eq!(a.admit_recording(PHONE, plenty, || Ok(())), Ok(()));
        assert_eq!(
            a.admit_recording(PHONE, plenty, || Ok(())),
            Err(Refusal::TooManyRecordings)
        );
        a.recording_ended();
        assert_eq!(a.admit_recording(PHONE, plenty, || Ok(())), Ok(()));
    }

    #[test]
    fn refusals_tell_the_phone_what_was_wrong() {
        let full = Refusal::StorageFull {
            free: 5 << 20,
            reserve: 256 << 20,
            dir: "/rec".into(),
        };
        let Rejection::Other(text) = full.rejection() else {
            panic!("storage full is told in words");
        };
        assert_eq!(text, "storage full: 5 MiB free in /rec (reserve 256 MiB)");
        let Rejection::Other(text) = Refusal::NotAllowed(OTHER).rejection() else {
            panic!("not allowed is told in words");
        };
        assert!(text.contains("192.168.1.9"), "{text}");
        assert_eq!(
            Refusal::TooManyRecordings.rejection(),
            Rejection::TooManySessions
        );
    }
}
