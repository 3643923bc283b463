//! Reference registers held in memory, loaded from files, for `ykt check` (which validates
//! without a database) and for tests.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use ykt_files::registry::{
    Loaded, RowProblem, for_each_card, read_death_register, read_region_table,
};
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord, RegionEntry};
use ykt_kernel::catalog::Project;
use ykt_kernel::ident::BankAccount;
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

/// The key of a resident ID in [`CardTable`]: its first 17 digits as a number. The 18th
/// character is their check character (GB 11643-1999), and every [`ResidentId`] was checked,
/// so the 17 digits identify the ID.
fn id_key(id: &ResidentId) -> IdKey {
    let b = id.as_bytes();
    let mut first = [0u8; 8];
    let mut second = [0u8; 8];
    first.copy_from_slice(&b[..8]);
    second.copy_from_slice(&b[8..16]);
    let n = eight_digits(first)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(eight_digits(second).wrapping_mul(10))
        .wrapping_add(u64::from(b[16].wrapping_sub(b'0') % 10));
    IdKey([(n >> 32) as u32, n as u32])
}

/// The number eight ASCII digits spell (the first the most significant), in three
/// multiply-add steps over the word instead of eight (the SWAR digit parse of Lemire,
/// "Faster integer parsing", 2018). The 17 digits of a [`ResidentId`] are always digits; for
/// other bytes the result is meaningless but nothing panics.
fn eight_digits(digits: [u8; 8]) -> u64 {
    let v = u64::from_le_bytes(digits).wrapping_sub(0x3030_3030_3030_3030);
    // Each 16-bit lane: 10 × its first digit + its second.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    // Each 32-bit lane: 100 × its first pair + its second, then the two lanes joined.
    let v = (v & 0x0000_00FF_0000_00FF)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)));
    v >> 32
}

/// A [`CardTable`] key: the 17-digit number as two 32-bit halves, so a slot of the index
/// (key and 32-bit arena offset) is 12 bytes, not the 16 a `u64` key's alignment would make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdKey([u32; 2]);

impl std::hash::Hash for IdKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(u64::from(self.0[0]) << 32 | u64::from(self.0[1]));
    }
}

/// Hashes a [`CardTable`] key with the splitmix64 finaliser: one multiply-xor pass instead of
/// SipHash's rounds. The registry is a file of the HR&SS department, not input an attacker
/// chooses, so hash flooding is not a concern here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `IdKey` (it writes one u64); kept lossless for any other key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<IdKey, V, BuildHasherDefault<IdHasher>>;

/// The card registry held compactly, for `ykt check` over a registry of millions of cards.
///
/// A `HashMap<String, CardRecord>` costs about 750 bytes a card (six heap strings and the
/// map's slack): 1.5 GB for two million. Here each card is packed into one shared byte arena
/// (`flags, bank number, name, card number, account`, each text prefixed by its length) and
/// the map holds only `17-digit key → arena offset` (12 bytes a slot); bank names, a handful
/// of distinct texts, are kept once. About 100 bytes a card all told.
///
/// A record that does not fit the packing (a text over 255 bytes, more than 4,096 distinct
/// banks, an arena over 4 GiB) is kept whole in `overflow`; a later record of the same person
/// replaces an earlier one, as the registry file's last row wins.
#[derive(Debug, Default)]
pub struct CardTable {
    index: IdMap<u32>,
    /// The packed cards, in blocks of [`BLOCK`] bytes that are never reallocated (one growing
    /// `Vec` would briefly hold its old and new buffers, 1.5× to 2× the arena, at each
    /// doubling). A card never straddles two blocks; its offset is `block * BLOCK + position`.
    arena: Vec<String>,
    banks: Vec<String>,
    bank_numbers: HashMap<String, u16>,
    overflow: IdMap<CardRecord>,
}

/// A card as [`CardTable`] lends it: borrowed texts, nothing allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardView<'a> {
    pub name: &'a str,
    pub card_no: &'a str,
    pub bank: &'a str,
    /// The account's digits (checked when the card was loaded).
    pub account: &'a str,
    pub status: CardStatus,
    pub activated: bool,
}

