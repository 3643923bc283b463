//! The deployment bundle's `ykt.toml` template (`xtask/templates/ykt.toml`) stays true to
//! `Config`: every key is there with an explanation, it parses, and apart from the province
//! its values are the built-in defaults.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use yikatong::config::Config;

const TEMPLATE: &str = include_str!("../xtask/templates/ykt.toml");

fn rendered(code: &str) -> String {
    TEMPLATE
        .replace("{{code}}", code)
        .replace("{{name}}", "某省")
        .replace("{{bundle}}", "ykt-x-0.0.0-x86_64-unknown-linux-gnu")
}

/// Every key of `Config`, from a value with every optional field set.
fn config_keys() -> Vec<String> {
    let full = Config {
        master_key: Some("00".repeat(32)),
        province: Some("henan".into()),
        province_settings: serde_json::json!({"x": 1}),
        today: chrono::NaiveDate::from_ymd_opt(2023, 5, 20),
        ..Config::default()
    };
    let v = serde_json::to_value(full).unwrap();
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_template_lists_every_key_with_a_comment() {
    let text = rendered("henan");
    let lines: Vec<&str> = text.lines().collect();
    let keys = config_keys();
    assert_eq!(keys.len(), 10, "{keys:?}");
    for key in &keys {
        let at = lines
            .iter()
            .position(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{key} = ")) || *l == format!("[{key}]")
            })
            .unwrap_or_else(|| panic!("ykt.toml template lacks `{key}`"));
        assert!(
            at > 0 && lines[at - 1].starts_with('#') && lines[at - 1].len() > 2,
            "`{key}` has no comment above it"
        );
    }
    assert!(lines.contains(&"province = \"henan\""));
    assert!(!text.contains("{{"), "placeholder left");
}

#[test]
fn the_template_is_the_defaults_with_the_province_set() {
    for code in ["heilongjiang", "sichuan", "henan"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ykt.toml");
        std::fs::write(&path, rendered(code)).unwrap();
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .extract()
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        let expected = Config {
            province: Some(code.into()),
            ..Config::default()
        };
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(&expected).unwrap(),
            "{code}"
        );
        // Uncommenting the commented keys still gives a valid file (no typo in their names).
        let all: String = rendered(code)
            .lines()
            .map(|l| {
                let u = l.strip_prefix("# ").unwrap_or(l);
                if u.starts_with("master_key = ")
                    || u.starts_with("today = ")
                    || u == "[province_settings]"
                {
                    u.replace("<64 hex characters>", &"ab".repeat(32))
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, all).unwrap();
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .extract()
            .unwrap_or_else(|e| panic!("{code} uncommented: {e}"));
        assert!(parsed.master_key.is_some() && parsed.today.is_some());
    }
}
