//! `ykt demo`: generate a realistic synthetic data set for a province (region table, card
//! registry, death register, a roster with a realistic mix of errors), import it into the
//! configured database (the embedded SQLite by default) and run intake on it: validate,
//! match, cross-check, form batches. Prints a summary and writes the files and the error
//! report to `--out`.
//!
//! Everything is derived from `--seed`: the same seed gives the same files, and importing the
//! same files again changes nothing (imports are identified by content).

use crate::cli::{open_store, write_reports};
use crate::config::Config;
use crate::intake::{self, ImportResult, Request};
use crate::output;
use crate::registers::{MemRegisters, demo_regions};
use anyhow::{Context, anyhow};
use clap::Args;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use ykt_files::Cell;
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord, RegionEntry};
use ykt_kernel::intake::ProxyKind;
use ykt_kernel::province::Province;
use ykt_kernel::{BankAccount, Fen, Period, RegionCode, RegionLevel, ResidentId, Role};
use ykt_store::{ImportMeta, Store, UserRow, kinds, ok_rows};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Province to run (default: every province compiled in, one after another).
    #[arg(long)]
    pub province: Option<String>,
    /// Roster lines to generate per province.
    #[arg(long, default_value_t = 240)]
    pub lines: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,
    /// Where to write the generated files and reports.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Afterwards keep serving the console (`ykt serve`) on the demo's data until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
}

/// The console password of every demo user. DEMO ONLY: it is printed by `ykt demo` and
/// must never be used for a real account.
pub const DEMO_PASSWORD: &str = "ykt-demo-2023";

/// The demo's current period and the project it pays (rural minimum living allowance, a
/// monthly, household-based project every province has).
pub const DEMO_PERIOD: &str = "2023-05";
pub const DEMO_PROJECT: &str = "农村最低生活保障金";

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "玉兰", "建国", "淑珍", "德福", "凤英",
    "䶮",
];
/// Card banks with a BIN of their debit cards.
const BANKS: &[(&str, &str)] = &[
    ("中国农业银行", "622848"),
    ("中国工商银行", "622202"),
    ("中国建设银行", "621700"),
    ("中国银行", "621661"),
    ("中国邮政储蓄银行", "621799"),
    ("农村商业银行", "623190"),
];

/// A generated person.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    name: String,
    phone: String,
    village: RegionCode,
    bank: &'static str,
    account: String,
}

fn luhn_complete(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ykt_kernel::ident::luhn_valid(s))
        .unwrap_or_else(|| format!("{body}0"))
}

/// Birth-date slots (1930-2005, days 1-28) a unique ID can use: 76 years × 12 × 28.
const BIRTH_SLOTS: u64 = 76 * 12 * 28;
/// Most people a generator with unique IDs can make (1000 sequence numbers per slot).
pub(crate) const MAX_UNIQUE_PEOPLE: usize = 1000 * BIRTH_SLOTS as usize;

/// The IDs (first 17 digits) a generator has handed out, so a random birth date that repeats
/// an earlier person's ID moves to a free one.
type Taken = std::collections::HashSet<[u8; 17]>;

