//! `blastwall audit verify|show|export|bench`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use blastwall::audit::{AuditError, AuditLog, Entry};

/// `blastwall audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole chain and its signed head; exit 1 naming the first bad record.
    Verify {
        /// The data directory holding blastwall.db.
        #[arg(long, default_value = "blastwall-data")]
        data: PathBuf,
    },
    /// Print every record of one incident, in order (JSON lines).
    Show {
        /// The data directory holding blastwall.db.
        #[arg(long, default_value = "blastwall-data")]
        data: PathBuf,
        /// The incident id.
        incident: String,
    },
    /// Export records as JSON lines, oldest first.
    Export {
        /// The data directory holding blastwall.db.
        #[arg(long, default_value = "blastwall-data")]
        data: PathBuf,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Measure durable append throughput and verification speed on a scratch store.
    Bench {
        /// The data directory to write (use a scratch directory).
        #[arg(long)]
        data: PathBuf,
        /// Records to append.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Concurrent appenders (each waits for its record to be durable).
        #[arg(long, default_value_t = 256)]
        writers: u64,
        /// Print `acked N` after every N acknowledged records (crash tests read it).
        #[arg(long, default_value_t = 0)]
        progress: u64,
    },
}

fn print_records(records: &[blastwall::audit::Record]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for record in records {
        writeln!(out, "{}", blastwall::text::to_json(record)?)?;
    }
    Ok(())
}

/// Runs `blastwall audit ...`.
pub async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { data } => {
            let log = AuditLog::open(&data).await?;
            let started = Instant::now();
            match log.verify().await {
                Ok(v) => {
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "ok: {} records intact, head {} ({:.2} s, {:.0} records/s)",
                        v.records,
                        if v.head_hash.is_empty() {
                            "empty"
                        } else {
                            &v.head_hash
                        },
                        secs,
                        v.records as f64 / secs.max(1e-9)
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(AuditError::Tampered(e)) => {
                    println!("tampered: {e}");
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        AuditCommand::Show { data, incident } => {
            let log = AuditLog::open(&data).await?;
            let records = log.incident(&incident).await?;
            if records.is_empty() {
                anyhow::bail!("no audit records for incident {incident:?}");
            }
            print_records(&records)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { data, after } => {
            let log = AuditLog::open(&data).await?;
            let mut after = after;
            loop {
                let page = log.records(after, 10_000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                print_records(&page)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Bench {
            data,
            records,
            writers,
            progress,
        } => bench(data, records, writers.max(1), progress).await,
    }
}

async fn bench(
    data: PathBuf,
    records: u64,
    writers: u64,
    progress: u64,
) -> anyhow::Result<ExitCode> {
    let log = AuditLog::open(&data).await?;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < records {
                let entry = Entry {
                    incident: Some(format!("inc-{}", i % 1000)),
                    kind: "call".into(),
                    body: serde_json::json!({"function": "scale.set-replicas", "target": "deployment/prod/checkout", "replicas": i % 20, "result": "ok"}),
                };
                log.append(entry).await?;
                let n = acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if progress > 0 && n.is_multiple_of(progress) {
                    // Printed only after the record is durable: a crash test may rely on it.
                    println!("acked {n}");
                    let _ = std::io::stdout().flush();
                }
                i += writers;
            }
            Ok::<_, AuditError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let append_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let verified = log.verify().await?;
    let verify_secs = started.elapsed().as_secs_f64();
    println!(
        "append: {records} durable records in {append_secs:.2} s = {:.0} records/s ({writers} concurrent writers, group commit)",
        records as f64 / append_secs
    );
    println!(
        "verify: {} records in {verify_secs:.2} s = {:.0} records/s",
        verified.records,
        verified.records as f64 / verify_secs
    );
    Ok(ExitCode::SUCCESS)
}
