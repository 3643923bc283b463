//! The Henan demo's whole cycle, after intake formed one batch per county (濮阳市: 华龙区 and
//! 清丰县): the project library changed through a change request, candidate banks and each
//! county's choice, finance's review and the order push to the budget system, the treasury
//! paying the bank, the bank pulling the detail over HTTP (with a dropped connection), failures,
//! signed corrections and a re-pull of only those lines, a refund, hand-overs with a
//! discrepancy and a deadline flagged, reconciliation, publication, statements, the monthly
//! report and the annual set. Every artifact goes to the demo's output directory.

use super::ops::{Henan, load_user};
use super::ports::{SimEnv, SimOptions, start_sims};
use super::{render, report};
use crate::provinces::DemoCtx;
use anyhow::{Context, anyhow};
use chrono::Datelike;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use ykt_kernel::batch::LineState;
use ykt_kernel::card::{CardRecord, CardStatus};
use ykt_kernel::ports::{FailureReason, LookupRecord};
use ykt_kernel::province::Province;
use ykt_kernel::{BankAccount, Role};
use ykt_province_henan::banks::Candidate;
use ykt_province_henan::library::{ChangeKind, LibraryEntry};
use ykt_sim::henan::bank::BankFaults;
use ykt_store::payments::BatchRow;
use ykt_store::{ImportMeta, Store, UserRow, kinds, ok_rows};

/// Orders above this many lines get the simulated banks' large deliveries of results
/// ([`LARGE_DELIVERY`]): the demo's own orders (a few hundred lines) keep small ones, so
/// its transcript shows results posted in shuffled chunks, some twice.
pub const SMALL_ORDER: u64 = 1_000;

/// Results per post of a simulated bank on a large order (the interface accepts up to
/// `MAX_RESULTS`, 5,000): a real bank reports a province-scale order in deliveries of
/// thousands, not 2,000 posts of 25 (which is what the benchmark measured until the fifth
/// round: per-post costs, not per-line work).
pub const LARGE_DELIVERY: usize = 1_000;

/// How far a simulated bank's result may move from its line's place in the order, on a
/// large order: within windows of this many lines (ten deliveries). A bank reports a
/// province-scale order roughly in the order of the file it processed; a result moving
/// anywhere in a million-line order made every post of 1,000 results rewrite about 3,000
/// random pages of the platform's tables (the sixth round's 1M run; BENCHMARKS.md, seventh
/// round). The demo's own small orders still shuffle the whole order.
pub const SHUFFLE_WINDOW: usize = 10 * LARGE_DELIVERY;

/// The faults simulated banks inject when nothing else is asked.
pub fn default_faults() -> BankFaults {
    BankFaults {
        fail: vec![
            (FailureReason::WrongAccount, 1),
            (FailureReason::DormantAccount, 1),
            (FailureReason::AccountClosed, 1),
        ],
        fail_rate: 0.02,
        repeat_rate: 0.3,
        shuffle: true,
        chunk: 25,
        drop_after: Some(40),
        handover_short: false,
        ..BankFaults::default()
    }
}

/// The demo's people: county, city and provincial departments and finance offices.
fn demo_people() -> Vec<(&'static str, &'static str, Vec<Role>, &'static str)> {
    vec![
        (
            "hn-hualong-mz",
            "华龙区民政局经办",
            vec![Role::DeptMaker],
            "410902",
        ),
        (
            "hn-hualong-mz-head",
            "华龙区民政局负责人",
            vec![Role::DeptHead],
            "410902",
        ),
        (
            "hn-hualong-cz",
            "华龙区财政局",
            vec![Role::FinanceReviewer],
            "410902",
        ),
        (
            "hn-hualong-dual",
            "华龙区兼岗人员（经办兼审核）",
            vec![Role::DeptMaker, Role::FinanceReviewer],
            "410902",
        ),
        (
            "hn-qingfeng-mz",
            "清丰县民政局经办",
            vec![Role::DeptMaker],
            "410922",
        ),
        (
            "hn-qingfeng-mz-head",
            "清丰县民政局负责人",
            vec![Role::DeptHead],
            "410922",
        ),
        (
            "hn-qingfeng-cz",
            "清丰县财政局",
            vec![Role::FinanceReviewer],
            "410922",
        ),
        (
            "hn-puyang-cz",
            "濮阳市财政局",
            vec![Role::FinanceReviewer],
            "4109",
        ),
        ("hn-czt", "河南省财政厅", vec![Role::FinanceReviewer], "41"),
        ("hn-mzt", "河南省民政厅经办", vec![Role::DeptMaker], "41"),
        ("hn-admin", "一卡通系统管理员", vec![Role::Admin], "41"),
    ]
}