/// Person number `seq` living in `village`. With `unique`, the birth date and sequence number
/// are derived from `seq` so no two people share an ID; the random draws are made either way.
/// Without it the birth date is random, and `taken` keeps it unique: once a county has more
/// than a few thousand people, random birth dates with the same sequence number repeat (two
/// people with one ID, which the registry import refuses); a repeat moves to the next free
/// birth date in a fixed stride, so small demos (no repeat) keep their files.
fn person(
    rng: &mut StdRng,
    village: &RegionCode,
    seq: u32,
    unique: bool,
    taken: &mut Taken,
) -> Person {
    let county = village
        .county()
        .map(|c| c.prefix().to_owned())
        .unwrap_or_else(|| village.prefix()[..6.min(village.prefix().len())].to_owned());
    // i32 draws: the type decides how `gen_range` consumes the generator, and the demo's
    // files must not change.
    let year: i32 = rng.gen_range(1930..=2005);
    let month: i32 = rng.gen_range(1..=12);
    let day: i32 = rng.gen_range(1..=28);
    let (year, month, day) = if unique {
        // 7919 is prime to BIRTH_SLOTS: consecutive thousands land on distinct, spread slots.
        let slot = (u64::from(seq / 1000) * 7919) % BIRTH_SLOTS;
        let part = |v: u64| i32::try_from(v).unwrap_or(0);
        (
            1930 + part(slot / 336),
            1 + part((slot % 336) / 28),
            1 + part(slot % 28),
        )
    } else {
        (year, month, day)
    };
    let mut body = format!("{county:0<6}{year:04}{month:02}{day:02}{:03}", seq % 1000);
    let mut b: [u8; 17] = body.as_bytes().try_into().unwrap_or([b'0'; 17]);
    if !unique {
        let start = u64::try_from((year - 1930) * 336 + (month - 1) * 28 + (day - 1)).unwrap_or(0);
        let mut slot = start;
        while taken.contains(&b) {
            slot = (slot + 7919) % BIRTH_SLOTS;
            if slot == start {
                break; // every birth date taken for this county and number: keep the repeat
            }
            let part = |v: u64| i32::try_from(v).unwrap_or(0);
            let (y, m, d) = (
                1930 + part(slot / 336),
                1 + part((slot % 336) / 28),
                1 + part(slot % 28),
            );
            body = format!("{county:0<6}{y:04}{m:02}{d:02}{:03}", seq % 1000);
            b = body.as_bytes().try_into().unwrap_or([b'0'; 17]);
        }
        taken.insert(b);
    }
    let id = format!("{body}{}", ResidentId::check_digit(&b));
    let (bank, bin) = BANKS[rng.gen_range(0..BANKS.len())];
    let account = luhn_complete(&format!(
        "{bin}{:012}",
        rng.gen_range(0..1_000_000_000_000u64)
    ));
    let name = format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    );
    let phone = format!(
        "1{}{:09}",
        rng.gen_range(3..=9),
        rng.gen_range(0..1_000_000_000u64)
    );
    Person {
        id,
        name,
        phone,
        village: village.clone(),
        bank,
        account,
    }
}

/// The generated data set of one province.
pub struct DataSet {
    pub dir: PathBuf,
    pub regions: PathBuf,
    pub registry: PathBuf,
    pub deaths: PathBuf,
    pub roster: PathBuf,
    /// People with a custody agreement on record.
    pub agreements: Vec<(String, String)>,
}

/// The region prefix the demo uses for each province.
pub(crate) fn province_prefix(code: &str) -> &'static str {
    match code {
        "sichuan" => "51",
        "henan" => "41",
        _ => "23",
    }
}

/// The defect a generated roster line carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Defect {
    None,
    NoCard,
    Inactive,
    Lost,
    NameMismatch,
    Checksum,
    ShortId,
    NumericId,
    BadPhone,
    UnknownRegion,
    OldPeriod,
    RecentPeriod,
    BadAmount,
    ZeroAmount,
    DupInFile,
    Deceased,
    Legacy15,
    NotHead,
    ProxyNoAgreement,
    ProxyWithAgreement,
}

/// The realistic error mix: the share of lines carrying each defect.
const MIX: &[(Defect, f64)] = &[
    (Defect::NoCard, 0.015),
    (Defect::Inactive, 0.02),
    (Defect::Lost, 0.005),
    (Defect::NameMismatch, 0.006),
    (Defect::Checksum, 0.006),
    (Defect::ShortId, 0.003),
    (Defect::NumericId, 0.004),
    (Defect::BadPhone, 0.01),
    (Defect::UnknownRegion, 0.004),
    (Defect::OldPeriod, 0.005),
    (Defect::RecentPeriod, 0.03),
    (Defect::BadAmount, 0.003),
    (Defect::ZeroAmount, 0.002),
    (Defect::DupInFile, 0.005),
    (Defect::Deceased, 0.004),
    (Defect::Legacy15, 0.003),
    (Defect::NotHead, 0.004),
    (Defect::ProxyNoAgreement, 0.003),
    (Defect::ProxyWithAgreement, 0.006),
];

