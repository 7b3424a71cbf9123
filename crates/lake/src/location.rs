//! Lake locations: from user input to URLs, object-store paths and table folders.

use std::sync::Arc;

use crate::error::{LakeContext, LakeError};
use datafusion::execution::object_store::ObjectStoreRegistry;
use funnelpulse_core::TableSpec;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

/// A local path (made absolute) or a `gs://` URL, as a folder URL ending in `/`.
pub fn to_url(location: &str) -> crate::Result<Url> {
    // Credentials in the URL (user:password@, ?sig=) stay out of every message.
    funnelpulse_core::redact::register_url(location);
    let mut url = if location.contains("://") {
        Url::parse(location).with_context(|| format!("not a valid URL: {location}"))?
    } else {
        let path = std::path::absolute(location).with_context(|| format!("bad path {location}"))?;
        Url::from_directory_path(&path).map_err(|_| LakeError::Invalid(format!("bad path {}", path.display())))?
    };
    if !matches!(url.scheme(), "file" | "gs") {
        return Err(LakeError::Invalid(format!(
            "unsupported location {location}: use a local path or gs://bucket/prefix"
        )));
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// A run id sorts by time: `20261125T101500Z-1a2b3c4d`.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let random = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{now}-{random}")
}

/// A lake: its root URL (ending in `/`) and the object store that holds it.
#[derive(Debug, Clone)]
pub struct Lake {
    pub(crate) base: Url,
    pub(crate) store: Arc<dyn ObjectStore>,
}

impl Lake {
    /// Opens the lake at a local path or `gs://` URL; a local folder is created when missing.
    pub fn open(location: &str, stores: &dyn ObjectStoreRegistry) -> crate::Result<Self> {
        let base = to_url(location)?;
        if base.scheme() == "file" {
            let dir = base.to_file_path().map_err(|_| LakeError::Invalid(format!("bad lake path {base}")))?;
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create lake folder {}", dir.display()))?;
        }
        let store =
            stores.get_store(&base).map_err(|e| LakeError::Invalid(format!("no object store for {base}: {e}")))?;
        Ok(Self { base, store })
    }

    /// The lake's root URL, ending in `/`.
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// The object store holding the lake; paths in it come from [`Lake::path_of`].
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// URL of `rel` below the lake root (folders end in `/`).
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}{rel}", self.base)
    }

    /// Object-store path of `rel` below the lake root.
    pub fn path_of(&self, rel: &str) -> Path {
        let full = format!("{}{rel}", self.base.path());
        Path::from_url_path(&full).expect("lake paths are valid")
    }

    /// A table's folder relative to the lake root: `tables/<name>/`.
    pub fn table_rel(table: &TableSpec) -> String {
        format!("tables/{}/", table.name)
    }

    /// Folder URL of a table's current version.
    pub fn table_url(&self, table: &TableSpec) -> String {
        self.url_of(&Self::table_rel(table))
    }

    /// Writes `<lake>/reports/<name>` in one put: readers see the old or the
    /// new file, never half of one (object stores and our local store write
    /// a temporary file and rename it).
    pub async fn put_report(&self, name: &str, bytes: Vec<u8>) -> crate::Result<String> {
        use object_store::ObjectStoreExt;
        let rel = format!("reports/{name}");
        self.store
            .put(&self.path_of(&rel), bytes.into())
            .await
            .with_context(|| format!("writing {}", self.url_of(&rel)))?;
        Ok(self.url_of(&rel))
    }

    /// The bytes of `rel`, None when it does not exist (a marker, ledger or
    /// checkpoint file not written yet): the one place where NotFound is fine on read.
    pub async fn read_if_present(&self, rel: &str) -> crate::Result<Option<Vec<u8>>> {
        use object_store::ObjectStoreExt;
        match self.store.get(&self.path_of(rel)).await {
            Ok(got) => Ok(Some(got.bytes().await.with_context(|| format!("reading {}", self.url_of(rel)))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.url_of(rel))),
        }
    }

    /// Deletes `rel`; one already gone is fine (a repeated or concurrent clean-up).
    pub async fn delete_if_present(&self, rel: &str) -> crate::Result<()> {
        use object_store::ObjectStoreExt;
        match self.store.delete(&self.path_of(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {}", self.url_of(rel))),
        }
    }

    /// Relative path (below the lake root) of an object-store path.
    pub(crate) fn rel_of(&self, path: &Path) -> String {
        let root = Path::from_url_path(self.base.path()).expect("lake root is valid");
        let root = root.as_ref();
        let full = path.as_ref();
        full.strip_prefix(root).map(|r| r.trim_start_matches('/')).unwrap_or(full).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_folder_urls() {
        assert_eq!(to_url("gs://bucket/lake").unwrap().as_str(), "gs://bucket/lake/");
        let local = to_url("some/lake").unwrap();
        assert_eq!(local.scheme(), "file");
        assert!(local.path().ends_with("/some/lake/"));
        let err = to_url("s3://bucket/lake").unwrap_err().to_string();
        assert!(err.contains("use a local path or gs://bucket/prefix"), "{err}");
    }

    #[test]
    fn paths_below_the_root_round_trip() {
        let stores = crate::LakeStores::new();
        let dir = std::env::temp_dir().join(format!("fp-lake-{}", new_run_id()));
        let lake = Lake::open(dir.to_str().unwrap(), stores.as_ref()).unwrap();
        let path = lake.path_of("tables/t/event_date=2019-10-01/x.parquet");
        assert_eq!(lake.rel_of(&path), "tables/t/event_date=2019-10-01/x.parquet");
        assert!(lake.table_url(&funnelpulse_core::tables::SILVER_EVENTS).ends_with("/tables/silver_events/"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn run_ids_sort_by_time() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_eq!(a.len(), 25);
        assert!(a[..16] <= b[..16]);
    }
}
