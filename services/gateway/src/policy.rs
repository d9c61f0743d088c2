//! Who may call what, for which purpose, and see which fields: the
//! deployment's sharing policy.
//!
//! The policy is a TOML file. Everything it does not name is denied: a
//! department without an entry, a method not in its list, a purpose it was
//! not given. Each field of a person has a share class: unconditional
//! fields may be granted without a purpose, conditional ones only under a
//! named purpose, and not-shared ones never. A broken file is refused with
//! its line and the reason, so that the policy in force stays in force.
//!
//! ```toml
//! [fields]                       # share classes (these are the defaults)
//! employer = "conditional"
//!
//! [departments.court]
//! methods = ["PersonLookup.Lookup", "PersonLookup.BatchLookup"]
//! rate_per_second = 20
//!
//! [departments.court.purposes.enforcement]
//! fields = ["employer", "latest_payment"]
//! require_case = true
//!
//! [departments.partner]
//! methods = ["PersonLookup.Lookup"]
//! units = ["113306810913909981"]   # row scope: only these units
//! [departments.partner.purposes.payroll-check]
//! fields = ["citizen_id:masked", "name:masked", "posts"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use crate::error::GatewayError;

/// Every method the gateway serves, as named in the policy.
pub const METHODS: [&str; 10] = [
    "PersonLookup.Lookup",
    "PersonLookup.BatchLookup",
    "Changes.Subscribe",
    "Alerts.List",
    "Alerts.Acknowledge",
    "Staff.List",
    "Staff.CountByPost",
    "Staff.History",
    "SyncHealth.Get",
    "SyncHealth.Watch",
];

/// Methods that return facts about persons: refused when the grant holds
/// no field, rather than answered with empty records.
pub const PERSON_METHODS: [&str; 5] = [
    "PersonLookup.Lookup",
    "PersonLookup.BatchLookup",
    "Changes.Subscribe",
    "Staff.List",
    "Staff.History",
];

/// Requests per second a department may make when its entry names none.
pub const DEFAULT_RATE_PER_SECOND: u32 = 20;

/// A field of what the gateway returns about a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The citizen ID number.
    CitizenId,
    /// The person's name.
    Name,
    /// The unit of the person's active roster entry (credit code, name).
    Employer,
    /// The roster entries: units, post categories, dates, status.
    Posts,
    /// The newest month's pay.
    LatestPayment,
    /// Which source, file and row stated each fact.
    Provenance,
    /// An alert's evidence text (names facts and sources).
    Evidence,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 7] = [
        Field::CitizenId,
        Field::Name,
        Field::Employer,
        Field::Posts,
        Field::LatestPayment,
        Field::Provenance,
        Field::Evidence,
    ];

    /// The field's name in the policy file.
    pub fn name(self) -> &'static str {
        match self {
            Field::CitizenId => "citizen_id",
            Field::Name => "name",
            Field::Employer => "employer",
            Field::Posts => "posts",
            Field::LatestPayment => "latest_payment",
            Field::Provenance => "provenance",
            Field::Evidence => "evidence",
        }
    }

    /// Whether the field may be shown masked.
    pub fn maskable(self) -> bool {
        matches!(self, Field::CitizenId | Field::Name)
    }

    /// The share class a policy file that says nothing about it gets:
    /// every field about a person needs a purpose until the deployment
    /// decides otherwise.
    pub fn default_class(self) -> ShareClass {
        ShareClass::Conditional
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Field {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Field::ALL
            .into_iter()
            .find(|field| field.name() == text)
            .ok_or_else(|| format!("unknown field {text:?}; fields are {}", field_names()))
    }
}

fn field_names() -> String {
    Field::ALL.map(Field::name).join(", ")
}

/// How freely a field may be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareClass {
    /// May be granted without a purpose.
    Unconditional,
    /// Only under a named purpose.
    Conditional,
    /// Never.
    NotShared,
}

impl FromStr for ShareClass {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "unconditional" => Ok(ShareClass::Unconditional),
            "conditional" => Ok(ShareClass::Conditional),
            "not_shared" => Ok(ShareClass::NotShared),
            other => Err(format!(
                "unknown share class {other:?}; use unconditional, conditional or not_shared"
            )),
        }
    }
}

/// How a granted field is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As stored.
    Full,
    /// Masked: an ID as 330681********1234, a name as 林*雯.
    Masked,
}

/// The fields a caller may see, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeMap<Field, Shown>);

impl FieldSet {
    /// How `field` is shown, or `None` when it is not granted.
    pub fn get(&self, field: Field) -> Option<Shown> {
        self.0.get(&field).copied()
    }