/// The defect of each line of a roster of `lines` lines, before shuffling. Small runs still
/// show each defect once; larger ones follow the mix.
pub(crate) fn defect_plan(lines: usize) -> Vec<Defect> {
    let mut plan: Vec<Defect> = Vec::with_capacity(lines);
    for (d, share) in MIX {
        let n = ((lines as f64) * share).round().max(1.0) as usize;
        plan.extend(std::iter::repeat_n(*d, n));
    }
    plan.truncate(lines / 2);
    plan.resize(lines, Defect::None);
    plan
}

/// Roster lines of a plan that bring no card into the registry (no card, an ID too short to
/// be anyone's, a duplicate of an earlier line).
pub(crate) fn lines_without_card(plan: &[Defect]) -> usize {
    plan.iter()
        .filter(|d| matches!(d, Defect::NoCard | Defect::ShortId | Defect::DupInFile))
        .count()
}

/// The roster's column headers, in the generator's cell order.
pub(crate) const ROSTER_HEADERS: [&str; 10] = [
    "姓名",
    "身份证号码",
    "手机号码",
    "行政区划代码",
    "补贴项目",
    "补贴金额",
    "属期",
    "户主",
    "代领人",
    "代领类型",
];

/// The card registry's column headers.
pub(crate) const REGISTRY_HEADERS: [&str; 7] = [
    "身份证号码",
    "姓名",
    "社会保障卡号",
    "发卡银行",
    "银行账号",
    "卡状态",
    "金融账户是否激活",
];

/// The death register's column headers.
pub(crate) const DEATH_HEADERS: [&str; 3] = ["身份证号码", "姓名", "死亡日期"];

/// A card as a registry row.
pub(crate) fn card_cells(c: &CardRecord) -> Vec<Cell> {
    vec![
        Cell::Text(c.resident_id.as_str().to_owned()),
        Cell::Text(c.name.clone()),
        Cell::Text(c.card_no.clone()),
        Cell::Text(c.bank.clone()),
        Cell::Text(c.account.as_str().to_owned()),
        Cell::Text(c.status.label().into()),
        Cell::Text(if c.activated { "是" } else { "否" }.into()),
    ]
}

/// A death as a death-register row.
pub(crate) fn death_cells(d: &DeathRecord) -> Vec<Cell> {
    vec![
        Cell::Text(d.resident_id.as_str().to_owned()),
        Cell::Text(d.name.clone()),
        Cell::Text(d.date_of_death.to_string()),
    ]
}

/// One generated roster line and what the registers say about its person.
pub(crate) struct GenLine {
    /// The roster row, in [`ROSTER_HEADERS`] order.
    pub roster: Vec<Cell>,
    /// The person's card, if the registry has one.
    pub card: Option<CardRecord>,
    /// The person's death-register entry, if any.
    pub death: Option<DeathRecord>,
    /// `(resident ID, proxy name)` of a custody agreement on record.
    pub agreement: Option<(String, String)>,
}

/// The streaming generator behind `ykt demo` and `ykt bench`: people, a defect plan with the
/// realistic error mix, and one roster line at a time with its card, death entry and
/// agreement, so a million-line data set is written without being held in memory.
///
/// Everything follows from the seed and the province. People are drawn first (the roster's,
/// then `extra` registry-only people), then the plan is shuffled, then each line draws its
/// amount; roster people are drawn again, in the same order, from a copy of the generator's
/// starting state, which keeps the output identical to generating them all up front.
pub(crate) struct RosterGen {
    rng: StdRng,
    people: StdRng,
    villages: Vec<RegionCode>,
    plan: Vec<Defect>,
    next: usize,
    last_good: Option<Person>,
    period: Period,
    unique_ids: bool,
    taken: Taken,
}

