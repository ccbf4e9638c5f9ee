//! Sealed recordings: every stored file of a final recording (the audio,
//! the phone's container, the sidecar) encrypted at rest in the age format
//! (<https://age-encryption.org/v1>, through the `age` crate) to X25519
//! recipients, so a recording node holds only public keys and the standard
//! `age` tool decrypts with an identity. A node given identities decrypts
//! on the fly; age encrypts in 64 KiB chunks, each authenticated, so a
//! range of a file on disk reads and decrypts only its chunks.

use core::str::FromStr;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek};
use std::path::{Path, PathBuf};

use age::x25519::{Identity, Recipient};

use crate::Error;

/// The ending of a sealed file's name: `NAME.opus.age`.
pub const SEALED_SUFFIX: &str = ".age";

/// Longest recipients or identities file read.
const MAX_KEY_FILE_LEN: u64 = 1 << 20;

fn key_lines(path: &Path, what: &'static str) -> Result<Vec<(usize, String)>, Error> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_LEN).read_to_string(&mut text))
        .map_err(|e| Error::io(what, path, e))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim().to_owned()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect())
}

fn bad_key(path: &Path, what: &'static str, message: String) -> Error {
    Error::io(
        what,
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

/// Reads an age recipients file: one X25519 recipient (`age1…`) a line;
/// blank lines and `#` comments are skipped, as `age -R` does.
///
/// # Errors
/// [`Error::Io`] naming the file, and the line that is not a recipient.
pub fn read_recipients(path: &Path) -> Result<Vec<Recipient>, Error> {
    const WHAT: &str = "read the recipients file";
    let mut recipients = Vec::new();
    for (n, line) in key_lines(path, WHAT)? {
        let recipient = Recipient::from_str(&line).map_err(|e| {
            // Never quoted: a secret key given here by mistake must not
            // reach a log.
            let why = if line.starts_with("AGE-SECRET-KEY-") {
                "is an identity (a secret key), not a recipient: give the node \
                 `age-keygen -y`'s output, and keep the identity off it"
                    .to_owned()
            } else {
                format!("is not an age X25519 recipient (age1…): {e}")
            };
            bad_key(path, WHAT, format!("line {n} {why}"))
        })?;
        recipients.push(recipient);
    }
    if recipients.is_empty() {
        return Err(bad_key(
            path,
            WHAT,
            "it names no recipient (age1…)".to_owned(),
        ));
    }
    Ok(recipients)
}

/// Reads an age identity file as `age-keygen` writes it: one X25519
/// identity (`AGE-SECRET-KEY-1…`) a line, `#` comments skipped.
///
/// # Errors
/// [`Error::Io`] naming the file and the line (never the key).
pub fn read_identities(path: &Path) -> Result<Vec<Identity>, Error> {
    const WHAT: &str = "read the identity file";
    let mut identities = Vec::new();
    for (n, line) in key_lines(path, WHAT)? {
        let identity = Identity::from_str(&line).map_err(|_| {
            bad_key(
                path,
                WHAT,
                format!("line {n} is not an age X25519 identity (AGE-SECRET-KEY-1…)"),
            )
        })?;
        identities.push(identity);
    }
    if identities.is_empty() {
        return Err(bad_key(
            path,
            WHAT,
            "it holds no identity (AGE-SECRET-KEY-1…)".to_owned(),
        ));
    }
    Ok(identities)
}

/// `path` with [`SEALED_SUFFIX`].
pub(crate) fn sealed_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SEALED_SUFFIX);
    PathBuf::from(name)
}

