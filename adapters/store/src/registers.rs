//! The reference registers rosters are checked against: regions, the card registry snapshot
//! and the death register (`ykt_kernel::card`).
//!
//! Resident IDs, card numbers and accounts are stored encrypted with a blind index (see
//! [`crate::vault`]); a lookup computes the blind indexes of the asked IDs and decrypts what
//! it finds. Names, banks and statuses are stored in clear: lookups return them and they are
//! not identifiers on their own.

use crate::db::{Backend, Pool, Store, with_pool};
use crate::error::{Result, StoreError};
use crate::imports::{BulkSpec, ImportMeta, ImportOutcome, Val};
use crate::vault::{BlindIndex, IndexKind, Vault};
use std::collections::HashMap;
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord, RegionEntry};
use ykt_kernel::ident::{BankAccount, RegionCode, RegionLevel, ResidentId};

/// Largest `IN (...)` list in one lookup query (SQLite's historical limit is 999 parameters).
pub(crate) const MAX_IN_LIST: usize = 900;

/// The size a lookup of `n` keys is padded to (repeating the last key), so only a handful of
/// distinct statements reach the prepared-statement cache.
pub(crate) fn in_list_bucket(n: usize) -> usize {
    [1, 4, 16, 64, 256, MAX_IN_LIST]
        .into_iter()
        .find(|&b| b >= n)
        .unwrap_or(MAX_IN_LIST)
}

/// `keys` followed by their last one repeated, [`in_list_bucket`]`(keys.len())` values in all:
/// what to bind to an `IN` list of that many placeholders.
pub(crate) fn padded<T: Copy>(keys: &[T]) -> impl Iterator<Item = T> + '_ {
    keys.iter()
        .copied()
        .chain(keys.last().copied().into_iter().cycle())
        .take(in_list_bucket(keys.len()))
}

/// `$first, $first+1, ...` for `n` placeholders: works on both backends. On SQLite each `$N`
/// costs a linear scan when binding, so a statement with thousands of `$N` binds in quadratic
/// time; for long lists in a statement without other parameters use [`list_placeholders`].
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for a statement whose only parameters are these `n`, bound in order:
/// anonymous `?, ?, ...` on SQLite (binding stays linear, see [`placeholders`]), `$1, ...,
/// $n` on PostgreSQL. Never mix with `$N` parameters in the same statement: sqlx numbers
/// anonymous parameters separately.
pub(crate) fn list_placeholders(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(1, n),
        Backend::Sqlite => vec!["?"; n].join(", "),
    }
}

/// The `VALUES` list of a multi-row `INSERT` of `rows` rows of `cols` columns, the only
/// parameters of the statement: `(?, ?), (?, ?)` on SQLite (see [`placeholders`] for why not
/// `$N`), `($1, $2), ($3, $4)` on PostgreSQL.
pub(crate) fn values_placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 4);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        match backend {
            Backend::Postgres => out.push_str(&placeholders(r * cols + 1, cols)),
            Backend::Sqlite => out.push_str(&vec!["?"; cols].join(", ")),
        }
        out.push(')');
    }
    out
}

fn level_str(level: RegionLevel) -> &'static str {
    match level {
        RegionLevel::Province => "province",
        RegionLevel::City => "city",
        RegionLevel::County => "county",
        RegionLevel::Township => "township",
        RegionLevel::Village => "village",
    }
}

const REGIONS: BulkSpec = BulkSpec {
    stage: "regions_stage",
    columns: &["code", "prefix", "level", "name"],
    stage_defs_sqlite: "code TEXT PRIMARY KEY, prefix TEXT NOT NULL, level TEXT NOT NULL, name TEXT NOT NULL",
    stage_defs_pg: "code TEXT PRIMARY KEY, prefix TEXT NOT NULL, level TEXT NOT NULL, name TEXT NOT NULL",
    // Regions keep no provenance columns; the WHERE uses the import id and time only so the
    // statement takes the same two parameters as every merge.
    merge: "INSERT INTO regions (code, prefix, level, name) \
            SELECT code, prefix, level, name FROM regions_stage \
            WHERE $1 IS NOT NULL AND $2 IS NOT NULL \
            ON CONFLICT (code) DO UPDATE SET prefix = excluded.prefix, level = excluded.level, \
            name = excluded.name",
};

