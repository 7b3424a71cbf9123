//! A folder's generation: each rebuild of a folder that a stream consumes
//! (stage 03's `stream_input/`) is stamped with a new id in
//! `<folder>/_generation.json`, so that a stream notices that the files it
//! has not read yet belong to another build than the ones it has read.
//!
//! The marker is the first move of the folder's commit journal (see
//! [`Lake::commit_folder`]): it changes before any new file appears and the
//! old files are deleted only after it, so a listing followed by a read of
//! the marker that still gives the old generation saw only the old files.

use crate::error::LakeContext;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::location::Lake;

/// The marker's name in the folder (`_`: not a data file for a stream).
pub const GENERATION_FILE: &str = "_generation.json";

/// Contents of `_generation.json`: which run built the folder, when, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The id of the run that wrote the folder.
    pub id: String,
    /// When it was written (RFC 3339).
    pub written: String,
    /// Data files the run wrote into the folder.
    pub files: usize,
    /// Rows in those files.
    pub rows: u64,
}

impl Generation {
    /// The generation of run `id`, written now.
    pub fn new(id: &str, files: usize, rows: u64) -> Self {
        let written = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self { id: id.to_string(), written, files, rows }
    }
}

impl Lake {
    /// The generation of the folder `rel` (relative to the root, "" for the
    /// root itself); `None` when the folder carries no marker.
    pub async fn generation(&self, rel: &str) -> crate::Result<Option<Generation>> {
        let marker = format!("{rel}{GENERATION_FILE}");
        let Some(bytes) = self.read_if_present(&marker).await? else { return Ok(None) };
        let generation = serde_json::from_slice(&bytes)
            .with_context(|| format!("generation marker {} is damaged", self.url_of(&marker)))?;
        Ok(Some(generation))
    }

    /// Writes `generation` under the run's staging and returns its move
    /// (staged, final) into the folder `rel`: put it first in the moves of
    /// [`Lake::commit_folder`].
    pub async fn stage_generation(
        &self,
        run_id: &str,
        rel: &str,
        generation: &Generation,
    ) -> crate::Result<(String, String)> {
        let staged = format!("_staging/{run_id}/{GENERATION_FILE}");
        let bytes = serde_json::to_vec_pretty(generation)?;
        self.store
            .put(&self.path_of(&staged), PutPayload::from(bytes))
            .await
            .with_context(|| format!("writing {}", self.url_of(&staged)))?;
        Ok((staged, format!("{rel}{GENERATION_FILE}")))
    }
}
