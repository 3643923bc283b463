//! Administrative division codes (行政区划代码).
//!
//! The six-digit codes of GB/T 2260 (中华人民共和国行政区划代码: 2 digits province, 2 city,
//! 2 county) are extended by the National Bureau of Statistics' 统计用区划代码 to twelve
//! digits (3 more for the township, 3 for the village). A roster names the region of a line
//! by the full twelve digits or by a prefix of them (DOMAIN.md §3, `region.format`).
//!
//! A [`RegionCode`] is normalised: trailing all-zero groups are dropped, so `230102000000`,
//! `230102` and `230102000` are the same county `230102`, and `230000` is the province `23`.
//! Zero groups *inside* a code are legitimate: cities without counties (不设区的地级市, e.g.
//! 东莞 `4419`, 中山 `4420`) number their townships directly under county group `00`
//! (`441900003000` is 东城街道 of 东莞). Such a township has no county ancestor.
//!
//! Whether a code exists is a question for the region table (`region.unknown`), not for this
//! type.

use crate::reason::ReasonCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether `n` is the first two digits of a provincial-level division (GB/T 2260): 11-15
/// (华北), 21-23 (东北), 31-37 (华东), 41-46 (中南), 50-54 (西南), 61-65 (西北), 71 (台湾),
/// 81 (香港), 82 (澳门). Used for the `id.region` check of resident IDs (DOMAIN.md §3).
pub fn is_province_code(n: u8) -> bool {
    matches!(n, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82)
}

/// The level of a division in the 统计用区划代码 hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    /// 省级 (province, autonomous region, municipality): digits 1-2.
    Province,
    /// 地级 (prefecture-level city, 州, 盟): digits 3-4.
    City,
    /// 县级 (county, district, county-level city, 旗): digits 5-6.
    County,
    /// 乡级 (township, town, 街道): digits 7-9.
    Township,
    /// 村级 (village, 社区/居委会): digits 10-12.
    Village,
}

impl RegionLevel {
    /// All levels, from the top down.
    pub const ALL: &'static [RegionLevel] = &[
        RegionLevel::Province,
        RegionLevel::City,
        RegionLevel::County,
        RegionLevel::Township,
        RegionLevel::Village,
    ];

    /// Short Chinese label: 省, 市, 县, 乡, 村.
    pub fn label(self) -> &'static str {
        match self {
            RegionLevel::Province => "省",
            RegionLevel::City => "市",
            RegionLevel::County => "县",
            RegionLevel::Township => "乡",
            RegionLevel::Village => "村",
        }
    }

    /// Number of significant digits of a code at this level: 2, 4, 6, 9, 12.
    pub fn digits(self) -> usize {
        match self {
            RegionLevel::Province => 2,
            RegionLevel::City => 4,
            RegionLevel::County => 6,
            RegionLevel::Township => 9,
            RegionLevel::Village => 12,
        }
    }

    /// The level whose codes have `n` significant digits (2, 4, 6, 9 or 12).
    pub fn from_digits(n: usize) -> Option<RegionLevel> {
        RegionLevel::ALL.iter().copied().find(|l| l.digits() == n)
    }

    /// The level directly above, `None` for a province.
    pub fn parent(self) -> Option<RegionLevel> {
        match self {
            RegionLevel::Province => None,
            RegionLevel::City => Some(RegionLevel::Province),
            RegionLevel::County => Some(RegionLevel::City),
            RegionLevel::Township => Some(RegionLevel::County),
            RegionLevel::Village => Some(RegionLevel::Township),
        }
    }
}

impl fmt::Display for RegionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a text is not a region code (reason code `region.format`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// Not 2, 4, 6, 9 or 12 ASCII digits, or the province group is `00`.
    #[error(
        "行政区划代码格式错误：应为2、4、6、9或12位数字，且省级代码不能为00 \
         (region code must be 2, 4, 6, 9 or 12 digits with a non-zero province group)"
    )]
    Format,
}