/// The candidate banks of the demo (the last one is refused: not connected).
fn demo_banks() -> Vec<Candidate> {
    let c = |code: &str, name: &str, no: &str, connected: bool| Candidate {
        code: code.into(),
        name: name.into(),
        agreement_no: no.into(),
        connected,
        free_interbank: true,
    };
    vec![
        c(
            "ABC-HN",
            "中国农业银行河南省分行",
            "豫财监代〔2021〕1号",
            true,
        ),
        c(
            "PSBC-HN",
            "中国邮政储蓄银行河南省分行",
            "豫财监代〔2021〕2号",
            true,
        ),
        c(
            "HNRCU",
            "河南省农村信用社联合社",
            "豫财监代〔2021〕3号",
            true,
        ),
        c("CCB-X", "某城市商业银行", "豫财监代〔2021〕4号", false),
    ]
}

/// The county each demo batch is in, its department, head, finance office and bank.
struct County {
    clerk: &'static str,
    head: &'static str,
    finance: &'static str,
    bank: &'static str,
}

fn county_of(region: &str) -> County {
    if region.starts_with("410922") {
        County {
            clerk: "hn-qingfeng-mz",
            head: "hn-qingfeng-mz-head",
            finance: "hn-qingfeng-cz",
            bank: "HNRCU",
        }
    } else {
        County {
            clerk: "hn-hualong-mz",
            head: "hn-hualong-mz-head",
            finance: "hn-hualong-cz",
            bank: "ABC-HN",
        }
    }
}

/// Print a refusal the demo expects (a rule at work).
fn expect_refused<T>(what: &str, r: Result<T, super::ops::OpError>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.is_refusal() => {
            outln!("  ✗ {what}：{e}");
            Ok(())
        }
        Err(e) => Err(e.into()),
        Ok(_) => Err(anyhow!("演示预期被拒绝却通过了：{what}")),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("无法写入 {}", p.display()))
}

/// A file of the demo's artifacts written as it is made, batch by batch, instead of held
/// whole in memory (at province scale a file lists a million lines). `write!` into it
/// records the first I/O error, which [`Artifact::finish`] reports.
struct Artifact {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    error: Option<std::io::Error>,
}

impl Artifact {
    fn create(dir: &Path, name: &str) -> anyhow::Result<Artifact> {
        let path = dir.join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("无法写入 {}", path.display()))?;
        Ok(Artifact {
            path,
            out: std::io::BufWriter::new(file),
            error: None,
        })
    }

    fn push_str(&mut self, s: &str) {
        let _ = std::fmt::Write::write_str(self, s);
    }

    fn finish(mut self) -> anyhow::Result<()> {
        use std::io::Write as _;
        let flushed = self.out.flush();
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("无法写入 {}", self.path.display())),
        }
    }
}

impl std::fmt::Write for Artifact {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        use std::io::Write as _;
        if self.error.is_some() {
            return Err(std::fmt::Error);
        }
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            std::fmt::Error
        })
    }
}

fn luhn_account(bin: &str, rng: &mut StdRng) -> String {
    let body = format!("{bin}{:012}", rng.gen_range(0..1_000_000_000_000u64));
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|s| ykt_kernel::ident::luhn_valid(s))
        .unwrap_or_else(|| format!("{body}0"))
}

/// Whether any of `batches` has more than `lines` lines.
fn batches_over(batches: &[BatchRow], lines: u64) -> bool {
    batches.iter().any(|b| b.control.count > lines)
}