impl RosterGen {
    /// A generator of `lines` roster lines for `province`. The cards of the `extra` people
    /// (registry-only) are handed to `extra_card` here, before any line.
    pub(crate) fn new(
        province: &dyn Province,
        lines: usize,
        extra: usize,
        seed: u64,
        unique_ids: bool,
        mut extra_card: impl FnMut(CardRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<RosterGen> {
        let mut rng = StdRng::seed_from_u64(seed ^ fxhash(province.code()));
        let prefix =
            RegionCode::parse(province_prefix(province.code())).map_err(|e| anyhow!("{e}"))?;
        let villages: Vec<RegionCode> = demo_regions()
            .iter()
            .filter(|e| prefix.contains(&e.code) && e.code.level() == RegionLevel::Village)
            .map(|e| e.code.clone())
            .collect();
        if villages.is_empty() {
            anyhow::bail!("内置区划表中没有 {} 的村级区划", province.name());
        }
        let n_people = lines + extra;
        if unique_ids && n_people > MAX_UNIQUE_PEOPLE {
            anyhow::bail!("最多生成 {MAX_UNIQUE_PEOPLE} 人 (at most {MAX_UNIQUE_PEOPLE} people)");
        }
        let people = rng.clone();
        let mut taken = Taken::new();
        for i in 0..n_people {
            let p = person(
                &mut rng,
                &villages[i % villages.len()],
                i as u32,
                unique_ids,
                &mut taken,
            );
            if i >= lines {
                extra_card(card(&p, CardStatus::Normal, true)?)?;
            }
        }
        let mut plan = defect_plan(lines);
        plan.shuffle(&mut rng);
        Ok(RosterGen {
            rng,
            people,
            villages,
            plan,
            next: 0,
            last_good: None,
            period: Period::parse(DEMO_PERIOD).map_err(|e| anyhow!("{e}"))?,
            unique_ids,
            taken: Taken::new(),
        })
    }

    /// The next roster line; `None` after the last.
    pub(crate) fn next_line(&mut self) -> anyhow::Result<Option<GenLine>> {
        let i = self.next;
        let Some(&defect) = self.plan.get(i) else {
            return Ok(None);
        };
        self.next += 1;
        let rng = &mut self.rng;
        let village = &self.villages[i % self.villages.len()];
        let mut p = person(
            &mut self.people,
            village,
            i as u32,
            self.unique_ids,
            &mut self.taken,
        );
        let period = self.period;
        let mut id_cell = Cell::Text(p.id.clone());
        let mut period_text = DEMO_PERIOD.to_owned();
        let mut amount = format!(
            "{}.{:02}",
            rng.gen_range(280..=760),
            [0, 0, 0, 50, 20][rng.gen_range(0..5)]
        );
        let mut head = "是".to_owned();
        let (mut proxy_name, mut proxy_kind) = (String::new(), String::new());
        let mut region = p.village.full();
        let mut phone = p.phone.clone();
        let mut roster_name = p.name.clone();
        let mut line_card = None;
        let mut death = None;
        let mut agreement = None;
        match defect {
            Defect::NoCard => {}
            Defect::Inactive => line_card = Some(card(&p, CardStatus::Normal, false)?),
            Defect::Lost => {
                line_card = Some(card(
                    &p,
                    [CardStatus::Lost, CardStatus::Frozen, CardStatus::Cancelled][i % 3],
                    true,
                )?)
            }
            Defect::NameMismatch => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                roster_name = format!(
                    "{}{}",
                    SURNAMES[(i + 3) % SURNAMES.len()],
                    GIVEN[(i + 5) % GIVEN.len()]
                );
                if roster_name == p.name {
                    roster_name.push('一');
                }
            }
            Defect::Checksum => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                let mut bad = p.id.clone();
                let last = bad.pop().unwrap_or('0');
                bad.push(if last == '1' { '2' } else { '1' });
                id_cell = Cell::Text(bad);
            }
            Defect::ShortId => id_cell = Cell::Text(p.id[..17].to_owned()),
            Defect::NumericId => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                id_cell = Cell::Int(p.id[..17].parse::<i64>().unwrap_or(0) * 10);
            }
            Defect::BadPhone => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                phone = format!("0451-{}", &p.phone[4..11]);
            }
            Defect::UnknownRegion => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                region = format!("{}9{}", &region[..9], &region[10..]);
            }
            Defect::OldPeriod => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                period_text = period.offset(-3).to_string();
            }
            Defect::RecentPeriod => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                period_text = period.offset(-1 - (i % 2) as i64).to_string();
            }
            Defect::BadAmount => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                amount = "412.345".into();
            }
            Defect::ZeroAmount => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                amount = "0".into();
            }
            Defect::DupInFile => match &self.last_good {
                Some(good) => {
                    p = good.clone();
                    roster_name = p.name.clone();
                    region = p.village.full();
                    id_cell = Cell::Text(p.id.clone());
                }
                None => line_card = Some(card(&p, CardStatus::Normal, true)?),
            },
            Defect::Deceased => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                death = Some(DeathRecord {
                    resident_id: ResidentId::from_trusted(&p.id).map_err(|e| anyhow!("{e}"))?,
                    name: p.name.clone(),
                    date_of_death: period.start_date() - chrono::Days::new(20 + (i as u64 % 60)),
                });
            }
            Defect::Legacy15 => {
                // An 18-digit ID born in the 1900s, written in its old 15-digit form.
                let mut fifteen = p.id.clone();
                if &fifteen[6..8] == "19" {
                    fifteen = format!("{}{}", &p.id[..6], &p.id[8..17]);
                    id_cell = Cell::Text(fifteen);
                }
                line_card = Some(card(&p, CardStatus::Normal, true)?);
            }
            Defect::NotHead => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                head = "否".into();
            }
            Defect::ProxyNoAgreement | Defect::ProxyWithAgreement => {
                line_card = Some(card(&p, CardStatus::Normal, true)?);
                proxy_name = format!(
                    "{}{}",
                    SURNAMES[(i + 1) % SURNAMES.len()],
                    GIVEN[(i + 2) % GIVEN.len()]
                );
                proxy_kind = "代管".into();
                if defect == Defect::ProxyWithAgreement {
                    agreement = Some((p.id.clone(), proxy_name.clone()));
                }
            }
            Defect::None => line_card = Some(card(&p, CardStatus::Normal, true)?),
        }
        let roster = vec![
            Cell::Text(roster_name),
            id_cell,
            Cell::Text(phone),
            Cell::Text(region),
            Cell::Text(DEMO_PROJECT.into()),
            Cell::Text(amount),
            Cell::Text(period_text),
            Cell::Text(head),
            Cell::Text(proxy_name),
            Cell::Text(proxy_kind),
        ];
        if defect == Defect::None {
            self.last_good = Some(p);
        }
        Ok(Some(GenLine {
            roster,
            card: line_card,
            death,
            agreement,
        }))
    }
}

