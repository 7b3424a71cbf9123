//! Which runs are alive, and clearing away what killed runs left.
//!
//! A run that writes into the lake (a batch stage's tables, stage 03's
//! `_staging/<run>/`) first writes a marker `_runs/<run>.json` (machine,
//! pid, start, renewed every [`RENEW`]) and removes it when it ends, after
//! its files were committed or thrown away. A killed run leaves its marker.
//!
//! A marker's run is alive when its process still runs (same machine: the
//! pid with the same start time) or, seen from another machine, when it was
//! renewed within the stale limit (1h by default: generous, as a run on
//! another machine cannot be asked). [`Lake::sweep_dead_runs`], called by the
//! next run and by `funnelpulse lake vacuum`, removes of each dead run:
//! - its `_staging/<run>/` (unless its journal `_commits/<run>.json` is
//!   there: [`Lake::recover`] completes that commit);
//! - its folder in each table it never committed. A table it was committing
//!   when it died counts as committed when the table's current files or its
//!   history name the run (then its files are versions' files, for vacuum).
//!
//! Staging folders without a marker (left by a version without markers) go
//! once their newest file is older than the stale limit. Streams (stage 04)
//! write no marker: a batch killed midway is re-run by the stream itself,
//! which first deletes what the killed attempt wrote.

use std::sync::Arc;
use std::time::Duration;

use crate::error::LakeContext;
use chrono::{DateTime, Utc};
use funnelpulse_core::TableSpec;
use funnelpulse_core::tables::LAKE_TABLES;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::location::Lake;

/// How often a live run renews its marker.
pub const RENEW: Duration = Duration::from_secs(60);

/// A run on another machine whose marker is older than this is taken for dead.
pub const DEFAULT_STALE: Duration = Duration::from_secs(3600);

/// `_runs/<run>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    run: String,
    /// Host name, boot and pid namespace: where `pid` means this process.
    machine: String,
    pid: u32,
    /// The process's start (clock ticks since boot): a reused pid has another.
    pid_start: Option<u64>,
    started: DateTime<Utc>,
    renewed: DateTime<Utc>,
    /// Tables whose commit the run began: they may hold committed files.
    #[serde(default)]
    committing: Vec<String>,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// This machine and pid namespace, as a pid can be checked from here.
fn this_machine() -> String {
    let namespace = std::fs::read_link("/proc/self/ns/pid").map(|p| p.display().to_string()).unwrap_or_default();
    format!(
        "{}/{}/{namespace}",
        read_trimmed("/proc/sys/kernel/hostname"),
        read_trimmed("/proc/sys/kernel/random/boot_id")
    )
}

/// Start time of process `pid` (field 22 of `/proc/<pid>/stat`), `None` when it is gone.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its closing parenthesis.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

impl Marker {
    fn alive(&self, now: DateTime<Utc>, stale: Duration) -> bool {
        if self.machine == this_machine() {
            return process_start(self.pid).is_some_and(|start| self.pid_start.is_none_or(|s| s == start));
        }
        chrono::Duration::from_std(stale).is_ok_and(|stale| now - self.renewed < stale)
    }
}

fn marker_rel(run: &str) -> String {
    format!("_runs/{run}.json")
}

/// A live run's marker, renewed in the background until [`RunMarker::finish`].
pub struct RunMarker {
    lake: Lake,
    marker: Arc<tokio::sync::Mutex<Marker>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl RunMarker {
    /// Writes the marker of `run` (before the run writes any file) and keeps it renewed.
    pub async fn start(lake: &Lake, run: &str) -> crate::Result<Self> {
        let pid = std::process::id();
        let now = Utc::now();
        let marker = Marker {
            run: run.to_string(),
            machine: this_machine(),
            pid,
            pid_start: process_start(pid),
            started: now,
            renewed: now,
            committing: Vec::new(),
        };
        put_marker(lake, &marker).await?;
        let marker = Arc::new(tokio::sync::Mutex::new(marker));
        let renewal = tokio::spawn({
            let (lake, marker) = (lake.clone(), marker.clone());
            async move {
                loop {
                    tokio::time::sleep(RENEW).await;
                    let mut marker = marker.lock().await;
                    marker.renewed = Utc::now();
                    if let Err(e) = put_marker(&lake, &marker).await {
                        log::warn!("could not renew the marker of run {}: {e:#}", marker.run);
                    }
                }
            }
        });
        Ok(Self { lake: lake.clone(), marker, renewal })
    }

    /// Before committing `table`: from here on its files may be committed ones.
    pub async fn committing(&self, table: &TableSpec) -> crate::Result<()> {
        let mut marker = self.marker.lock().await;
        marker.committing.push(table.name.to_string());
        put_marker(&self.lake, &marker).await
    }

    /// The run ended and its files are committed or thrown away.
    pub async fn finish(self) {
        self.renewal.abort();
        let marker = self.marker.lock().await;
        if let Err(e) = self.lake.store().delete(&self.lake.path_of(&marker_rel(&marker.run))).await {
            log::warn!("could not remove the marker of run {}: {e}", marker.run);
        }
    }
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        // Not finished (an error unwound the run): the marker stays, and is
        // taken for dead once this process has ended.
        self.renewal.abort();
    }
}

