//! One stream per checkpoint: a lease in `<checkpoint>/lease/`.
//!
//! Each holder writes `lease/<epoch>.json` (owner, host, pid, last renewal).
//! A stream takes the checkpoint by creating the next epoch's file with
//! put-if-absent, and only when the current holder's lease has expired (no
//! renewal for the lease's time to live) or its process is gone (same host,
//! no such pid). The holder renews its file in the background and, before it
//! writes a batch's commit record, checks that no later epoch exists: a
//! stream that lost its lease (paused for longer than the time to live, then
//! overtaken) stops instead of committing. Two streams therefore never
//! commit batches on one checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use funnelpulse_engine::Context;
use funnelpulse_lake::Lake;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

const FOLDER: &str = "lease/";

/// What a lease file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    owner: String,
    host: String,
    pid: u32,
    started: chrono::DateTime<chrono::Utc>,
    renewed: chrono::DateTime<chrono::Utc>,
    ttl_ms: u64,
    /// Set when the holder stopped cleanly: the next stream may take over at once.
    #[serde(default)]
    released: bool,
}

impl Holder {
    fn expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let ttl = chrono::Duration::milliseconds(self.ttl_ms as i64);
        self.released || self.renewed + ttl < now || (self.host == host() && !process_alive(self.pid))
    }
}

/// This machine's name (for telling a dead local holder from a remote one).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

