//! A whole node as one call: the recording server, the recordings service
//! around it (index, retention, uploads) and its HTTP API, started
//! together and stopped in order.

use core::net::SocketAddr;
use core::time::Duration;

use callrec_server::{Config, Server, Summary};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Error, Recordings, Settings};

/// A running node: the recording server, and unless it was started with
/// [`start_without_index`](Self::start_without_index), the recordings
/// service and its HTTP API.
///
/// Start it with [`Node::start`], read the addresses it bound (port 0 in
/// the configuration becomes a real port), and end it with
/// [`shutdown`](Self::shutdown): every open recording is finalized, the
/// index is brought up to date and the upload queue is given
/// [`Settings::upload_drain`] to empty. Dropping a node without shutting it
/// down asks its tasks to stop but waits for nothing.
///
/// ```
/// use callrec_recordings::{Node, Settings};
/// use callrec_server::Config;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let mut config = Config::default();
/// config.listen = "127.0.0.1:0".into();
/// config.dir = dir.path().to_owned();
/// config.min_free_space = 0;
/// let mut settings = Settings::new(dir.path());
/// settings.http = Some("127.0.0.1:0".parse()?);
/// let node = Node::start(config, settings).await?;
/// assert!(node.control_addr().ip().is_loopback());
/// assert!(node.http_addr().is_some());
/// let summary = node.shutdown().await?;
/// assert_eq!(summary.server.recordings_started, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Node {
    control: SocketAddr,
    sip: Option<SocketAddr>,
    http: Option<SocketAddr>,
    config: Config,
    recordings: Option<Recordings>,
    upload_drain: Duration,
    /// Ends the recording server.
    stop_server: watch::Sender<bool>,
    server: Option<JoinHandle<Summary>>,
    /// Ends the API, retention and uploads (after the server).
    stop_service: watch::Sender<bool>,
    service: Vec<JoinHandle<()>>,
}

/// What a node did, returned by [`Node::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSummary {
    /// The recording server's counters.
    pub server: Summary,
    /// Recordings still waiting for upload when the drain time was up
    /// (they stay on disk and are uploaded after the next start).
    pub uploads_left: u64,
}

/// A future that resolves once `stop` says so.
fn until(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stopped = stop.subscribe();
    async move {
        let _ = stopped.wait_for(|s| *s).await;
    }
}

impl Node {
    /// Opens the recordings service on `settings` (rebuilding the index
    /// first when [`Settings::reindex`] asks), binds the recording server
    /// of `config` with the service as its observer, binds the HTTP API
    /// when [`Settings::http`] is set, and starts them all, with retention
    /// and uploads, on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Settings`] when `settings.dir` is not `config.dir`;
    /// [`Error::Server`] when the server cannot start (the address, host or
    /// path named); [`Error::Bind`] for the API; whatever
    /// [`Recordings::open`] and [`Recordings::reindex`] return.
    pub async fn start(config: Config, settings: Settings) -> Result<Self, Error> {
        if settings.dir != config.dir {
            return Err(Error::Settings(format!(
                "the recordings service's directory {} is not the server's {}",
                settings.dir.display(),
                config.dir.display()
            )));
        }
        std::fs::create_dir_all(&config.dir).map_err(|e| Error::io("create", &config.dir, e))?;
        let http = settings.http;
        let tokens = settings.tokens.clone();
        let http_limits = settings.http_limits.clone();
        let reindex = settings.reindex;
        let upload_drain = settings.upload_drain;
        // Opening reads the disk (and may fill a new index from it).
        let recordings = tokio::task::spawn_blocking(move || Recordings::open(settings))
            .await
            .map_err(|e| Error::Settings(format!("opening the recordings service: {e}")))??;
        if reindex {
            let again = recordings.clone();
            let summary = tokio::task::spawn_blocking(move || again.reindex())
                .await
                .map_err(|e| Error::Settings(format!("reindex: {e}")))??;
            tracing::info!(
                recordings = summary.recordings,
                incomplete = summary.incomplete,
                held = summary.held,
                unreadable = summary.problems.len(),
                "index rebuilt from {}",
                config.dir.display()
            );
        }
        let mut config = config;
        if http.is_some() {
            // The API's connections (each live listener holds one) come
            // out of the descriptor budget before the recordings' share.
            config.other_descriptors = http_limits.max_connections;
        }
        let server = Server::bind(config)
            .await?
            .with_observer(recordings.observer());
        // What the budget could give the API, when it was less.
        let mut http_limits = http_limits;
        if http.is_some() {
            http_limits.max_connections = http_limits
                .max_connections
                .min(server.config().other_descriptors.max(1));
        }
        recordings.set_server_counters(server.counters());
        recordings.set_live(server.live());
        let api = match http {
            Some(addr) => Some(
                crate::HttpApi::bind(addr, tokens, recordings.clone())
                    .await?
                    .with_limits(http_limits),
            ),
            None => None,
        };
        let http = api.as_ref().map(crate::HttpApi::local_addr).transpose();
        let http = http.map_err(|e| Error::Settings(format!("the API's address: {e}")))?;
        let mut node = Self::spawn(server, Some(recordings.clone()), upload_drain)?;
        node.http = http;
        let stop = &node.stop_service;
        if let Some(api) = api {
            let shutdown = until(stop);
            node.service.push(tokio::spawn(async move {
                if let Err(e) = api.run(shutdown).await {
                    tracing::error!("the HTTP API stopped: {e}");
                }
            }));
        }
        node.service
            .push(tokio::spawn(recordings.clone().run_retention(until(stop))));
        node.service
            .push(tokio::spawn(recordings.run_uploads(until(stop))));
        Ok(node)
    }