/// Bytes per arena block of [`CardTable`].
const BLOCK: usize = 1 << 20;

/// Distinct banks [`CardTable`] numbers (two base-64 digits); a card of a bank beyond them is
/// kept whole.
const MAX_BANKS: u16 = 64 * 64;

const STATUSES: [CardStatus; 4] = [
    CardStatus::Normal,
    CardStatus::Lost,
    CardStatus::Cancelled,
    CardStatus::Frozen,
];

impl CardTable {
    /// Number of people with a card.
    pub fn len(&self) -> usize {
        self.index.len() + self.overflow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Make room for about `cards` cards (avoids growing the index step by step).
    pub fn reserve(&mut self, cards: usize) {
        self.index.reserve(cards.saturating_sub(self.index.len()));
    }

    /// Add a card; a card already held for the same person is replaced.
    pub fn insert(&mut self, c: CardRecord) {
        let key = id_key(&c.resident_id);
        match self.pack(&c) {
            Some(offset) => {
                self.index.insert(key, offset);
                self.overflow.remove(&key);
            }
            None => {
                self.index.remove(&key);
                self.overflow.insert(key, c);
            }
        }
    }

    /// Append `c` to the arena; `None` when it does not fit the packing.
    ///
    /// A card is `flags, bank number, (length, text) × 3`, the numbers written as ASCII
    /// digits of base 16 or 64 from `'0'` (`flags` one, the bank number two, each length
    /// two), so a block is a `String` and [`CardTable::unpack`] slices its texts without a
    /// UTF-8 check.
    fn pack(&mut self, c: &CardRecord) -> Option<u32> {
        let texts = [c.name.as_str(), c.card_no.as_str(), c.account.as_str()];
        if texts.iter().any(|t| t.len() > usize::from(u8::MAX)) {
            return None;
        }
        let size = 3 + texts.iter().map(|t| 2 + t.len()).sum::<usize>();
        if self.arena.last().is_none_or(|b| b.len() + size > BLOCK) {
            self.arena.push(String::with_capacity(BLOCK));
        }
        let blocks = self.arena.len();
        let block_offset = self.arena.last().map_or(0, String::len);
        let offset = u32::try_from((blocks - 1) * BLOCK + block_offset).ok()?;
        let bank = match self.bank_numbers.get(&c.bank) {
            Some(&n) => n,
            None => {
                let n = u16::try_from(self.banks.len())
                    .ok()
                    .filter(|&n| n < MAX_BANKS)?;
                self.banks.push(c.bank.clone());
                self.bank_numbers.insert(c.bank.clone(), n);
                n
            }
        };
        let status = STATUSES.iter().position(|s| *s == c.status).unwrap_or(0) as u8;
        let block = self.arena.last_mut()?;
        let digit = |n: u8| char::from(b'0' + n);
        block.push(digit(status | (u8::from(c.activated) << 2)));
        block.push(digit((bank >> 6) as u8));
        block.push(digit((bank & 63) as u8));
        for t in texts {
            block.push(digit(t.len() as u8 >> 4));
            block.push(digit(t.len() as u8 & 15));
            block.push_str(t);
        }
        Some(offset)
    }

    /// The card of `id`, borrowed.
    pub fn get(&self, id: &ResidentId) -> Option<CardView<'_>> {
        let key = id_key(id);
        match self.index.get(&key) {
            Some(&offset) => self.unpack(offset as usize),
            None => self.overflow.get(&key).map(|c| CardView {
                name: &c.name,
                card_no: &c.card_no,
                bank: &c.bank,
                account: c.account.as_str(),
                status: c.status,
                activated: c.activated,
            }),
        }
    }

