//! The server-wide counters, readable while it runs as a [`Summary`].

use core::sync::atomic::{AtomicU64, Ordering};

/// Server-wide counters, updated as it runs; read them with
/// [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct Counters {
    /// Control connections accepted.
    pub(crate) connections: AtomicU64,
    /// Connections refused (limits).
    pub(crate) connections_refused: AtomicU64,
    /// Recordings started.
    pub(crate) recordings_started: AtomicU64,
    /// Recordings finished (files final).
    pub(crate) recordings_finished: AtomicU64,
    /// Start requests refused, for any reason (the ones below, and
    /// requests that are not valid).
    pub(crate) refused: AtomicU64,
    /// Refused: the phone's address is not in `Config::allow`.
    pub(crate) refused_not_allowed: AtomicU64,
    /// Refused: `Config::max_recordings` recordings were running.
    pub(crate) refused_too_many_sessions: AtomicU64,
    /// Refused: no RTP port was free.
    pub(crate) refused_no_free_port: AtomicU64,
    /// Refused: less free space than `Config::min_free_space`.
    pub(crate) refused_storage_full: AtomicU64,
    /// Refused: the recording's files could not be created.
    pub(crate) refused_cannot_create: AtomicU64,
    /// Refused: an observer said no (an index that does not answer).
    pub(crate) refused_unavailable: AtomicU64,
    /// RTP datagrams read.
    pub(crate) packets: AtomicU64,
    /// Datagrams from other senders.
    pub(crate) packets_foreign: AtomicU64,
    /// SIP messages read (SIPREC).
    pub(crate) sip_messages: AtomicU64,
    /// SIP messages refused or dropped (SIPREC), for any reason.
    pub(crate) sip_refused: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter as it is now.
    pub fn snapshot(&self) -> Summary {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Summary {
            connections: get(&self.connections),
            connections_refused: get(&self.connections_refused),
            recordings_started: get(&self.recordings_started),
            recordings_finished: get(&self.recordings_finished),
            refused: get(&self.refused),
            refused_not_allowed: get(&self.refused_not_allowed),
            refused_too_many_sessions: get(&self.refused_too_many_sessions),
            refused_no_free_port: get(&self.refused_no_free_port),
            refused_storage_full: get(&self.refused_storage_full),
            refused_cannot_create: get(&self.refused_cannot_create),
            refused_unavailable: get(&self.refused_unavailable),
            packets: get(&self.packets),
            packets_foreign: get(&self.packets_foreign),
            sip_messages: get(&self.sip_messages),
            sip_refused: get(&self.sip_refused),
        }
    }
}

/// The server's counters at one moment: [`Counters::snapshot`] while it
/// runs, and what [`Server::run`](crate::Server::run) returns at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Control connections accepted.
    pub connections: u64,
    /// Connections refused (limits).
    pub connections_refused: u64,
    /// Recordings started.
    pub recordings_started: u64,
    /// Recordings finished (files final).
    pub recordings_finished: u64,
    /// Start requests refused, for any reason (the ones below, and
    /// requests that are not valid).
    pub refused: u64,
    /// Refused: the phone's address is not in [`Config::allow`](crate::Config::allow).
    pub refused_not_allowed: u64,
    /// Refused: [`Config::max_recordings`](crate::Config::max_recordings) recordings were running.
    pub refused_too_many_sessions: u64,
    /// Refused: no RTP port was free.
    pub refused_no_free_port: u64,
    /// Refused: less free space than [`Config::min_free_space`](crate::Config::min_free_space).
    pub refused_storage_full: u64,
    /// Refused: the recording's files could not be created.
    pub refused_cannot_create: u64,
    /// Refused: an [`Observer`](crate::Observer) said no (an index that does not answer).
    pub refused_unavailable: u64,
    /// RTP datagrams read.
    pub packets: u64,
    /// Datagrams from senders a call is not locked onto.
    pub packets_foreign: u64,
    /// SIP messages read (SIPREC).
    pub sip_messages: u64,
    /// SIP messages refused or dropped (SIPREC): not SIP, not allowed, not
    /// a recording session, over a limit.
    pub sip_refused: u64,
}

impl Summary {
    /// Refused start requests by reason, as `(reason, count)`; the reasons
    /// are `not_allowed`, `too_many_sessions`, `no_free_port`,
    /// `storage_full`, `cannot_create`, `unavailable` and
    /// `invalid_request` (the rest).
    pub fn refusals(&self) -> [(&'static str, u64); 7] {
        let known = [
            ("not_allowed", self.refused_not_allowed),
            ("too_many_sessions", self.refused_too_many_sessions),
            ("no_free_port", self.refused_no_free_port),
            ("storage_full", self.refused_storage_full),
            ("cannot_create", self.refused_cannot_create),
            ("unavailable", self.refused_unavailable),
        ];
        let rest = self.refused.saturating_sub(known.iter().map(|k| k.1).sum());
        [
            known[0],
            known[1],
            known[2],
            known[3],
            known[4],
            known[5],
            ("invalid_request", rest),
        ]
    }
}
