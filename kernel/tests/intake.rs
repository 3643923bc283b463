//! Intake: one test per rule of DOMAIN.md §3, through the public pipeline with in-memory
//! registers, plus a roster that carries every reason code at once.

use async_trait::async_trait;
use chrono::NaiveDate;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord};
use ykt_kernel::catalog::{
    ActiveWindow, Catalog, Frequency, FundingChannel, PaymentBasis, Project,
};
use ykt_kernel::intake::{IntakeContext, LineOutcome, RegionTable, run_intake};
use ykt_kernel::mask::MaskPolicy;
use ykt_kernel::period::CrossPeriodRule;
use ykt_kernel::ports::{CardRegistry, PortError, ReferenceData};
use ykt_kernel::{BankAccount, Period, RawLine, ReasonCode, RegionCode, ResidentId};

/// The in-memory registers never wait, so polling once is enough.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A valid ID for a body of 17 digits.
fn id(body17: &str) -> String {
    let b: [u8; 17] = body17.as_bytes().try_into().unwrap();
    format!("{body17}{}", ResidentId::check_digit(&b))
}

fn project(code: &str, name: &str) -> Project {
    Project {
        code: code.into(),
        name: name.into(),
        short_name: "农村低保".into(),
        parent: None,
        lead_unit: "省民政厅".into(),
        frequency: Frequency::Monthly,
        active: Some(ActiveWindow {
            from: Period::Month {
                year: 2023,
                month: 1,
            },
            to: Period::Month {
                year: 2023,
                month: 12,
            },
        }),
        cross_period: CrossPeriodRule::Months(2),
        standard: None,
        unit: None,
        basis: PaymentBasis::Household,
        funding: FundingChannel::Treasury,
        exclusive_group: Some("dibao".into()),
        proxy_allowed: true,
        policy_basis: String::new(),
        target: String::new(),
        conditions: String::new(),
        standard_text: String::new(),
        test_date: String::new(),
        go_live: String::new(),
    }
}

#[derive(Default)]
struct Registers {
    cards: HashMap<String, CardRecord>,
    deaths: HashMap<String, DeathRecord>,
    paid: HashSet<(String, Period)>,
    urban: HashSet<(String, Period)>,
    agreements: HashSet<String>,
}

impl Registers {
    fn card(
        &mut self,
        idtext: &str,
        name: &str,
        status: CardStatus,
        activated: bool,
        account: &str,
    ) {
        let rid = ResidentId::from_trusted(idtext).unwrap();
        self.cards.insert(
            idtext.into(),
            CardRecord {
                resident_id: rid,
                name: name.into(),
                card_no: "C1".into(),
                bank: "农业银行".into(),
                account: BankAccount::parse(account).unwrap(),
                status,
                activated,
            },
        );
    }
}

#[async_trait]
impl CardRegistry for Registers {
    async fn lookup(&self, ids: &[ResidentId]) -> Result<Vec<Option<CardRecord>>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.cards.get(i.as_str()).cloned())
            .collect())
    }
}

#[async_trait]
impl ReferenceData for Registers {
    async fn deaths(&self, ids: &[ResidentId]) -> Result<Vec<Option<DeathRecord>>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.deaths.get(i.as_str()).cloned())
            .collect())
    }
    async fn paid_or_in_flight(
        &self,
        _p: &Project,
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<bool>, PortError> {
        Ok(keys
            .iter()
            .map(|(i, p)| self.paid.contains(&(i.as_str().to_owned(), *p)))
            .collect())
    }
    async fn exclusive(
        &self,
        peers: &[&Project],
        keys: &[(ResidentId, Period)],
    ) -> Result<Vec<Option<String>>, PortError> {
        Ok(keys
            .iter()
            .map(|(i, p)| {
                self.urban
                    .contains(&(i.as_str().to_owned(), *p))
                    .then(|| peers[0].name.clone())
            })
            .collect())
    }
    async fn agreements(&self, ids: &[ResidentId]) -> Result<Vec<bool>, PortError> {
        Ok(ids
            .iter()
            .map(|i| self.agreements.contains(i.as_str()))
            .collect())
    }
}

struct Regions(HashSet<RegionCode>);
impl RegionTable for Regions {
    fn contains(&self, code: &RegionCode) -> bool {
        self.0.contains(code)
    }
}