async fn put_marker(lake: &Lake, marker: &Marker) -> crate::Result<()> {
    let rel = marker_rel(&marker.run);
    lake.store()
        .put(&lake.path_of(&rel), PutPayload::from(serde_json::to_vec_pretty(marker)?))
        .await
        .with_context(|| format!("writing {}", lake.url_of(&rel)))?;
    Ok(())
}

/// What [`Lake::sweep_dead_runs`] removed of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Id of the dead run.
    pub run: String,
    /// Files removed.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for Swept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "removed {} files ({} bytes) left by the killed run {}", self.files, self.bytes, self.run)
    }
}

impl Lake {
    /// Removes what dead runs left (see the module's comment). `stale`: a
    /// marker from another machine not renewed for this long is dead.
    pub async fn sweep_dead_runs(&self, stale: Duration) -> crate::Result<Vec<Swept>> {
        // Staging first, markers second: a run writes its marker before its
        // staging, so every staging folder of a live run has a marker listed.
        let staged = self.run_folders("_staging/").await?;
        let now = Utc::now();
        let mut swept = Vec::new();
        let mut marked = std::collections::HashSet::new();
        for rel in self.list_rel("_runs/").await? {
            let bytes = self.store().get(&self.path_of(&rel)).await?.bytes().await?;
            let Ok(marker) = serde_json::from_slice::<Marker>(&bytes) else {
                log::warn!("unreadable run marker {}: left alone", self.url_of(&rel));
                continue;
            };
            marked.insert(marker.run.clone());
            if marker.alive(now, stale) || self.has_journal(&marker.run).await {
                continue;
            }
            let mut removed = Swept { run: marker.run.clone(), ..Default::default() };
            self.remove_files(&format!("_staging/{}/", marker.run), &mut removed).await?;
            for table in LAKE_TABLES {
                if !self.may_hold_commit(&marker, &table).await? {
                    self.remove_files(&Lake::run_rel(&marker.run, &table), &mut removed).await?;
                }
            }
            self.store().delete(&self.path_of(&rel)).await?;
            if removed.files > 0 {
                swept.push(removed);
            }
        }
        for run in staged.into_iter().filter(|run| !marked.contains(run)) {
            let rel = format!("_staging/{run}/");
            let newest = self.list_with_meta(&rel).await?.into_iter().map(|f| f.modified).max();
            let old = newest.is_some_and(|t| chrono::Duration::from_std(stale).is_ok_and(|stale| now - t >= stale));
            if old && !self.has_journal(&run).await {
                let mut removed = Swept { run, ..Default::default() };
                self.remove_files(&rel, &mut removed).await?;
                swept.push(removed);
            }
        }
        Ok(swept)
    }

    /// Names of the folders directly under `rel` that hold files.
    async fn run_folders(&self, rel: &str) -> crate::Result<std::collections::BTreeSet<String>> {
        let files = self.list_rel(rel).await?;
        Ok(files.iter().filter_map(|f| f.strip_prefix(rel)?.split_once('/').map(|(run, _)| run.to_string())).collect())
    }

    async fn has_journal(&self, run: &str) -> bool {
        self.store().head(&self.path_of(&format!("_commits/{run}.json"))).await.is_ok()
    }

    /// Whether the dead run's folder in `table` may hold committed files.
    async fn may_hold_commit(&self, marker: &Marker, table: &TableSpec) -> crate::Result<bool> {
        if !marker.committing.iter().any(|t| t == table.name) {
            return Ok(false);
        }
        let folder = Lake::run_folder(&marker.run);
        let current = self.snapshot(table, &crate::AsOf::Latest).await?;
        if current.is_some_and(|files| files.files.iter().any(|f| f.path.starts_with(&folder))) {
            return Ok(true);
        }
        let history = if self.table_exists(table).await? { self.history(table, None).await? } else { Vec::new() };
        Ok(history.iter().any(|entry| entry.run.as_deref() == Some(marker.run.as_str())))
    }

    async fn remove_files(&self, rel: &str, removed: &mut Swept) -> crate::Result<()> {
        let files = self.list_with_meta(rel).await?;
        if files.is_empty() {
            // A local folder created before the run's first file.
            self.remove_empty_dirs(rel);
            return Ok(());
        }
        removed.files += files.len();
        removed.bytes += files.iter().map(|f| f.size).sum::<u64>();
        self.delete_all(rel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_not() {
        let now = Utc::now();
        let pid = std::process::id();
        let mut marker = Marker {
            run: "r".into(),
            machine: this_machine(),
            pid,
            pid_start: process_start(pid),
            started: now,
            renewed: now - chrono::Duration::days(1),
            committing: vec![],
        };
        assert!(marker.pid_start.is_some());
        assert!(marker.alive(now, DEFAULT_STALE), "a running process is alive, however old its marker");
        marker.pid_start = marker.pid_start.map(|s| s + 1);
        assert!(!marker.alive(now, DEFAULT_STALE), "a reused pid is another process");
        marker.machine = "elsewhere".into();
        assert!(!marker.alive(now, DEFAULT_STALE), "another machine's marker not renewed for a day");
        marker.renewed = now;
        assert!(marker.alive(now, DEFAULT_STALE), "another machine's fresh marker");
    }
}
