//! One object-store registry for client, scheduler and executor, so that all
//! of them resolve the same URLs: local paths and `gs://bucket/…`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use url::Url;

/// Serves `file://` from the local file system and `gs://<bucket>` through
/// object_store's GCS client, which takes credentials from the environment
/// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT*`) or, on GCE,
/// from the metadata server. Stores are created on first use and cached.
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
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn build(url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match url.scheme() {
            "gs" => {
                let bucket =
                    url.host_str().ok_or_else(|| DataFusionError::Configuration(format!("no bucket in {url}")))?;
                let gcs = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).build()?;
                Ok(Arc::new(gcs))
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