const GOOD_ACCOUNT: &str = "6228480010000000017"; // passes Luhn
const BAD_LUHN: &str = "6228480010000000010";

fn line(row: u32, name: &str, idtext: &str) -> RawLine {
    RawLine {
        row,
        name: Some(name.into()),
        resident_id: Some(idtext.into()),
        region: Some("230102001001".into()),
        amount: Some("320.00".into()),
        period: Some("2023-05".into()),
        phone: Some("13800138000".into()),
        household_head: Some("是".into()),
        ..RawLine::default()
    }
}

struct Fixture {
    regs: Registers,
    catalog: Catalog,
    regions: Regions,
    scope: RegionCode,
}

impl Fixture {
    fn new() -> Fixture {
        let catalog = Catalog::new(vec![
            project("P03", "农村最低生活保障金"),
            project("P02", "城市最低生活保障金"),
        ])
        .unwrap();
        let regions = Regions(
            [
                "23",
                "2301",
                "230102",
                "230102001",
                "230102001001",
                "230103",
            ]
            .iter()
            .map(|c| RegionCode::parse(c).unwrap())
            .collect(),
        );
        Fixture {
            regs: Registers::default(),
            catalog,
            regions,
            scope: RegionCode::parse("230102").unwrap(),
        }
    }

    fn run(&self, lines: Vec<RawLine>) -> Vec<LineOutcome> {
        let mask = MaskPolicy::default();
        let ctx = IntakeContext {
            project: self.catalog.find("P03").unwrap(),
            catalog: &self.catalog,
            current: Period::Month {
                year: 2023,
                month: 5,
            },
            today: NaiveDate::from_ymd_opt(2023, 6, 1).unwrap(),
            scope: Some(&self.scope),
            regions: Some(&self.regions),
            mask: &mask,
            check_cards: true,
        };
        let mut out = Vec::new();
        let summary = block_on(run_intake::<std::io::Error, _, _>(
            &ctx,
            lines.into_iter().map(Ok),
            &self.regs,
            &self.regs,
            |o| {
                out.push(o);
                Ok(())
            },
        ))
        .unwrap();
        assert_eq!(summary.lines as usize, out.len());
        assert_eq!(summary.accepted + summary.rejected, summary.lines);
        out
    }

    /// Run one line and return its codes.
    fn codes(&self, l: RawLine) -> Vec<&'static str> {
        let o = self.run(vec![l]);
        o[0].issues().iter().map(|i| i.code.as_str()).collect()
    }
}

fn person(n: u32) -> String {
    id(&format!("23010219800101{n:03}"))
}

fn fixture_with_cards(n: u32) -> Fixture {
    let mut f = Fixture::new();
    for i in 0..n {
        f.regs.card(
            &person(i),
            &format!(
                "张{}",
                ["三", "四", "五", "六", "七", "八", "九", "十"][i as usize % 8]
            ),
            CardStatus::Normal,
            true,
            GOOD_ACCOUNT,
        );
    }
    f
}

fn named(i: u32) -> String {
    format!(
        "张{}",
        ["三", "四", "五", "六", "七", "八", "九", "十"][i as usize % 8]
    )
}

#[test]
fn a_good_line_is_accepted_with_the_registry_account() {
    let f = fixture_with_cards(1);
    let o = f.run(vec![line(2, "张三", &person(0))]);
    match &o[0] {
        LineOutcome::Accepted(a) => {
            assert_eq!(a.account.as_ref().map(|a| a.as_str()), Some(GOOD_ACCOUNT));
            assert_eq!(a.amount.to_string(), "320.00");
            assert!(a.warnings.is_empty());
        }
        other => panic!("rejected: {other:?}"),
    }
}

