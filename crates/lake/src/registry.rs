//! One object-store registry for client, scheduler and executor, so that all
//! of them resolve the same URLs: local paths and `gs://bucket/…`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use url::Url;

/// Serves `file://` from the local file system and `gs://<bucket>` through
/// object_store's GCS client, configured by its standard variables: the
/// endpoint (`GOOGLE_BASE_URL`, default `https://storage.googleapis.com`),
/// credentials (`GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_SERVICE_ACCOUNT_KEY`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default file) or,
/// without any, the GCE metadata server (`GCE_METADATA_HOST`). See
/// docs/gcs-testing.md. Stores are created on first use and cached.
#[derive(Debug)]
pub struct LakeStores {
    local: Arc<LocalFileSystem>,
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Default for LakeStores {
    fn default() -> Self {
        Self { local: Arc::new(LocalFileSystem::new()), stores: RwLock::default() }
    }
}

fn store_key(url: &Url) -> String {
    url[..url::Position::BeforePath].to_string()
}

impl LakeStores {
    /// A registry with no GCS store created yet, ready to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn build(url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "gs" => {
                let bucket =
                    url.host_str().ok_or_else(|| DataFusionError::Configuration(format!("no bucket in {url}")))?;
                let gcs = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).build()?;
                Ok(Arc::new(Gcs(gcs)))
            }
            other => Err(DataFusionError::Configuration(format!(
                "unsupported storage scheme {other:?} in {url}: use a local path or gs://bucket/prefix"
            ))),
        }
    }
}

impl ObjectStoreRegistry for LakeStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.stores.write().unwrap().insert(store_key(url), store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return Ok(self.local.clone());
        }
        let key = store_key(url);
        if let Some(store) = self.stores.read().unwrap().get(&key) {
            return Ok(store.clone());
        }
        let store = Self::build(url)?;
        self.stores.write().unwrap().entry(key).or_insert(store.clone());
        Ok(store)
    }
}

/// object_store 0.13.2's GCS client swaps the copy modes
/// (apache/arrow-rs-object-store#712, fixed upstream after 0.13.2): an
/// overwriting `copy`/`rename` is sent with `x-goog-if-generation-match: 0`
/// and fails with `AlreadyExists` when the target exists. Completing an
/// interrupted commit needs that overwrite (a move's copy was done, its delete
/// was not: tests/gcs.rs), so such a copy is sent again in the mode that
/// 0.13.2 sends without the precondition. A fixed client never fails an
/// overwriting copy with `AlreadyExists`, so this then never triggers.
#[derive(Debug)]
struct Gcs(GoogleCloudStorage);

impl std::fmt::Display for Gcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

// `ObjectStore` is an `async_trait`: its async methods return boxed futures,
// which these forward as they are.
impl ObjectStore for Gcs {
    fn put_opts<'a, 'b, 'f>(
        &'a self,
        location: &'b Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> BoxFuture<'f, object_store::Result<PutResult>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.0.put_opts(location, payload, opts)
    }

    fn put_multipart_opts<'a, 'b, 'f>(
        &'a self,
        location: &'b Path,
        opts: PutMultipartOptions,
    ) -> BoxFuture<'f, object_store::Result<Box<dyn MultipartUpload>>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.0.put_multipart_opts(location, opts)
    }

    fn get_opts<'a, 'b, 'f>(
        &'a self,
        location: &'b Path,
        options: GetOptions,
    ) -> BoxFuture<'f, object_store::Result<GetResult>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.0.get_opts(location, options)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    fn list_with_delimiter<'a, 'b, 'f>(
        &'a self,
        prefix: Option<&'b Path>,
    ) -> BoxFuture<'f, object_store::Result<ListResult>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.0.list_with_delimiter(prefix)
    }

    fn copy_opts<'a, 'b, 'c, 'f>(
        &'a self,
        from: &'b Path,
        to: &'c Path,
        options: CopyOptions,
    ) -> BoxFuture<'f, object_store::Result<()>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let retry =
                matches!(options.mode, CopyMode::Overwrite).then(|| options.clone().with_mode(CopyMode::Create));
            match (self.0.copy_opts(from, to, options).await, retry) {
                (Err(object_store::Error::AlreadyExists { .. }), Some(retry)) => {
                    self.0.copy_opts(from, to, retry).await
                }
                (result, _) => result,
            }
        })
    }
}