impl RegionError {
    /// The reason code of this error: `region.format`.
    pub fn reason(&self) -> ReasonCode {
        match self {
            RegionError::Format => ReasonCode::RegionFormat,
        }
    }
}

/// A division code of 统计用区划代码 (twelve digits: 2 province, 2 city, 2 county, 3 township,
/// 3 village) or a prefix of it, normalised to its level (see the module docs).
///
/// Ordering is that of the zero-padded twelve-digit code, so an ancestor sorts before its
/// descendants.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode {
    /// The twelve-digit code, zero padded (ASCII digits). Held inline: a roster line carries
    /// one, and a million lines should not mean a million heap strings.
    digits: [u8; 12],
    /// How many of `digits` are significant: 2, 4, 6, 9 or 12, the last group not all zero
    /// (except that a province group is never zero at all). After `digits` so the derived
    /// ordering is that of the padded code.
    len: u8,
}

impl RegionCode {
    /// Parse a code of 2, 4, 6, 9 or 12 ASCII digits (surrounding whitespace ignored) and
    /// normalise it by dropping trailing all-zero groups: `230102000000` is the county
    /// `230102`, `230000000000` and `230000` the province `23`. An all-zero province group is
    /// [`RegionError::Format`].
    pub fn parse(s: &str) -> Result<RegionCode, RegionError> {
        let s = s.trim();
        if RegionLevel::from_digits(s.len()).is_none() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegionError::Format);
        }
        RegionCode::normalised(s.as_bytes()).ok_or(RegionError::Format)
    }

    /// Normalise ASCII digits whose length is a level's digit count; `None` when the
    /// province group is `00`.
    fn normalised(digits: &[u8]) -> Option<RegionCode> {
        let mut len = digits.len();
        while let Some(level) = RegionLevel::from_digits(len) {
            let Some(parent) = level.parent() else { break };
            if digits[parent.digits()..len].iter().all(|&b| b == b'0') {
                len = parent.digits();
            } else {
                break;
            }
        }
        if digits.starts_with(b"00") {
            return None;
        }
        let mut padded = [b'0'; 12];
        padded[..len].copy_from_slice(digits.get(..len)?);
        Some(RegionCode {
            digits: padded,
            len: u8::try_from(len).ok()?,
        })
    }

    fn significant(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// The level of the division.
    pub fn level(&self) -> RegionLevel {
        // The prefix length is always one of the level lengths (invariant of the type).
        RegionLevel::from_digits(usize::from(self.len)).unwrap_or(RegionLevel::Village)
    }

    /// The significant digits, e.g. `230102` for the county `230102000000`.
    pub fn prefix(&self) -> &str {
        // Only ASCII digits are ever stored, so this is always valid UTF-8.
        std::str::from_utf8(self.significant()).unwrap_or_default()
    }

    /// The full twelve-digit code as text, zero padded: `230102000000`, without allocating.
    pub fn full_str(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// The full twelve-digit code, zero padded: `230102000000`.
    pub fn full(&self) -> String {
        self.full_str().to_owned()
    }

    /// The two-digit province number, e.g. `23` for 黑龙江.
    pub fn province_number(&self) -> u8 {
        self.digits[..2]
            .iter()
            .fold(0u8, |acc, b| acc * 10 + (b - b'0'))
    }

    /// The nearest enclosing division: the code truncated to the level above, normalised. For
    /// a township of a city without counties (`441900003`) that is the city (`4419`). `None`
    /// for a province.
    pub fn parent(&self) -> Option<RegionCode> {
        let level = self.level().parent()?;
        // Normalising drops a zero group at `level`, giving the next non-empty ancestor; it
        // cannot fail because the province group is never zero.
        RegionCode::normalised(&self.digits[..level.digits()])
    }

    /// Whether `self` is `other` or one of its ancestors (the region `other` lies inside
    /// `self`).
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.significant().starts_with(self.significant())
    }

    /// The ancestor-or-self at `level`: `Some(self)` when `self` is at that level, `None` when
    /// `self` is above it or has no division at that level (zero group, e.g. the county of
    /// `441900003`).
    pub fn ancestor(&self, level: RegionLevel) -> Option<RegionCode> {
        if level.digits() > usize::from(self.len) {
            return None;
        }
        let code = RegionCode::normalised(&self.digits[..level.digits()])?;
        (code.level() == level).then_some(code)
    }

    /// The province the division belongs to.
    pub fn province(&self) -> RegionCode {
        let mut digits = [b'0'; 12];
        digits[..2].copy_from_slice(&self.digits[..2]);
        RegionCode { digits, len: 2 }
    }

    /// The county-level ancestor-or-self (the level that usually runs a 一卡通 payment);
    /// `None` above county level or under a city without counties (东莞 `4419`).
    pub fn county(&self) -> Option<RegionCode> {
        self.ancestor(RegionLevel::County)
    }
}