#[test]
fn id_rules() {
    let f = fixture_with_cards(1);
    let good = person(0);
    let mut bad_check = good.clone();
    let last = if bad_check.ends_with('0') { '1' } else { '0' };
    bad_check.pop();
    bad_check.push(last);
    assert_eq!(f.codes(line(2, "张三", &bad_check)), ["id.checksum"]);
    assert_eq!(f.codes(line(2, "张三", "23010219800101")), ["id.format"]);
    assert_eq!(
        f.codes(line(2, "张三", &id("99010219800101000"))),
        ["id.region"]
    );
    assert_eq!(
        f.codes(line(2, "张三", &id("23010220300101000"))),
        ["id.birthdate"]
    );
    let mut numeric = line(2, "张三", "2.30102198001E+17");
    numeric.resident_id_numeric = true;
    assert_eq!(f.codes(numeric), ["id.numeric_cell"]);
    // A 15-digit ID is upgraded and flagged, and matched against the registry by its 18 digits.
    let mut f = Fixture::new();
    f.regs.card(
        &id("23010219800101123"),
        "张三",
        CardStatus::Normal,
        true,
        GOOD_ACCOUNT,
    );
    let o = f.run(vec![line(2, "张三", "230102800101123")]);
    assert!(
        matches!(&o[0], LineOutcome::Accepted(a) if a.warnings.iter().any(|w| w.code == ReasonCode::IdLegacy15))
    );
}

#[test]
fn name_phone_region_rules() {
    let f = fixture_with_cards(1);
    let p = person(0);
    let mut l = line(2, "", &p);
    l.name = None;
    assert_eq!(f.codes(l), ["name.missing"]);
    assert!(f.codes(line(2, "张3", &p)).contains(&"name.invalid"));
    let mut l = line(2, "张三", &p);
    l.phone = Some("1234".into());
    assert_eq!(f.codes(l), ["phone.format"]);
    let mut l = line(2, "张三", &p);
    l.region = Some("2301020".into());
    assert_eq!(f.codes(l), ["region.format"]);
    let mut l = line(2, "张三", &p);
    l.region = Some("230102999000".into());
    assert_eq!(f.codes(l), ["region.unknown"]);
    let mut l = line(2, "张三", &p);
    l.region = Some("230103".into());
    assert_eq!(f.codes(l), ["region.outside_scope"]);
    // A minority name with a middle dot is fine; the registry's spelling of the dot may differ.
    let mut f = Fixture::new();
    f.regs
        .card(&p, "阿依•买买提", CardStatus::Normal, true, GOOD_ACCOUNT);
    assert!(f.codes(line(2, "阿依·买买提", &p)).is_empty());
}

#[test]
fn project_period_amount_rules() {
    let f = fixture_with_cards(1);
    let p = person(0);
    let with = |edit: &dyn Fn(&mut RawLine)| {
        let mut l = line(2, "张三", &p);
        edit(&mut l);
        f.codes(l)
    };
    assert_eq!(
        with(&|l| l.project = Some("不存在的项目".into())),
        ["project.unknown"]
    );
    assert_eq!(
        with(&|l| l.project = Some("P03".into())),
        Vec::<&str>::new()
    );
    assert_eq!(
        with(&|l| l.period = Some("2023年13月".into())),
        ["period.format"]
    );
    assert_eq!(
        with(&|l| l.period = Some("2023Q2".into())),
        ["period.format"]
    );
    assert_eq!(
        with(&|l| l.period = Some("2023-03".into())),
        Vec::<&str>::new()
    );
    assert_eq!(
        with(&|l| l.period = Some("2023-02".into())),
        ["period.out_of_window"]
    );
    assert_eq!(
        with(&|l| l.period = Some("2023-07".into())),
        Vec::<&str>::new()
    );
    // Outside the project's window: one error, naming the window.
    assert_eq!(
        with(&|l| l.period = Some("2022-12".into())),
        ["period.out_of_window"]
    );
    assert_eq!(with(&|l| l.amount = Some("abc".into())), ["amount.format"]);
    assert_eq!(
        with(&|l| l.amount = Some("0".into())),
        ["amount.nonpositive"]
    );
    assert_eq!(
        with(&|l| l.amount = Some("-5".into())),
        ["amount.nonpositive"]
    );
    assert_eq!(
        with(&|l| l.amount = Some("12.345".into())),
        ["amount.scale"]
    );
    assert_eq!(
        with(&|l| {
            l.standard = Some("100".into());
            l.quantity = Some("2".into());
            l.amount = Some("150".into());
        }),
        ["amount.standard_mismatch"]
    );
    assert_eq!(
        with(&|l| {
            l.standard = Some("160".into());
            l.quantity = Some("2".into());
        }),
        Vec::<&str>::new()
    );
}

