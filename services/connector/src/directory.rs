//! The unit directory: unit names to credit codes, for exports that name a
//! unit without its code.
//!
//! Units are joined by credit code, never by name alone, because names
//! differ between departments. Where an export gives only a name, the name
//! is looked up here: the staffing office's quota list (read back from the
//! unit-quota topic, so every connector on every machine sees the same
//! list) plus aliases from configuration. A name that is unknown, or that
//! two units share, is a rejected row with that reason, never a guess.

use std::collections::{BTreeMap, BTreeSet};

use blockhub_model::fold::fold_text;
use blockhub_model::{BrokerError, CreditCode, EventKind, Fact, KafkaSettings};
use tracing::{info, warn};

use crate::replay::replay;

/// Names and the codes they stand for.
#[derive(Debug, Clone, Default)]
pub struct UnitDirectory {
    codes: BTreeMap<String, BTreeSet<CreditCode>>,
    export_unit: Option<CreditCode>,
}

/// The outcome of looking a name up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one unit has that name.
    Unit(CreditCode),
    /// No unit has that name.
    Unknown,
    /// Several units have that name.
    Ambiguous(Vec<CreditCode>),
}

fn name_key(name: &str) -> String {
    fold_text(name)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

impl UnitDirectory {
    /// Adds a name for a unit.
    pub fn insert(&mut self, name: &str, code: CreditCode) {
        let key = name_key(name);
        if !key.is_empty() {
            self.codes.entry(key).or_default().insert(code);
        }
    }

    /// Names the unit an export belongs to as a whole, for rows with
    /// neither a credit code nor a unit name: a unit's own staff list, say.
    pub fn set_export_unit(&mut self, code: CreditCode) {
        self.export_unit = Some(code);
    }

    /// The unit the whole export belongs to, if one was named.
    pub fn export_unit(&self) -> Option<&CreditCode> {
        self.export_unit.as_ref()
    }

    /// Adds every name of another directory (configured aliases), and its
    /// export unit if it names one.
    pub fn extend(&mut self, other: &UnitDirectory) {
        if other.export_unit.is_some() {
            self.export_unit = other.export_unit.clone();
        }
        for (name, codes) in &other.codes {
            self.codes
                .entry(name.clone())
                .or_default()
                .extend(codes.iter().cloned());
        }
    }

    /// Reads aliases from a TOML file with one table, `[aliases]`, mapping
    /// each name as departments write it to the unit's credit code:
    ///
    /// ```toml
    /// [aliases]
    /// "诸暨市教体局" = "11330681830166130U"
    /// ```
    pub fn from_aliases_file(path: &std::path::Path) -> Result<Self, AliasError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AliasError::Read {
            file: file.clone(),
            source,
        })?;
        let parsed: AliasFile = toml::from_str(&text).map_err(|source| AliasError::Parse {
            file: file.clone(),
            source,
        })?;
        let mut directory = Self::default();
        for (name, code) in parsed.aliases {
            let code = CreditCode::parse(&code).map_err(|error| AliasError::Code {
                file: file.clone(),
                name: name.clone(),
                reason: error.to_string(),
            })?;
            directory.insert(&name, code);
        }
        Ok(directory)
    }

    /// How many names are known.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Looks a name up.
    pub fn resolve(&self, name: &str) -> Resolution {
        match self.codes.get(&name_key(name)) {
            None => Resolution::Unknown,
            Some(codes) if codes.len() == 1 => codes
                .iter()
                .next()
                .cloned()
                .map_or(Resolution::Unknown, Resolution::Unit),
            Some(codes) => Resolution::Ambiguous(codes.iter().cloned().collect()),
        }
    }

    /// Reads the quota list back from the unit-quota topic: every quota
    /// event from the beginning, the latest name of each unit kept.
    pub async fn from_topic(settings: &KafkaSettings) -> Result<Self, BrokerError> {
        let (latest, stats) = replay(
            settings,
            EventKind::UnitQuota,
            LatestNames::new(),
            |latest, event| {
                if let Fact::UnitQuota(quota) = event.fact
                    && !quota.unit_name.is_empty()
                {
                    let code = quota.unit_code.as_str().to_string();
                    latest.insert(code, (quota.unit_code, quota.unit_name));
                }
            },
        )
        .await?;
        if !stats.complete {
            warn!("Quota topic not read to its end; the unit directory may be incomplete.");
        }
        let mut directory = Self::default();
        for (code, name) in latest.into_values() {
            directory.insert(&name, code);
        }
        info!(
            names = directory.len(),
            "Unit directory read from the quota list."
        );
        Ok(directory)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    aliases: BTreeMap<String, String>,
}

/// Why an aliases file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    /// The file could not be read.
    #[error("unit aliases file {file} could not be read")]
    Read {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("unit aliases file {file} is invalid")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// An alias names an invalid credit code.
    #[error("unit aliases file {file}: alias {name}: {reason}")]
    Code {
        /// The file.
        file: String,
        /// The alias.
        name: String,
        /// What is wrong with the code.
        reason: String,
    },
}

type LatestNames = BTreeMap<String, (CreditCode, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> CreditCode {
        CreditCode::parse(text).unwrap()
    }

    #[test]
    fn names_resolve_once_fold_and_never_by_guess() {
        let mut directory = UnitDirectory::default();
        directory.insert("诸暨市教育体育局", code("11330681830166130U"));
        directory.insert("诸暨市公安局", code("1133068152601815XX"));
        directory.insert("综合办", code("113306810913909981"));
        directory.insert("综合办", code("113306817601895554"));
        assert_eq!(
            directory.resolve(" 诸暨市教育体育局 "),
            Resolution::Unit(code("11330681830166130U"))
        );
        assert_eq!(directory.resolve("诸暨市教育局"), Resolution::Unknown);
        assert!(
            matches!(directory.resolve("综合办"), Resolution::Ambiguous(codes) if codes.len() == 2)
        );
    }
}
