//! The IO layer: control connections driving callrec-control's sans-IO
//! `ServerSession`, one UDP socket and task per recording driving a
//! [`Call`], files, sidecars, limits and shutdown.

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::AtomicU64;
use core::time::Duration;
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use callrec_control::Host;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admission::Admission;
use crate::connection::serve_connection;
use crate::counters::Counters;
use crate::finalizer::Finalizers;
use crate::ports::PortPool;
use crate::siprec::{SipSockets, serve_sip};
use crate::{Config, Error, Observer};

/// What every connection and recording task of a server shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) advertise: Option<Host>,
    pub(crate) bind_ip: IpAddr,
    pub(crate) ports: Mutex<PortPool>,
    pub(crate) admission: Mutex<Admission>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) live: crate::Live,
    pub(crate) observers: Vec<Arc<dyn Observer>>,
    pub(crate) next_serial: AtomicU64,
    pub(crate) finalizers: Finalizers,
}

impl Shared {
    /// The admission state, also after a panic elsewhere.
    pub(crate) fn admission(&self) -> std::sync::MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The port pool, also after a panic elsewhere.
    pub(crate) fn ports(&self) -> std::sync::MutexGuard<'_, PortPool> {
        self.ports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound recording server.
///
/// ```no_run
/// # async fn f() -> Result<(), callrec_server::Error> {
/// let config = callrec_server::Config::from_toml("listen = \"127.0.0.1:7700\"")?;
/// let server = callrec_server::Server::bind(config).await?;
/// let summary = server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
/// println!("{} recordings", summary.recordings_finished);
/// # Ok(()) }
/// # drop(f());
/// ```
pub struct Server {
    listener: TcpListener,
    sip: Option<SipSockets>,
    shared: Shared,
}

impl Server {
    /// Resolves the addresses, checks the recordings directory is writable,
    /// raises the file-descriptor limit and binds the control port.
    ///
    /// # Errors
    /// [`Error`] naming the address, host or path that failed.
    pub async fn bind(mut config: Config) -> Result<Self, Error> {
        check_writable(&config.dir)?;
        fit_to_descriptor_limit(&mut config);
        let listen = resolve(&config.listen).await?;
        let listener = bind_control(listen).map_err(|source| Error::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let advertise = match &config.advertise {
            None => None,
            Some(text) => Some(text.parse::<Host>().map_err(|e| Error::Config {
                path: None,
                message: format!("advertise {text:?}: {e}"),
            })?),
        };
        let sip = match &config.sip {
            Some(text) => Some(SipSockets::bind(text).await?),
            None => None,
        };
        Ok(Self {
            listener,
            sip,
            shared: Shared {
                bind_ip: listen.ip(),
                advertise,
                ports: Mutex::new(PortPool::new(config.rtp_ports.ports())),
                admission: Mutex::new(Admission::new(&config)),
                counters: Arc::new(Counters::default()),
                live: crate::Live::default(),
                observers: Vec::new(),
                next_serial: AtomicU64::new(0),
                finalizers: Finalizers::start(),
                config,
            },
        })
    }

    /// Adds an observer of recordings.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.shared.observers.push(observer);
        self
    }

    /// The control address actually bound (port 0 becomes a real port).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The SIP address bound for SIPREC (UDP and TCP), when
    /// [`Config::sip`] is set.
    ///
    /// # Errors
    /// The socket's error.
    pub fn sip_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.sip.as_ref().map(SipSockets::local_addr)
    }

    /// The configuration in force (limits may have been lowered to fit the
    /// file-descriptor limit).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The server-wide counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// The running recordings' live feeds, for listeners.
    pub fn live(&self) -> crate::Live {
        self.shared.live.clone()
    }

