//! Reference registers held in memory, loaded from files, for `ykt check` (which validates
//! without a database) and for tests.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use ykt_files::registry::{
    Loaded, RowProblem, read_card_registry, read_death_register, read_region_table,
};
use ykt_kernel::card::{CardRecord, DeathRecord, RegionEntry};
use ykt_kernel::catalog::Project;
use ykt_kernel::intake::RegionTable;
use ykt_kernel::ports::{CardRegistry, PortError, ReferenceData};
use ykt_kernel::{Period, RegionCode, ResidentId};

/// The region codes shipped for the demos and tests (UTF-8 CSV: 行政区划代码,名称).
pub const DEMO_REGIONS_CSV: &str = include_str!("../data/regions.csv");

/// The shipped region table, parsed.
pub fn demo_regions() -> Vec<RegionEntry> {
    DEMO_REGIONS_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (code, name) = l.split_once(',')?;
            Some(RegionEntry {
                code: RegionCode::parse(code.trim()).ok()?,
                name: name.trim().to_owned(),
            })
        })
        .collect()
}

/// Registers in memory. Lookups never fail.
#[derive(Debug, Default)]
pub struct MemRegisters {
    pub cards: HashMap<String, CardRecord>,
    pub deaths: HashMap<String, DeathRecord>,
    pub regions: HashSet<RegionCode>,
    /// Row problems met while loading the files, with the file they came from.
    pub problems: Vec<(String, RowProblem)>,
}

impl MemRegisters {
    fn keep<T>(&mut self, file: &Path, loaded: Loaded<T>, mut put: impl FnMut(&mut Self, T)) {
        for r in loaded.records {
            put(self, r);
        }
        let name = file.display().to_string();
        self.problems
            .extend(loaded.problems.into_iter().map(|p| (name.clone(), p)));
    }

    pub fn load_cards(
        &mut self,
        file: &Path,
        today: NaiveDate,
    ) -> Result<(), ykt_files::FileError> {
        let l = read_card_registry(file, today)?;
        self.keep(file, l, |s, c| {
            s.cards.insert(c.resident_id.as_str().to_owned(), c);
        });
        Ok(())
    }

    pub fn load_deaths(
        &mut self,
        file: &Path,
        today: NaiveDate,
    ) -> Result<(), ykt_files::FileError> {
        let l = read_death_register(file, today)?;
        self.keep(file, l, |s, d| {
            s.deaths.insert(d.resident_id.as_str().to_owned(), d);
        });
        Ok(())
    }

    pub fn load_regions(&mut self, file: &Path) -> Result<(), ykt_files::FileError> {
        let l = read_region_table(file)?;
        self.keep(file, l, |s, r| {
            s.regions.insert(r.code);
        });
        Ok(())
    }

    pub fn add_regions(&mut self, entries: impl IntoIterator<Item = RegionEntry>) {
        self.regions.extend(entries.into_iter().map(|e| e.code));
    }
}

impl RegionTable for MemRegisters {
    fn contains(&self, code: &RegionCode) -> bool {
        self.regions.contains(code)
    }
}

#[async_trait]
impl CardRegistry for MemRegisters {
    async fn lookup(&self, ids: &[ResidentId]) -> Result<Vec<Option<CardRecord>>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.cards.get(i.as_str()).cloned())
            .collect())
    }
}

#[async_trait]
impl ReferenceData for MemRegisters {
    async fn deaths(&self, ids: &[ResidentId]) -> Result<Vec<Option<DeathRecord>>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.deaths.get(i.as_str()).cloned())
            .collect())
    }
    async fn paid_or_in_flight(
        &self,
        _: &Project,
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<bool>, PortError> {
        Ok(vec![false; keys.len()])
    }
    async fn exclusive(
        &self,
        _: &[&Project],
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<Option<String>>, PortError> {
        Ok(vec![None; keys.len()])
    }
    async fn agreements(&self, ids: &[ResidentId]) -> Result<Vec<bool>, PortError> {
        Ok(vec![false; ids.len()])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_regions_parse_and_nest() {
        let r = super::demo_regions();
        assert!(r.len() > 30);
        let codes: std::collections::HashSet<_> = r.iter().map(|e| e.code.clone()).collect();
        for e in &r {
            if let Some(parent) = e.code.parent() {
                assert!(codes.contains(&parent), "parent of {} missing", e.code);
            }
        }
    }
}
