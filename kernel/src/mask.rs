//! Masking of personal data for anything public or exported outside the department
//! (DOMAIN.md §3). The defaults are those of §3; provinces may configure their own policy
//! (e.g. a disclosure rule that shows fewer digits).
//!
//! All functions count **characters**, not bytes, and never return their input unmasked: a
//! value too short for the policy is masked more, never less.

use serde::{Deserialize, Serialize};

/// How much of each identifier stays visible (DOMAIN.md §3). Deserialising fills missing
/// fields with the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct MaskPolicy {
    /// Leading characters of a name kept (default 1: `张*`).
    pub name_keep: usize,
    /// Leading characters of a resident ID kept (default 6, the address code).
    pub id_head: usize,
    /// Trailing characters of a resident ID kept (default 4).
    pub id_tail: usize,
    /// Leading digits of a bank account kept (default 4).
    pub account_head: usize,
    /// Trailing digits of a bank account kept (default 4).
    pub account_tail: usize,
    /// Leading digits of a phone number kept (default 3).
    pub phone_head: usize,
    /// Trailing digits of a phone number kept (default 4).
    pub phone_tail: usize,
}

impl Default for MaskPolicy {
    /// The defaults of DOMAIN.md §3: name 1, ID 6 + 4, account 4 + 4, phone 3 + 4.
    fn default() -> Self {
        MaskPolicy {
            name_keep: 1,
            id_head: 6,
            id_tail: 4,
            account_head: 4,
            account_tail: 4,
            phone_head: 3,
            phone_tail: 4,
        }
    }
}

/// Stars shown for the hidden part of a name, however long it is (the length of a name is
/// itself revealing).
const NAME_MAX_STARS: usize = 2;

impl MaskPolicy {
    /// Mask a personal name (surrounding whitespace ignored): keep the first `name_keep`
    /// characters but always hide at least one, then one `*` per hidden character, at most
    /// two: `张三` → `张*`, `欧阳娜娜` → `欧**`, `买买提·艾力` → `买**` (the middle dot `·`
    /// counts as a character), `张` → `*`. An empty name stays empty.
    pub fn name(&self, name: &str) -> String {
        let chars: Vec<char> = name.trim().chars().collect();
        if chars.is_empty() {
            return String::new();
        }
        let keep = self.name_keep.min(chars.len() - 1);
        let stars = (chars.len() - keep).min(NAME_MAX_STARS);
        let mut out: String = chars[..keep].iter().collect();
        out.extend(std::iter::repeat_n('*', stars));
        out
    }

    /// Mask a resident ID: `230102********3745` with the defaults (see [`mask_middle`]).
    pub fn id(&self, id: &str) -> String {
        mask_middle(id, self.id_head, self.id_tail)
    }

    /// Mask a bank account: `6217********1234` with the defaults (see [`mask_middle`]).
    pub fn account(&self, account: &str) -> String {
        mask_middle(account, self.account_head, self.account_tail)
    }

    /// Mask a phone number: `138****8000` with the defaults (see [`mask_middle`]).
    pub fn phone(&self, phone: &str) -> String {
        mask_middle(phone, self.phone_head, self.phone_tail)
    }
}