    /// Whether `field` is granted at all.
    pub fn has(&self, field: Field) -> bool {
        self.0.contains_key(&field)
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The grant as the audit log records it: `citizen_id:masked,employer`.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(field, shown)| match shown {
                Shown::Full => field.name().to_string(),
                Shown::Masked => format!("{}:masked", field.name()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A set of fields shown in full (tests and the operator's default).
    pub fn full(fields: &[Field]) -> Self {
        Self(fields.iter().map(|field| (*field, Shown::Full)).collect())
    }

    fn insert(&mut self, field: Field, shown: Shown) {
        // Two entries for one field: the more protective wins.
        let entry = self.0.entry(field).or_insert(shown);
        if shown == Shown::Masked {
            *entry = Shown::Masked;
        }
    }
}

/// A value masked as the policy says: IDs keep their first six and last
/// four characters, names their first and last character.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// What one purpose grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// The fields and how they are shown.
    pub fields: FieldSet,
    /// Whether each call must name a court case.
    pub require_case: bool,
}

/// One department's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// Methods it may call.
    pub methods: BTreeSet<String>,
    /// Unconditional fields it sees when it names no purpose.
    pub fields: FieldSet,
    /// Its purposes.
    pub purposes: BTreeMap<String, Purpose>,
    /// Row scope: the units whose facts it sees (`None`: every unit).
    pub units: Option<BTreeSet<String>>,
    /// Requests per second.
    pub rate_per_second: u32,
}

/// What a caller was granted for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The department.
    pub department: String,
    /// The purpose named, if any.
    pub purpose: Option<String>,
    /// The case number, canonical, when one was named.
    pub case_number: Option<String>,
    /// The fields and how they are shown.
    pub fields: FieldSet,
    /// Row scope (`None`: every unit).
    pub units: Option<BTreeSet<String>>,
}

impl Grant {
    /// Whether facts of `unit_code` are in the caller's row scope.
    pub fn sees_unit(&self, unit_code: &str) -> bool {
        self.units
            .as_ref()
            .is_none_or(|units| units.contains(unit_code))
    }

    /// An ID as the caller may see it ("" when not granted).
    pub fn show_id(&self, id: &str) -> String {
        match self.fields.get(Field::CitizenId) {
            Some(Shown::Full) => id.to_string(),
            Some(Shown::Masked) => blockhub_model::mask_id_text(id),
            None => String::new(),
        }
    }

    /// A name as the caller may see it ("" when not granted).
    pub fn show_name(&self, name: &str) -> String {
        match self.fields.get(Field::Name) {
            Some(Shown::Full) => name.to_string(),
            Some(Shown::Masked) => mask_name(name),
            None => String::new(),
        }
    }
}

/// Why a call was refused. The reason names only the caller's own
/// department, method, purpose or case number, never anything about the
/// data, so that a refusal cannot be used to probe the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// PERMISSION_DENIED.
    Forbidden(String),
    /// INVALID_ARGUMENT (a malformed case number).
    Invalid(String),
}

impl Denial {
    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Denial::Forbidden(reason) | Denial::Invalid(reason) => reason,
        }
    }
}

