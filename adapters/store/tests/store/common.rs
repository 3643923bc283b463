//! Generated test data: valid resident IDs, accounts and card records.

use chrono::NaiveDate;
use ykt_kernel::card::{CardRecord, CardStatus, DeathRecord, RegionEntry};
use ykt_kernel::ident::{BankAccount, RegionCode, ResidentId, check_digit};
use ykt_store::{ImportMeta, kinds};

/// The `n`-th generated resident ID: region 230102, born 1950-01-01 plus `n / 1000` days,
/// sequence `n % 1000`, correct check character.
pub fn resident_id(n: u64) -> ResidentId {
    let birth = NaiveDate::from_ymd_opt(1950, 1, 1).expect("date") + chrono::Days::new(n / 1000);
    let first17 = format!("230102{}{:03}", birth.format("%Y%m%d"), n % 1000);
    let bytes: [u8; 17] = first17.as_bytes().try_into().expect("17 digits");
    let id = format!("{first17}{}", check_digit(&bytes));
    ResidentId::from_trusted(&id).expect("generated ID is valid")
}

/// The `n`-th generated 19-digit account.
pub fn account(n: u64) -> BankAccount {
    BankAccount::parse(&format!("621700{n:012}9")).expect("generated account is valid")
}

pub fn card(n: u64) -> CardRecord {
    CardRecord {
        resident_id: resident_id(n),
        name: format!("张{n}"),
        card_no: format!("A{n:08}"),
        bank: "中国农业银行".into(),
        account: account(n),
        status: CardStatus::Normal,
        activated: n % 7 >= 1,
    }
}

pub fn cards(range: std::ops::Range<u64>) -> impl Iterator<Item = CardRecord> {
    range.map(card)
}

pub fn death(n: u64) -> DeathRecord {
    DeathRecord {
        resident_id: resident_id(n),
        name: format!("李{n}"),
        date_of_death: NaiveDate::from_ymd_opt(2023, 3, 1).expect("date"),
    }
}

pub fn region(code: &str, name: &str) -> RegionEntry {
    RegionEntry {
        code: RegionCode::parse(code).expect("region code"),
        name: name.into(),
    }
}

pub fn meta(kind: &str, content: &str) -> ImportMeta {
    ImportMeta::for_bytes(
        kind,
        &format!("{content}.csv"),
        content.as_bytes(),
        "tester",
    )
}

pub fn cards_meta(content: &str) -> ImportMeta {
    meta(kinds::CARDS, content)
}

/// A roster of `project` for 2023-05 by a department maker ("clerk") of `scope`, started as
/// a draft, content hash `sha256`, under `province` with order prefix `prefix`.
pub fn roster_meta(
    province: &str,
    prefix: &str,
    project: ykt_kernel::catalog::Project,
    scope: &str,
    sha256: &str,
) -> ykt_store::payments::RosterMeta {
    ykt_store::payments::RosterMeta {
        province: province.into(),
        order_prefix: prefix.into(),
        project,
        period: ykt_kernel::Period::Month {
            year: 2023,
            month: 5,
        },
        file_name: "r.csv".into(),
        sha256: sha256.into(),
        actor: "clerk".into(),
        actor_role: "dept_maker".into(),
        scope: RegionCode::parse(scope).expect("a test region code"),
        initial_state: ykt_kernel::batch::BatchState::Draft,
    }
}