const CARDS: BulkSpec = BulkSpec {
    stage: "cards_stage",
    columns: &[
        "person_idx",
        "id_enc",
        "name",
        "card_no_enc",
        "bank",
        "account_enc",
        "account_idx",
        "status",
        "activated",
    ],
    stage_defs_sqlite: "person_idx BLOB PRIMARY KEY, id_enc BLOB NOT NULL, name TEXT NOT NULL, \
        card_no_enc BLOB NOT NULL, bank TEXT NOT NULL, account_enc BLOB NOT NULL, \
        account_idx BLOB NOT NULL, status TEXT NOT NULL, activated INTEGER NOT NULL",
    stage_defs_pg: "person_idx BYTEA PRIMARY KEY, id_enc BYTEA NOT NULL, name TEXT NOT NULL, \
        card_no_enc BYTEA NOT NULL, bank TEXT NOT NULL, account_enc BYTEA NOT NULL, \
        account_idx BYTEA NOT NULL, status TEXT NOT NULL, activated BIGINT NOT NULL",
    merge: "INSERT INTO cards (person_idx, id_enc, name, card_no_enc, bank, account_enc, \
            account_idx, status, activated, import_id, imported_at) \
            SELECT person_idx, id_enc, name, card_no_enc, bank, account_enc, account_idx, \
            status, activated, $1, $2 FROM cards_stage WHERE true \
            ON CONFLICT (person_idx) DO UPDATE SET id_enc = excluded.id_enc, \
            name = excluded.name, card_no_enc = excluded.card_no_enc, bank = excluded.bank, \
            account_enc = excluded.account_enc, account_idx = excluded.account_idx, \
            status = excluded.status, activated = excluded.activated, \
            import_id = excluded.import_id, imported_at = excluded.imported_at",
};

const DEATHS: BulkSpec = BulkSpec {
    stage: "deaths_stage",
    columns: &["person_idx", "id_enc", "name", "date_of_death"],
    stage_defs_sqlite: "person_idx BLOB PRIMARY KEY, id_enc BLOB NOT NULL, name TEXT NOT NULL, \
        date_of_death TEXT NOT NULL",
    stage_defs_pg: "person_idx BYTEA PRIMARY KEY, id_enc BYTEA NOT NULL, name TEXT NOT NULL, \
        date_of_death TEXT NOT NULL",
    merge: "INSERT INTO deaths (person_idx, id_enc, name, date_of_death, import_id, imported_at) \
            SELECT person_idx, id_enc, name, date_of_death, $1, $2 FROM deaths_stage WHERE true \
            ON CONFLICT (person_idx) DO UPDATE SET id_enc = excluded.id_enc, \
            name = excluded.name, date_of_death = excluded.date_of_death, \
            import_id = excluded.import_id, imported_at = excluded.imported_at",
};

/// Associated data binding an encrypted field to its column and row (the person's blind
/// index): a ciphertext copied into another column or row no longer decrypts.
pub(crate) fn aad(column: &str, person_idx: &BlindIndex) -> Vec<u8> {
    let mut a = Vec::with_capacity(column.len() + 1 + person_idx.len());
    a.extend_from_slice(column.as_bytes());
    a.push(0);
    a.extend_from_slice(person_idx);
    a
}

