//! How the service runs ([`Settings`]), where it keeps its own files, and
//! the node's name in a pool.

use core::time::Duration;
use std::fs;
use std::path::{Path, PathBuf};

use core::net::SocketAddr;

use crate::tokens::Tokens;

use crate::Error;
use crate::archive::ArchiveSettings;
use crate::store::StoreSettings;

/// Where the service keeps its own files, inside the recordings
/// directory (no device directory can be called this: the server turns a
/// leading `.` of a device name into `_`).
pub const STATE_DIR: &str = ".callrec";

/// How the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The recordings directory (the server's `dir`).
    pub dir: PathBuf,
    /// Delete recordings older than this many days.
    pub retain_days: Option<u32>,
    /// Delete the oldest recordings while all of them together take more
    /// bytes than this.
    pub max_disk_usage: Option<u64>,
    /// How often retention runs.
    pub sweep_interval: Duration,
    /// The index: `None` for SQLite in the recordings directory (one
    /// node), or a `postgres://user:password@host/database` URL shared by
    /// a pool of nodes.
    pub index: Option<String>,
    /// The object store recordings move to once final (`None`: they stay
    /// in the recordings directory).
    pub store: Option<StoreSettings>,
    /// This node's name in a pool (`None`: the one kept in
    /// `DIR/.callrec/node`, made up on the first start).
    pub node: Option<String>,
    /// Where other nodes of a pool send a listener of a call this node
    /// records (`--public-url`, `http(s)://HOST[:PORT]`): kept in the
    /// index, and the `Location` of their `307` for
    /// `GET /api/recordings/{id}/live`.
    pub public_url: Option<String>,
    /// Where a [`Node`](crate::Node) serves the web page and the HTTP API
    /// (`None`: it serves none).
    pub http: Option<SocketAddr>,
    /// The API's tokens (`None`: loopback only, see
    /// [`HttpApi::bind`](crate::HttpApi::bind)).
    pub tokens: Option<Tokens>,
    /// The API's bounds on connections and how long they may idle.
    pub http_limits: HttpLimits,
    /// How many may listen to running recordings
    /// (`GET /api/recordings/{id}/live`): per recording and in all.
    pub listen_limits: callrec_server::live::ListenLimits,
    /// Whether a [`Node`](crate::Node) rebuilds the index from the files
    /// before it serves ([`Recordings::reindex`](crate::Recordings::reindex)).
    pub reindex: bool,
    /// How long [`Node::shutdown`](crate::Node::shutdown) waits for the
    /// upload queue to empty (what is left is uploaded after the next
    /// start).
    pub upload_drain: Duration,
    /// Whether an audit log that does not match the anchor the index
    /// keeps (changed, cut or added to while the service was stopped) is
    /// taken as it is: a line saying so is appended and the service goes
    /// on from there. Without it, such a log takes no more lines and
    /// audited requests are refused. Set it once, after keeping a copy of
    /// the log as evidence.
    pub audit_accept: bool,
    /// How final recordings are kept: as WAV, or converted to Opus or
    /// FLAC.
    pub archive: ArchiveSettings,
    /// An Ed25519 private key (PKCS#8 PEM) that signs a manifest of each
    /// final recording (`NAME.manifest.json` and `.sig`).
    pub sign_key: Option<PathBuf>,
    /// An age recipients file (`age1…` a line): every stored file of a
    /// final recording is encrypted to them.
    pub seal_to: Option<PathBuf>,
    /// An age identity file (`AGE-SECRET-KEY-1…`): the API decrypts sealed
    /// recordings with it.
    pub identity: Option<PathBuf>,
}

impl Settings {
    /// Settings for recordings in `dir`: no retention limit, swept every
    /// minute once one is set.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retain_days: None,
            max_disk_usage: None,
            sweep_interval: Duration::from_secs(60),
            index: None,
            store: None,
            node: None,
            public_url: None,
            http: None,
            tokens: None,
            http_limits: HttpLimits::default(),
            listen_limits: callrec_server::live::ListenLimits::default(),
            reindex: false,
            upload_drain: Duration::from_secs(30),
            audit_accept: false,
            archive: ArchiveSettings::default(),
            sign_key: None,
            seal_to: None,
            identity: None,
        }
    }
}

