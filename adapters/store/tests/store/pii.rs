//! No plaintext personal identifier reaches storage.

use crate::common::{account, card, cards_meta, death, meta, resident_id};
use ykt_store::testing::each_backend;
use ykt_store::{kinds, ok_rows};

#[tokio::test]
async fn no_plaintext_identifiers_in_storage() {
    each_backend("pii_scan", |db| async move {
        let s = &db.store;
        let known: Vec<u64> = vec![0, 1, 2, 77, 499];
        s.import_cards(ok_rows((0..500).map(card)), cards_meta("pii-cards"))
            .await
            .expect("cards");
        s.import_deaths(
            ok_rows((600..610).map(death)),
            meta(kinds::DEATHS, "pii-deaths"),
        )
        .await
        .expect("deaths");
        // Nothing stores a phone number yet; the scan keeps watching for one.
        let phone = "13800138000";

        let raw = db.raw_bytes().await.expect("raw storage");
        let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());

        // The scan sees real data: names are stored in clear.
        assert!(contains(&card(77).name), "scan does not see stored names");
        assert!(contains("中国农业银行"));

        for n in known.iter().copied().chain([605]) {
            let id = resident_id(n);
            assert!(
                !contains(id.as_str()),
                "resident ID {} stored in clear",
                id.masked()
            );
            let acct = account(n);
            assert!(
                !contains(acct.as_str()),
                "account {} stored in clear",
                acct.masked()
            );
            let card_no = card(n).card_no;
            assert!(!contains(&card_no), "card number of {n} stored in clear");
        }
        assert!(!contains(phone));
        // The data is really there and readable through the API.
        let got = s.lookup_cards(&[resident_id(77)]).await.expect("lookup");
        assert_eq!(got, vec![Some(card(77))]);
    })
    .await;
}