/// The rows of `head` (a `SELECT ... WHERE ... person_idx` missing only its key test) for
/// every key of `keys`, with `first` (if any) bound as the statement's first parameter.
///
/// ONE statement on either backend (a roster chunk's 4,096 keys in one round trip and one
/// plan, instead of five 900-key `IN` lists each bound with 900 parameters):
///
/// - PostgreSQL: `head = ANY($n)` with all keys as one `bytea[]` parameter;
/// - SQLite (no array parameter): `head IN (SELECT unhex(value) FROM json_each(?))` with the
///   keys as one JSON array of hex texts. SQLite reads the subquery into a sorted ephemeral
///   index and probes the key's index once per distinct key, as it did for the `IN` lists
///   (`EXPLAIN QUERY PLAN`: `SEARCH ... USING INDEX ... (person_idx=?)`, `LIST SUBQUERY`).
pub(crate) async fn rows_by_person<T>(
    store: &Store,
    head: &str,
    first: Option<&str>,
    keys: &[BlindIndex],
) -> Result<Vec<T>>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    match &store.pool {
        Pool::Postgres(p) => {
            let sql = format!("{head} = ANY(${})", if first.is_some() { 2 } else { 1 });
            let mut q = sqlx::query_as::<_, T>(&sql);
            if let Some(f) = first {
                q = q.bind(f);
            }
            Ok(q.bind(keys).fetch_all(p).await?)
        }
        Pool::Sqlite(p) => {
            let sql = format!("{head} IN (SELECT unhex(value) FROM json_each(?))");
            let mut q = sqlx::query_as::<_, T>(&sql);
            if let Some(f) = first {
                q = q.bind(f);
            }
            // Given back to the pool before returning, not by a task spawned when it drops
            // (what `fetch_all(pool)` does): the next lookup of the chunk finds it idle
            // instead of opening another connection. An import's lookups follow one another,
            // and with the deferred return they went round seven connections, seven page
            // caches of random card pages (8 MiB each then: 56 MiB) where one serves.
            let mut conn = p.acquire().await?;
            let rows = q.bind(hex_json_array(keys)).fetch_all(&mut *conn).await?;
            conn.return_to_pool().await;
            Ok(rows)
        }
    }
}

/// `["00ff...", ...]`: the keys as a JSON array of lower-case hex texts (what SQLite's
/// `json_each` and `unhex` read back into the keys' bytes).
fn hex_json_array(keys: &[BlindIndex]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + keys.len() * (2 * crate::vault::INDEX_LEN + 3));
    out.push('[');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for b in k {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out.push('"');
    }
    out.push(']');
    out
}

pub(crate) fn open_str(
    vault: &Vault,
    column: &str,
    person_idx: &BlindIndex,
    sealed: &[u8],
) -> Result<String> {
    let plain = vault.open(&aad(column, person_idx), sealed)?;
    String::from_utf8(plain).map_err(|_| StoreError::Decrypt)
}

fn card_row(vault: &Vault, c: CardRecord) -> Vec<Val> {
    let idx = vault.blind_index(IndexKind::ResidentId, c.resident_id.as_str());
    vec![
        Val::Blob(idx.to_vec()),
        Val::Blob(vault.seal(&aad("cards.id", &idx), c.resident_id.as_str().as_bytes())),
        Val::Text(c.name),
        Val::Blob(vault.seal(&aad("cards.card_no", &idx), c.card_no.as_bytes())),
        Val::Text(c.bank),
        Val::Blob(vault.seal(&aad("cards.account", &idx), c.account.as_str().as_bytes())),
        Val::Blob(
            vault
                .blind_index(IndexKind::Account, c.account.as_str())
                .to_vec(),
        ),
        Val::Text(c.status.as_str().to_owned()),
        Val::Int(i64::from(c.activated)),
    ]
}

fn death_row(vault: &Vault, d: DeathRecord) -> Vec<Val> {
    let idx = vault.blind_index(IndexKind::ResidentId, d.resident_id.as_str());
    vec![
        Val::Blob(idx.to_vec()),
        Val::Blob(vault.seal(&aad("deaths.id", &idx), d.resident_id.as_str().as_bytes())),
        Val::Text(d.name),
        Val::Text(d.date_of_death.format("%Y-%m-%d").to_string()),
    ]
}

/// One answer per key of `idxs`, in order, moving the records out of `found`; a key asked
/// again (a duplicate line) gets a copy of its first answer.
fn take_in_order<T: Clone>(
    idxs: &[BlindIndex],
    mut found: HashMap<BlindIndex, T>,
) -> Vec<Option<T>> {
    let mut out: Vec<Option<T>> = Vec::with_capacity(idxs.len());
    let mut first: HashMap<BlindIndex, usize> = HashMap::new();
    for (pos, i) in idxs.iter().enumerate() {
        match found.remove(i) {
            Some(t) => {
                first.insert(*i, pos);
                out.push(Some(t));
            }
            None => {
                let again = first.get(i).and_then(|&p| out[p].clone());
                out.push(again);
            }
        }
    }
    out
}

fn to_index(bytes: &[u8], table: &str) -> Result<BlindIndex> {
    BlindIndex::try_from(bytes).map_err(|_| StoreError::corrupt(format!("{table}.person_idx")))
}

