//! Signed manifests: each final recording gets `NAME.manifest.json`, which
//! lists its files (the audio, the phone's container, the sidecar) with
//! their sizes and SHA-256 and the recording's metadata and times, and
//! `NAME.manifest.sig`, the Ed25519 signature (RFC 8032, 64 raw bytes) of
//! the manifest's exact bytes. The public key is all a verifier needs:
//! [`verify_signatures`] (`record_server verify`), or OpenSSL
//! (`openssl pkeyutl -verify -pubin -inkey key.pub -rawin -in
//! NAME.manifest.json -sigfile NAME.manifest.sig`) and `sha256sum`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use callrec_server::sha256_of;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::index::RecordingSummary;

/// The manifest's file name ending: `NAME.manifest.json`.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The signature's file name ending: `NAME.manifest.sig`.
pub const SIGNATURE_SUFFIX: &str = ".manifest.sig";

/// The manifest's layout version.
pub const MANIFEST_VERSION: u32 = 1;

/// Longest manifest read.
const MAX_MANIFEST_LEN: u64 = 1 << 20;

/// One file of a signed recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestFile {
    /// Its name, in the manifest's directory.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// What a recording's signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The recording's id.
    pub recording_id: String,
    /// The node that signed it.
    pub node: String,
    /// `phone`, `siprec` or `import`.
    pub source: String,
    /// The phone's MAC address (empty for SIPREC).
    pub device: String,
    /// The phone's own number (SIPREC: the first participant's).
    pub local_number: String,
    /// The other party's number.
    pub remote_number: String,
    /// `PCMA`, `PCMU` or `G722`.
    pub codec: String,
    /// When the recording started, RFC 3339 UTC.
    pub started_at: String,
    /// When it stopped.
    pub stopped_at: Option<String>,
    /// Its length.
    pub duration_ms: u64,
    /// Its files, the sidecar last.
    pub files: Vec<ManifestFile>,
    /// When the manifest was signed, RFC 3339 UTC.
    pub signed_at: String,
    /// The Ed25519 public key that signs it, lowercase hex (which key to
    /// check with; the check itself needs the verifier's own copy).
    pub public_key: String,
}

/// Reads an Ed25519 private key: PKCS#8 PEM, as `openssl genpkey
/// -algorithm ed25519` writes it.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read or holds no such
/// key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("read the signing key", path, e))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        Error::io(
            "read the signing key",
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an Ed25519 private key in PKCS#8 PEM ({e}); make one with `openssl genpkey -algorithm ed25519`"),
            ),
        )
    })
}

/// Reads an Ed25519 public key: SPKI PEM, as `openssl pkey -pubout`
/// writes it.
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read or holds no such
/// key.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("read the public key", path, e))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        Error::io(
            "read the public key",
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an Ed25519 public key in SPKI PEM ({e}); make one with `openssl pkey -in KEY -pubout`"),
            ),
        )
    })
}