#[test]
fn card_rules() {
    let mut f = Fixture::new();
    let (a, b, c, d, e) = (person(1), person(2), person(3), person(4), person(5));
    f.regs
        .card(&b, "张三", CardStatus::Normal, false, GOOD_ACCOUNT);
    f.regs
        .card(&c, "张三", CardStatus::Lost, true, GOOD_ACCOUNT);
    f.regs
        .card(&d, "李四", CardStatus::Normal, true, GOOD_ACCOUNT);
    f.regs.card(&e, "张三", CardStatus::Normal, true, BAD_LUHN);
    assert_eq!(f.codes(line(2, "张三", &a)), ["card.none"]);
    assert_eq!(f.codes(line(2, "张三", &b)), ["card.inactive"]);
    assert_eq!(f.codes(line(2, "张三", &c)), ["card.invalid"]);
    assert_eq!(f.codes(line(2, "张三", &d)), ["card.name_mismatch"]);
    let o = f.run(vec![line(2, "张三", &e)]);
    assert!(
        matches!(&o[0], LineOutcome::Accepted(x) if x.warnings[0].code == ReasonCode::AccountLuhn)
    );
}

#[test]
fn cross_check_rules() {
    let mut f = fixture_with_cards(6);
    let may = Period::Month {
        year: 2023,
        month: 5,
    };
    f.regs.deaths.insert(
        person(1),
        DeathRecord {
            resident_id: ResidentId::from_trusted(&person(1)).unwrap(),
            name: named(1),
            date_of_death: NaiveDate::from_ymd_opt(2023, 3, 2).unwrap(),
        },
    );
    // Died during the period: still paid for it.
    f.regs.deaths.insert(
        person(5),
        DeathRecord {
            resident_id: ResidentId::from_trusted(&person(5)).unwrap(),
            name: named(5),
            date_of_death: NaiveDate::from_ymd_opt(2023, 5, 20).unwrap(),
        },
    );
    f.regs.paid.insert((person(2), may));
    f.regs.urban.insert((person(3), may));
    let o = f.run(vec![
        line(2, &named(0), &person(0)),
        line(3, &named(0), &person(0)),
        line(4, &named(1), &person(1)),
        line(5, &named(2), &person(2)),
        line(6, &named(3), &person(3)),
        line(7, &named(5), &person(5)),
    ]);
    let codes: Vec<Vec<&str>> = o
        .iter()
        .map(|x| x.issues().iter().map(|i| i.code.as_str()).collect())
        .collect();
    assert_eq!(
        codes,
        vec![
            vec![],
            vec!["dup.in_file"],
            vec!["person.deceased"],
            vec!["dup.already_paid"],
            vec!["person.exclusive"],
            vec![]
        ]
    );
    assert!(o[1].issues()[0].message.contains("第2行"));
}

#[test]
fn household_and_proxy_rules() {
    let mut f = fixture_with_cards(3);
    let mut l = line(2, &named(0), &person(0));
    l.household_head = Some("否".into());
    assert_eq!(f.codes(l), ["household.not_head"]);
    let mut l = line(2, &named(1), &person(1));
    l.proxy_name = Some("王五".into());
    l.proxy_kind = Some("代管".into());
    assert_eq!(f.codes(l.clone()), ["proxy.agreement_missing"]);
    f.regs.agreements.insert(person(1));
    assert!(f.codes(l).is_empty());
    // Receipt proxy for a person without an ID: the proxy's card is paid.
    let mut l = line(2, "赵六", "");
    l.resident_id = None;
    l.proxy_name = Some(named(2));
    l.proxy_id = Some(person(2));
    l.proxy_kind = Some("代领".into());
    f.regs.agreements.insert(person(2));
    let o = f.run(vec![l]);
    assert!(
        matches!(&o[0], LineOutcome::Accepted(a) if a.name == "赵六" && a.proxy.is_some()),
        "{o:?}"
    );
}

#[test]
fn messages_never_contain_a_full_id() {
    let mut f = Fixture::new();
    let p = person(7);
    f.regs.card(&p, "李四", CardStatus::Normal, true, BAD_LUHN);
    let o = f.run(vec![
        line(2, "张三", &p),
        line(3, "张三", &p),
        line(4, "张三", "230102800101123"),
    ]);
    for x in &o {
        for i in x.issues() {
            assert!(
                !i.message.contains(&p) && !i.message.contains(BAD_LUHN),
                "{}",
                i.message
            );
        }
    }
}
