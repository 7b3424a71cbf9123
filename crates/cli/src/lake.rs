//! `funnelpulse lake`: the tables' Delta logs — versions, clearing away the
//! files no version needs, and converting a lake of the format before Delta.

use std::time::Duration;

use funnelpulse_core::tables::{LAKE_TABLES, lake_table};
use funnelpulse_lake::{Lake, LakeStores};

#[derive(clap::Subcommand, Debug)]
pub enum LakeCommand {
    /// Versions of a table: when, which operation, rows and files added, by which run.
    History(HistoryArgs),
    /// Delete files no version younger than --retain needs: replaced files and
    /// files of killed runs (those of a run known dead go at once, with its
    /// staging). Versions older than that can no longer be read.
    Vacuum(VacuumArgs),
    /// Turn a lake written by FunnelPulse before Delta (folders of Parquet
    /// files) into Delta tables, in place: each table's first version holds
    /// its current files.
    Convert(ConvertArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// The table (bronze_events, silver_events, gold_funnel_hourly_brand, …).
    pub table: String,
    /// Newest versions shown at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(clap::Args, Debug)]
pub struct VacuumArgs {
    /// Lake root: a local folder or gs://bucket/prefix.
    #[arg(long, env = "FUNNELPULSE_LAKE", default_value = "lake")]
    pub lake: String,
    /// Keep what versions of this age need (time travel within it still works).
    /// Below an hour, a run still writing its files could lose them.
    #[arg(long, default_value = "168h", value_parser = funnelpulse_engine::args::parse_duration)]
    pub retain: Duration,
    /// Allow --retain below one hour (no run may be writing to the lake).
    #[arg(long)]
    pub force: bool,
    /// Only these tables (default: all).
    pub tables: Vec<String>,
}

pub async fn run(command: LakeCommand) -> anyhow::Result<()> {
    let stores = LakeStores::new();
    match command {
        LakeCommand::History(args) => {
            let lake = Lake::open(&args.lake, stores.as_ref())?;
            let table = known_table(&args.table)?;
            println!(
                "{:>7}  {:<24} {:<10} {:>12} {:>6} {:>8}  run",
                "version", "time (UTC)", "operation", "rows", "files", "removed"
            );
            for entry in lake.history(&table, Some(args.limit)).await? {
                let time = entry.timestamp.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
                let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
                println!(
                    "{:>7}  {:<24} {:<10} {:>12} {:>6} {:>8}  {}",
                    entry.version,
                    time,
                    entry.operation,
                    num(entry.rows_added),
                    num(entry.files_added),
                    num(entry.files_removed),
                    entry.run.unwrap_or_default()
                );
            }
            Ok(())
        }
        LakeCommand::Vacuum(args) => {
            anyhow::ensure!(
                args.force || args.retain >= Duration::from_secs(3600),
                "--retain {} would delete the files of a run that is writing now: use at least 1h, or --force when \
                 no run is writing to the lake",
                humantime::format_duration(args.retain)
            );
            let lake = Lake::open(&args.lake, stores.as_ref())?;
            // Killed runs' staging and uncommitted files first: their own runs are gone.
            for run in lake.recover().await? {
                println!("completed the interrupted commit of run {run}");
            }
            let stale = args.retain.min(funnelpulse_lake::runs::DEFAULT_STALE);
            for swept in lake.sweep_dead_runs(stale).await? {
                println!("{swept}");
            }
            let tables = if args.tables.is_empty() {
                LAKE_TABLES.to_vec()
            } else {
                args.tables.iter().map(|t| known_table(t)).collect::<anyhow::Result<_>>()?
            };
            for table in tables {
                let report = lake.vacuum(&table, args.retain).await?;
                println!("{:<32} {} files deleted", report.table, report.files_deleted);
            }
            Ok(())
        }
        LakeCommand::Convert(args) => {
            let lake = Lake::open(&args.lake, stores.as_ref())?;
            // A commit of the old format that was interrupted is completed first.
            for run in lake.recover().await? {
                println!("completed the interrupted commit of run {run}");
            }
            let mut converted = 0;
            for table in LAKE_TABLES {
                if let Some(files) = lake.convert_legacy(&table).await? {
                    println!("{:<32} converted ({files} data files, version 0)", table.name);
                    converted += 1;
                }
            }
            if converted == 0 {
                println!("nothing to convert: no table of {} is in the format before Delta", lake.url());
            } else {
                println!(
                    "a stream checkpoint of the older version cannot be resumed: start stage 04 over with --reset-stream"
                );
            }
            Ok(())
        }
    }
}

fn known_table(name: &str) -> anyhow::Result<funnelpulse_core::TableSpec> {
    lake_table(name).ok_or_else(|| {
        let names: Vec<&str> = LAKE_TABLES.iter().map(|t| t.name).collect();
        anyhow::anyhow!("unknown table {name:?}: the lake's tables are {}", names.join(", "))
    })
}
