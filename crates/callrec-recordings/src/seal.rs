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
            let shown: String = line.chars().take(20).collect();
            bad_key(
                path,
                WHAT,
                format!("line {n} ({shown:?}…) is not an age X25519 recipient: {e}"),
            )
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