fn process_alive(pid: u32) -> bool {
    // Linux: a live process has its folder under /proc (elsewhere: assume alive, wait for expiry).
    !std::path::Path::new("/proc/self").exists() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn epoch_rel(epoch: u64) -> String {
    format!("{FOLDER}{epoch:010}.json")
}

/// The checkpoint held by this stream.
pub struct Lease {
    folder: Lake,
    epoch: u64,
    holder: Holder,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Takes the checkpoint in `folder`, or fails with who holds it.
    pub async fn acquire(folder: &Lake, ttl: Duration) -> funnelpulse_engine::Result<Self> {
        let now = chrono::Utc::now();
        let current = latest(folder).await?;
        if let Some((epoch, holder)) = &current
            && !holder.expired(now)
        {
            let left = (holder.renewed + chrono::Duration::milliseconds(holder.ttl_ms as i64) - now).num_seconds();
            funnelpulse_engine::bail!(
                "checkpoint {} is in use by another stream (host {}, pid {}, since {}, lease {epoch}); stop it \
                 first, or wait {}s for its lease to expire if it was killed",
                folder.url(),
                holder.host,
                holder.pid,
                holder.started.format("%Y-%m-%d %H:%M:%S UTC"),
                left.max(0)
            );
        }
        let epoch = current.map_or(0, |(e, _)| e + 1);
        let holder = Holder {
            owner: uuid::Uuid::new_v4().to_string(),
            host: host(),
            pid: std::process::id(),
            started: now,
            renewed: now,
            ttl_ms: ttl.as_millis() as u64,
            released: false,
        };
        let create = PutOptions { mode: PutMode::Create, ..Default::default() };
        match folder.store().put_opts(&folder.path_of(&epoch_rel(epoch)), payload(&holder)?, create).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                funnelpulse_engine::bail!(
                    "checkpoint {} was just taken by another stream (lease {epoch})",
                    folder.url()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("taking the lease of checkpoint {}", folder.url())),
        }
        if epoch > 0 {
            // The previous holders' files are no longer needed.
            for old in 0..epoch {
                let _ = folder.store().delete(&folder.path_of(&epoch_rel(old))).await;
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_every(folder.clone(), epoch, holder.clone(), ttl / 3, lost.clone()));
        Ok(Self { folder: folder.clone(), epoch, holder, lost, renewer })
    }

    /// Fails when another stream has taken the checkpoint since (call before
    /// committing anything).
    pub async fn check(&self) -> funnelpulse_engine::Result<()> {
        let newest = latest(&self.folder).await?.map(|(e, _)| e);
        funnelpulse_engine::ensure!(
            !self.lost.load(Ordering::SeqCst) && newest == Some(self.epoch),
            "this stream lost its lease on checkpoint {} to another stream (lease {}); it stops without committing",
            self.folder.url(),
            newest.unwrap_or(self.epoch)
        );
        Ok(())
    }

    /// Gives the checkpoint up (a clean stop): the next stream may start at once.
    pub async fn release(self) {
        self.renewer.abort();
        if self.check().await.is_ok() {
            let holder = Holder { released: true, renewed: chrono::Utc::now(), ..self.holder.clone() };
            if let Ok(bytes) = payload(&holder) {
                let _ = self.folder.store().put(&self.folder.path_of(&epoch_rel(self.epoch)), bytes).await;
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn payload(holder: &Holder) -> funnelpulse_engine::Result<PutPayload> {
    Ok(PutPayload::from(serde_json::to_vec_pretty(holder)?))
}

/// The newest lease file and its holder.
async fn latest(folder: &Lake) -> funnelpulse_engine::Result<Option<(u64, Holder)>> {
    let epochs = folder.list_rel(FOLDER).await?;
    let newest = epochs
        .iter()
        .filter_map(|rel| Some((rel.rsplit('/').next()?.strip_suffix(".json")?.parse::<u64>().ok()?, rel)))
        .max();
    let Some((epoch, rel)) = newest else { return Ok(None) };
    let bytes = folder.store().get(&folder.path_of(rel)).await?.bytes().await?;
    let holder: Holder = serde_json::from_slice(&bytes).with_context(|| format!("lease file {rel} is damaged"))?;
    Ok(Some((epoch, holder)))
}

/// Renews the lease every `every` while it is still the newest; marks it lost otherwise.
async fn renew_every(folder: Lake, epoch: u64, holder: Holder, every: Duration, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(every).await;
        let still_ours = matches!(latest(&folder).await, Ok(Some((e, _))) if e == epoch);
        if !still_ours {
            lost.store(true, Ordering::SeqCst);
            return;
        }
        let renewed = Holder { renewed: chrono::Utc::now(), ..holder.clone() };
        let written = match payload(&renewed) {
            Ok(bytes) => folder.store().put(&folder.path_of(&epoch_rel(epoch)), bytes).await.is_ok(),
            Err(_) => false,
        };
        if !written {
            log::warn!("could not renew the lease of checkpoint {}; retrying", folder.url());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(renewed_secs_ago: i64, pid: u32) -> Holder {
        let now = chrono::Utc::now();
        Holder {
            owner: "x".into(),
            host: host(),
            pid,
            started: now,
            renewed: now - chrono::Duration::seconds(renewed_secs_ago),
            ttl_ms: 30_000,
            released: false,
        }
    }

    #[tokio::test]
    async fn a_held_lease_refuses_others_until_it_expires_and_its_holder_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let stores = funnelpulse_lake::LakeStores::new();
        let folder = Lake::open(dir.path().to_str().unwrap(), stores.as_ref()).unwrap();
        let first = Lease::acquire(&folder, Duration::from_secs(30)).await.unwrap();
        let refused = Lease::acquire(&folder, Duration::from_secs(30)).await.err().unwrap().to_string();
        assert!(refused.contains("is in use by another stream"), "{refused}");

        // A holder on another machine that stops renewing (cut off): its lease expires.
        first.renewer.abort();
        let remote = Holder { host: "elsewhere".into(), ttl_ms: 300, ..first.holder.clone() };
        folder.store().put(&folder.path_of(&epoch_rel(first.epoch)), payload(&remote).unwrap()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = Lease::acquire(&folder, Duration::from_secs(30)).await.unwrap();
        assert_eq!(second.epoch, first.epoch + 1);
        let lost = first.check().await.err().unwrap().to_string();
        assert!(lost.contains("lost its lease"), "{lost}");
        second.check().await.unwrap();

        // A clean stop hands the checkpoint over at once.
        second.release().await;
        Lease::acquire(&folder, Duration::from_secs(30)).await.unwrap();
    }

    #[test]
    fn a_lease_expires_without_renewal_or_when_its_process_is_gone() {
        let now = chrono::Utc::now();
        assert!(!holder(1, std::process::id()).expired(now));
        assert!(holder(60, std::process::id()).expired(now));
        assert!(holder(1, u32::MAX - 1).expired(now), "no such process on this host");
        assert!(Holder { released: true, ..holder(1, std::process::id()) }.expired(now));
    }
}
