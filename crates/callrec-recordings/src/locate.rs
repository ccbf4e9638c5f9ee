//! Where a recording's bytes are: this node's disk, the object store, or
//! another node's disk. Decided here once; playback, metadata, deletion and
//! upload all ask [`Recordings::locate`].

use std::path::{Path, PathBuf};

use callrec_server::Sidecar;

use crate::index::RecordingSummary;
use crate::store::{Key, ObjectStore};
use crate::{Error, Recordings};

/// `relative` inside `dir`, or why not: only a plain relative path (no
/// root, no `..`) is one. Paths read back from sidecars and the index go
/// through it, so a tampered one never reaches a file elsewhere.
pub(crate) fn inside(dir: &Path, relative: &Path) -> Result<PathBuf, String> {
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain && !relative.as_os_str().is_empty() {
        Ok(dir.join(relative))
    } else {
        Err(format!(
            "{} is not a path inside the recordings directory",
            relative.display()
        ))
    }
}

/// Longest sidecar read back.
const MAX_SIDECAR_LEN: u64 = 16 << 20;

/// Where one file of a recording is.
#[derive(Debug)]
pub(crate) enum Location {
    /// On this node's disk.
    Disk(PathBuf),
    /// In the object store (uploaded).
    Object {
        /// The store.
        store: ObjectStore,
        /// The object.
        key: Key,
    },
    /// On the disk of another node of the pool, until it is uploaded.
    OtherNode(String),
    /// Uploaded to an object store, but this node is given none.
    NoStore,
}

impl Recordings {
    /// Where the file `relative` (one of the recording's paths) is now.
    ///
    /// # Errors
    /// As [`file`](Self::file): the path is not a plain relative one.
    pub(crate) fn locate(
        &self,
        recording: &RecordingSummary,
        relative: &str,
    ) -> Result<Location, Error> {
        let path = self.file(relative)?;
        if recording.uploaded {
            return Ok(match &self.shared.store {
                Some((store, _)) => Location::Object {
                    store: store.clone(),
                    key: store.key(relative),
                },
                None => Location::NoStore,
            });
        }
        if self.is_local(recording) {
            Ok(Location::Disk(path))
        } else {
            Ok(Location::OtherNode(recording.node.clone()))
        }
    }

    /// Whether the recording's files are on this node's disk (recorded
    /// here, or by a single server before pools had nodes).
    pub(crate) fn is_local(&self, recording: &RecordingSummary) -> bool {
        recording.node.is_empty() || recording.node == self.shared.node
    }

    /// Where a file of the index lives on this node's disk.
    ///
    /// # Errors
    /// [`Error::Io`] (`InvalidData`) when `relative` is not a plain
    /// relative path (absolute, or with `..`): the index only holds paths
    /// the server wrote, so such an entry was tampered with, and the
    /// service never reads or deletes outside its directory.
    pub(crate) fn file(&self, relative: &str) -> Result<PathBuf, Error> {
        let path = Path::new(relative);
        let plain = path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || relative.is_empty() {
            return Err(Error::io(
                "use",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a path inside the recordings directory",
                ),
            ));
        }
        Ok(self.shared.settings.dir.join(path))
    }

    /// The sidecar of a recording, read from its file wherever it is;
    /// `None` when it has none (a crash before its first write), it is on
    /// another node's disk, or it cannot be read.
    pub async fn sidecar(&self, recording: &RecordingSummary) -> Option<Sidecar> {
        let relative = recording.sidecar_path.as_ref()?;
        let bytes = match self.locate(recording, relative).ok()? {
            Location::Disk(path) => {
                let len = tokio::fs::metadata(&path).await.ok()?.len();
                if len > MAX_SIDECAR_LEN {
                    return None;
                }
                tokio::fs::read(path).await.ok()?
            }
            Location::Object { store, key } => {
                let len = store.len(&key).await.ok()?;
                if len > MAX_SIDECAR_LEN {
                    return None;
                }
                store.read(&key, 0..len).await.ok()?.to_vec()
            }
            Location::OtherNode(_) | Location::NoStore => return None,
        };
        if relative.ends_with(crate::seal::SEALED_SUFFIX) {
            let identities = self.shared.identities.clone();
            if identities.is_empty() {
                return None;
            }
            let plain = tokio::task::spawn_blocking(move || {
                let mut reader =
                    crate::seal::open_sealed(std::io::Cursor::new(bytes), &identities).ok()?;
                crate::seal::read_sealed(&mut *reader, MAX_SIDECAR_LEN).ok()
            })
            .await
            .ok()??;
            return serde_json::from_slice(&plain).ok();
        }
        serde_json::from_slice(&bytes).ok()
    }
}
