//! API tokens: who may read and who may also delete and hold.
//!
//! The file (`--api-tokens FILE`) has one token per line,
//! `ROLE NAME TOKEN`, where ROLE is `read`, `listen` (read, and listen to
//! running recordings) or `admin` (everything), NAME is what the
//! audit log records, and TOKEN is at least 16 characters of
//! `A-Z a-z 0-9 . _ ~ + / = -` (`openssl rand -hex 24` makes one). Blank lines and lines starting with
//! `#` are ignored.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::Error;

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, metadata, audio, metrics.
    Read,
    /// Also listen to running recordings as they are recorded.
    Listen,
    /// Also delete, hold, import, and verify the audit log.
    Admin,
}

impl Role {
    /// The role's name in the tokens file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Listen => "listen",
            Self::Admin => "admin",
        }
    }
}

/// The tokens the API accepts.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// SHA-256 of each token, its role and its name.
    entries: Vec<([u8; 32], Role, String)>,
}

impl core::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(_, role, name)| (name, role)))
            .finish()
    }
}

impl Tokens {
    /// Reads a tokens file.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read, [`Error::Tokens`] naming the
    /// line that is not `ROLE NAME TOKEN`, has a short token or repeats one.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let tokens = Self::parse(&text).map_err(|(line, message)| Error::Tokens {
            path: path.to_owned(),
            line,
            message,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o004 != 0 {
                    tracing::warn!(
                        "API tokens file {} is readable by every user (chmod o-r)",
                        path.display()
                    );
                }
            }
        }
        Ok(tokens)
    }

    /// Reads the tokens from the file's text.
    ///
    /// # Errors
    /// The line number (from 1; 0 for the file as a whole) and what is
    /// wrong with it.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries: Vec<([u8; 32], Role, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [role, name, token] = words[..] else {
                return Err((
                    n,
                    "expected `ROLE NAME TOKEN` (role read, listen or admin)".into(),
                ));
            };
            let role = match role {
                "read" => Role::Read,
                "listen" => Role::Listen,
                "admin" => Role::Admin,
                other => {
                    return Err((n, format!("role {other:?} is none of read, listen, admin")));
                }
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err((
                    n,
                    format!("the token of {name:?} is shorter than {MIN_TOKEN_LEN} characters"),
                ));
            }
            if !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~+/=-".contains(&b))
            {
                return Err((
                    n,
                    format!(
                        "the token of {name:?} has characters other than A-Z a-z 0-9 . _ ~ + / = -"
                    ),
                ));
            }
            let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if entries.iter().any(|(h, _, _)| *h == hash) {
                return Err((n, format!("the token of {name:?} is given twice")));
            }
            entries.push((hash, role, name.to_owned()));
        }
        if entries.is_empty() {
            return Err((0, "no tokens in it".into()));
        }
        Ok(Self { entries })
    }

    /// The role and name of `token`. Compared as SHA-256 digests, in time
    /// that does not depend on where they differ.
    pub fn check(&self, token: &str) -> Option<(Role, &str)> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (h, role, name) in &self.entries {
            let diff = h.iter().zip(&hash).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some((*role, name.as_str()));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let tokens = Tokens::parse(
            "# who\nread  supervisor  0123456789abcdef0123\n\nadmin alice fedcba9876543210fedc\n",
        )
        .unwrap();
        assert_eq!(
            tokens.check("0123456789abcdef0123"),
            Some((Role::Read, "supervisor"))
        );
        assert_eq!(
            tokens.check("fedcba9876543210fedc"),
            Some((Role::Admin, "alice"))
        );
        assert_eq!(tokens.check("0123456789abcdef012"), None);
        assert_eq!(tokens.check(""), None);
    }

    #[test]
    fn names_the_bad_line() {
        for (text, line, words) in [
            (
                "read a 0123456789abcdef\nwrite b 0123456789abcdef0\n",
                2,
                "role \"write\" is none of read, listen, admin",
            ),
            ("admin a short\n", 1, "shorter"),
            ("admin a 0123456789abcdef;x\n", 1, "characters other"),
            ("admin a\n", 1, "ROLE NAME TOKEN"),
            (
                "read a 0123456789abcdef\nadmin b 0123456789abcdef\n",
                2,
                "twice",
            ),
            ("# nothing\n", 0, "no tokens"),
        ] {
            let (n, message) = Tokens::parse(text).unwrap_err();
            assert_eq!(n, line, "{text}");
            assert!(message.contains(words), "{message}");
        }
    }
}