    fn unpack(&self, at: usize) -> Option<CardView<'_>> {
        let a = self.arena.get(at / BLOCK)?.get(at % BLOCK..)?;
        let h = a.as_bytes();
        let n = |i: usize| -> Option<usize> { Some(usize::from(h.get(i)?.wrapping_sub(b'0'))) };
        let flags = n(0)?;
        let bank = n(1)? << 6 | n(2)?;
        let mut pos = 3;
        let mut text = || -> Option<&str> {
            let len = n(pos)? << 4 | n(pos + 1)?;
            let t = a.get(pos + 2..pos + 2 + len)?;
            pos += 2 + len;
            Some(t)
        };
        let (name, card_no, account) = (text()?, text()?, text()?);
        Some(CardView {
            name,
            card_no,
            bank: self.banks.get(bank)?,
            account,
            status: STATUSES[flags & 3],
            activated: flags & 4 != 0,
        })
    }

    /// The card of `id` as an owned record.
    pub fn record(&self, id: &ResidentId) -> Option<CardRecord> {
        let v = self.get(id)?;
        Some(CardRecord {
            resident_id: id.clone(),
            name: v.name.to_owned(),
            card_no: v.card_no.to_owned(),
            bank: v.bank.to_owned(),
            // Digits that parsed when the card was loaded parse again.
            account: BankAccount::parse(v.account).ok()?,
            status: v.status,
            activated: v.activated,
        })
    }
}

