//! The object store: where a pool's recordings live once they are final
//! (S3 or any S3-compatible store), through the `object_store` crate.
//!
//! A recording's file `DIR/<device>/<date>/<name>` becomes the object
//! `<prefix>/<device>/<date>/<name>` in the bucket: the same relative path
//! on every node, so the index's paths name both.

use core::ops::Range;
use core::time::Duration;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
pub(crate) use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, ObjectStore as _, ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;

/// Bytes read from a local file per write to the store.
const CHUNK: usize = 256 << 10;

/// Bytes buffered per upload: a smaller file goes in one PUT, a larger one
/// as a multipart upload of parts this size (S3's smallest part), so an
/// upload holds at most this much memory.
const PART: usize = 5 << 20;

/// Where recordings go once final: an S3 bucket (or an S3-compatible
/// store such as Garage, Ceph RGW or MinIO), and how to reach it. Fields
/// left `None` come from the standard AWS environment variables
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreSettings {
    /// `s3://bucket/prefix` (the prefix may be empty).
    pub url: String,
    /// The store's address, for stores other than AWS
    /// (`http://127.0.0.1:3900`); path-style requests are used then.
    pub endpoint: Option<String>,
    /// The region (`us-east-1` when neither this nor the environment
    /// gives one).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
}

impl core::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .finish()
    }
}

impl StoreSettings {
    /// The store at `url` (`s3://bucket/prefix`), the rest from the
    /// environment.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

/// `s3://bucket/prefix` split: the bucket, and the prefix without slashes
/// at its ends.
pub(crate) fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("object store {url:?} is not an s3://bucket/prefix URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(format!(
            "object store {url:?}: bucket {bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '-', '.')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
        return Err(format!(
            "object store {url:?}: prefix {prefix:?} has an empty, . or .. part"
        ));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// The object store of a pool.
#[derive(Clone)]
pub(crate) struct ObjectStore {
    inner: Arc<dyn object_store::ObjectStore>,
    bucket: String,
    prefix: String,
}

impl core::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl ObjectStore {
    /// The store `settings` name. Nothing is sent until it is used.
    pub(crate) fn new(settings: &StoreSettings) -> Result<Self, Error> {
        let (bucket, prefix) =
            parse_url(&settings.url).map_err(|e| Error::store(&settings.url, e))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if endpoint.is_some() {
            builder = builder.with_virtual_hosted_style_request(false);
        }
        let region = settings
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
        builder = builder.with_region(region.unwrap_or_else(|| "us-east-1".to_owned()));
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        // The upload queue retries with its own back-off: a request fails
        // fast when the store is down, and the recording waits on disk.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(15),
        };
        // (Client options replace the builder's: plain HTTP is allowed
        // here, for an endpoint on a private network.)
        let client = ClientOptions::new()
            .with_allow_http(endpoint.as_ref().is_some_and(|e| e.starts_with("http://")))
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(60));
        // reqwest's rustls has no crypto provider of its own here (see
        // Cargo.toml): ring becomes the process's default unless the
        // program installed one first (then this is an Err, and ignored).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = builder
            .with_retry(retry)
            .with_client_options(client)
            .build()
            .map_err(|e| Error::store(&settings.url, e))?;
        Ok(Self {
            inner: Arc::new(inner),
            bucket,
            prefix,
        })
    }