/// The deployment's sharing policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    departments: BTreeMap<String, Department>,
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::PolicyRead {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| GatewayError::PolicyInvalid {
            file,
            line,
            reason,
        })
    }

    /// Parses and checks policy text; an error is (line, reason).
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let file: PolicyFile = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(0, |span| line_of(span.start));
            (line, error.message().to_string())
        })?;
        let at = |span: std::ops::Range<usize>, reason: String| (line_of(span.start), reason);

        let mut classes: BTreeMap<Field, ShareClass> = Field::ALL
            .into_iter()
            .map(|field| (field, field.default_class()))
            .collect();
        for (name, class) in &file.fields {
            let field = Field::from_str(name.get_ref()).map_err(|e| at(name.span(), e))?;
            let class = ShareClass::from_str(class.get_ref()).map_err(|e| at(class.span(), e))?;
            classes.insert(field, class);
        }

        let mut departments = BTreeMap::new();
        for (name, entry) in file.departments {
            let mut methods = BTreeSet::new();
            for method in &entry.methods {
                if !METHODS.contains(&method.get_ref().as_str()) {
                    return Err(at(
                        method.span(),
                        format!(
                            "department {name}: unknown method {:?}; methods are {}",
                            method.get_ref(),
                            METHODS.join(", ")
                        ),
                    ));
                }
                methods.insert(method.get_ref().clone());
            }
            let fields = field_set(&entry.fields, &classes, None)
                .map_err(|(s, e)| at(s, format!("department {name}: {e}")))?;
            let mut purposes = BTreeMap::new();
            for (purpose, grant) in entry.purposes {
                let fields = field_set(&grant.fields, &classes, Some(&purpose))
                    .map_err(|(s, e)| at(s, format!("department {name}: {e}")))?;
                purposes.insert(
                    purpose,
                    Purpose {
                        fields,
                        require_case: grant.require_case,
                    },
                );
            }
            let rate_per_second = match entry.rate_per_second {
                Some(rate) if *rate.get_ref() == 0 => {
                    return Err(at(
                        rate.span(),
                        format!("department {name}: rate_per_second must be at least 1"),
                    ));
                }
                Some(rate) => *rate.get_ref(),
                None => DEFAULT_RATE_PER_SECOND,
            };
            let units = match entry.units {
                None => None,
                Some(units) => {
                    let mut codes = BTreeSet::new();
                    for unit in units {
                        let code =
                            blockhub_model::CreditCode::parse(unit.get_ref()).map_err(|e| {
                                at(unit.span(), format!("department {name}: units: {e}"))
                            })?;
                        codes.insert(code.as_str().to_string());
                    }
                    Some(codes)
                }
            };
            departments.insert(
                name,
                Department {
                    methods,
                    fields,
                    purposes,
                    units,
                    rate_per_second,
                },
            );
        }
        if departments.is_empty() {
            return Err((
                1,
                "the policy names no department, so every call would be refused (the \
                 operator's too); write at least one [departments.NAME] table"
                    .into(),
            ));
        }
        Ok(Self { departments })
    }

    /// The departments named.
    pub fn departments(&self) -> impl Iterator<Item = (&String, &Department)> {
        self.departments.iter()
    }

    /// One department's entry.
    pub fn department(&self, name: &str) -> Option<&Department> {
        self.departments.get(name)
    }

    /// What `department` may see calling `method` for `purpose` (empty:
    /// none named) in case `case_number` (empty: none named).
    pub fn authorize(
        &self,
        department: &str,
        method: &str,
        purpose: &str,
        case_number: &str,
    ) -> Result<Grant, Denial> {
        let forbid = |reason: String| Err(Denial::Forbidden(reason));
        let Some(entry) = self.departments.get(department) else {
            return forbid(format!(
                "department {department} has no access to the gateway"
            ));
        };
        if !entry.methods.contains(method) {
            return forbid(format!(
                "{method} is not granted to department {department}"
            ));
        }
        let purpose = purpose.trim();
        let (fields, require_case) = if purpose.is_empty() {
            (entry.fields.clone(), false)
        } else {
            match entry.purposes.get(purpose) {
                Some(grant) => (grant.fields.clone(), grant.require_case),
                None => {
                    return forbid(format!(
                        "purpose {purpose:?} is not granted to department {department}"
                    ));
                }
            }
        };
        if fields.is_empty() && PERSON_METHODS.contains(&method) {
            return forbid(format!(
                "department {department} must name a purpose for {method}"
            ));
        }
        let case_number = match case_number.trim() {
            "" if require_case => {
                return forbid(format!("purpose {purpose:?} requires a case number"));
            }
            "" => None,
            text => Some(blockhub_model::canonical_case_number(text).map_err(Denial::Invalid)?),
        };
        Ok(Grant {
            department: department.to_string(),
            purpose: (!purpose.is_empty()).then(|| purpose.to_string()),
            case_number,
            fields,
            units: entry.units.clone(),
        })
    }
}

/// Parses field entries (`name` or `name:masked`) under the share classes;
/// `purpose` is `None` for a department's purpose-less fields.
fn field_set(
    entries: &[Spanned<String>],
    classes: &BTreeMap<Field, ShareClass>,
    purpose: Option<&str>,
) -> Result<FieldSet, (std::ops::Range<usize>, String)> {
    let mut set = FieldSet::default();
    for entry in entries {
        let fail = |reason: String| Err((entry.span(), reason));
        let (name, shown) = match entry.get_ref().split_once(':') {
            None => (entry.get_ref().as_str(), Shown::Full),
            Some((name, "masked")) => (name, Shown::Masked),
            Some((_, other)) => {
                return fail(format!(
                    "unknown display {other:?}; only \":masked\" exists"
                ));
            }
        };
        let field = match Field::from_str(name.trim()) {
            Ok(field) => field,
            Err(reason) => return fail(reason),
        };
        if shown == Shown::Masked && !field.maskable() {
            return fail(format!(
                "{field} cannot be masked; only citizen_id and name can"
            ));
        }
        let class = classes
            .get(&field)
            .copied()
            .unwrap_or(field.default_class());
        match (class, purpose) {
            (ShareClass::NotShared, _) => {
                return fail(format!("{field} is not shared with any department"));
            }
            (ShareClass::Conditional, None) => {
                return fail(format!(
                    "{field} is conditional: grant it under a purpose, not without one"
                ));
            }
            _ => set.insert(field, shown),
        }
    }
    Ok(set)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    fields: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    departments: BTreeMap<String, DepartmentFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentFile {
    #[serde(default)]
    methods: Vec<Spanned<String>>,
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    #[serde(default)]
    purposes: BTreeMap<String, PurposeFile>,
    units: Option<Vec<Spanned<String>>>,
    rate_per_second: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeFile {
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    #[serde(default)]
    require_case: bool,
}

/// The policy `blockhub up` writes on first start: the operator sees
/// everything for the purpose "operations"; each department of the design
/// gets the narrow grant its work needs. Tokens are still issued one by
/// one (`blockhub token issue DEPARTMENT`).
pub const DEFAULT_POLICY: &str = include_str!("default_policy.toml");

#[cfg(test)]
mod tests;
