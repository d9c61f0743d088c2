//! Mapping files: how one department's export differs from the defaults,
//! configured instead of patched.
//!
//! ```toml
//! # Header texts this department uses, per field (one text or a list).
//! [columns]
//! citizen_id = ["证件号", "身份证件号"]
//! unit_name = "用人单位"
//!
//! # Labels this department writes, mapped to the hub's own, per field.
//! [values.post_category]
//! "辅助岗" = "普通辅助"
//! "专技岗" = "技术技能"
//! ```
//!
//! Column texts are added to the source's defaults, so a mapping only
//! names what differs. A field, value field or target label the source
//! does not know is an error naming the ones it does, so that a typing
//! mistake never silently maps nothing.

use std::collections::BTreeMap;
use std::path::Path;

use blockhub_model::fold::fold_text;
use serde::Deserialize;

use crate::layout::{FieldSpec, normalise_header};
use crate::sources::SourceKind;

/// A checked mapping for one source.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    columns: BTreeMap<String, Vec<String>>,
    values: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    columns: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Why a mapping file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file could not be read.
    #[error("mapping file {file} could not be read")]
    Read {
        /// The file.
        file: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("mapping file {file} is invalid")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The file names something the source does not have.
    #[error("mapping file {file}: {reason}")]
    Unknown {
        /// The file.
        file: String,
        /// What is unknown and what is known.
        reason: String,
    },
}

/// The fields whose labels a mapping may translate, and the labels each
/// accepts as a target.
fn value_fields(source: SourceKind) -> Vec<(&'static str, Vec<&'static str>)> {
    match source {
        SourceKind::Roster => vec![
            ("post_category", vec!["普通辅助", "技术技能", "执法辅助"]),
            ("status", vec!["在职", "减少"]),
        ],
        _ => Vec::new(),
    }
}

impl Mapping {
    /// Reads and checks a mapping file for `source`.
    pub fn from_file(path: &Path, source: SourceKind) -> Result<Self, MappingError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&text, source).map_err(|error| match error {
            MappingError::Parse { source, .. } => MappingError::Parse { file, source },
            MappingError::Unknown { reason, .. } => MappingError::Unknown { file, reason },
            other => other,
        })
    }

    /// Parses and checks mapping text for `source`.
    pub fn from_toml(text: &str, source: SourceKind) -> Result<Self, MappingError> {
        let unknown = |reason: String| MappingError::Unknown {
            file: String::new(),
            reason,
        };
        let parsed: MappingFile = toml::from_str(text).map_err(|source| MappingError::Parse {
            file: String::new(),
            source,
        })?;
        let fields = source.fields();
        let known: Vec<&str> = fields.iter().map(|f| f.field).collect();
        let mut mapping = Self::default();
        for (field, texts) in parsed.columns {
            if !known.contains(&field.as_str()) {
                return Err(unknown(format!(
                    "[columns] names field {field}, which {} does not have; its fields are {}",
                    source.name(),
                    known.join(", ")
                )));
            }
            let texts = match texts {
                OneOrMany::One(text) => vec![text],
                OneOrMany::Many(texts) => texts,
            };
            mapping.columns.insert(field, texts);
        }
        let value_fields = value_fields(source);
        for (field, labels) in parsed.values {
            let Some((_, targets)) = value_fields.iter().find(|(name, _)| *name == field) else {
                let names: Vec<&str> = value_fields.iter().map(|(name, _)| *name).collect();
                return Err(unknown(format!(
                    "[values.{field}]: {} maps no labels of {field}; it maps: {}",
                    source.name(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )));
            };
            let mut map = BTreeMap::new();
            for (label, target) in labels {
                let target = fold_text(&target);
                if !targets.contains(&target.as_str()) {
                    return Err(unknown(format!(
                        "[values.{field}] maps {label} to {target}, which is not one of {}",
                        targets.join(", ")
                    )));
                }
                map.insert(fold_text(&label), target);
            }
            mapping.values.insert(field, map);
        }
        Ok(mapping)
    }

    /// The source's fields with this mapping's header texts added.
    pub fn apply(&self, mut fields: Vec<FieldSpec>) -> Vec<FieldSpec> {
        for spec in &mut fields {
            if let Some(texts) = self.columns.get(spec.field) {
                // The department's own texts first: they name its columns.
                let mut aliases: Vec<String> = texts.iter().map(|t| normalise_header(t)).collect();
                aliases.append(&mut spec.aliases);
                spec.aliases = aliases;
            }
        }
        fields
    }

    /// The hub's label for a label as exported, where a value map names it.
    pub fn translate(&self, field: &str, label: &str) -> Option<&str> {
        self.values
            .get(field)
            .and_then(|map| map.get(&fold_text(label)))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use blockhub_model::{PostCategory, StaffStatus};

    use super::*;

    #[test]
    fn every_target_label_is_understood_by_the_model() {
        for (field, targets) in value_fields(SourceKind::Roster) {
            for target in targets {
                match field {
                    "post_category" => {
                        assert_ne!(PostCategory::from_label(target), PostCategory::Unknown)
                    }
                    "status" => assert_ne!(StaffStatus::from_label(target), StaffStatus::Unknown),
                    other => panic!("no check for {other}"),
                }
            }
        }
    }

    #[test]
    fn columns_and_values_are_checked_against_the_source() {
        let mapping = Mapping::from_toml(
            "[columns]\ncitizen_id = \"证件号\"\nunit_name = [\"用人单位\", \"单位\"]\n\
             [values.post_category]\n\"辅助岗\" = \"普通辅助\"\n",
            SourceKind::Roster,
        )
        .unwrap();
        assert_eq!(
            mapping.translate("post_category", " 辅助岗 "),
            Some("普通辅助")
        );
        assert_eq!(mapping.translate("post_category", "其他"), None);
        let fields = mapping.apply(SourceKind::Roster.fields());
        let id = fields.iter().find(|f| f.field == "citizen_id").unwrap();
        assert_eq!(id.aliases[0], normalise_header("证件号"));

        let typo = Mapping::from_toml("[columns]\ncitizen = \"证件号\"\n", SourceKind::Roster);
        let message = typo.unwrap_err().to_string();
        assert!(message.contains("citizen_id"), "{message}");
        let bad_target = Mapping::from_toml(
            "[values.post_category]\n\"辅助岗\" = \"辅助\"\n",
            SourceKind::Roster,
        );
        assert!(bad_target.unwrap_err().to_string().contains("普通辅助"));
        let no_values =
            Mapping::from_toml("[values.status]\n\"a\" = \"在职\"\n", SourceKind::Payroll);
        assert!(no_values.is_err());
        let unknown_table = Mapping::from_toml("[colums]\n", SourceKind::Roster);
        assert!(matches!(unknown_table, Err(MappingError::Parse { .. })));
    }
}