/// The registry's record of a person's card.
fn card(p: &Person, status: CardStatus, activated: bool) -> anyhow::Result<CardRecord> {
    Ok(CardRecord {
        resident_id: ResidentId::from_trusted(&p.id).map_err(|e| anyhow!("{e}"))?,
        name: p.name.clone(),
        card_no: format!(
            "{}{:08}",
            (b'A' + (p.id.as_bytes()[16] - b'0')) as char,
            &p.id[9..17].parse::<u64>().unwrap_or(0)
        ),
        bank: p.bank.into(),
        account: BankAccount::parse(&p.account).map_err(|e| anyhow!("{e}"))?,
        status,
        activated,
    })
}

/// Generate the files for `province` under `dir`.
pub fn generate(
    province: &dyn Province,
    lines: usize,
    seed: u64,
    dir: &Path,
) -> anyhow::Result<DataSet> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    // People: those on the roster plus some the registry has and the roster does not.
    let extra = lines / 5 + 10;
    let mut cards: Vec<CardRecord> = Vec::with_capacity(lines + extra);
    let mut generator = RosterGen::new(province, lines, extra, seed, false, |c| {
        cards.push(c);
        Ok(())
    })?;

    // Region table (the shipped one, as a GB18030 CSV like a real hand-over).
    let all = demo_regions();
    let regions = dir.join("区划代码.csv");
    ykt_files::export::write_csv_gb18030_table(
        &regions,
        &["行政区划代码", "名称"],
        all.iter()
            .map(|e: &RegionEntry| vec![Cell::Text(e.code.full()), Cell::Text(e.name.clone())]),
    )?;

    let mut deaths: Vec<DeathRecord> = Vec::new();
    let mut agreements = Vec::new();
    let mut roster: Vec<Vec<Cell>> = Vec::with_capacity(lines);
    while let Some(line) = generator.next_line()? {
        cards.extend(line.card);
        deaths.extend(line.death);
        agreements.extend(line.agreement);
        roster.push(line.roster);
    }

    let registry = dir.join("社保卡信息.csv");
    ykt_files::export::write_csv_gb18030_table(
        &registry,
        &REGISTRY_HEADERS,
        cards.iter().map(card_cells),
    )?;
    let deaths_file = dir.join("死亡登记.csv");
    ykt_files::export::write_csv_gb18030_table(
        &deaths_file,
        &DEATH_HEADERS,
        deaths.iter().map(death_cells),
    )?;
    let roster_file = if lines <= 50_000 {
        let f = dir.join("发放清册.xlsx");
        ykt_files::export::write_xlsx_table(&f, "发放清册", &ROSTER_HEADERS, roster.into_iter())?;
        f
    } else {
        let f = dir.join("发放清册.csv");
        ykt_files::export::write_csv_gb18030_table(&f, &ROSTER_HEADERS, roster.into_iter())?;
        f
    };
    Ok(DataSet {
        dir: dir.to_path_buf(),
        regions,
        registry,
        deaths: deaths_file,
        roster: roster_file,
        agreements,
    })
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The demo users of a province: a department maker, a department head, a finance reviewer,
/// a township clerk, an HR&SS officer, a bank operator and an auditor, all scoped to the
/// province's demo region.
pub fn demo_users(province: &str) -> Vec<UserRow> {
    let region = format!("{:0<12}", province_prefix(province));
    [
        ("clerk", "主管部门经办", Role::DeptMaker),
        ("head", "主管部门负责人", Role::DeptHead),
        ("finance", "财政审核", Role::FinanceReviewer),
        ("township", "乡镇经办", Role::TownshipClerk),
        ("hrss", "人社经办", Role::Hrss),
        ("bank", "代发银行经办", Role::BankOperator),
        ("auditor", "审计", Role::Auditor),
        ("admin", "系统管理员", Role::Admin),
    ]
    .into_iter()
    .map(|(who, name, role)| UserRow {
        login: format!("{province}-{who}"),
        display_name: name.into(),
        roles: vec![role.as_str().to_owned()],
        region: region.clone(),
        password_hash: None,
        disabled: false,
    })
    .collect()
}

