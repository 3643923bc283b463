//! Configuration: built-in defaults, then `ykt.toml` (path from `--config` or `YKT_CONFIG`),
//! then `YKT_*` environment variables (`YKT_DATABASE_URL`, `YKT_PROVINCE`, ...). One typed
//! struct; an invalid file fails at start naming the file, key and reason.

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://data/ykt.db` (embedded, created on first use) or `postgres://user@host/db`.
    pub database_url: String,
    /// The master key (64 hex chars) for personal identifiers at rest. Prefer the environment
    /// (`YKT_MASTER_KEY`) or `key_file`; never commit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key: Option<String>,
    /// Where the master key is kept when `master_key` is not set. Created (mode 0600) on first
    /// use by `ykt demo` and `ykt import`.
    pub key_file: PathBuf,
    /// The province this deployment runs; may be omitted when only one is compiled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// HTTP listen address for `ykt serve`.
    pub listen: String,
    /// Minutes of inactivity after which a console session ends (`ykt serve`).
    pub session_idle_minutes: u32,
    /// Log filter (`tracing` env-filter syntax).
    pub log: String,
    /// Province-specific settings (`[province_settings]` table).
    #[serde(default)]
    pub province_settings: serde_json::Value,
    /// The platform's date, `YYYY-MM-DD`, for reproducible runs and replays (`YKT_TODAY`);
    /// the local date when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<chrono::NaiveDate>,
    /// The public portal (`[portal]` table): the lookup's rate limit.
    #[serde(default)]
    pub portal: ykt_http::portal::PortalConfig,
}

/// By hand so that the master key is never printed (a `{:?}` of the configuration in a log
/// line or an error would otherwise carry it).
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &crate::cli::redact_url(&self.database_url))
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("key_file", &self.key_file)
            .field("province", &self.province)
            .field("listen", &self.listen)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("log", &self.log)
            .field("province_settings", &self.province_settings)
            .field("today", &self.today)
            .field("portal", &self.portal)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            database_url: "sqlite://data/ykt.db".into(),
            master_key: None,
            key_file: PathBuf::from("data/ykt.key"),
            province: None,
            listen: "127.0.0.1:8080".into(),
            session_idle_minutes: 30,
            log: "warn".into(),
            province_settings: serde_json::Value::Null,
            today: None,
            portal: ykt_http::portal::PortalConfig::default(),
        }
    }
}

impl Config {
    /// Load from defaults, the file (explicit path, `YKT_CONFIG`, or `./ykt.toml` if present)
    /// and the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let env_path = std::env::var_os("YKT_CONFIG").map(PathBuf::from);
        let file = path.map(Path::to_path_buf).or(env_path);
        match &file {
            Some(f) => {
                if !f.exists() {
                    anyhow::bail!("配置文件不存在：{} (config file not found)", f.display());
                }
                fig = fig.merge(Toml::file(f));
            }
            None => {
                if Path::new("ykt.toml").exists() {
                    fig = fig.merge(Toml::file("ykt.toml"));
                }
            }
        }
        fig = fig.merge(Env::prefixed("YKT_").ignore(&[
            "CONFIG",
            "TEST_PG_URL",
            "REQUIRE_PG",
            "REQUIRE_BROWSER",
            "USER_PASSWORD",
        ]));
        fig.extract::<Config>().map_err(|e| {
            let mut msg = String::from("配置错误 (invalid configuration)");
            for err in e {
                msg.push_str(&format!("\n  - {err}"));
                if let Some(md) = &err.metadata {
                    msg.push_str(&format!(" [来源 source: {}]", md.name));
                }
            }
            anyhow::anyhow!(msg)
        })
    }

    /// Today's date: configured (`today`, `YKT_TODAY`) or the local date.
    pub fn today(&self) -> chrono::NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Local::now().date_naive())
    }

    /// The master key: configured, or from `key_file` (created when `create` is set).
    pub fn vault(&self, create: bool) -> anyhow::Result<(ykt_store::Vault, Option<PathBuf>)> {
        if let Some(k) = &self.master_key {
            let v = ykt_store::Vault::from_hex(k)
                .context("master_key 不是64位十六进制 (master_key must be 64 hex characters)")?;
            return Ok((v, None));
        }
        if !create && !self.key_file.exists() {
            anyhow::bail!(
                "找不到主密钥文件 {}；请设置 YKT_MASTER_KEY 或先运行 ykt demo / ykt import (no master key: set YKT_MASTER_KEY or create {})",
                self.key_file.display(),
                self.key_file.display()
            );
        }
        let (v, created) = ykt_store::KeyFile::load_or_create(&self.key_file)?;
        Ok((v, created.then(|| self.key_file.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_master_key() {
        let c = Config {
            master_key: Some("ab".repeat(32)),
            database_url: "postgres://ykt:hunter2-pw@db.internal/ykt".into(),
            ..Config::default()
        };
        let d = format!("{c:?} {c:#?}");
        assert!(!d.contains(&"ab".repeat(32)), "{d}");
        assert!(!d.contains("hunter2-pw"), "{d}");
        assert!(
            d.contains("<redacted>") && d.contains("db.internal/ykt"),
            "{d}"
        );
    }

    #[test]
    fn defaults_file_and_env_layer() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ykt.toml",
                "database_url = \"sqlite://x.db\"\nprovince = \"henan\"\n",
            )?;
            jail.set_env("YKT_PROVINCE", "sichuan");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.database_url, "sqlite://x.db");
            assert_eq!(c.province.as_deref(), Some("sichuan"));
            assert_eq!(c.listen, "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ykt.toml", "databse_url = 1\n")?;
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("databse_url"), "{e}");
            assert!(e.contains("ykt.toml"), "{e}");
            Ok(())
        });
    }
}