pub async fn run(ctx: &DemoCtx<'_>) -> anyhow::Result<()> {
    let store = ctx.store;
    let today = ctx.cfg.today();
    let dir = ctx.out.join("流程");
    std::fs::create_dir_all(&dir)?;
    let calendar = super::Settings::from_config(ctx.cfg)?.calendar()?;
    outln!("—— 河南省发放流程（濮阳规程）：项目库、代发银行、发放单号、银行获取明细 ——");

    for (login, name, roles, region) in demo_people() {
        if store.get_user(login).await?.is_none() {
            store
                .upsert_user(&UserRow {
                    login: login.into(),
                    display_name: name.into(),
                    roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
                    region: format!("{region:0<12}"),
                    password_hash: None,
                    disabled: false,
                })
                .await?;
        }
    }
    let u = |login: &'static str| async move {
        load_user(store, login).await.map_err(|e| anyhow!("{e}"))
    };
    let no_ports = crate::cycle::Ports::default();
    let setup = Henan {
        store,
        province: ctx.province,
        ports: &no_ports,
        today,
        calendar: &calendar,
    };

    crate::bench::phase("library, banks (set-up)");
    // 1. The project library and a change request through every level (第十至十二条).
    match setup.seed_library().await? {
        0 => outln!(
            "1. 补贴项目库：已有{}个项目（第十条）",
            setup.library().await?.len()
        ),
        n => outln!("1. 补贴项目库：初始入库 {n} 个项目（第十条）"),
    }
    let mut changes = String::new();
    if store.henan_library_entry("HN09").await?.is_none() {
        let form = LibraryEntry {
            code: "HN09".into(),
            name: "华龙区困难群众临时救助金".into(),
            short_name: "临时救助".into(),
            lead_unit: "华龙区民政局".into(),
            frequency: "多次/年".into(),
            period: String::new(),
            cross_period: String::new(),
            basis: Default::default(),
            funding: Default::default(),
            exclusive_group: None,
            standard: None,
            unit: None,
            policy_basis: "华龙区临时救助实施办法".into(),
            target: "遭遇突发性、紧迫性困难的家庭或个人".into(),
            conditions: "经乡镇（街道）审核、区民政局审批".into(),
            standard_text: "按困难程度核定".into(),
        };
        write(&dir, "变更申请表-HN09.toml", &form.to_form())?;
        let id = setup
            .file_change(
                &u("hn-hualong-mz").await?,
                ChangeKind::Add,
                Some(form),
                None,
                "新增区级临时救助项目，纳入一卡通发放",
            )
            .await?;
        outln!("   华龙区民政局填报变更申请 {id}（新增 HN09）");
        expect_refused(
            "市财政越过区财政先行审核",
            setup
                .change_step(id, &u("hn-puyang-cz").await?, false, None)
                .await,
        )?;
        setup
            .change_step(id, &u("hn-hualong-cz").await?, false, Some("资料齐全"))
            .await?;
        expect_refused(
            "区财政已审核过，不能再以市财政身份复核",
            setup
                .change_step(id, &u("hn-hualong-cz").await?, false, None)
                .await,
        )?;
        setup
            .change_step(id, &u("hn-puyang-cz").await?, false, Some("复核无误"))
            .await?;
        setup
            .change_step(id, &u("hn-czt").await?, false, Some("同意入库"))
            .await?;
        outln!("   华龙区财政审核 → 濮阳市财政复核 → 省财政厅调整入库：HN09 已入库");
        let steps = store.henan_change_steps(id).await?;
        if let Some(r) = store.henan_change(id).await? {
            changes.push_str(&render::change(&r, &steps));
        }
        // A provincial unit files straight to provincial finance.
        let mut hn07 = setup
            .check_payable("HN07")
            .await
            .map_err(|e| anyhow!("{e}"))?
            .entry;
        hn07.standard_text = "80周岁以上老年人每人每月不低于50元".into();
        let id = setup
            .file_change(
                &u("hn-mzt").await?,
                ChangeKind::Modify,
                Some(hn07),
                None,
                "调整高龄津贴补贴标准说明",
            )
            .await?;
        setup
            .change_step(id, &u("hn-czt").await?, false, Some("同意调整"))
            .await?;
        outln!("   省民政厅填报变更申请 {id}（调整 HN07）→ 省财政厅直接调整");
        let steps = store.henan_change_steps(id).await?;
        if let Some(r) = store.henan_change(id).await? {
            changes.push_str(&render::change(&r, &steps));
        }
    }
    let lib = setup.library().await?;
    write(
        &dir,
        "补贴项目库.txt",
        &format!(
            "{}\n变更申请：\n{changes}\n项目库历史：\n{}",
            render::library(&lib),
            render::history(&store.henan_library_history(None).await?)
        ),
    )?;

    // 2. Agent banks (第十五、十六条).
    let czt = u("hn-czt").await?;
    let existing: Vec<String> = store
        .henan_candidates()
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    for c in demo_banks() {
        if existing.contains(&c.code) {
            continue;
        }
        if c.connected {
            setup.add_candidate(&czt, &c).await?;
        } else {
            expect_refused(
                &format!("省财政厅将{}列为备选", c.name),
                setup.add_candidate(&czt, &c).await,
            )?;
        }
    }
    let selections = [
        ("410902", "hn-hualong-cz", "ABC-HN", "华龙财代〔2021〕1号"),
        ("410902", "hn-hualong-cz", "PSBC-HN", "华龙财代〔2021〕2号"),
        ("410922", "hn-qingfeng-cz", "HNRCU", "清丰财代〔2021〕1号"),
    ];
    for (county, who, bank, no) in selections {
        if !setup
            .county_banks(&format!("{county:0<12}"))
            .await?
            .iter()
            .any(|b| b == bank)
        {
            setup.select_bank(&u(who).await?, county, bank, no).await?;
        }
    }
    expect_refused(
        "华龙区再选第三家代发银行",
        setup
            .select_bank(
                &u("hn-hualong-cz").await?,
                "410902",
                "HNRCU",
                "华龙财代〔2021〕3号",
            )
            .await,
    )?;
    let banks_text = render::banks(
        &store.henan_candidates().await?,
        &store.henan_county_banks(None).await?,
    );
    write(&dir, "代发银行.txt", &banks_text)?;
    outln!("2. 代发银行：省财政厅备选3家；华龙区选定农行、邮储，清丰县选定农信（第十五、十六条）");

    // 3. The outside world: the platform's bank interface, the budget system, the banks.
    let province: Arc<dyn Province> =
        Arc::from(super::ops::library_province(store, &ctx.cfg.province_settings).await?);
    let large = batches_over(&ctx.batches, SMALL_ORDER);
    let mut faults = BTreeMap::new();
    faults.insert(
        "ABC-HN".to_owned(),
        BankFaults {
            chunk: if large { LARGE_DELIVERY } else { 25 },
            shuffle_window: if large { SHUFFLE_WINDOW } else { 0 },
            ..default_faults()
        },
    );
    faults.insert(
        "HNRCU".to_owned(),
        BankFaults {
            fail: vec![(FailureReason::WrongAccount, 1)],
            repeat_rate: 0.5,
            shuffle: true,
            shuffle_window: if large { SHUFFLE_WINDOW } else { 0 },
            chunk: if large { LARGE_DELIVERY / 2 } else { 10 },
            handover_short: true,
            ..BankFaults::default()
        },
    );
    let env = start_sims(
        store,
        province.clone(),
        Arc::new(calendar.clone()),
        SimOptions {
            seed: ctx.seed,
            today,
            faults,
            default_faults: BankFaults::default(),
            page: None,
            pending_polls: 1,
            notify_banks: true,
        },
    )
    .await?;
    // The simulated banks keep their books (ledger per project, what they credited) between
    // demo runs, next to the database, as a real bank keeps its own.
    let books = ctx
        .cfg
        .key_file
        .parent()
        .map(|d| d.join("henan-bank-sims"))
        .unwrap_or_else(|| "henan-bank-sims".into());
    for (code, bank) in &env.banks {
        if let Ok(text) = std::fs::read_to_string(books.join(format!("{code}.json"))) {
            if let Ok(v) = serde_json::from_str(&text) {
                bank.import_state(&v);
            }
        }
    }
    outln!(
        "3. 已启动：一卡通银行接口 {}/henan/bank/v1，预算管理一体化系统 {}，模拟代发银行 {}家",
        env.platform_url,
        env.budget_url,
        env.banks.len()
    );
    let ops = Henan {
        store,
        province: province.as_ref(),
        ports: &env.ports,
        today,
        calendar: &calendar,
    };

    crate::bench::phase("apply, review, order push");
    // 4. Apply, review (maker ≠ checker), push the order (第二十至二十一条).
    let mut batches: Vec<BatchRow> = ctx.batches.clone();
    batches.sort_by_key(|b| b.id);
    let maker = u("henan-clerk").await?;
    for (i, b) in batches.iter().enumerate() {
        let c = county_of(&b.region);
        if i == 0 {
            // The person who applies can never review.
            let dual = u("hn-hualong-dual").await?;
            ops.step(b.id, "apply_funds", &dual, None).await?;
            expect_refused(
                "同一人既提交拨付申请又做财政审核",
                ops.review(b.id, &dual, Some(c.bank), None).await,
            )?;
        } else {
            ops.step(b.id, "apply_funds", &maker, None).await?;
        }
        let bank = (i == 0).then_some(c.bank);
        ops.review(b.id, &u(c.finance).await?, bank, None).await?;
        ops.step(b.id, "push_order", &u(c.finance).await?, None)
            .await?;
        let o = store
            .henan_order_of_batch(b.id)
            .await?
            .ok_or_else(|| anyhow!("批次{}没有发放申请", b.id))?;
        if let Some(m) = &o.push_message {
            std::fs::write(
                dir.join(format!("发放申请-{}.xml", o.order_no)),
                ykt_http::henan::budget::encode(m),
            )?;
        }
        outln!(
            "4. 批次{} {}：财政审核选定{}，预算单位{}，推送发放单号至预算管理一体化系统（支付申请{}）",
            b.id,
            o.order_no,
            o.bank,
            o.budget_unit,
            o.request_no.as_deref().unwrap_or("-")
        );
    }

    crate::bench::phase("funding, release, bank pull, results");
    // 5. The treasury pays the banks; the detail is released; the banks pull and report.
    // The system's steps run until nothing moves (as `ykt serve` does on its timer).
    for _ in 0..6 {
        let lines = ops.sync().await?;
        for l in &lines {
            outln!("5. 系统：批次{} {}：{}", l.batch, l.step, l.outcome);
        }
        env.settle().await?;
        if lines.iter().all(|l| l.step == "collect_results") {
            break;
        }
    }

    crate::bench::phase("corrections, re-pull, refunds");
    // 6. Failures: signed corrections (new card, reactivated account), a refund, a re-pull.
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x4e41);
    let mut corrected = 0;
    let mut refunded = 0;
    for b in &batches {
        let c = county_of(&b.region);
        let clerk = u(c.clerk).await?;
        // Only the failed lines (2 % of an order), not the whole batch decrypted.
        let failed = store.lines_in_state(b.id, LineState::Failed).await?;
        if failed.is_empty() {
            continue;
        }
        let mut new_cards = Vec::new();
        for l in &failed {
            if l.fail_reason.as_deref() == Some(FailureReason::WrongAccount.as_str()) {
                new_cards.push(CardRecord {
                    resident_id: l.resident_id.clone(),
                    name: l.name.clone(),
                    card_no: format!("B{:08}", rng.gen_range(0..100_000_000u32)),
                    bank: l.bank.clone(),
                    account: BankAccount::parse(&luhn_account("622848", &mut rng))
                        .map_err(|e| anyhow!("{e}"))?,
                    status: CardStatus::Normal,
                    activated: true,
                });
            }
        }
        if !new_cards.is_empty() {
            // HR&SS re-issued the cards (补办卡): a registry update, imported like any other.
            let f = dir.join(format!("社保卡信息变更-批次{}.csv", b.id));
            ykt_files::export::write_csv_gb18030_table(
                &f,
                &crate::demo::REGISTRY_HEADERS,
                new_cards.iter().map(crate::demo::card_cells),
            )?;
            let loaded = ykt_files::registry::read_card_registry(&f, today)?;
            store
                .import_cards(
                    ok_rows(loaded.records),
                    ImportMeta::for_bytes(
                        kinds::CARDS,
                        &f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        &std::fs::read(&f)?,
                        "hrss",
                    ),
                )
                .await?;
        }
        let card_of: HashMap<_, _> = new_cards.iter().map(|c| (&c.resident_id, c)).collect();
        for l in &failed {
            let reason = l.fail_reason.as_deref().and_then(FailureReason::parse);
            match reason {
                Some(FailureReason::WrongAccount) => {
                    let card = card_of
                        .get(&l.resident_id)
                        .ok_or_else(|| anyhow!("缺少补办卡"))?;
                    if corrected == 0 {
                        expect_refused(
                            "未经主管部门负责人签字更正",
                            ops.correct(
                                b.id,
                                l.id,
                                &clerk,
                                c.clerk,
                                "本人",
                                Some(card.account.as_str()),
                                None,
                                "补办社保卡",
                            )
                            .await,
                        )?;
                    }
                    ops.correct(
                        b.id,
                        l.id,
                        &clerk,
                        c.head,
                        &format!("本人 {}", l.name),
                        Some(card.account.as_str()),
                        None,
                        "原社保卡账号错误，已补办社保卡，更正为新卡账号",
                    )
                    .await?;
                    corrected += 1;
                }
                Some(FailureReason::DormantAccount) => {
                    ops.correct(
                        b.id,
                        l.id,
                        &clerk,
                        c.head,
                        &format!("本人 {}", l.name),
                        None,
                        None,
                        "账户休眠，补贴对象已到银行激活，经核实信息无误",
                    )
                    .await?;
                    corrected += 1;
                }
                _ => {
                    ops.refund(
                        b.id,
                        l.id,
                        &clerk,
                        &u(c.finance).await?,
                        "账户已销户且补贴对象无法联系，确实无法发放，原渠道退回",
                    )
                    .await?;
                    refunded += 1;
                }
            }
        }
        let n = ops.repull(b.id, &clerk).await.unwrap_or(0);
        outln!(
            "6. 批次{}：{}笔失败 —— 签字更正后通知银行再次获取{}笔{}",
            b.id,
            failed.len(),
            n,
            if n < failed.len() {
                format!("，{}笔原渠道退回", failed.len() - n)
            } else {
                String::new()
            }
        );
    }
    env.settle().await?;
    for l in ops.sync().await? {
        outln!("   系统：批次{} {}：{}", l.batch, l.step, l.outcome);
    }
    outln!("   共更正{corrected}笔、退回{refunded}笔");

    crate::bench::phase("hand-overs, reconciliation, publication");
    // 7. Hand-overs, deadlines, reconciliation (第二十六条).
    let as_of = calendar.add_working_days(today, 4)?;
    let before = ops.handovers(None, as_of).await?;
    let flagged = before
        .iter()
        .filter(|v| {
            v.deadlines
                .as_ref()
                .map(|d| d.any_overdue())
                .unwrap_or(false)
        })
        .count();
    let deadlines = format!(
        "假设至{as_of}仍未处理（以{as_of}为准检查期限）：逾期{flagged}项\n{}",
        render::handovers(&before)
    );
    write(&dir, "期限检查.txt", &deadlines)?;
    outln!("7. 交易结果交接：若至{as_of}仍未核对，逾期{flagged}项（见 期限检查.txt）");
    for b in &batches {
        let c = county_of(&b.region);
        let clerk = u(c.clerk).await?;
        loop {
            let open: Vec<_> = store
                .henan_handovers(Some(&b.order_no))
                .await?
                .into_iter()
                .filter(|h| h.state == "open")
                .collect();
            let Some(h) = open.first() else { break };
            if h.discrepancy.is_empty() {
                ops.check_handover(&b.order_no, Some(h.seq), &clerk, None)
                    .await?;
            } else {
                expect_refused(
                    "交易结果与系统记录不符时确认无误",
                    ops.check_handover(&b.order_no, Some(h.seq), &clerk, None)
                        .await,
                )?;
                ops.check_handover(
                    &b.order_no,
                    Some(h.seq),
                    &clerk,
                    Some(&format!("交易结果{}，请核查补救", h.discrepancy)),
                )
                .await?;
                let bank = env
                    .banks
                    .get(&h.bank)
                    .ok_or_else(|| anyhow!("没有模拟银行{}", h.bank))?;
                bank.resubmit_handover(&b.order_no, h.seq).await?;
                outln!(
                    "   {}：交易结果不符，已通知{}补救，银行重新交接",
                    b.order_no,
                    h.bank
                );
            }
        }
        ops.reconcile(b.id, &clerk).await?;
        ops.publish(b.id, &clerk).await?;
    }
    outln!("8. 对账确认、结果确认后自动推送至惠民惠农补贴查询（第二十四、二十六条）");

    crate::bench::phase("statements, reports");
    // 8. Statements and reports (第二十五、二十六条).
    let month = format!("{:04}-{:02}", today.year(), today.month());
    for b in env.banks.values() {
        if !b.ledger().is_empty() {
            b.post_statement(&month).await?;
        }
    }
    std::fs::create_dir_all(&books)?;
    for (code, bank) in &env.banks {
        let path = books.join(format!("{code}.json"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("无法写入 {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        bank.write_state(&mut out)?;
        std::io::Write::flush(&mut out).with_context(|| format!("无法写入 {}", path.display()))?;
    }
    let rep_dir = ctx.out.join("报表");
    let monthly = report::monthly(store, province.as_ref(), &month).await?;
    let files = report::write_monthly(&monthly, &rep_dir)?;
    let annual = report::write_annual(store, province.as_ref(), today.year(), &rep_dir).await?;
    outln!(
        "9. 银行台账月度对账；财政月报与年度汇编：{}",
        files
            .iter()
            .chain(annual.iter())
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join("、")
    );

    write_artifacts(&dir, store, province.as_ref(), &batches, &env, &ops, today).await?;
    let (sum, unbalanced) = store.ledger_check().await?;
    let audit = store.verify_audit().await?;
    outln!(
        "   分类账合计 {sum} 元、不平分录 {unbalanced} 笔；审计链 {} 条完整",
        audit.entries
    );
    outln!("   流程文件：{}", dir.display());
    Ok(())
}

/// Each line's public lookup records (公开查询记录), in line order: the lines read and
/// decrypted a page at a time and the page's records in one query, not one query a line.
async fn published_records(
    store: &Store,
    batch: i64,
    line_ids: &[i64],
    out: &mut Artifact,
) -> anyhow::Result<()> {
    const PAGE: usize = 500;
    for ids in line_ids.chunks(PAGE) {
        let keys: Vec<String> = store
            .lines_by_id(batch, ids)
            .await?
            .iter()
            .map(|l| crate::cycle::lookup_key(store, l.resident_id.as_str(), &l.name))
            .collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        let mut by_key: HashMap<String, Vec<LookupRecord>> = HashMap::new();
        for r in store.lookup_records_many(&unique).await? {
            by_key.entry(r.person_key.clone()).or_default().push(r);
        }
        for k in &keys {
            out.push_str(&render::published(
                by_key.get(k).map(Vec::as_slice).unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

async fn write_artifacts(
    dir: &Path,
    store: &Store,
    province: &dyn Province,
    batches: &[BatchRow],
    env: &SimEnv,
    ops: &Henan<'_>,
    today: chrono::NaiveDate,
) -> anyhow::Result<()> {
    let mask = province.mask_policy();
    let mut orders = Artifact::create(dir, "发放申请.txt")?;
    let mut trace = Artifact::create(dir, "流程记录.txt")?;
    let mut results = Artifact::create(dir, "发放结果.txt")?;
    let mut sms = Artifact::create(dir, "到账短信.txt")?;
    let mut events = Artifact::create(dir, "更正与退回.txt")?;
    let mut published = Artifact::create(dir, "公开查询记录.txt")?;
    for b in batches {
        let b = store
            .batch(b.id)
            .await?
            .ok_or_else(|| anyhow!("批次不存在"))?;
        if let Some(o) = store.henan_order_of_batch(b.id).await? {
            orders.push_str(&render::order(&o));
        }
        let _ = writeln!(
            trace,
            "批次{} {} {}：{}",
            b.id,
            b.order_no,
            b.region,
            b.state.label_zh()
        );
        trace.push_str(&render::steps(&store.batch_steps(b.id).await?));
        trace.push_str(&render::traffic(
            &store.henan_releases(&b.order_no).await?,
            &store.henan_pulls(&b.order_no).await?,
            &store.henan_posts(&b.order_no).await?,
        ));
        let _ = writeln!(results, "{}：", b.order_no);
        let _ = writeln!(sms, "{}：", b.order_no);
        // A batch may hold a million lines: read a page at a time (the results and their
        // SMS by line and attempt, then the lines' final states).
        let ids = store.line_ids(b.id).await?;
        let mut by_id = ids.clone();
        by_id.sort_unstable();
        for page in by_id.chunks(1000) {
            let rows = store.henan_results_of(&b.order_no, page).await?;
            results.push_str(&render::results(&rows));
            sms.push_str(&render::sms(&rows));
        }
        results.push_str("明细终态：\n");
        for page in by_id.chunks(1000) {
            results.push_str(&render::lines(
                &store.henan_line_digest_of(b.id, page).await?,
                &mask,
            ));
        }
        events.push_str(&render::line_events(
            &store.henan_line_events(Some(b.id)).await?,
            &mask,
        ));
        published_records(store, b.id, &ids, &mut published).await?;
    }
    for file in [orders, trace, results, sms, events, published] {
        file.finish()?;
    }
    write(
        dir,
        "交易结果交接.txt",
        &render::handovers(&ops.handovers(None, today).await?),
    )?;
    write(
        dir,
        "台账对账.txt",
        &render::statements(&store.henan_statements().await?),
    )?;
    let (sum, unbalanced) = store.ledger_check().await?;
    write(
        dir,
        "分类账.txt",
        &render::ledger(&store.ledger_balances().await?, sum, unbalanced),
    )?;
    // What the banks pulled, masked; and the files as the banks received them (GB18030, with
    // full accounts: the bank's copies of what it is paid to credit).
    let mut pulled = String::new();
    for (code, bank) in &env.banks {
        for p in bank.pulls() {
            let _ = writeln!(
                pulled,
                "{code} {} {} 自明细{}之后 {}行{}",
                p.order_no,
                if p.mode == "stream" {
                    "流式CSV"
                } else {
                    "分页JSON"
                },
                p.after,
                p.lines,
                if p.complete { "" } else { "（连接中断）" }
            );
        }
        for l in bank.pulled() {
            let _ = writeln!(
                pulled,
                "  {} 明细{} 第{}次 {} {} {}元",
                l.order_no,
                l.line_id,
                l.attempt,
                mask.name(&l.name),
                mask.account(&l.account),
                l.amount
            );
        }
        let bank_dir = dir.join("银行").join(code);
        for (i, (order, bytes)) in bank.files().iter().enumerate() {
            std::fs::create_dir_all(&bank_dir)?;
            std::fs::write(bank_dir.join(format!("{order}-{:02}.csv", i + 1)), bytes)?;
        }
    }
    write(dir, "银行获取明细（脱敏）.txt", &pulled)?;
    let mut budget = String::new();
    for m in env.budget.received() {
        budget.push_str(&m);
    }
    for i in env.budget.indicators() {
        let _ = writeln!(budget, "指标 {} 余额 {}元", i.code, i.balance);
    }
    for (r, a, why) in env.budget.refunds() {
        let _ = writeln!(budget, "退款 {r} {a}元 {why}");
    }
    write(dir, "预算管理一体化系统.txt", &budget)?;
    Ok(())
}