/// Registers in memory. Lookups never fail.
#[derive(Debug, Default)]
pub struct MemRegisters {
    pub cards: CardTable,
    /// The death register by person (the 17-digit key of [`CardTable`]: no SipHash of the
    /// ID text per line looked up).
    deaths: IdMap<DeathRecord>,
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
        // Streamed straight into the compact table: no list of two million records first.
        let name = file.display().to_string();
        // A registry row is about 70 bytes (GB18030): size the index once, not by doublings.
        if let Ok(m) = std::fs::metadata(file) {
            self.cards
                .reserve(usize::try_from(m.len() / 64).unwrap_or(0).min(50_000_000));
        }
        let (cards, problems) = (&mut self.cards, &mut self.problems);
        for_each_card(file, today, |r| match r {
            Ok(c) => cards.insert(c),
            Err(p) => problems.push((name.clone(), p)),
        })
    }

    pub fn load_deaths(
        &mut self,
        file: &Path,
        today: NaiveDate,
    ) -> Result<(), ykt_files::FileError> {
        let l = read_death_register(file, today)?;
        self.keep(file, l, |s, d| {
            s.deaths.insert(id_key(&d.resident_id), d);
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
        Ok(ids.iter().map(|i| self.cards.record(i)).collect())
    }
}

#[async_trait]
impl ReferenceData for MemRegisters {
    async fn deaths(&self, ids: &[ResidentId]) -> Result<Vec<Option<DeathRecord>>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.deaths.get(&id_key(i)).cloned())
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
    use super::*;

    fn card(id: &str, name: &str, bank: &str, account: &str) -> CardRecord {
        CardRecord {
            resident_id: ResidentId::from_trusted(id).expect("valid test ID"),
            name: name.into(),
            card_no: format!("C{}", &id[10..]),
            bank: bank.into(),
            account: BankAccount::parse(account).expect("valid test account"),
            status: CardStatus::Normal,
            activated: true,
        }
    }

    #[test]
    fn card_table_gives_back_what_was_put_and_the_last_card_wins() {
        let a = card(
            "11010519491231002X",
            "王小明",
            "中国农业银行",
            "6228480012345678901",
        );
        let mut b = card(
            "110105194912310038",
            "阿依·买买提",
            "中国建设银行",
            "621700001234567",
        );
        b.status = CardStatus::Frozen;
        b.activated = false;
        let mut t = CardTable::default();
        t.insert(a.clone());
        t.insert(b.clone());
        assert_eq!(t.len(), 2);
        assert_eq!(t.record(&a.resident_id), Some(a.clone()));
        assert_eq!(t.record(&b.resident_id), Some(b.clone()));
        let v = t.get(&b.resident_id).expect("held");
        assert_eq!(
            (v.name, v.bank, v.status, v.activated),
            ("阿依·买买提", "中国建设银行", CardStatus::Frozen, false)
        );
        // A later row of the same person replaces the card.
        let mut a2 = a.clone();
        a2.bank = "中国建设银行".into();
        a2.status = CardStatus::Lost;
        t.insert(a2.clone());
        assert_eq!(t.len(), 2);
        assert_eq!(t.record(&a.resident_id), Some(a2));
        let other = ResidentId::from_trusted("110105194912310011").expect("valid");
        assert_eq!(t.record(&other), None);
    }

    #[test]
    fn card_table_spans_arena_blocks() {
        // 40,000 cards of about 45 packed bytes: two arena blocks.
        let ids: Vec<String> = (0..40_000u64)
            .map(|n| {
                let body = format!("23010219{:02}0101{:03}", 50 + n / 1000 % 40, n % 1000);
                let b: [u8; 17] = body.as_bytes().try_into().expect("17 digits");
                format!("{body}{}", ResidentId::check_digit(&b))
            })
            .collect();
        let mut t = CardTable::default();
        t.reserve(ids.len());
        for (n, id) in ids.iter().enumerate() {
            t.insert(card(id, "张三", "中国农业银行", &format!("6228480{n:012}")));
        }
        assert!(t.arena.len() >= 2, "{} blocks", t.arena.len());
        assert_eq!(t.len(), 40_000);
        for (n, id) in ids.iter().enumerate() {
            let want = card(id, "张三", "中国农业银行", &format!("6228480{n:012}"));
            assert_eq!(t.record(&want.resident_id), Some(want));
        }
    }

    #[test]
    fn card_table_round_trips_statuses_lengths_and_many_banks() {
        let ids: Vec<String> = (0..4_200u64)
            .map(|n| {
                let body = format!("23010219{:02}0101{:03}", 50 + n / 1000 % 40, n % 1000);
                let b: [u8; 17] = body.as_bytes().try_into().expect("17 digits");
                format!("{body}{}", ResidentId::check_digit(&b))
            })
            .collect();
        let mut t = CardTable::default();
        let mut want = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            // Every bank distinct: beyond MAX_BANKS the cards are kept whole.
            let mut c = card(id, "张三", &format!("银行{n}"), &format!("6228480{n:012}"));
            c.status = STATUSES[n % 4];
            c.activated = n % 3 != 0;
            // Names of every length up to 255 bytes (85 three-byte characters).
            c.name = "阿".repeat(n % 86);
            c.card_no = "C".repeat(n % 256);
            t.insert(c.clone());
            want.push(c);
        }
        assert_eq!(t.len(), 4_200);
        assert_eq!(t.overflow.len(), 4_200 - usize::from(MAX_BANKS));
        for c in &want {
            assert_eq!(t.record(&c.resident_id).as_ref(), Some(c));
        }
    }

    #[test]
    fn card_table_keeps_records_too_long_to_pack() {
        let mut long = card("11010519491231002X", "王", "银行", "6228480012345678901");
        long.card_no = "9".repeat(300);
        let mut t = CardTable::default();
        t.insert(long.clone());
        assert_eq!(t.record(&long.resident_id), Some(long.clone()));
        // Replaced by a packable card, then by a long one again: one card per person.
        let short = card("11010519491231002X", "李", "银行", "6228480012345678901");
        t.insert(short.clone());
        assert_eq!((t.len(), t.record(&short.resident_id)), (1, Some(short)));
        t.insert(long.clone());
        assert_eq!((t.len(), t.record(&long.resident_id)), (1, Some(long)));
    }

    #[test]
    fn id_key_is_the_seventeen_digits_as_a_number() {
        for body in [
            "00000000000000000",
            "99999999999999999",
            "23010219300101002",
            "11010519491231002",
            "12345678901234567",
        ] {
            let b: [u8; 17] = body.as_bytes().try_into().expect("17 digits");
            let id = ResidentId::from_trusted(&format!("{body}{}", ResidentId::check_digit(&b)));
            let Ok(id) = id else { continue };
            let n: u64 = body.parse().expect("digits");
            assert_eq!(id_key(&id), IdKey([(n >> 32) as u32, n as u32]), "{body}");
        }
        for n in (0..100_000_000_000_000_000u64).step_by(7_919_000_000_013) {
            let digits = format!("{n:017}");
            assert_eq!(
                eight_digits(digits.as_bytes()[..8].try_into().unwrap()),
                n / 1_000_000_000
            );
            assert_eq!(
                eight_digits(digits.as_bytes()[8..16].try_into().unwrap()),
                n / 10 % 100_000_000
            );
        }
    }

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