/// Size and SHA-256 of the file at `path`.
fn hash_file(path: &Path) -> Result<(u64, String), String> {
    File::open(path)
        .and_then(sha256_of)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes `bytes` to `path` as the sidecar is written: a temporary file
/// flushed to disk, renamed over it.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    });
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Signs `recording` (as the index knows it, its files relative to
/// `dir`): writes its manifest and signature beside its sidecar, and
/// returns the manifest's path relative to `dir`. A sealed recording's
/// manifest lists its sealed files and leaves the numbers and the device
/// out (they are personal data; the sealed sidecar holds them, and its
/// hash is signed).
pub(crate) fn sign_recording(
    dir: &Path,
    recording: &RecordingSummary,
    key: &SigningKey,
    node: &str,
) -> Result<String, String> {
    let sidecar_rel = recording
        .sidecar_path
        .as_deref()
        .ok_or_else(|| format!("recording {} has no sidecar", recording.recording_id))?;
    let mut files = Vec::new();
    for rel in [
        &recording.archive_path,
        &recording.wav_path,
        &recording.rec_path,
    ]
    .into_iter()
    .flatten()
    .chain(core::iter::once(&sidecar_rel.to_owned()))
    {
        let path = crate::locate::inside(dir, Path::new(rel))?;
        let (bytes, sha256) = hash_file(&path)?;
        files.push(ManifestFile {
            name: file_name(&path),
            bytes,
            sha256,
        });
    }
    let sealed = sidecar_rel.ends_with(crate::seal::SEALED_SUFFIX);
    let private = |text: &str| {
        if sealed {
            String::new()
        } else {
            text.to_owned()
        }
    };
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        recording_id: recording.recording_id.clone(),
        node: node.to_owned(),
        source: recording.source.clone(),
        device: private(&recording.device),
        local_number: private(&recording.local_number),
        remote_number: private(&recording.remote_number),
        codec: recording.codec.clone(),
        started_at: recording.started_at.clone(),
        stopped_at: recording.stopped_at.clone(),
        duration_ms: recording.duration_ms,
        files,
        signed_at: crate::time::format_time_ms(crate::service::unix_ms()),
        public_key: crate::store::hex(key.verifying_key().as_bytes()),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let stem = sidecar_stem(sidecar_rel);
    let manifest_rel = format!("{stem}{MANIFEST_SUFFIX}");
    let manifest_path = dir.join(&manifest_rel);
    write_durably(&manifest_path, &json)?;
    let signature = key.sign(&json);
    write_durably(
        &dir.join(format!("{stem}{SIGNATURE_SUFFIX}")),
        &signature.to_bytes(),
    )?;
    Ok(manifest_rel)
}

/// A sidecar's path without `.json` (or `.json.age`).
pub(crate) fn sidecar_stem(sidecar: &str) -> &str {
    let plain = sidecar
        .strip_suffix(crate::seal::SEALED_SUFFIX)
        .unwrap_or(sidecar);
    plain.strip_suffix(".json").unwrap_or(plain)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The signature file beside a manifest.
pub(crate) fn signature_of(manifest: &str) -> String {
    let stem = manifest.strip_suffix(MANIFEST_SUFFIX).unwrap_or(manifest);
    format!("{stem}{SIGNATURE_SUFFIX}")
}

/// What [`verify_signatures`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureReport {
    /// Recordings whose manifest, signature and files all check.
    pub verified: u64,
    /// Everything that failed, each naming the file and why.
    pub failures: Vec<String>,
}

/// Checks signed recordings offline with `key`: each target is a
/// recordings directory (every manifest under it is checked, and every
/// sidecar without one is named) or a manifest file. A manifest's
/// signature must be `key`'s over its exact bytes, and each file it lists
/// must be beside it with the listed size and SHA-256.
///
/// # Errors
/// [`Error::Io`] when a target cannot be read at all.
pub fn verify_signatures(
    targets: &[PathBuf],
    key: &VerifyingKey,
) -> Result<SignatureReport, Error> {
    let mut report = SignatureReport::default();
    for target in targets {
        let meta = fs::metadata(target).map_err(|e| Error::io("read", target, e))?;
        if meta.is_dir() {
            for path in walk(target)? {
                let name = path.to_string_lossy();
                if name.ends_with(MANIFEST_SUFFIX) {
                    verify_one(&path, key, &mut report);
                } else if name.ends_with(".json") || name.ends_with(".json.age") {
                    let stem = sidecar_stem(&name);
                    if !Path::new(&format!("{stem}{MANIFEST_SUFFIX}")).exists() {
                        report
                            .failures
                            .push(format!("{}: no signed manifest beside it", path.display()));
                    }
                }
            }
        } else {
            verify_one(target, key, &mut report);
        }
    }
    Ok(report)
}

/// Every file under `dir`, the service's own directory left out.
pub(crate) fn walk(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| Error::io("list", &d, e))? {
            let entry = entry.map_err(|e| Error::io("list", &d, e))?;
            let path = entry.path();
            if entry.file_name() == crate::settings::STATE_DIR {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn verify_one(manifest_path: &Path, key: &VerifyingKey, report: &mut SignatureReport) {
    let failures = report.failures.len();
    let fail = |report: &mut SignatureReport, message: String| report.failures.push(message);
    let mut bytes = Vec::new();
    let read = File::open(manifest_path)
        .and_then(|f| f.take(MAX_MANIFEST_LEN + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return fail(
            report,
            format!("{}: cannot read it: {e}", manifest_path.display()),
        );
    }
    let name = manifest_path.to_string_lossy();
    let sig_path = PathBuf::from(signature_of(&name));
    let signature = match fs::read(&sig_path) {
        Ok(sig) => match <[u8; 64]>::try_from(sig.as_slice()) {
            Ok(sig) => Signature::from_bytes(&sig),
            Err(_) => {
                return fail(
                    report,
                    format!(
                        "{}: {} bytes, not a 64-byte Ed25519 signature",
                        sig_path.display(),
                        sig.len()
                    ),
                );
            }
        },
        Err(e) => {
            return fail(
                report,
                format!("{}: cannot read it: {e}", sig_path.display()),
            );
        }
    };
    if key.verify_strict(&bytes, &signature).is_err() {
        return fail(
            report,
            format!(
                "{}: the signature in {} does not match (one of them was changed, or another key signed it)",
                manifest_path.display(),
                sig_path.display()
            ),
        );
    }
    let manifest: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return fail(
                report,
                format!("{}: not a manifest: {e}", manifest_path.display()),
            );
        }
    };
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    for file in &manifest.files {
        let plain = Path::new(&file.name)
            .file_name()
            .is_some_and(|n| n == file.name.as_str());
        let path = dir.join(&file.name);
        if !plain {
            fail(
                report,
                format!(
                    "{}: names {:?}, not a file beside it",
                    manifest_path.display(),
                    file.name
                ),
            );
            continue;
        }
        match hash_file(&path) {
            Err(e) => fail(report, e),
            Ok((bytes, _)) if bytes != file.bytes => fail(
                report,
                format!(
                    "{}: {bytes} bytes, the signed manifest says {}",
                    path.display(),
                    file.bytes
                ),
            ),
            Ok((_, sha256)) if sha256 != file.sha256 => fail(
                report,
                format!(
                    "{}: its SHA-256 is not the signed manifest's",
                    path.display()
                ),
            ),
            Ok(_) => {}
        }
    }
    if report.failures.len() == failures {
        report.verified += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_recording_verifies_and_any_flipped_byte_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut sidecar = callrec_server::Sidecar::default();
        sidecar.recording_id = "r1".into();
        sidecar.started_at = "2026-12-03T10:00:00Z".into();
        let mut wav = callrec_server::RecordingFile::default();
        wav.path = "a/b.wav".into();
        wav.kind = "wav".into();
        sidecar.files = vec![wav];
        fs::create_dir_all(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/b.wav"), b"RIFF and some audio").unwrap();
        fs::write(
            dir.path().join("a/b.json"),
            serde_json::to_vec(&sidecar).unwrap(),
        )
        .unwrap();
        let entry =
            crate::index::Entry::from_sidecar(&sidecar, Some("a/b.json".into()), false).unwrap();
        let rel = sign_recording(dir.path(), &entry.summary, &key, "n1").unwrap();
        assert_eq!(rel, "a/b.manifest.json");
        let public = key.verifying_key();
        let check = || verify_signatures(&[dir.path().to_owned()], &public).unwrap();
        assert_eq!(check().verified, 1, "{:?}", check().failures);
        assert!(check().failures.is_empty());
        for file in [
            "a/b.wav",
            "a/b.json",
            "a/b.manifest.json",
            "a/b.manifest.sig",
        ] {
            let path = dir.path().join(file);
            let good = fs::read(&path).unwrap();
            let mut bad = good.clone();
            bad[5] ^= 1;
            fs::write(&path, &bad).unwrap();
            let report = check();
            assert_eq!(report.verified, 0, "{file}");
            let named = report
                .failures
                .iter()
                .any(|f| f.contains(file.rsplit('/').next().unwrap()));
            assert!(named, "{file}: {:?}", report.failures);
            fs::write(&path, &good).unwrap();
        }
        // Another key's signature does not verify.
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        let report = verify_signatures(&[dir.path().to_owned()], &other).unwrap();
        assert!(report.failures[0].contains("does not match"), "{report:?}");
        // A sidecar without a manifest is named.
        fs::write(dir.path().join("a/c.json"), b"{}").unwrap();
        assert!(
            check().failures[0].contains("c.json: no signed manifest"),
            "{:?}",
            check()
        );
    }
}
