//! Queries of the console's overview pages (issue #6): a bounded number of queries however
//! many batches the user's region holds (the dashboard used to ask twice per batch).

use crate::db::{Store, with_pool};
use crate::error::{Result, StoreError};
use std::collections::{BTreeMap, HashMap};
use ykt_kernel::RegionCode;
use ykt_kernel::batch::{LineState, Tally, Totals};
use ykt_kernel::money::Fen;

fn like(within: Option<&RegionCode>) -> String {
    within
        .map(|r| format!("{}%", r.prefix()))
        .unwrap_or_else(|| "%".into())
}

impl Store {
    /// The lines' totals by state of every batch in `within`, summed per batch region, in one
    /// query (`GROUP BY` in SQL).
    pub async fn tallies_by_region(
        &self,
        within: Option<&RegionCode>,
    ) -> Result<BTreeMap<String, Tally>> {
        let like = like(within);
        let rows: Vec<(String, String, i64, i64)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT b.region, l.state, COUNT(*), CAST(COALESCE(SUM(l.amount_fen), 0) AS BIGINT) \
                 FROM payment_lines l JOIN batches b ON b.id = l.batch_id \
                 WHERE b.region LIKE $1 GROUP BY b.region, l.state",
            )
            .bind(&like)
            .fetch_all(p)
            .await?
        });
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for (region, state, n, fen) in rows {
            let s = LineState::parse(&state)
                .ok_or_else(|| StoreError::corrupt("payment_lines.state"))?;
            *out.entry(region).or_default().slot(s) = Totals {
                count: u64::try_from(n).unwrap_or(0),
                amount: Fen(fen),
            };
        }
        Ok(out)
    }

    /// The steps taken on every batch in `within` as `(step, actor)`, oldest first, by batch
    /// id, in one query (what the workflow engine needs to decide the next steps).
    pub async fn step_history_within(
        &self,
        within: Option<&RegionCode>,
    ) -> Result<HashMap<i64, Vec<(String, String)>>> {
        let like = like(within);
        let rows: Vec<(i64, String, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT s.batch_id, s.step, s.actor FROM batch_steps s \
                 JOIN batches b ON b.id = s.batch_id \
                 WHERE b.region LIKE $1 ORDER BY s.batch_id, s.seq",
            )
            .bind(&like)
            .fetch_all(p)
            .await?
        });
        let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for (id, step, actor) in rows {
            out.entry(id).or_default().push((step, actor));
        }
        Ok(out)
    }

    /// The names of the regions of the batches in `within`, by code, in one query.
    pub async fn batch_region_names(
        &self,
        within: Option<&RegionCode>,
    ) -> Result<HashMap<String, String>> {
        let like = like(within);
        let rows: Vec<(String, String)> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT code, name FROM regions WHERE code IN \
                 (SELECT DISTINCT region FROM batches WHERE region LIKE $1)",
            )
            .bind(&like)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().collect())
    }
}