/// Import the data set and run intake. Returns the process exit code part (0).
async fn run_one(
    cfg: &Config,
    store: &Store,
    province: &dyn Province,
    data: &DataSet,
    seed: u64,
) -> anyhow::Result<()> {
    let today = cfg.today();
    for u in demo_users(province.code()) {
        store.upsert_user(&u).await?;
    }
    let meta = |kind: &str, f: &Path| -> anyhow::Result<ImportMeta> {
        Ok(ImportMeta::for_bytes(
            kind,
            &f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            &std::fs::read(f)?,
            "demo",
        ))
    };
    let mut regs = MemRegisters::default();
    regs.load_regions(&data.regions)?;
    store
        .import_regions(
            ok_rows(demo_regions()),
            meta(kinds::REGIONS, &data.regions)?,
        )
        .await?;
    let cards = ykt_files::registry::read_card_registry(&data.registry, today)?;
    anyhow::ensure!(
        cards.problems.is_empty(),
        "生成的社保卡信息有误：{:?}",
        cards.problems.first()
    );
    let n_cards = cards.records.len();
    store
        .import_cards(ok_rows(cards.records), meta(kinds::CARDS, &data.registry)?)
        .await?;
    let deaths = ykt_files::registry::read_death_register(&data.deaths, today)?;
    let n_deaths = deaths.records.len();
    store
        .import_deaths(ok_rows(deaths.records), meta(kinds::DEATHS, &data.deaths)?)
        .await?;
    for (id, proxy) in &data.agreements {
        let rid = ResidentId::from_trusted(id).map_err(|e| anyhow!("{e}"))?;
        store
            .record_agreement(&rid, ProxyKind::Custody, proxy, "村民委员会", "2023-01-10")
            .await?;
    }
    outln!(
        "== {} ({}) — {} ==",
        province.name(),
        province.code(),
        province.model().label_zh()
    );
    outln!(
        "生成并导入 generated and imported: 区划 {} 条, 社保卡 {} 张, 死亡登记 {} 条, 代管协议 {} 份",
        regs.regions.len(),
        n_cards,
        n_deaths,
        data.agreements.len()
    );

    let (project, period) = intake::resolve(province, DEMO_PROJECT, DEMO_PERIOD)?;
    let user = crate::cli::user_of(&demo_users(province.code())[0])?;
    let req = Request {
        province,
        project,
        period,
        today,
        scope: Some(user.region.clone()),
        regions: Some(&regs),
        check_cards: true,
    };
    match intake::import(store, &data.roster, &req, &user).await? {
        ImportResult::AlreadyImported { roster_id, at } => {
            outln!(
                "清册 {} 已于 {at} 导入为 roster {roster_id}（同一文件不重复导入）",
                data.roster.display()
            );
            let bs: Vec<_> = store
                .batches(Some(province.code()), None)
                .await?
                .into_iter()
                .filter(|b| b.roster_id == Some(roster_id))
                .collect();
            out!("{}", output::batches_table(&bs));
        }
        ImportResult::Imported { report, result } => {
            out!("{}", output::check_summary(&report));
            let rep = data.dir.join("校验结果");
            write_reports(&rep, &report)?;
            outln!(
                "错误报告 error report: {}/校验结果.xlsx (.csv GB18030, .json)",
                rep.display()
            );
            outln!("批次 batches (每县一个 one per county):");
            out!("{}", output::batches_table(&result.batches));
            let total: Fen = result.batches.iter().map(|b| b.control.amount).sum();
            outln!(
                "入批合计 {} 笔 {} 元 = 通过 {} 笔 {} 元",
                result.batches.iter().map(|b| b.control.count).sum::<u64>(),
                total,
                report.summary.accepted,
                report.summary.accepted_amount
            );
            let ctx = crate::provinces::DemoCtx {
                cfg,
                store,
                province,
                batches: result.batches.clone(),
                out: data.dir.clone(),
                seed,
                fail_share: None,
            };
            crate::provinces::demo_cycle(&ctx).await?;
        }
    }
    outln!("文件 files: {}", data.dir.display());
    outln!();
    Ok(())
}