/// The HTTP API's bounds: what a client that connects and sends slowly,
/// or nothing, can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// How long a connection may take to send a whole request head, from
    /// when it connects or its last answer ended: one deadline for a slow
    /// (trickled) request head and for an idle keep-alive connection, as
    /// the HTTP library times both from when it starts waiting for a head.
    pub request_head_timeout: Duration,
    /// Connections served at once; more are closed when accepted.
    pub max_connections: usize,
    /// Connections served at once from one IP address.
    pub max_connections_per_address: usize,
}

impl Default for HttpLimits {
    /// 10 s for a request head, 1024 connections, 64 from one address
    /// (a browser opens about six per server).
    fn default() -> Self {
        Self {
            request_head_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: 64,
        }
    }
}

/// Longest node name.
pub const MAX_NODE_LEN: usize = 64;

/// `node` when it is a valid node name.
pub(crate) fn check_node(node: &str) -> Result<String, Error> {
    let valid = !node.is_empty()
        && node.len() <= MAX_NODE_LEN
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(node.to_owned())
    } else {
        Err(Error::io(
            "use node name",
            Path::new(node),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a node name is 1 to {MAX_NODE_LEN} of A-Z, a-z, 0-9, '-', '_', '.'"),
            ),
        ))
    }
}

/// `url` when it is an `http(s)://HOST[:PORT]` URL with no path, query or
/// credentials, a host of letters, digits, `-` and `.` or an IP address
/// (IPv6 in brackets), and a port of 1–65535 (a trailing `/` is dropped).
pub(crate) fn check_public_url(url: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Settings(format!(
            "public URL {:?} is not http(s)://HOST[:PORT]: {why}",
            url.chars().take(80).collect::<String>()
        ))
    };
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    if trimmed.len() > 256 {
        return Err(bad("longer than 256 characters"));
    }
    let authority = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| bad("the scheme is neither http nor https"))?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address without its closing ]"))?;
        inside
            .parse::<core::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address in the brackets"))?;
        match after {
            "" => (inside, None),
            _ => (
                inside,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("something after the ] that is not a port"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')));
    if !host_ok {
        return Err(bad(
            "the host is not a name or an address (no path, user or query)",
        ));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(bad("the port is not 1 to 65535"));
        }
    }
    Ok(trimmed.to_owned())
}

/// The node name kept in `state/node`, made up (`node-` and 12 random hex
/// digits) on the first start.
pub(crate) fn node_of(state: &Path) -> Result<String, Error> {
    let path = state.join("node");
    match fs::read_to_string(&path) {
        Ok(text) => check_node(text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes).map_err(|e| {
                Error::io(
                    "make a name for",
                    &path,
                    std::io::Error::other(e.to_string()),
                )
            })?;
            let node = format!("node-{}", crate::store::hex(&bytes));
            fs::write(&path, format!("{node}\n")).map_err(|e| Error::io("write", &path, e))?;
            Ok(node)
        }
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

#[cfg(test)]
mod public_url_tests {
    use super::check_public_url;

    #[test]
    fn only_a_scheme_a_host_and_a_port() {
        for good in [
            "http://10.0.0.5:8080",
            "https://rec-a.example.com",
            "http://[::1]:8080/",
            "http://node_b".replace('_', "-").as_str(),
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        assert_eq!(
            check_public_url("http://a.example:80/").unwrap(),
            "http://a.example:80"
        );
        for bad in [
            "ftp://a",
            "http://",
            "http://:",
            "http://[",
            "http://a:b:c",
            "http://h:99999",
            "http://h:0",
            "http://user@h",
            "http://h/path",
            "http://h?x=1",
            "http://[::1]x",
            "http://h\r\nX: y",
        ] {
            let e = check_public_url(bad).unwrap_err().to_string();
            assert!(e.contains("public URL"), "{bad}: {e}");
        }
    }
}
