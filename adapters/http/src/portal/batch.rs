//! Lookups gathered into one query while the database is busy.
//!
//! Under load, most of a lookup's cost is not the database's work (one index probe) but
//! getting there and back: on SQLite, sqlx runs each connection on a thread of its own, so
//! every query is two thread hand-overs; on PostgreSQL, one round trip. The batcher keeps at
//! most `in_flight` queries running; lookups that arrive meanwhile wait in a queue, and the
//! next free slot takes all of them (up to `max_batch`) in one `WHERE person_key IN (...)`
//! query. With no load, a lookup runs at once on its own: the latency of a single lookup is
//! unchanged.
//!
//! Each query slot is a task with a [`LookupReader`]: it keeps its connection while lookups
//! keep coming (giving one back to sqlx's pool costs a ping of it, on SQLite a round trip to
//! its worker thread) and gives it back when the queue is empty.
//!
//! Every lookup, found or not, takes the same path, so batching tells nothing about anyone.

use std::sync::Arc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Mutex, mpsc, oneshot};
use ykt_kernel::ports::LookupRecord;
use ykt_store::Store;
use ykt_store::disclosure::LookupReader;

type Reply = Result<Vec<LookupRecord>, ()>;

struct Job {
    key: String,
    reply: oneshot::Sender<Reply>,
}

/// The queue in front of the store's lookup.
#[derive(Clone)]
pub struct LookupBatcher {
    tx: mpsc::Sender<Job>,
}

/// Lookups waiting beyond this many are refused (the store failing or far too slow).
const QUEUE: usize = 4096;

impl LookupBatcher {
    /// Start the batcher on the current tokio runtime. It stops when the last handle is
    /// dropped.
    pub fn spawn(store: Store, in_flight: usize, max_batch: usize) -> LookupBatcher {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let max_batch = max_batch.clamp(1, 500);
        for _ in 0..in_flight.max(1) {
            let (rx, mut reader) = (rx.clone(), store.lookup_reader());
            tokio::spawn(async move {
                loop {
                    // One slot at a time waits for lookups; the others are busy or wait for
                    // their turn, so lookups arriving meanwhile queue up and go together.
                    let jobs = {
                        let mut rx = rx.lock().await;
                        let first = match rx.try_recv() {
                            Ok(j) => j,
                            Err(TryRecvError::Disconnected) => break,
                            Err(TryRecvError::Empty) => {
                                // Idle: the connection goes back to the pool meanwhile.
                                reader.release();
                                match rx.recv().await {
                                    Some(j) => j,
                                    None => break,
                                }
                            }
                        };
                        let mut jobs = vec![first];
                        while jobs.len() < max_batch {
                            match rx.try_recv() {
                                Ok(j) => jobs.push(j),
                                Err(_) => break,
                            }
                        }
                        jobs
                    };
                    run(&mut reader, jobs).await;
                }
            });
        }
        LookupBatcher { tx }
    }

    /// The records of one lookup key; `Err(())` when the store failed (logged once per
    /// batch).
    pub async fn lookup(&self, key: String) -> Reply {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { key, reply }).await.map_err(|_| ())?;
        rx.await.map_err(|_| ())?
    }
}

async fn run(reader: &mut LookupReader, jobs: Vec<Job>) {
    let mut keys: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();
    let result = reader.lookup_records_many(&keys).await;
    match result {
        Ok(records) => {
            for j in jobs {
                let mine = records
                    .iter()
                    .filter(|r| r.person_key == j.key)
                    .cloned()
                    .collect();
                let _ = j.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, lookups = jobs.len(), "public lookup query failed");
            for j in jobs {
                let _ = j.reply.send(Err(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ykt_kernel::ports::DisclosureChannel;
    use ykt_kernel::{Fen, Period};
    use ykt_store::testing::each_backend;

    /// Many concurrent lookups, some found, some not, some for the same person: each gets
    /// exactly its own records, in the store's order, however they were grouped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_each_get_their_own_records() {
        each_backend("portal_batch", |db| async move {
            let mut recs = Vec::new();
            for p in 0..40u32 {
                for (m, period) in ["2023-04", "2023-05", "2023-06"]
                    .iter()
                    .enumerate()
                    .take((p % 3 + 1) as usize)
                {
                    recs.push(LookupRecord {
                        person_key: format!("k{p:03}"),
                        name_masked: "张*".into(),
                        project_name: "农村最低生活保障金".into(),
                        period: Period::parse(period).expect("period"),
                        amount: Fen(i64::from(p) * 100 + m as i64),
                        date: format!("2023-0{}-01", m + 4),
                        status: "已到账".into(),
                    });
                }
            }
            db.store.publish_records(&recs).await.expect("publish");
            let b = LookupBatcher::spawn(db.store.clone(), 2, 16);
            let mut tasks = Vec::new();
            for i in 0..200u32 {
                let b = b.clone();
                // keys k000..k059: 40 known, 20 unknown, each asked several times
                let key = format!("k{:03}", i % 60);
                tasks.push(tokio::spawn(
                    async move { (key.clone(), b.lookup(key).await) },
                ));
            }
            for t in tasks {
                let (key, got) = t.await.expect("task");
                let got = got.expect("lookup");
                let want = db.store.lookup_records(&key).await.expect("direct");
                assert_eq!(got, want, "{key}");
                let p: u32 = key[1..].parse().expect("n");
                assert_eq!(got.len(), if p < 40 { (p % 3 + 1) as usize } else { 0 });
            }
            // Idle, the query slots keep no connection: the pool closes although the
            // batcher is still there (close waits for every connection to come back).
            tokio::time::timeout(std::time::Duration::from_secs(10), db.store.close())
                .await
                .expect("the idle batcher holds no connection");
            drop(b);
        })
        .await;
    }
}