/// Encrypts the file at `path` to `recipients` as `path.age` (written to a
/// `.part` file, flushed, renamed), then removes `path`. A file already
/// sealed (only `path.age` there) is left as it is.
pub(crate) fn seal_file(path: &Path, recipients: &[Recipient]) -> Result<(), String> {
    let sealed = sealed_path(path);
    if !path.exists() && sealed.exists() {
        return Ok(());
    }
    let part = sealed.with_extension("age.part");
    let written = (|| -> Result<(), String> {
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| format!("age: {e}"))?;
        let out =
            File::create(&part).map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        let mut writer = encryptor
            .wrap_output(BufWriter::with_capacity(64 << 10, out))
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        let mut input =
            File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        std::io::copy(&mut input, &mut writer)
            .map_err(|e| format!("cannot seal {}: {e}", path.display()))?;
        let file = writer
            .finish()
            .and_then(|w| w.into_inner().map_err(std::io::IntoInnerError::into_error))
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        file.sync_all()
            .map_err(|e| format!("cannot flush {}: {e}", part.display()))?;
        fs::rename(&part, &sealed).map_err(|e| format!("cannot rename {}: {e}", part.display()))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    if let Some(parent) = sealed.parent() {
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
    fs::remove_file(path).map_err(|e| format!("sealed, but cannot remove {}: {e}", path.display()))
}

/// Something decrypted can be read from and sought in.
pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// The plaintext of the sealed file in `input`, seekable: a seek reads and
/// decrypts only the chunk it lands in.
pub(crate) fn open_sealed<R: Read + Seek + Send + 'static>(
    input: R,
    identities: &[Identity],
) -> Result<Box<dyn ReadSeek>, String> {
    let decryptor = age::Decryptor::new(input).map_err(|e| format!("not an age file: {e}"))?;
    let reader = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| format!("cannot decrypt it with this node's identity: {e}"))?;
    Ok(Box::new(reader))
}

/// The plaintext of the sealed file at `path`.
pub(crate) fn open_sealed_file(
    path: &Path,
    identities: &[Identity],
) -> Result<Box<dyn ReadSeek>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    open_sealed(BufReader::new(file), identities).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the whole plaintext of a sealed file, at most `limit` bytes.
pub(crate) fn read_sealed(reader: &mut dyn ReadSeek, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot decrypt it: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("more than {limit} bytes"));
    }
    Ok(bytes)
}

/// The first line of an age v1 file.
const AGE_V1: &[u8] = b"age-encryption.org/v1\n";

/// Longest header read (a few hundred bytes per recipient).
const MAX_HEADER_LEN: usize = 64 << 10;

/// An age v1 header: its stanzas, its MAC, and where it ends.
pub(crate) struct Header {
    stanzas: Vec<age_core::format::Stanza>,
    mac: Vec<u8>,
    /// Bytes up to and including `---` (what the MAC covers).
    pub(crate) mac_input_len: usize,
    /// Bytes up to and including the MAC line's newline.
    pub(crate) len: usize,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// Reads the header at the start of `bytes` (age-encryption.org/v1).
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    use base64::Engine;
    let bad = |why: &str| format!("not an age v1 header: {why}");
    if !bytes.starts_with(AGE_V1) {
        return Err(bad("no age-encryption.org/v1 line"));
    }
    let mut pos = AGE_V1.len();
    let line = |pos: &mut usize| -> Result<(usize, &[u8]), String> {
        let start = *pos;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|n| start + n)
            .ok_or_else(|| bad("a line without its end"))?;
        *pos = end + 1;
        Ok((start, &bytes[start..end]))
    };
    let mut stanzas = Vec::new();
    loop {
        let (start, text) = line(&mut pos)?;
        if let Some(mac) = text.strip_prefix(b"--- ") {
            let mac = b64()
                .decode(mac)
                .map_err(|_| bad("its MAC is not base64"))?;
            return Ok(Header {
                stanzas,
                mac,
                mac_input_len: start + 3,
                len: pos,
            });
        }
        let Some(rest) = text.strip_prefix(b"-> ") else {
            return Err(bad("a line that is neither a stanza nor the MAC"));
        };
        let rest = core::str::from_utf8(rest).map_err(|_| bad("a stanza that is not text"))?;
        let mut words = rest.split(' ').map(str::to_owned);
        let tag = words.next().unwrap_or_default();
        let args = words.collect();
        let mut body = String::new();
        loop {
            let (_, chunk) = line(&mut pos)?;
            body.push_str(
                core::str::from_utf8(chunk).map_err(|_| bad("a stanza body that is not text"))?,
            );
            if chunk.len() < 64 {
                break;
            }
        }
        let body = b64()
            .decode(body)
            .map_err(|_| bad("a stanza body that is not base64"))?;
        stanzas.push(age_core::format::Stanza { tag, args, body });
        if stanzas.len() > 1000 {
            return Err(bad("more than 1000 stanzas"));
        }
    }
}

/// The header's MAC key (age: HKDF-SHA256 of the file key, "header").
fn mac_of(file_key: &age_core::format::FileKey, header: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use age_core::secrecy::ExposeSecret;
    use hmac::Mac;
    let key = age_core::primitives::hkdf(&[], b"header", file_key.expose_secret());
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    mac.update(header);
    mac
}