    /// Serves until `shutdown` resolves, then finalizes every open recording
    /// (each phone told `failed: server shutting down`) and returns the
    /// counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> crate::Summary {
        let shared = Arc::new(self.shared);
        let listener = self.listener;
        let (stop_all, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let sip = self
            .sip
            .map(|sockets| tokio::spawn(serve_sip(shared.clone(), sockets, stop_rx.clone())));
        let mut backoff = Duration::from_millis(10);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => {
                            backoff = Duration::from_millis(10);
                            accepted
                        }
                        Err(e) => {
                            // Out of descriptors (or memory): back off instead
                            // of spinning; connections in flight wait in the
                            // kernel's backlog.
                            tracing::error!(
                                "accept on {} failed: {e}; retrying in {} ms",
                                shared.config.listen,
                                backoff.as_millis()
                            );
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                            continue;
                        }
                    };
                    while connections.try_join_next().is_some() {}
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    let Some(guard) = admit_connection(&shared, connections.len(), peer) else {
                        continue;
                    };
                    Counters::add(&shared.counters.connections, 1);
                    let shared = shared.clone();
                    let stop_rx = stop_rx.clone();
                    connections.spawn(async move {
                        let _guard = guard;
                        if let Err(e) = serve_connection(&shared, stream, peer, stop_rx).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        let _ = stop_all.send(true);
        while connections.join_next().await.is_some() {}
        if let Some(sip) = sip {
            let _ = sip.await;
        }
        shared.counters.snapshot()
    }
}

/// `HOST:PORT` to a socket address (the first the resolver gives).
pub(crate) async fn resolve(text: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut addrs = tokio::net::lookup_host(text)
        .await
        .map_err(|source| Error::Resolve {
            host: text.to_owned(),
            source,
        })?;
    addrs.next().ok_or_else(|| Error::Resolve {
        host: text.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no address"),
    })
}

/// Connections a phone may have waiting to be accepted on the control
/// port (the kernel caps it at `net.core.somaxconn`, 4096 by default).
/// Phones connect in bursts: after a PBX restart or a network outage,
/// every phone starts its recording again at once, and tokio's default
/// of 1024 overflowed with 1,000 phones, leaving some waiting seconds for
/// their SYN's retransmission, past their start request's timeout.
const CONTROL_BACKLOG: u32 = 4096;

/// The control port's listener, with [`CONTROL_BACKLOG`].
fn bind_control(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does: a restarted server gets its port back although
    // the last run's connections are in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(CONTROL_BACKLOG)
}

/// Creates the directory and writes and removes a probe file in it.
fn check_writable(dir: &Path) -> Result<(), Error> {
    let fail = |source| Error::Dir {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".callrec-write-probe");
    File::create(&probe).map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

/// Raises the soft descriptor limit to the hard one and lowers the
/// connection and session limits to what fits in it.
fn fit_to_descriptor_limit(config: &mut Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot read the file-descriptor limit: {e}");
            return;
        }
    };
    if fit_to(config, limit) {
        tracing::warn!(
            limit,
            max_recordings = config.max_recordings,
            max_connections = config.max_connections,
            "file-descriptor limit too low for the configured limits; lowered"
        );
    }
}

/// Lowers `config`'s limits to fit `limit` descriptors; whether it did.
fn fit_to(config: &mut Config, limit: u64) -> bool {
    // Per recording: a UDP socket, two files and a sidecar rewrite; per
    // connection: its socket; plus a margin for the process itself (a
    // quarter of a small limit) and what the rest of it may hold, at most
    // a quarter of what is left (recordings come first; the node lowers
    // its API's limit to what it got).
    let margin = (limit / 4).min(64);
    let other = (config.other_descriptors as u64).min(limit.saturating_sub(margin) / 4);
    config.other_descriptors = other as usize;
    let reserve = margin + other;
    let needed = |c: &Config| (c.max_connections + 4 * c.max_recordings) as u64 + reserve;
    if needed(config) <= limit {
        return false;
    }
    let room = limit.saturating_sub(reserve) as usize;
    config.max_recordings = config.max_recordings.min(room / 8).max(1);
    config.max_connections = config
        .max_connections
        .min(room.saturating_sub(4 * config.max_recordings))
        .max(1);
    true
}

/// Counts a connection against the limits; `None`: refused.
fn admit_connection(shared: &Arc<Shared>, open: usize, peer: SocketAddr) -> Option<IpGuard> {
    if let Err(refusal) = shared.admission().admit_connection(peer.ip(), open) {
        Counters::add(&shared.counters.connections_refused, 1);
        tracing::warn!(%peer, "connection refused: {}", refusal.rejection());
        return None;
    }
    Some(IpGuard {
        shared: shared.clone(),
        ip: peer.ip(),
    })
}

/// One connection's place in the per-address count.
struct IpGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        self.shared.admission().connection_closed(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_of_the_process_is_set_aside_before_the_recordings_share() {
        let mut config = Config {
            max_recordings: 1000,
            max_connections: 1000,
            ..Config::default()
        };
        // Enough for everything: nothing lowered.
        assert!(!fit_to(&mut config, 65_536));
        assert_eq!(
            (config.max_recordings, config.max_connections),
            (1000, 1000)
        );
        // 4,096 descriptors alone: 64 for the process, 4,032 shared.
        let mut alone = config.clone();
        assert!(fit_to(&mut alone, 4096));
        assert_eq!((alone.max_recordings, alone.max_connections), (504, 1000));
        // With an API of 1,024 connections beside it, its share is less.
        let mut beside = config.clone();
        beside.other_descriptors = 1024;
        assert!(fit_to(&mut beside, 4096));
        assert_eq!(beside.other_descriptors, 1008, "a quarter of what is left");
        assert_eq!((beside.max_recordings, beside.max_connections), (378, 1000));
        assert!(
            4 * beside.max_recordings + beside.max_connections + 1008 + 64 <= 4096,
            "the budget holds"
        );
        // A small limit: the API gets a quarter of it, never all.
        let mut small = config.clone();
        small.other_descriptors = 1024;
        assert!(fit_to(&mut small, 1024));
        assert_eq!(small.other_descriptors, 240);
        assert_eq!(small.max_recordings, 90);
        assert!(4 * small.max_recordings + small.max_connections + 240 + 64 <= 1024);
        // An absurd API limit neither overflows nor starves the recordings.
        let mut huge = config;
        huge.other_descriptors = usize::MAX;
        assert!(fit_to(&mut huge, 4096));
        assert_eq!(huge.max_recordings, 378);
    }
}