/// Re-read a decrypted resident ID and check it is the one the row is indexed under.
fn resident_id_of(vault: &Vault, plain: &str, idx: &BlindIndex, table: &str) -> Result<ResidentId> {
    let id = ResidentId::from_trusted(plain)
        .map_err(|_| StoreError::corrupt(format!("{table}.id_enc")))?;
    if &vault.blind_index(IndexKind::ResidentId, id.as_str()) != idx {
        return Err(StoreError::corrupt(format!("{table}.person_idx")));
    }
    Ok(id)
}

type CardTuple = (
    Vec<u8>,
    Vec<u8>,
    String,
    Vec<u8>,
    String,
    Vec<u8>,
    String,
    i64,
);
type DeathTuple = (Vec<u8>, Vec<u8>, String, String);

impl Store {
    // ----- regions -------------------------------------------------------------------------

    /// Load the region table (upsert by code; a later import renames). Same content twice:
    /// [`ImportOutcome::AlreadyImported`].
    pub async fn import_regions<I, E>(&self, entries: I, meta: ImportMeta) -> Result<ImportOutcome>
    where
        I: IntoIterator<Item = Result<RegionEntry, E>>,
        I::IntoIter: Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        self.bulk_import(&REGIONS, &meta, entries, |e: RegionEntry| {
            Ok(vec![
                Val::Text(e.code.full()),
                Val::Text(e.code.prefix().to_owned()),
                Val::Text(level_str(e.code.level()).to_owned()),
                Val::Text(e.name),
            ])
        })
        .await
    }

    /// Whether `code` is in the region table.
    pub async fn region_exists(&self, code: &RegionCode) -> Result<bool> {
        Ok(self.region_name(code).await?.is_some())
    }

    /// The name of `code`, if it is in the region table.
    pub async fn region_name(&self, code: &RegionCode) -> Result<Option<String>> {
        let full = code.full();
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar::<_, String>("SELECT name FROM regions WHERE code = $1")
                .bind(&full)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The whole region table, ordered by code (ancestors before descendants).
    pub async fn all_regions(&self) -> Result<Vec<RegionEntry>> {
        let rows = with_pool!(self, |p| {
            sqlx::query_as::<_, (String, String)>("SELECT code, name FROM regions ORDER BY code")
                .fetch_all(p)
                .await?
        });
        rows.into_iter()
            .map(|(code, name)| {
                let code =
                    RegionCode::parse(&code).map_err(|_| StoreError::corrupt("regions.code"))?;
                Ok(RegionEntry { code, name })
            })
            .collect()
    }

    // ----- card registry -------------------------------------------------------------------

    /// Load a card registry snapshot: one transaction, streaming, all or nothing (see
    /// [`crate::imports`]). A newer snapshot replaces the card of a person already present;
    /// the same person twice in one snapshot is a [`StoreError::Conflict`].
    pub async fn import_cards<I, E>(&self, records: I, meta: ImportMeta) -> Result<ImportOutcome>
    where
        I: IntoIterator<Item = Result<CardRecord, E>>,
        I::IntoIter: Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let vault = self.vault.clone();
        self.bulk_import(&CARDS, &meta, records, move |c| Ok(card_row(&vault, c)))
            .await
    }

    /// The cards of `ids`, in the same order (`None`: no card in the registry).
    pub async fn lookup_cards(&self, ids: &[ResidentId]) -> Result<Vec<Option<CardRecord>>> {
        let idxs: Vec<BlindIndex> = ids
            .iter()
            .map(|id| self.vault.blind_index(IndexKind::ResidentId, id.as_str()))
            .collect();
        let rows: Vec<CardTuple> = rows_by_person(
            self,
            "SELECT person_idx, id_enc, name, card_no_enc, bank, account_enc, status, activated \
             FROM cards WHERE person_idx",
            None,
            &idxs,
        )
        .await?;
        let mut found: HashMap<BlindIndex, CardRecord> = HashMap::with_capacity(rows.len());
        for row in rows {
            let (idx, card) = self.decode_card(row)?;
            found.insert(idx, card);
        }
        Ok(take_in_order(&idxs, found))
    }

    fn decode_card(&self, row: CardTuple) -> Result<(BlindIndex, CardRecord)> {
        let (person_idx, id_enc, name, card_no_enc, bank, account_enc, status, activated) = row;
        let v = &self.vault;
        let idx = to_index(&person_idx, "cards")?;
        let id = open_str(v, "cards.id", &idx, &id_enc)?;
        let resident_id = resident_id_of(v, &id, &idx, "cards")?;
        let card_no = open_str(v, "cards.card_no", &idx, &card_no_enc)?;
        let account = open_str(v, "cards.account", &idx, &account_enc)?;
        let account =
            BankAccount::parse(&account).map_err(|_| StoreError::corrupt("cards.account_enc"))?;
        let status =
            CardStatus::parse(&status).ok_or_else(|| StoreError::corrupt("cards.status"))?;
        let activated = match activated {
            0 => false,
            1 => true,
            _ => return Err(StoreError::corrupt("cards.activated")),
        };
        Ok((
            idx,
            CardRecord {
                resident_id,
                name,
                card_no,
                bank,
                account,
                status,
                activated,
            },
        ))
    }

    /// Number of cards in the registry snapshot.
    pub async fn card_count(&self) -> Result<i64> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cards")
                .fetch_one(p)
                .await?
        }))
    }

    // ----- death register ------------------------------------------------------------------

    /// Load the death register (same rules as [`Store::import_cards`]).
    pub async fn import_deaths<I, E>(&self, records: I, meta: ImportMeta) -> Result<ImportOutcome>
    where
        I: IntoIterator<Item = Result<DeathRecord, E>>,
        I::IntoIter: Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let vault = self.vault.clone();
        self.bulk_import(&DEATHS, &meta, records, move |d| Ok(death_row(&vault, d)))
            .await
    }

    /// The death register entries of `ids`, in the same order.
    pub async fn lookup_deaths(&self, ids: &[ResidentId]) -> Result<Vec<Option<DeathRecord>>> {
        let idxs: Vec<BlindIndex> = ids
            .iter()
            .map(|id| self.vault.blind_index(IndexKind::ResidentId, id.as_str()))
            .collect();
        let rows: Vec<DeathTuple> = rows_by_person(
            self,
            "SELECT person_idx, id_enc, name, date_of_death FROM deaths WHERE person_idx",
            None,
            &idxs,
        )
        .await?;
        let mut found: HashMap<BlindIndex, DeathRecord> = HashMap::with_capacity(rows.len());
        for (person_idx, id_enc, name, date) in rows {
            let idx = to_index(&person_idx, "deaths")?;
            let id = open_str(&self.vault, "deaths.id", &idx, &id_enc)?;
            let resident_id = resident_id_of(&self.vault, &id, &idx, "deaths")?;
            let date_of_death = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .map_err(|_| StoreError::corrupt("deaths.date_of_death"))?;
            found.insert(
                idx,
                DeathRecord {
                    resident_id,
                    name,
                    date_of_death,
                },
            );
        }
        Ok(idxs.iter().map(|i| found.get(i).cloned()).collect())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn padded_repeats_the_last_key_to_the_bucket() {
        assert_eq!(super::padded::<i64>(&[]).count(), 0);
        assert_eq!(super::padded(&[7]).collect::<Vec<_>>(), [7]);
        assert_eq!(super::padded(&[1, 2]).collect::<Vec<_>>(), [1, 2, 2, 2]);
        let many: Vec<i64> = (0..17).collect();
        let p: Vec<i64> = super::padded(&many).collect();
        assert_eq!(p.len(), 64);
        assert_eq!(
            (&p[..17], p[17..].iter().all(|&k| k == 16)),
            (&many[..], true)
        );
    }

    use super::*;

    #[test]
    fn answers_in_order_with_duplicates() {
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        let found: HashMap<BlindIndex, &str> = [(a, "a"), (b, "b")].into_iter().collect();
        assert_eq!(
            take_in_order(&[b, c, a, b, b], found),
            vec![Some("b"), None, Some("a"), Some("b"), Some("b")]
        );
    }

    #[test]
    fn buckets() {
        assert_eq!(in_list_bucket(1), 1);
        assert_eq!(in_list_bucket(2), 4);
        assert_eq!(in_list_bucket(17), 64);
        assert_eq!(in_list_bucket(900), 900);
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(list_placeholders(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(list_placeholders(Backend::Sqlite, 3), "?, ?, ?");
        assert_eq!(values_placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(
            values_placeholders(Backend::Postgres, 2, 2),
            "($1, $2), ($3, $4)"
        );
    }
}