    /// The recording server alone: no index, no API, no retention (a
    /// baseline for benchmarks).
    ///
    /// # Errors
    /// [`Error::Server`] when the server cannot start.
    pub async fn start_without_index(config: Config) -> Result<Self, Error> {
        let server = Server::bind(config).await?;
        Self::spawn(server, None, Duration::ZERO)
    }

    fn spawn(
        server: Server,
        recordings: Option<Recordings>,
        upload_drain: Duration,
    ) -> Result<Self, Error> {
        let control = server
            .local_addr()
            .map_err(|e| Error::Settings(format!("the control address: {e}")))?;
        let sip = server
            .sip_addr()
            .transpose()
            .map_err(|e| Error::Settings(format!("the SIP address: {e}")))?;
        let config = server.config().clone();
        let (stop_server, _) = watch::channel(false);
        let (stop_service, _) = watch::channel(false);
        let shutdown = until(&stop_server);
        let server = tokio::spawn(server.run(shutdown));
        Ok(Self {
            control,
            sip,
            http: None,
            config,
            recordings,
            upload_drain,
            stop_server,
            server: Some(server),
            stop_service,
            service: Vec::new(),
        })
    }

    /// The control address the server listens on.
    pub fn control_addr(&self) -> SocketAddr {
        self.control
    }

    /// The SIP address (UDP and TCP) taking SIPREC sessions, when
    /// [`Config::sip`](callrec_server::Config::sip) is set.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip
    }

    /// The HTTP API's address, when it serves one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The server's configuration in force (limits may have been lowered
    /// to fit the file-descriptor limit).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The recordings service, unless started without an index.
    pub fn recordings(&self) -> Option<&Recordings> {
        self.recordings.as_ref()
    }

    /// Stops the node in order: the server stops taking calls and
    /// finalizes every open recording (each phone is told), the index takes
    /// the last entries, the upload queue gets [`Settings::upload_drain`]
    /// to empty, then the API, retention and uploads end.
    ///
    /// # Errors
    /// [`Error::Settings`] when the server's task panicked (its recordings
    /// were finalized by their own tasks as far as they got).
    pub async fn shutdown(mut self) -> Result<NodeSummary, Error> {
        let _ = self.stop_server.send(true);
        let server = match self.server.take() {
            Some(task) => task
                .await
                .map_err(|e| Error::Settings(format!("the recording server failed: {e}")))?,
            None => Summary::default(),
        };
        let mut uploads_left = 0;
        if let Some(recordings) = &self.recordings {
            let again = recordings.clone();
            let _ = tokio::task::spawn_blocking(move || again.flush()).await;
            if !recordings.wait_uploaded(self.upload_drain).await {
                uploads_left = recordings.uploads_queued();
                tracing::warn!(
                    queued = uploads_left,
                    "recordings left on disk for upload after the next start"
                );
            }
        }
        let _ = self.stop_service.send(true);
        for task in self.service.drain(..) {
            let _ = task.await;
        }
        Ok(NodeSummary {
            server,
            uploads_left,
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop_server.send(true);
        let _ = self.stop_service.send(true);
    }
}