pub async fn run(cfg: &Config, a: DemoArgs) -> anyhow::Result<u8> {
    let targets: Vec<Box<dyn Province>> = match &a.province {
        Some(p) => vec![crate::build_province(
            crate::select_province(Some(p), cfg)?,
            cfg,
        )?],
        None => crate::provinces()
            .into_iter()
            .map(|d| crate::build_province(d, cfg))
            .collect::<Result<_, _>>()?,
    };
    let store = open_store(cfg, true).await?;
    outln!(
        "数据库 database: {}",
        crate::cli::redact_url(&cfg.database_url)
    );
    for p in &targets {
        let data = generate(p.as_ref(), a.lines, a.seed, &a.out.join(p.code()))?;
        run_one(cfg, &store, p.as_ref(), &data, a.seed).await?;
    }
    let first = targets.first().map(|p| p.code()).unwrap_or("heilongjiang");
    outln!(
        "下一步 next: 查看批次 ykt batch list；推进流程 ykt batch show <ID>，ykt batch step <ID> <STEP> --user {first}-clerk"
    );
    outln!("审计 audit: ykt audit verify");
    let logins = demo_logins(&store, &targets).await?;
    outln!();
    outln!(
        "操作控制台 console: {}",
        if a.serve {
            "正在启动 starting ykt serve ..."
        } else {
            "运行 run `ykt serve`，然后打开 then open"
        }
    );
    outln!("  http://{}/", cfg.listen);
    outln!(
        "演示账号（仅供演示，切勿用于真实账户）demo logins (DEMO ONLY), password「{DEMO_PASSWORD}」:"
    );
    for (login, name, roles) in &logins {
        outln!(
            "  {} {} {}",
            output::pad(login, 22),
            output::pad(name, 18),
            roles
        );
    }
    if a.serve {
        return crate::web::serve(cfg, None).await;
    }
    Ok(0)
}

