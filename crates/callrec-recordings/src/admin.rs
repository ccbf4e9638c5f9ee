//! What an administrator does to one recording: legal hold and deletion,
//! each logged.

use std::fs;
use std::path::Path;

use crate::Error;
use crate::audit::AuditLine;
use crate::index::RecordingSummary;
use crate::locate::Location;
use crate::service::{Recordings, unix_ms};
use crate::time::format_time_ms;

/// Who asks for an action, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Actor {
    /// The API token's name, `loopback` or `retention`.
    pub name: String,
    /// The client's address.
    pub address: Option<String>,
}

impl Actor {
    /// An actor named `name` at `address`.
    pub fn new(name: impl Into<String>, address: Option<String>) -> Self {
        Self {
            name: name.into(),
            address,
        }
    }
}

impl Recordings {
    /// Puts a recording under legal hold (`true`) or releases it, logged.
    ///
    /// # Errors
    /// [`Error::UnknownRecording`], [`Error::Audit`]/[`Error::Io`] when the
    /// audit log cannot be written (nothing changes then),
    /// [`Error::Index`].
    pub fn set_hold(&self, recording_id: &str, hold: bool, actor: &Actor) -> Result<(), Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        let recording = self
            .get(recording_id)?
            .ok_or_else(|| Error::UnknownRecording(recording_id.to_owned()))?;
        self.shared.audit.append(
            &self.shared.audit_anchor(),
            AuditLine {
                action: if hold { "hold" } else { "release" },
                recording_id: &recording.recording_id,
                actor: &actor.name,
                address: actor.address.clone(),
                detail: None,
                time: format_time_ms(unix_ms()),
            },
        )?;
        self.shared.index.set_hold(recording_id, hold)?;
        Ok(())
    }

    /// Deletes a recording's files and its entry, logged.
    ///
    /// # Errors
    /// [`Error::UnknownRecording`]; [`Error::Busy`] when it is running or
    /// on hold; [`Error::Audit`]/[`Error::Io`] when the audit log cannot
    /// be written (nothing is deleted then) or a file cannot be removed
    /// (the entry stays, so that it can be tried again); [`Error::Index`].
    pub fn delete(&self, recording_id: &str, actor: &Actor) -> Result<u64, Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.delete_locked(recording_id, "delete", actor, None)?
            .ok_or_else(|| Error::UnknownRecording(recording_id.to_owned()))
    }

    /// Deletes a recording, logged before anything is removed: while it
    /// holds the recording's lock (on a pool, no other node deletes it
    /// meanwhile, so a recording two nodes delete at once is deleted and
    /// logged once), the row is read and checked, the line written (the
    /// index's anchor with it, so not inside the deleting transaction,
    /// which holds the writer connection), then the row is locked, checked
    /// again and deleted with its files. `None` when it is gone (another
    /// node deleted it first); a line whose deletion then fails records
    /// the attempt.
    pub(crate) fn delete_locked(
        &self,
        recording_id: &str,
        action: &str,
        actor: &Actor,
        detail: Option<String>,
    ) -> Result<Option<u64>, Error> {
        self.shared.index.for_recording(recording_id, || {
            self.delete_logged(recording_id, action, actor, detail)
        })
    }

    fn delete_logged(
        &self,
        recording_id: &str,
        action: &str,
        actor: &Actor,
        detail: Option<String>,
    ) -> Result<Option<u64>, Error> {
        let Some(recording) = self.get(recording_id)? else {
            return Ok(None);
        };
        self.deletable_files(&recording)?;
        self.shared.audit.append(
            &self.shared.audit_anchor(),
            AuditLine {
                action,
                recording_id: &recording.recording_id,
                actor: &actor.name,
                address: actor.address.clone(),
                detail,
                time: format_time_ms(unix_ms()),
            },
        )?;
        let mut deleted = None;
        let bytes = self.shared.index.delete_with(recording_id, |recording| {
            let store = self.shared.store.as_ref();
            for file in self.deletable_files(recording)? {
                let busy = |reason| Error::Busy {
                    recording_id: recording.recording_id.clone(),
                    reason,
                };
                match file {
                    Location::Object {
                        store: object_store,
                        key,
                    } => {
                        let runtime = store.map(|(_, runtime)| runtime);
                        let runtime = runtime
                            .ok_or_else(|| busy("in an object store this node is not given"))?;
                        runtime.block_on(object_store.delete(&key))?;
                    }
                    Location::NoStore => {
                        return Err(busy("in an object store this node is not given"));
                    }
                    Location::OtherNode(_) => return Err(busy("on the disk of another node")),
                    Location::Disk(path) => match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("remove", &path, e)),
                    },
                }
            }
            if !recording.uploaded && self.is_local(recording) {
                for path in self.leftovers(recording) {
                    let _ = fs::remove_file(path);
                }
            }
            deleted = Some(recording.clone());
            Ok(recording.bytes)
        })?;
        if let Some(recording) = deleted {
            self.remove_empty_date_dir(&recording);
        }
        Ok(bytes)
    }

    /// Files of a recording on this disk that the index may not name yet:
    /// a crash between the workers' steps leaves a sealed copy, an archive
    /// or a manifest the index learns of only when the step is done again.
    /// A deletion removes them too, so nothing of the recording stays.
    fn leftovers(&self, recording: &RecordingSummary) -> Vec<std::path::PathBuf> {
        let mut names: Vec<String> = Vec::new();
        for path in recording.paths() {
            let plain = path
                .strip_suffix(crate::seal::SEALED_SUFFIX)
                .unwrap_or(path);
            names.extend([
                plain.to_owned(),
                format!("{plain}.part"),
                format!("{plain}.age"),
                format!("{plain}.age.part"),
            ]);
        }
        if let Some(sidecar) = &recording.sidecar_path {
            let stem = crate::sign::sidecar_stem(sidecar);
            for ext in ["opus", "flac"] {
                for end in ["", ".part", ".age", ".age.part"] {
                    names.push(format!("{stem}.{ext}{end}"));
                }
            }
            names.push(format!("{stem}{}", crate::sign::MANIFEST_SUFFIX));
            names.push(format!("{stem}{}", crate::sign::SIGNATURE_SUFFIX));
        }
        names.iter().filter_map(|n| self.file(n).ok()).collect()
    }

    /// Where `recording`'s files are, when it may be deleted: every file
    /// located before anything is logged or removed.
    fn deletable_files(&self, recording: &RecordingSummary) -> Result<Vec<Location>, Error> {
        let busy = |reason| Error::Busy {
            recording_id: recording.recording_id.clone(),
            reason,
        };
        if recording.running {
            return Err(busy("still running"));
        }
        if recording.hold {
            return Err(busy("on legal hold"));
        }
        let store = self.shared.store.as_ref();
        if store.is_some() && !recording.uploaded {
            return Err(busy("not in the object store yet (its upload is queued)"));
        }
        if store.is_none() && !recording.uploaded && !self.is_local(recording) {
            return Err(busy("on the disk of another node"));
        }
        recording
            .paths()
            .map(|relative| self.locate(recording, relative))
            .collect()
    }

    /// Removes the recording's date directory once it is empty, unless it
    /// is today's (the server may be about to create a file in it).
    pub(crate) fn remove_empty_date_dir(&self, recording: &RecordingSummary) {
        let today = &format_time_ms(unix_ms())[..10];
        if let Some(parent) = recording.paths().next().and_then(|p| Path::new(p).parent()) {
            let is_old_date = parent
                .file_name()
                .and_then(|d| d.to_str())
                .is_some_and(|d| d < today);
            if is_old_date {
                if let Ok(dir) = self.file(&parent.to_string_lossy()) {
                    let _ = fs::remove_dir(dir);
                }
            }
        }
    }
}