    /// The object of the file at `relative` (a path the index holds).
    pub(crate) fn key(&self, relative: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(relative)
        } else {
            Key::from(format!("{}/{relative}", self.prefix))
        }
    }

    /// `s3://bucket/key`, for messages.
    pub(crate) fn url_of(&self, key: &Key) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn fail(&self, key: &Key, e: impl core::fmt::Display) -> Error {
        Error::store(self.url_of(key), e)
    }

    /// Uploads the file `local` as the object of `relative`, then reads the
    /// object back: its size and SHA-256 must be the file's. Returns them.
    pub(crate) async fn upload(
        &self,
        local: &Path,
        relative: &str,
    ) -> Result<(u64, String), Error> {
        let key = self.key(relative);
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::io("open", local, e))?;
        let mut writer = BufWriter::with_capacity(self.inner.clone(), key.clone(), PART);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("read", local, e))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            size += n as u64;
            if let Err(e) = writer.write_all(&buf[..n]).await {
                let _ = writer.abort().await;
                return Err(self.fail(&key, e));
            }
        }
        writer.shutdown().await.map_err(|e| self.fail(&key, e))?;
        let local_sha = hex(&hash.finalize());
        let (stored_size, stored_sha) = self.digest(&key).await?;
        if stored_size != size || stored_sha != local_sha {
            return Err(self.fail(
                &key,
                format!(
                    "read back {stored_size} bytes with SHA-256 {stored_sha}; {} has {size} bytes with {local_sha}",
                    local.display()
                ),
            ));
        }
        Ok((size, local_sha))
    }

    /// The size and SHA-256 of an object, read whole.
    async fn digest(&self, key: &Key) -> Result<(u64, String), Error> {
        let got = self.inner.get(key).await.map_err(|e| self.fail(key, e))?;
        let mut stream = got.into_stream();
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.fail(key, e))?;
            hash.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok((size, hex(&hash.finalize())))
    }

    /// The length of an object.
    pub(crate) async fn len(&self, key: &Key) -> Result<u64, Error> {
        Ok(self
            .inner
            .head(key)
            .await
            .map_err(|e| self.fail(key, e))?
            .size)
    }

    /// Bytes `range` of an object.
    pub(crate) async fn read(&self, key: &Key, range: Range<u64>) -> Result<Bytes, Error> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.inner
            .get_range(key, range)
            .await
            .map_err(|e| self.fail(key, e))
    }

    /// Bytes `range` of an object, as they arrive.
    pub(crate) async fn stream(
        &self,
        key: &Key,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, Error> {
        if range.is_empty() {
            return Ok(futures_util::stream::empty().boxed());
        }
        let options = object_store::GetOptions::new().with_range(Some(range));
        let got = self
            .inner
            .get_opts(key, options)
            .await
            .map_err(|e| self.fail(key, e))?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// Deletes an object (one that is not there is no error).
    pub(crate) async fn delete(&self, key: &Key) -> Result<(), Error> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://recordings/pool-a/").unwrap(),
            ("recordings".into(), "pool-a".into())
        );
        assert_eq!(
            parse_url("s3://recordings").unwrap(),
            ("recordings".into(), String::new())
        );
        for bad in [
            "recordings",
            "s3://",
            "s3://A_B/x",
            "s3://ok-bucket/a/../b",
            "http://x/y",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(
                e.contains(bad.trim_start_matches("s3://").split('/').next().unwrap()),
                "{e}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_url_is_parsed_or_refused_by_name(url in "(s3://)?\\PC{0,40}") {
            match parse_url(&url) {
                Ok((bucket, prefix)) => {
                    proptest::prop_assert!(url.starts_with("s3://"));
                    proptest::prop_assert!((3..=63).contains(&bucket.len()));
                    proptest::prop_assert!(!prefix.starts_with('/') && !prefix.ends_with('/'));
                }
                Err(e) => proptest::prop_assert!(e.contains("object store")),
            }
        }
    }

    #[test]
    fn keys_carry_the_prefix() {
        let mut settings = StoreSettings::new("s3://bucket-1/pool/a");
        settings.endpoint = Some("http://127.0.0.1:9".into());
        settings.access_key_id = Some("id".into());
        settings.secret_access_key = Some("secret".into());
        let store = ObjectStore::new(&settings).unwrap();
        let key = store.key("dev/2026-12-01/x.wav");
        assert_eq!(key.as_ref(), "pool/a/dev/2026-12-01/x.wav");
        assert_eq!(
            store.url_of(&key),
            "s3://bucket-1/pool/a/dev/2026-12-01/x.wav"
        );
        assert!(!format!("{settings:?}").contains("secret\""));
    }
}