impl fmt::Debug for RegionCode {
    /// As the former derived form: `RegionCode { prefix: "230102" }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegionCode")
            .field("prefix", &self.prefix())
            .finish()
    }
}

impl fmt::Display for RegionCode {
    /// The full twelve-digit code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.full_str())
    }
}

impl std::str::FromStr for RegionCode {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(s)
    }
}

impl Serialize for RegionCode {
    /// Serialised as the twelve-digit string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full())
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    /// Accepts anything [`RegionCode::parse`] accepts.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RegionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rc(s: &str) -> RegionCode {
        RegionCode::parse(s).expect(s)
    }

    #[test]
    fn province_codes() {
        for n in [11, 15, 21, 23, 31, 37, 41, 46, 50, 54, 61, 65, 71, 81, 82] {
            assert!(is_province_code(n), "{n}");
        }
        for n in [
            0, 10, 16, 20, 24, 30, 38, 40, 47, 49, 55, 60, 66, 70, 72, 80, 83, 99,
        ] {
            assert!(!is_province_code(n), "{n}");
        }
    }

    #[test]
    fn levels() {
        let labels: Vec<_> = RegionLevel::ALL.iter().map(|l| l.label()).collect();
        assert_eq!(labels, ["省", "市", "县", "乡", "村"]);
        let digits: Vec<_> = RegionLevel::ALL.iter().map(|l| l.digits()).collect();
        assert_eq!(digits, [2, 4, 6, 9, 12]);
        assert_eq!(RegionLevel::from_digits(9), Some(RegionLevel::Township));
        assert_eq!(RegionLevel::from_digits(3), None);
    }

    #[test]
    fn parse_and_normalise() {
        let c = rc("230102000000");
        assert_eq!(c.level(), RegionLevel::County);
        assert_eq!(c.prefix(), "230102");
        assert_eq!(c.full(), "230102000000");
        assert_eq!(c.to_string(), "230102000000");
        assert_eq!(rc("230000000000").prefix(), "23");
        assert_eq!(rc("230000000000").level(), RegionLevel::Province);
        assert_eq!(rc("230000"), rc("23"));
        assert_eq!(rc(" 2301 "), rc("230100000000"));
        assert_eq!(rc("230102001").level(), RegionLevel::Township);
        assert_eq!(rc("230102001002").level(), RegionLevel::Village);
        assert_eq!(rc("230102001000"), rc("230102001"));
    }

    #[test]
    fn parse_rejects() {
        for s in [
            "",
            "2",
            "230",
            "23010",
            "2301020",
            "23010200",
            "2301020010",
            "23010200100",
            "2301020010020",
            "00",
            "000000",
            "000000000000",
            "001100000000",
            "23a102",
            "２３０１０２",
            "-23",
            "23 01",
        ] {
            assert_eq!(RegionCode::parse(s), Err(RegionError::Format), "{s:?}");
        }
        assert_eq!(RegionError::Format.reason().as_str(), "region.format");
    }

    #[test]
    fn hierarchy() {
        let v = rc("230102001002");
        assert_eq!(v.parent(), Some(rc("230102001")));
        assert_eq!(rc("230102001").parent(), Some(rc("230102")));
        assert_eq!(rc("230102").parent(), Some(rc("2301")));
        assert_eq!(rc("2301").parent(), Some(rc("23")));
        assert_eq!(rc("23").parent(), None);
        assert_eq!(v.province(), rc("23"));
        assert_eq!(v.county(), Some(rc("230102")));
        assert_eq!(v.ancestor(RegionLevel::City), Some(rc("2301")));
        assert_eq!(v.ancestor(RegionLevel::Village), Some(v.clone()));
        assert_eq!(rc("2301").ancestor(RegionLevel::County), None);
        assert_eq!(rc("2301").county(), None);
        assert!(rc("23").contains(&v));
        assert!(rc("2301").contains(&v));
        assert!(v.contains(&v));
        assert!(!v.contains(&rc("2301")));
        assert!(!rc("2302").contains(&v));
        assert!(!rc("24").contains(&v));
        assert_eq!(rc("23").province_number(), 23);
    }

    #[test]
    fn city_without_counties() {
        // 东莞市东城街道: county group 00.
        let t = rc("441900003000");
        assert_eq!(t.level(), RegionLevel::Township);
        assert_eq!(t.prefix(), "441900003");
        assert_eq!(t.parent(), Some(rc("4419")));
        assert_eq!(t.county(), None);
        assert_eq!(t.ancestor(RegionLevel::City), Some(rc("4419")));
        assert!(rc("4419").contains(&t));
        assert_eq!(rc("441900"), rc("4419"));
    }

    #[test]
    fn ordering_puts_ancestors_first() {
        let mut v = [
            rc("2302"),
            rc("230102001"),
            rc("23"),
            rc("2301"),
            rc("230102"),
            rc("22"),
        ];
        v.sort();
        let s: Vec<_> = v.iter().map(|c| c.prefix().to_owned()).collect();
        assert_eq!(s, ["22", "23", "2301", "230102", "230102001", "2302"]);
    }

    #[test]
    fn serde_as_twelve_digits() {
        let c = rc("230102");
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"230102000000\"");
        assert_eq!(serde_json::from_str::<RegionCode>(&j).unwrap(), c);
        assert_eq!(serde_json::from_str::<RegionCode>("\"230102\"").unwrap(), c);
        assert!(serde_json::from_str::<RegionCode>("\"2301x2\"").is_err());
        assert_eq!(
            serde_json::to_string(&RegionLevel::Township).unwrap(),
            "\"township\""
        );
    }

    proptest! {
        #[test]
        fn full_round_trips_and_parents_contain(s in "[1-9][0-9]{11}") {
            let c = RegionCode::parse(&s).unwrap();
            prop_assert_eq!(RegionCode::parse(&c.full()).unwrap(), c.clone());
            prop_assert_eq!(c.full(), s);
            let mut cur = c.clone();
            while let Some(p) = cur.parent() {
                prop_assert!(p.level() < cur.level());
                prop_assert!(p.contains(&c));
                prop_assert!(p < cur);
                cur = p;
            }
            prop_assert_eq!(cur, c.province());
        }

        #[test]
        fn zero_padded_prefixes_normalise(s in "[1-9][0-9]{11}", lvl in 0usize..5) {
            let n = RegionLevel::ALL[lvl].digits();
            let padded = format!("{:0<12}", &s[..n]);
            let a = RegionCode::parse(&padded).unwrap();
            let b = RegionCode::parse(&s[..n]).unwrap();
            prop_assert_eq!(a.clone(), b);
            prop_assert!(a.level() <= RegionLevel::ALL[lvl]);
        }
    }
}
