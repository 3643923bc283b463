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
}

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

fn person(rng: &mut StdRng, village: &RegionCode, seq: u32) -> Person {
    let county = village
        .county()
        .map(|c| c.prefix().to_owned())
        .unwrap_or_else(|| village.prefix()[..6.min(village.prefix().len())].to_owned());
    let year = rng.gen_range(1930..=2005);
    let month = rng.gen_range(1..=12);
    let day = rng.gen_range(1..=28);
    let body = format!("{county:0<6}{year:04}{month:02}{day:02}{:03}", seq % 1000);
    let b: [u8; 17] = body.as_bytes().try_into().unwrap_or([b'0'; 17]);
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
fn province_prefix(code: &str) -> &'static str {
    match code {
        "sichuan" => "51",
        "henan" => "41",
        _ => "23",
    }
}

/// Generate the files for `province` under `dir`.
pub fn generate(
    province: &dyn Province,
    lines: usize,
    seed: u64,
    dir: &Path,
) -> anyhow::Result<DataSet> {
    std::fs::create_dir_all(dir).with_context(|| format!("无法创建目录 {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(seed ^ fxhash(province.code()));
    let prefix = RegionCode::parse(province_prefix(province.code())).map_err(|e| anyhow!("{e}"))?;
    let all = demo_regions();
    let villages: Vec<RegionCode> = all
        .iter()
        .filter(|e| prefix.contains(&e.code) && e.code.level() == RegionLevel::Village)
        .map(|e| e.code.clone())
        .collect();
    if villages.is_empty() {
        anyhow::bail!("内置区划表中没有 {} 的村级区划", province.name());
    }

    // Region table (the shipped one, as a GB18030 CSV like a real hand-over).
    let regions = dir.join("区划代码.csv");
    ykt_files::export::write_csv_gb18030_table(
        &regions,
        &["行政区划代码", "名称"],
        all.iter()
            .map(|e: &RegionEntry| vec![Cell::Text(e.code.full()), Cell::Text(e.name.clone())]),
    )?;

    // People: those on the roster plus some the registry has and the roster does not.
    let n_people = lines + lines / 5 + 10;
    let people: Vec<Person> = (0..n_people)
        .map(|i| person(&mut rng, &villages[i % villages.len()], i as u32))
        .collect();

    // What each roster line will be (index into `people`, and the defect it carries).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Defect {
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
    let mix: &[(Defect, f64)] = &[
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
    let mut plan: Vec<Defect> = Vec::with_capacity(lines);
    // Small runs still show each defect once; larger ones follow the mix.
    for (d, share) in mix {
        let n = ((lines as f64) * share).round().max(1.0) as usize;
        plan.extend(std::iter::repeat_n(*d, n));
    }
    plan.truncate(lines / 2);
    plan.resize(lines, Defect::None);
    plan.shuffle(&mut rng);

    let mut cards: Vec<CardRecord> = Vec::with_capacity(n_people);
    let mut deaths: Vec<DeathRecord> = Vec::new();
    let mut agreements = Vec::new();
    let mut roster: Vec<Vec<Cell>> = Vec::with_capacity(lines);
    let period = Period::parse(DEMO_PERIOD).map_err(|e| anyhow!("{e}"))?;
    let mut last_good: Option<usize> = None;
    let card = |p: &Person, status: CardStatus, activated: bool| -> anyhow::Result<CardRecord> {
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
    };
    for (i, p) in people.iter().enumerate().skip(lines) {
        let _ = i;
        cards.push(card(p, CardStatus::Normal, true)?);
    }
    for (i, defect) in plan.iter().enumerate() {
        let mut p = people[i].clone();
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
        match defect {
            Defect::NoCard => {}
            Defect::Inactive => cards.push(card(&p, CardStatus::Normal, false)?),
            Defect::Lost => cards.push(card(
                &p,
                [CardStatus::Lost, CardStatus::Frozen, CardStatus::Cancelled][i % 3],
                true,
            )?),
            Defect::NameMismatch => {
                cards.push(card(&p, CardStatus::Normal, true)?);
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
                cards.push(card(&p, CardStatus::Normal, true)?);
                let mut bad = p.id.clone();
                let last = bad.pop().unwrap_or('0');
                bad.push(if last == '1' { '2' } else { '1' });
                id_cell = Cell::Text(bad);
            }
            Defect::ShortId => id_cell = Cell::Text(p.id[..17].to_owned()),
            Defect::NumericId => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                id_cell = Cell::Int(p.id[..17].parse::<i64>().unwrap_or(0) * 10);
            }
            Defect::BadPhone => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                phone = format!("0451-{}", &p.phone[4..11]);
            }
            Defect::UnknownRegion => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                region = format!("{}9{}", &region[..9], &region[10..]);
            }
            Defect::OldPeriod => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                period_text = period.offset(-3).to_string();
            }
            Defect::RecentPeriod => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                period_text = period.offset(-1 - (i % 2) as i64).to_string();
            }
            Defect::BadAmount => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                amount = "412.345".into();
            }
            Defect::ZeroAmount => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                amount = "0".into();
            }
            Defect::DupInFile => match last_good {
                Some(j) => {
                    p = people[j].clone();
                    roster_name = p.name.clone();
                    region = p.village.full();
                    id_cell = Cell::Text(p.id.clone());
                }
                None => cards.push(card(&p, CardStatus::Normal, true)?),
            },
            Defect::Deceased => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                deaths.push(DeathRecord {
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
                cards.push(card(&p, CardStatus::Normal, true)?);
            }
            Defect::NotHead => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                head = "否".into();
            }
            Defect::ProxyNoAgreement | Defect::ProxyWithAgreement => {
                cards.push(card(&p, CardStatus::Normal, true)?);
                proxy_name = format!(
                    "{}{}",
                    SURNAMES[(i + 1) % SURNAMES.len()],
                    GIVEN[(i + 2) % GIVEN.len()]
                );
                proxy_kind = "代管".into();
                if *defect == Defect::ProxyWithAgreement {
                    agreements.push((p.id.clone(), proxy_name.clone()));
                }
            }
            Defect::None => cards.push(card(&p, CardStatus::Normal, true)?),
        }
        if *defect == Defect::None {
            last_good = Some(i);
        }
        roster.push(vec![
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
        ]);
    }

    let registry = dir.join("社保卡信息.csv");
    ykt_files::export::write_csv_gb18030_table(
        &registry,
        &[
            "身份证号码",
            "姓名",
            "社会保障卡号",
            "发卡银行",
            "银行账号",
            "卡状态",
            "金融账户是否激活",
        ],
        cards.iter().map(|c| {
            vec![
                Cell::Text(c.resident_id.as_str().to_owned()),
                Cell::Text(c.name.clone()),
                Cell::Text(c.card_no.clone()),
                Cell::Text(c.bank.clone()),
                Cell::Text(c.account.as_str().to_owned()),
                Cell::Text(c.status.label().into()),
                Cell::Text(if c.activated { "是" } else { "否" }.into()),
            ]
        }),
    )?;
    let deaths_file = dir.join("死亡登记.csv");
    ykt_files::export::write_csv_gb18030_table(
        &deaths_file,
        &["身份证号码", "姓名", "死亡日期"],
        deaths.iter().map(|d| {
            vec![
                Cell::Text(d.resident_id.as_str().to_owned()),
                Cell::Text(d.name.clone()),
                Cell::Text(d.date_of_death.to_string()),
            ]
        }),
    )?;
    let headers = [
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
    let roster_file = if lines <= 50_000 {
        let f = dir.join("发放清册.xlsx");
        ykt_files::export::write_xlsx_table(&f, "发放清册", &headers, roster.into_iter())?;
        f
    } else {
        let f = dir.join("发放清册.csv");
        ykt_files::export::write_csv_gb18030_table(&f, &headers, roster.into_iter())?;
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
    outln!("数据库 database: {}", cfg.database_url);
    for p in &targets {
        let data = generate(p.as_ref(), a.lines, a.seed, &a.out.join(p.code()))?;
        run_one(cfg, &store, p.as_ref(), &data).await?;
    }
    let first = targets.first().map(|p| p.code()).unwrap_or("heilongjiang");
    outln!(
        "下一步 next: 查看批次 ykt batch list；推进流程 ykt batch show <ID>，ykt batch step <ID> <STEP> --user {first}-clerk"
    );
    outln!("审计 audit: ykt audit verify");
    Ok(0)
}