/// An age v1 header wrapping `file_key` for `recipients`.
fn write_header(
    file_key: &age_core::format::FileKey,
    recipients: &[Recipient],
) -> Result<Vec<u8>, String> {
    use base64::Engine;
    use hmac::Mac;
    let mut out = AGE_V1.to_vec();
    for recipient in recipients {
        let (stanzas, _) =
            age::Recipient::wrap_file_key(recipient, file_key).map_err(|e| format!("age: {e}"))?;
        for stanza in stanzas {
            out.extend_from_slice(b"-> ");
            out.extend_from_slice(stanza.tag.as_bytes());
            for arg in &stanza.args {
                out.push(b' ');
                out.extend_from_slice(arg.as_bytes());
            }
            out.push(b'\n');
            let body = b64().encode(&stanza.body);
            for chunk in body.as_bytes().chunks(64) {
                out.extend_from_slice(chunk);
                out.push(b'\n');
            }
            if body.len() % 64 == 0 {
                out.push(b'\n');
            }
        }
    }
    out.extend_from_slice(b"---");
    let mac = mac_of(file_key, &out).finalize().into_bytes();
    out.push(b' ');
    out.extend_from_slice(b64().encode(mac).as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// Changes the recipients of the sealed file at `path` to `recipients`,
/// rewriting its header only: its file key, unwrapped with `identities`
/// (and checked against the header's MAC), is wrapped for the new
/// recipients; the encrypted payload is copied as it is. Written to a
/// `.part` file, flushed and renamed.
pub(crate) fn reseal_file(
    path: &Path,
    identities: &[Identity],
    recipients: &[Recipient],
) -> Result<(), String> {
    use hmac::Mac;
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut head = Vec::new();
    (&mut file)
        .take(MAX_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header = parse_header(&head).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_key = identities
        .iter()
        .find_map(|identity| age::Identity::unwrap_stanzas(identity, &header.stanzas))
        .ok_or_else(|| format!("{}: none of the identities opens it", path.display()))?
        .map_err(|e| format!("{}: {e}", path.display()))?;
    mac_of(&file_key, &head[..header.mac_input_len])
        .verify_slice(&header.mac)
        .map_err(|_| {
            format!(
                "{}: its header's MAC does not match (it was changed)",
                path.display()
            )
        })?;
    let new_header = write_header(&file_key, recipients)?;
    let part = path.with_extension("age.part");
    let written = (|| -> std::io::Result<()> {
        let mut out = BufWriter::new(File::create(&part)?);
        std::io::Write::write_all(&mut out, &new_header)?;
        file.seek(std::io::SeekFrom::Start(header.len as u64))?;
        std::io::copy(&mut file, &mut out)?;
        let out = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        out.sync_all()?;
        fs::rename(&part, path)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&part);
        format!("cannot reseal {}: {e}", path.display())
    })
}

/// What [`reseal`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealSummary {
    /// Sealed files whose header was rewritten.
    pub files: u64,
    /// Recordings (sealed sidecars) brought to the new recipients, and
    /// signed again when a key was given.
    pub recordings: u64,
}

/// Changes the recipients of every sealed recording under `dir` to those
/// in `recipients_file`: each sealed file's header is rewritten (its
/// media is copied as it is, never decrypted), and each sealed sidecar,
/// a small file, is opened and sealed again with its `sealed_to` updated.
/// The headers change, so the signed manifests no longer match: with
/// `sign_key`, each recording is signed again. `identity_file` must open
/// the files (the old recipients' identities; a file that also holds the
/// new ones lets a run that stopped half-way be run again). Run it on a
/// stopped node; recordings already in the object store are not changed.
///
/// # Errors
/// [`Error::Io`] naming a key file that cannot be read; an
/// [`Error::Settings`] naming the first file that could not be resealed
/// (the ones before it are done).
pub fn reseal(
    dir: &Path,
    identity_file: &Path,
    recipients_file: &Path,
    sign_key: Option<&Path>,
) -> Result<ResealSummary, Error> {
    let identities = read_identities(identity_file)?;
    let recipients = read_recipients(recipients_file)?;
    let key = sign_key.map(crate::sign::read_signing_key).transpose()?;
    let node = fs::read_to_string(dir.join(crate::settings::STATE_DIR).join("node"))
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let mut summary = ResealSummary::default();
    let files = crate::sign::walk(dir)?;
    let sealed = |p: &&PathBuf| p.to_string_lossy().ends_with(SEALED_SUFFIX);
    let is_sidecar = |p: &PathBuf| p.to_string_lossy().ends_with(".json.age");
    let failed = |e: String| Error::Settings(format!("reseal: {e}"));
    for path in files.iter().filter(sealed).filter(|p| !is_sidecar(p)) {
        reseal_file(path, &identities, &recipients).map_err(failed)?;
        summary.files += 1;
    }
    for path in files.iter().filter(sealed).filter(|p| is_sidecar(p)) {
        let mut reader = open_sealed_file(path, &identities).map_err(failed)?;
        let bytes = read_sealed(&mut *reader, 16 << 20)
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        let mut sidecar: callrec_server::Sidecar = serde_json::from_slice(&bytes)
            .map_err(|e| failed(format!("{}: not a sidecar: {e}", path.display())))?;
        sidecar.sealed_to = recipients.iter().map(ToString::to_string).collect();
        let json = serde_json::to_vec_pretty(&sidecar).map_err(|e| failed(e.to_string()))?;
        let mut sealed_json = Vec::new();
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| failed(format!("age: {e}")))?;
        let mut writer = encryptor
            .wrap_output(&mut sealed_json)
            .map_err(|e| failed(e.to_string()))?;
        std::io::Write::write_all(&mut writer, &json).map_err(|e| failed(e.to_string()))?;
        writer.finish().map_err(|e| failed(e.to_string()))?;
        let part = path.with_extension("age.part");
        let written = File::create(&part).and_then(|mut f| {
            std::io::Write::write_all(&mut f, &sealed_json)?;
            f.sync_all()?;
            fs::rename(&part, path)
        });
        written.map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
        summary.recordings += 1;
        if let Some(key) = &key {
            let rel = path
                .strip_prefix(dir)
                .map_err(|e| failed(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let entry = crate::index::Entry::from_sidecar(&sidecar, Some(rel), false)
                .ok_or_else(|| failed(format!("{}: start time not RFC 3339", path.display())))?;
            crate::sign::sign_recording(dir, &entry.summary, key, &node).map_err(failed)?;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::SeekFrom;

    #[test]
    fn a_sealed_file_decrypts_whole_and_from_any_offset_with_the_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&path, &plain).unwrap();
        let identity = Identity::generate();
        seal_file(&path, &[identity.to_public()]).unwrap();
        assert!(!path.exists());
        let sealed = sealed_path(&path);
        assert!(
            fs::read(&sealed)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n")
        );
        // Sealing again is a no-op.
        seal_file(&path, &[identity.to_public()]).unwrap();
        let mut reader = open_sealed_file(&sealed, core::slice::from_ref(&identity)).unwrap();
        assert_eq!(read_sealed(&mut *reader, 1 << 20).unwrap(), plain);
        for at in [0u64, 1, 65_535, 65_536, 65_537, 131_072, 199_999] {
            reader.seek(SeekFrom::Start(at)).unwrap();
            let mut buf = vec![0u8; 100];
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0);
            assert_eq!(&buf[..n], &plain[at as usize..at as usize + n], "at {at}");
        }
        assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), plain.len() as u64);
        let stranger = Identity::generate();
        let refused = open_sealed_file(&sealed, &[stranger]).err().unwrap();
        assert!(
            refused.contains("cannot decrypt it with this node's identity"),
            "{refused}"
        );
    }

    #[test]
    fn key_files_name_the_line_that_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients");
        let r = Identity::generate().to_public().to_string();
        fs::write(&path, format!("# ops team\n\n{r}\n")).unwrap();
        assert_eq!(read_recipients(&path).unwrap().len(), 1);
        fs::write(&path, format!("{r}\nage1notakey\n")).unwrap();
        let e = read_recipients(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("recipients"), "{e}");
        let secret = Identity::generate();
        let secret_text = {
            use age_core::secrecy::ExposeSecret;
            secret.to_string().expose_secret().to_owned()
        };
        fs::write(&path, format!("{secret_text}\n")).unwrap();
        let e = read_recipients(&path).unwrap_err().to_string();
        assert!(e.contains("is an identity (a secret key)"), "{e}");
        assert!(!e.contains(&secret_text[..20]), "{e}");
        fs::write(&path, "# nothing\n").unwrap();
        assert!(
            read_recipients(&path)
                .unwrap_err()
                .to_string()
                .contains("names no recipient")
        );
        let e = read_identities(&path).err().unwrap().to_string();
        assert!(e.contains("holds no identity"), "{e}");
    }
}