/// Give every demo user of the demo's provinces that has no password the demo password, and
/// list them `(login, name, roles)`.
async fn demo_logins(
    store: &Store,
    targets: &[Box<dyn Province>],
) -> anyhow::Result<Vec<(String, String, String)>> {
    let prefixes: Vec<String> = targets
        .iter()
        .flat_map(|p| {
            let mut v = vec![format!("{}-", p.code())];
            if p.code() == "henan" {
                v.push("hn-".to_owned());
            }
            v
        })
        .collect();
    let mut hash: Option<String> = None;
    let mut out = Vec::new();
    for u in store.list_users().await? {
        if !prefixes.iter().any(|p| u.login.starts_with(p.as_str())) || u.disabled {
            continue;
        }
        if u.password_hash.is_none() {
            let h = match &hash {
                Some(h) => h.clone(),
                None => {
                    let h = ykt_http::web::auth::hash_password(DEMO_PASSWORD)
                        .map_err(|e| anyhow!("{e}"))?;
                    hash = Some(h.clone());
                    h
                }
            };
            store.set_password_hash(&u.login, &h).await?;
        } else if !u
            .password_hash
            .as_deref()
            .is_some_and(|h| ykt_http::web::auth::verify_password(h, DEMO_PASSWORD))
        {
            // A password someone set: not a demo login any more.
            continue;
        }
        let roles = u
            .roles
            .iter()
            .map(|r| Role::parse(r).map(|r| r.label_zh()).unwrap_or(r.as_str()))
            .collect::<Vec<_>>()
            .join("、");
        out.push((u.login, u.display_name, format!("{roles}（{}）", u.region)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same random draws for the same number in the same village (what happens once a
    /// county has a few thousand people) give two different, valid IDs.
    #[test]
    fn repeated_draws_get_distinct_ids() {
        let village = RegionCode::parse("410902001201").unwrap();
        let mut taken = Taken::new();
        let start = StdRng::seed_from_u64(9);
        let a = person(&mut start.clone(), &village, 7, false, &mut taken);
        let b = person(&mut start.clone(), &village, 7, false, &mut taken);
        assert_ne!(a.id, b.id);
        for p in [&a, &b] {
            let today = chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
            assert!(ResidentId::parse(&p.id, today).is_ok(), "{}", p.id);
        }
        assert_eq!(a.id[..6], b.id[..6], "same county");
        assert_eq!(a.id[14..17], b.id[14..17], "same sequence number");
    }

    /// `ykt demo --lines 5000` used to stop at the registry import with
    /// `数据重复：cards_stage.person_idx` (two people with one ID). A 6000-line demo's
    /// registry now imports with one card per person.
    #[tokio::test]
    async fn a_6000_line_demo_registry_imports() {
        crate::ensure_linked();
        let cfg = Config::default();
        let today = chrono::NaiveDate::from_ymd_opt(2023, 5, 20).unwrap();
        let d = crate::provinces()
            .into_iter()
            .find(|d| d.code == "henan")
            .unwrap_or(crate::provinces()[0]);
        let province = crate::build_province(d, &cfg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = generate(province.as_ref(), 6000, 2023, dir.path()).unwrap();
        let cards = ykt_files::registry::read_card_registry(&data.registry, today).unwrap();
        assert!(cards.problems.is_empty(), "{:?}", cards.problems.first());
        let ids: std::collections::HashSet<String> = cards
            .records
            .iter()
            .map(|c| c.resident_id.as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), cards.records.len());
        assert!(ids.len() > 6000, "{} cards", ids.len());
        let url = format!("sqlite://{}", dir.path().join("ykt.db").display());
        let store = Store::connect(&url, ykt_store::Vault::new([7u8; 32]))
            .await
            .unwrap();
        let n = cards.records.len() as u64;
        let meta = ImportMeta::for_bytes(kinds::CARDS, "社保卡信息.csv", b"x", "test");
        match store.import_cards(ok_rows(cards.records), meta).await {
            Ok(ykt_store::ImportOutcome::Imported { rows, .. }) => assert_eq!(rows, n),
            other => panic!("{other:?}"),
        }
    }
}