/// Keep the first `head` and last `tail` characters of `s` and replace each character in
/// between by `*`, preserving the character count.
///
/// When `s` is not longer than `head + tail` (so nothing would be hidden) only the last
/// `min(tail, len / 2)` characters are kept and everything before them is starred: `"1234"`
/// with 6 + 4 gives `"**34"`, `"7"` gives `"*"`. The result is never the unmasked input
/// (except for the empty string).
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let (head, tail) = if len > head.saturating_add(tail) {
        (head, tail)
    } else {
        (0, tail.min(len / 2))
    };
    let mut out = String::with_capacity(s.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', len - head - tail));
    out.extend(&chars[len - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        let p = MaskPolicy::default();
        assert_eq!(p.name("张三"), "张*");
        assert_eq!(p.name("欧阳娜娜"), "欧**");
        assert_eq!(p.name("欧阳娜"), "欧**");
        assert_eq!(p.name("买买提·艾力"), "买**");
        assert_eq!(p.name("阿·娜"), "阿**");
        assert_eq!(p.name("张"), "*");
        assert_eq!(p.name(" 李四 "), "李*");
        assert_eq!(p.name(""), "");
        assert_eq!(p.name("𬌗三"), "𬌗*");
        let wide = MaskPolicy { name_keep: 5, ..p };
        assert_eq!(wide.name("张三"), "张*");
        let none = MaskPolicy { name_keep: 0, ..p };
        assert_eq!(none.name("张三"), "**");
        assert_eq!(none.name("张"), "*");
        assert_eq!(none.name("欧阳娜娜"), "**");
    }

    #[test]
    fn identifiers_with_defaults() {
        let p = MaskPolicy::default();
        assert_eq!(p.id("230102199003103745"), "230102********3745");
        assert_eq!(p.account("6217000000001234"), "6217********1234");
        assert_eq!(p.phone("13800138000"), "138****8000");
    }

    #[test]
    fn short_values_are_still_masked() {
        assert_eq!(mask_middle("1234", 6, 4), "**34");
        assert_eq!(mask_middle("12345", 6, 4), "***45");
        assert_eq!(mask_middle("1234567890", 6, 4), "******7890");
        assert_eq!(mask_middle("12345678901", 6, 4), "123456*8901");
        assert_eq!(mask_middle("7", 6, 4), "*");
        assert_eq!(mask_middle("", 6, 4), "");
        assert_eq!(mask_middle("ab", 0, 0), "**");
        assert_eq!(mask_middle("abc", 0, 1), "**c");
        assert_eq!(mask_middle("张三丰", 1, 1), "张*丰");
        assert_eq!(mask_middle("abc", usize::MAX, usize::MAX), "**c");
    }

    #[test]
    fn policy_serde_with_defaults() {
        let p: MaskPolicy = serde_json::from_str(r#"{"id_head": 3}"#).unwrap();
        assert_eq!(
            p,
            MaskPolicy {
                id_head: 3,
                ..MaskPolicy::default()
            }
        );
        let j = serde_json::to_string(&MaskPolicy::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<MaskPolicy>(&j).unwrap(),
            MaskPolicy::default()
        );
    }

    proptest! {
        #[test]
        fn mask_middle_preserves_count_and_hides(s in "\\PC{0,40}", head in 0usize..8, tail in 0usize..8) {
            let m = mask_middle(&s, head, tail);
            let chars: Vec<char> = s.chars().collect();
            let out: Vec<char> = m.chars().collect();
            prop_assert_eq!(out.len(), chars.len());
            if !chars.is_empty() {
                prop_assert!(out[0] == '*' || chars.len() > head + tail);
                // At least one character is hidden, and at most half are shown when short.
                let shown = out.iter().zip(&chars).filter(|(o, c)| o == c && **o != '*').count();
                prop_assert!(shown < chars.len() || chars.iter().all(|c| *c == '*'));
            }
            if chars.len() > head + tail {
                prop_assert!(out[head..chars.len() - tail].iter().all(|c| *c == '*'));
                prop_assert_eq!(&out[..head], &chars[..head]);
                prop_assert_eq!(&out[chars.len() - tail..], &chars[chars.len() - tail..]);
            }
        }

        #[test]
        fn id_mask_never_contains_the_middle(s in "[0-9]{17}[0-9X]") {
            let m = MaskPolicy::default().id(&s);
            prop_assert_eq!(m.chars().count(), 18);
            prop_assert!(!m.contains(&s[6..14]));
            prop_assert_eq!(&m[6..14], "********");
        }

        #[test]
        fn name_reveals_at_most_first_char(s in "[\\p{Han}·]{1,12}") {
            let m = MaskPolicy::default().name(&s);
            let first = s.chars().next().unwrap();
            let rest: Vec<char> = m.chars().skip(1).collect();
            prop_assert!(rest.iter().all(|c| *c == '*'));
            prop_assert!(m.starts_with(first) || m.chars().all(|c| c == '*'));
            prop_assert!(m.chars().filter(|c| *c == '*').count() >= 1);
            prop_assert!(m.chars().count() <= 3);
        }
    }
}
