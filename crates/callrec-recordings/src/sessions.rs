//! The web page's sign-in sessions: a token is exchanged once for a random
//! session id that the server sets as an `HttpOnly` cookie, so no script
//! (on this page or on another port of the same host) ever holds the
//! token. Sans-IO: time is passed in, so expiry is tested on simulated
//! time.

use std::collections::HashMap;

use crate::tokens::Role;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "callrec_session";

/// How long a session lasts from its sign-in (a working day), in
/// milliseconds.
pub const SESSION_LIFETIME_MS: i64 = 8 * 3_600_000;

/// Sessions kept at most; signing in beyond that ends the oldest.
pub const MAX_SESSIONS: usize = 10_000;

/// One signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The token's role.
    pub(crate) role: Role,
    /// The token's name (the audit log's actor).
    pub(crate) name: String,
    /// When it ends, Unix milliseconds.
    pub(crate) expires_ms: i64,
}

/// The signed-in sessions, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// A new session for a token's `role` and `name` at `now_ms`, under
    /// `id` (32 random bytes as hex, from the caller); ends expired
    /// sessions, and the oldest when [`MAX_SESSIONS`] are open.
    pub(crate) fn open(&mut self, id: String, role: Role, name: &str, now_ms: i64) -> i64 {
        self.by_id.retain(|_, s| s.expires_ms > now_ms);
        if self.by_id.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.expires_ms)
                .map(|(id, _)| id.clone())
            {
                self.by_id.remove(&oldest);
            }
        }
        let expires_ms = now_ms.saturating_add(SESSION_LIFETIME_MS);
        self.by_id.insert(
            id,
            Session {
                role,
                name: name.to_owned(),
                expires_ms,
            },
        );
        expires_ms
    }

    /// The live session `id` at `now_ms` (an expired one is ended).
    pub(crate) fn get(&mut self, id: &str, now_ms: i64) -> Option<Session> {
        match self.by_id.get(id) {
            Some(s) if s.expires_ms > now_ms => Some(s.clone()),
            Some(_) => {
                self.by_id.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id` (sign-out); whether it was open.
    pub(crate) fn close(&mut self, id: &str) -> bool {
        self.by_id.remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_its_lifetime_and_no_longer() {
        let mut sessions = Sessions::default();
        let start = 1_764_000_000_000;
        let ends = sessions.open("a".into(), Role::Read, "supervisor", start);
        assert_eq!(ends, start + SESSION_LIFETIME_MS);
        let seen = sessions.get("a", ends - 1).unwrap();
        assert_eq!((seen.role, seen.name.as_str()), (Role::Read, "supervisor"));
        assert_eq!(sessions.get("a", ends), None);
        // Ended for good, not only hidden.
        assert_eq!(sessions.get("a", start), None);
        assert_eq!(sessions.get("nosuch", start), None);
    }

    #[test]
    fn sign_out_ends_it() {
        let mut sessions = Sessions::default();
        sessions.open("a".into(), Role::Admin, "alice", 0);
        assert!(sessions.close("a"));
        assert!(!sessions.close("a"));
        assert_eq!(sessions.get("a", 1), None);
    }

    #[test]
    fn at_most_max_sessions_the_oldest_ends_first() {
        let mut sessions = Sessions::default();
        for i in 0..MAX_SESSIONS as i64 {
            sessions.open(format!("s{i}"), Role::Read, "r", i);
        }
        sessions.open("new".into(), Role::Read, "r", MAX_SESSIONS as i64);
        assert_eq!(sessions.by_id.len(), MAX_SESSIONS);
        assert_eq!(sessions.get("s0", MAX_SESSIONS as i64), None);
        assert!(sessions.get("s1", MAX_SESSIONS as i64).is_some());
        assert!(sessions.get("new", MAX_SESSIONS as i64).is_some());
        // Expired ones go first, on the next sign-in.
        let late = MAX_SESSIONS as i64 + SESSION_LIFETIME_MS + 1;
        sessions.open("late".into(), Role::Read, "r", late);
        assert_eq!(sessions.by_id.len(), 1);
    }
}
