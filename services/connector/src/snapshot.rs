//! The snapshot diff: publish only what changed since the source last
//! published.
//!
//! What a source last published is read back from its own topic (see
//! `replay`): the latest event of each fact it published, by
//! `Fact::identity`. A fact read from a new export is then unchanged
//! (nothing published), new (an insert) or changed (an update); a fact
//! the source published before and the new export no longer has is a
//! delete, carrying the last published fact. Because the state is the
//! topic itself, a connector that crashed part-way through a file simply
//! publishes the rest on the next run, from any machine.
//!
//! Which missing facts are deletes depends on what an export covers:
//!
//! - the quota list and the court's case list are whole lists: a unit or
//!   case missing from the new export no longer holds;
//! - a roster, placement list or purchased-service list may be one unit's
//!   or the whole city's: only facts of units the export has rows for (or
//!   the unit named with `--unit`) can be deleted by it;
//! - payroll, contributions and pension starts are additive: each export
//!   adds months or people and never deletes earlier ones.
//!
//! A rejected row might be one of the "missing" facts, so when any row of
//! the run was rejected, or a file could not be read, no deletes are
//! published; the report says how many were withheld.
//!
//! Exports are ordered as the merger orders them (`Envelope::order`: export
//! time, then read time), and what the snapshot remembers of a fact is its
//! newest statement, not its latest read. A row of an export older than
//! that is stale: it is published (the merger keeps it as superseded
//! history) but changes nothing remembered, and an old export's missing
//! facts are not deleted when a newer export stated them. So an old export
//! ingested late cannot make the connector forget what the newer one said.
//!
//! A newer export that changed nothing publishes no event, so the facts
//! alone cannot show that it was made. Each run's record therefore says
//! which scopes its exports stated in full and as of when (a unit of a
//! roster-like source, or a whole list), and the snapshot reads those back
//! too. A row of an export older than the newest statement of its scope is
//! outdated: it is not published at all (the store, which may hold the
//! fact as of an even older export, would take it), and the summary counts
//! it; a fact it lacks is not deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use blockhub_model::{
    BrokerError, CreditCode, Event, EventKind, ExportScope, Fact, KafkaSettings, Operation,
    SchemaRegistry, SyncRun,
};
use chrono::{DateTime, Utc};
use tracing::info;

use crate::replay::replay;
use crate::sources::SourceKind;

/// Which missing facts an export deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteScope {
    /// Every fact the source published before.
    WholeSource,
    /// Facts of the units the export covers.
    ExportUnits,
    /// None: the source only adds and changes facts.
    Additive,
}

impl SourceKind {
    /// Which missing facts an export of this source deletes.
    pub fn delete_scope(&self) -> DeleteScope {
        match self {
            Self::Quota | Self::CourtCases => DeleteScope::WholeSource,
            Self::Roster | Self::Placements | Self::Purchases => DeleteScope::ExportUnits,
            Self::Payroll | Self::Contributions | Self::Retirements => DeleteScope::Additive,
        }
    }
}

/// What a fact read from an export is, against what was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Published before with the same content: nothing to publish.
    Unchanged,
    /// Not published before, or deleted since.
    Insert,
    /// Published before with other content.
    Update,
    /// Other content than what a newer export stated: published as history
    /// (the merger keeps it as superseded), remembered as nothing.
    Stale,
    /// Other content (or a fact) from an export older than the newest
    /// statement of its unit or list, whose fact the store may hold as of
    /// an older export still: not published, counted.
    Outdated,
    /// Stated already by an earlier row of this run, exactly so.
    Repeated,
    /// Stated already by an earlier row of this run (at `earlier`) with
    /// other content: the export contradicts itself, and neither row is
    /// taken over the other.
    Conflict {
        /// The earlier row's position.
        earlier: String,
    },
}

impl Change {
    /// The operation to publish, if any.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::Unchanged | Self::Repeated | Self::Conflict { .. } | Self::Outdated => None,
            Self::Insert => Some(Operation::Insert),
            Self::Update | Self::Stale => Some(Operation::Update),
        }
    }
}

struct Published {
    digest: [u8; 32],
    deleted: bool,
    /// The statement's order (`Envelope::order`).
    order: (i64, i64),
    /// The fact itself, kept only where a later export may delete it.
    fact: Option<Fact>,
    /// Where this run's exports had the fact, if they did.
    seen: Option<Seen>,
}

/// A fact's statement in this run.
#[derive(Debug, Clone)]
struct Seen {
    /// The row, as a conflict names it.
    place: String,
    /// The export time (ms) of its file, if known.
    exported: Option<i64>,
    /// What the row said.
    digest: [u8; 32],
}

/// A fact missing from the exports, to be published as a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The fact as last published.
    pub fact: Fact,
    /// The export time of the newest export that lacks it.
    pub exported_at: Option<DateTime<Utc>>,
}

/// What one source has published, fact by fact.
pub struct Snapshot {
    source: SourceKind,
    facts: HashMap<String, Published>,
    /// Units this run's exports had rows for, with the newest export time
    /// (ms) among the rows of each.
    units: BTreeMap<CreditCode, i64>,
    /// Units the whole export covers (`--unit`), rows or not.
    covered: BTreeSet<CreditCode>,
    /// The newest export time (ms) each scope was stated as of, by any
    /// event or run record of the source: a unit for roster-like sources,
    /// the whole list (none) for quota and case lists.
    stated: HashMap<Option<CreditCode>, i64>,
}

impl Snapshot {
    /// An empty snapshot: nothing published yet.
    pub fn empty(source: SourceKind) -> Self {
        Self {
            source,
            facts: HashMap::new(),
            units: BTreeMap::new(),
            covered: BTreeSet::new(),
            stated: HashMap::new(),
        }
    }

    /// The scope a fact is stated in, where the source states scopes in
    /// full; none for additive sources.
    fn scope_of(&self, fact: &Fact) -> Option<Option<CreditCode>> {
        scope_in(self.source.delete_scope(), fact)
    }

    fn state(&mut self, scope: Option<CreditCode>, as_of: i64) {
        let newest = self.stated.entry(scope).or_insert(as_of);
        *newest = (*newest).max(as_of);
    }

    /// Takes in what one of the source's earlier runs stated.
    fn fold_run(&mut self, run: SyncRun) {
        if run.source_system != self.source.name() {
            return;
        }
        for scope in run.exports {
            let unit = match scope.unit_code {
                None => None,
                Some(code) => match CreditCode::parse(&code) {
                    Ok(unit) => Some(unit),
                    Err(_) => continue,
                },
            };
            self.state(unit, scope.exported_at.timestamp_millis());
        }
    }

    /// What this run stated in full, for its run record: each unit with
    /// rows (and each unit named with --unit) as of its newest row, or the
    /// whole list as of its newest row.
    pub fn export_scopes(&self, run_exported: Option<DateTime<Utc>>) -> Vec<ExportScope> {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms);
        let run_ms = run_exported.map(|t| t.timestamp_millis());
        match self.source.delete_scope() {
            DeleteScope::Additive => Vec::new(),
            DeleteScope::WholeSource => {
                let newest = self.units.values().copied().chain(run_ms).max();
                newest
                    .and_then(at)
                    .map(|exported_at| ExportScope {
                        unit_code: None,
                        exported_at,
                    })
                    .into_iter()
                    .collect()
            }
            DeleteScope::ExportUnits => {
                let mut scopes: BTreeMap<&CreditCode, i64> =
                    self.units.iter().map(|(u, ms)| (u, *ms)).collect();
                if let Some(run_ms) = run_ms {
                    for unit in &self.covered {
                        scopes.entry(unit).or_insert(run_ms);
                    }
                }
                scopes
                    .into_iter()
                    .filter_map(|(unit, ms)| {
                        at(ms).map(|exported_at| ExportScope {
                            unit_code: Some(unit.as_str().to_string()),
                            exported_at,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Reads what `source` published from its topic.
    pub async fn load(settings: &KafkaSettings, source: SourceKind) -> Result<Self, BrokerError> {
        let kind = source.event_kind();
        let (mut snapshot, stats) =
            replay(settings, kind, Self::empty(source), Snapshot::fold).await?;
        if !stats.complete {
            return Err(BrokerError::Incomplete {
                topic: settings.topic(kind),
            });
        }
        for run in read_runs(settings).await? {
            snapshot.fold_run(run);
        }
        info!(
            facts = snapshot.facts.len(),
            events = stats.events,
            "Read what the source published before."
        );
        Ok(snapshot)
    }

    fn fold(&mut self, event: Event) {
        if event.envelope.source_system != self.source.name() {
            return;
        }
        let keep_fact = self.source.delete_scope() != DeleteScope::Additive;
        let deleted = event.envelope.operation == Operation::Delete;
        let order = event.envelope.order();
        if let Some(scope) = self.scope_of(&event.fact) {
            self.state(scope, order.0);
        }
        let identity = event.fact.identity();
        if self.facts.get(&identity).is_some_and(|p| p.order > order) {
            // A stale statement (an old export published late): the newer
            // one is what the source holds.
            return;
        }
        self.facts.insert(
            identity,
            Published {
                digest: event.fact.digest(),
                deleted,
                order,
                fact: keep_fact.then_some(event.fact),
                seen: None,
            },
        );
    }

    /// How many facts the source has published and not deleted.
    pub fn live(&self) -> usize {
        self.facts.values().filter(|p| !p.deleted).count()
    }

    /// Classifies a fact read now (a table read live) at `position`; see
    /// `observe_at`.
    pub fn observe(&mut self, fact: &Fact, position: &str) -> Change {
        let now = Utc::now().timestamp_millis();
        self.observe_at(fact, position, (now, now), false)
    }

    /// Classifies a fact read from an export at `position`, whose event
    /// has order `order` (`Envelope::order`), and records it as published
    /// in this run (the caller publishes what the change says). A
    /// conflicting restatement is not recorded: the first row of the run
    /// stands until the export is fixed. Nor is a stale one (older than
    /// the statement remembered). `exported` says whether `order` holds an
    /// export time: of two files of one run with export times, the newer
    /// one's row holds, whichever was read first.
    pub fn observe_at(
        &mut self,
        fact: &Fact,
        position: &str,
        order: (i64, i64),
        exported: bool,
    ) -> Change {
        let exported = exported.then_some(order.0);
        if let Some(unit) = fact.unit() {
            let newest = self.units.entry(unit.clone()).or_insert(order.0);
            *newest = (*newest).max(order.0);
        }
        let scope = self.scope_of(fact);
        let outdated = scope
            .as_ref()
            .and_then(|scope| self.stated.get(scope))
            .is_some_and(|&newest| newest > order.0);
        if let Some(scope) = scope {
            self.state(scope, order.0);
        }
        let keep_fact = self.source.delete_scope() != DeleteScope::Additive;
        let digest = fact.digest();
        let entry = self.facts.entry(fact.identity());
        let change = match &entry {
            std::collections::hash_map::Entry::Occupied(published) => {
                let published = published.get();
                if let Some(seen) = &published.seen {
                    let (this, earlier) = (exported, seen.exported);
                    let newer_file = this.zip(earlier).is_some_and(|(t, e)| t > e);
                    let older_file = this.zip(earlier).is_some_and(|(t, e)| t < e);
                    if older_file {
                        // A newer file of this run stated it already.
                        return match seen.digest == digest {
                            true => Change::Unchanged,
                            false => Change::Outdated,
                        };
                    }
                    if !newer_file {
                        // One export stating a fact twice.
                        return match seen.digest == digest {
                            true => Change::Repeated,
                            false => Change::Conflict {
                                earlier: seen.place.clone(),
                            },
                        };
                    }
                    // A newer file than the one that stated it: judged
                    // against what is remembered, like any export.
                }
                if !published.deleted && published.digest == digest {
                    Change::Unchanged
                } else if published.order > order {
                    Change::Stale
                } else if outdated {
                    Change::Outdated
                } else if published.deleted {
                    Change::Insert
                } else {
                    Change::Update
                }
            }
            std::collections::hash_map::Entry::Vacant(_) if outdated => Change::Outdated,
            std::collections::hash_map::Entry::Vacant(_) => Change::Insert,
        };
        let seen = Seen {
            place: position.to_string(),
            exported,
            digest,
        };
        match entry {
            std::collections::hash_map::Entry::Vacant(_) if change == Change::Outdated => {}
            std::collections::hash_map::Entry::Occupied(mut published)
                if matches!(change, Change::Stale | Change::Unchanged | Change::Outdated) =>
            {
                // Stated in this run (so neither deleted nor repeated
                // unnoticed), but what is remembered stays the newer
                // statement.
                published.get_mut().seen = Some(seen);
            }
            entry => {
                entry.insert_entry(Published {
                    digest,
                    deleted: false,
                    order,
                    fact: keep_fact.then(|| fact.clone()),
                    seen: Some(seen),
                });
            }
        }
        change
    }

    /// Starts a new run over the same source (the next poll of a table):
    /// rows of earlier runs no longer count as stated in this one.
    pub fn start_run(&mut self) {
        for published in self.facts.values_mut() {
            published.seen = None;
        }
        self.units.clear();
    }

    /// Names a unit the whole export covers even where it has no rows.
    pub fn cover_unit(&mut self, unit: CreditCode) {
        self.covered.insert(unit);
    }

    /// The facts this run deletes: published, not deleted, in scope and
    /// not seen in this run's exports, and not stated by an export newer
    /// than the one that lacks them. Marks them deleted. `run_exported`
    /// is the newest export time of the run's files, which whole lists and
    /// units named with `--unit` are as of; a unit with rows is as of the
    /// newest file that had rows for it. Also returns how many missing
    /// facts were kept because a newer export stated them.
    pub fn deletions(&mut self, run_exported: Option<DateTime<Utc>>) -> (Vec<Deletion>, u64) {
        let scope = self.source.delete_scope();
        let run_ms = run_exported.map(|t| t.timestamp_millis());
        let mut deleted = Vec::new();
        let mut kept_newer = 0;
        for published in self.facts.values_mut() {
            if published.deleted {
                continue;
            }
            let Some(fact) = &published.fact else {
                continue;
            };
            let as_of = match scope {
                DeleteScope::WholeSource => Some(run_ms),
                DeleteScope::ExportUnits => fact.unit().and_then(|u| match self.units.get(u) {
                    Some(&unit_ms) => Some(Some(unit_ms)),
                    None if self.covered.contains(u) => Some(run_ms),
                    None => None,
                }),
                DeleteScope::Additive => None,
            };
            let Some(as_of) = as_of else {
                continue;
            };
            // Stated by the newest file of its scope in this run: present.
            // Stated only by an older file of the run: missing from the
            // newest, so deleted as of it (where both times are known).
            let stated_now = published.seen.as_ref().is_some_and(|seen| {
                seen.exported
                    .zip(as_of)
                    .is_none_or(|(seen, newest)| seen >= newest)
            });
            if stated_now {
                continue;
            }
            // Without a known export time the delete is as of now.
            let now = Utc::now().timestamp_millis();
            // Fields, not `scope_of`, while the facts are borrowed.
            let stated_later = scope_in(scope, fact)
                .and_then(|fact_scope| self.stated.get(&fact_scope))
                .is_some_and(|&newest| newest > as_of.unwrap_or(now));
            if published.order > (as_of.unwrap_or(now), now) || stated_later {
                kept_newer += 1;
                continue;
            }
            published.deleted = true;
            published.order = (as_of.unwrap_or(now), now);
            deleted.push(Deletion {
                fact: fact.clone(),
                exported_at: as_of.and_then(DateTime::from_timestamp_millis),
            });
        }
        (deleted, kept_newer)
    }
}

/// The scope a fact is stated in by a source whose exports state scopes in
/// full (a unit's staff, a whole list); none for additive sources.
fn scope_in(scope: DeleteScope, fact: &Fact) -> Option<Option<CreditCode>> {
    match scope {
        DeleteScope::WholeSource => Some(None),
        DeleteScope::ExportUnits => Some(fact.unit().cloned()),
        DeleteScope::Additive => None,
    }
}

/// The source's earlier run records (every source's: the caller keeps its
/// own), from the sync-run topic.
async fn read_runs(settings: &KafkaSettings) -> Result<Vec<SyncRun>, BrokerError> {
    let topic = settings.topic(EventKind::SyncRun);
    let config = settings.client_config();
    let brokers = settings.brokers.clone();
    let read = tokio::task::spawn_blocking(move || {
        let registry = SchemaRegistry::get().ok();
        let mut runs = Vec::new();
        let complete = blockhub_model::read_topic_to_end(
            config,
            &topic,
            "blockhub-connector-runs",
            |payload| {
                if let Some(Ok(run)) = registry.map(|r| r.decode_sync_run(payload)) {
                    runs.push(run);
                }
            },
        );
        (complete, runs, topic)
    })
    .await;
    match read {
        Ok((Ok(true), runs, _)) => Ok(runs),
        Ok((Ok(false), _, topic)) => Err(BrokerError::Incomplete { topic }),
        Ok((Err(source), ..)) => Err(BrokerError::Client { brokers, source }),
        Err(_) => Err(BrokerError::Client {
            brokers,
            source: rdkafka::error::KafkaError::Canceled,
        }),
    }
}

#[cfg(test)]
mod tests {
    use blockhub_model::{
        CitizenId, Month, PayrollPayment, PostCategory, RosterEntry, StaffStatus,
    };

    use super::*;

    fn entry(id: &str, unit: &str, end: Option<&str>) -> Fact {
        Fact::RosterEntry(RosterEntry {
            citizen_id: CitizenId::parse(id).unwrap(),
            name: "林雯".into(),
            unit_code: CreditCode::parse(unit).unwrap(),
            unit_name: String::new(),
            post_category: PostCategory::GeneralSupport,
            post_category_label: "普通辅助".into(),
            employment_form: "劳动合同".into(),
            hire_date: None,
            contract_start: None,
            contract_end: end.map(|d| d.parse().unwrap()),
            contract_open_ended: false,
            status: StaffStatus::Active,
            status_label: "在职".into(),
            left_on: None,
            post_name: None,
        })
    }

    /// A fact the source published (read now, no export time).
    fn published(snapshot: &mut Snapshot, fact: Fact, operation: Operation) {
        publish(snapshot, fact, operation, None);
    }

    fn publish(snapshot: &mut Snapshot, fact: Fact, operation: Operation, days: Option<i64>) {
        let mut envelope = blockhub_model::Envelope::for_file_row(
            snapshot.source.name(),
            "roster.xlsx",
            3,
            operation,
        );
        envelope.exported_at =
            days.and_then(|days| DateTime::from_timestamp_millis(exported(days, 0).0));
        snapshot.fold(Event { envelope, fact });
    }

    const A: &str = "11330681830166130U";
    const B: &str = "11330681543231948W";
    const P1: &str = "33068119860303567X";
    const P2: &str = "330681200203086769";
    const P3: &str = "330681197102276278";

    #[test]
    fn roster_rows_become_inserts_updates_and_deletes_within_the_export_units() {
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        published(
            &mut snapshot,
            entry(P1, A, Some("2026-12-31")),
            Operation::Upsert,
        );
        published(&mut snapshot, entry(P2, A, None), Operation::Insert);
        published(&mut snapshot, entry(P3, B, None), Operation::Insert);

        // A new export of unit A only: P1 extended, P2 gone, P3 (unit B)
        // not covered, a new person hired.
        let new_person = "330681199803206589";
        assert_eq!(
            snapshot.observe(&entry(P1, A, Some("2027-12-31")), "2"),
            Change::Update
        );
        assert_eq!(
            snapshot.observe(&entry(new_person, A, None), "2"),
            Change::Insert
        );
        let (deleted, kept) = snapshot.deletions(None);
        let facts: Vec<Fact> = deleted.into_iter().map(|d| d.fact).collect();
        assert_eq!((facts, kept), (vec![entry(P2, A, None)], 0));
        assert!(
            snapshot.deletions(None).0.is_empty(),
            "a delete is published once"
        );
    }

    #[test]
    fn unchanged_facts_publish_nothing_and_deleted_ones_come_back_as_inserts() {
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        published(&mut snapshot, entry(P1, A, None), Operation::Insert);
        published(&mut snapshot, entry(P2, A, None), Operation::Delete);
        assert_eq!(
            snapshot.observe(&entry(P1, A, None), "2"),
            Change::Unchanged
        );
        assert_eq!(snapshot.observe(&entry(P2, A, None), "2"), Change::Insert);
        assert!(snapshot.deletions(None).0.is_empty());
    }

    #[test]
    fn a_fact_stated_twice_in_one_run_is_repeated_or_a_conflict() {
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        assert_eq!(snapshot.observe(&entry(P1, A, None), "2"), Change::Insert);
        assert_eq!(snapshot.observe(&entry(P1, A, None), "3"), Change::Repeated);
        assert_eq!(
            snapshot.observe(&entry(P1, A, Some("2027-01-31")), "4"),
            Change::Conflict {
                earlier: "2".into()
            }
        );
        // The first row stands: the same export again is unchanged.
        let mut next = Snapshot::empty(SourceKind::Roster);
        published(&mut next, entry(P1, A, None), Operation::Insert);
        assert_eq!(next.observe(&entry(P1, A, None), "2"), Change::Unchanged);
    }

    #[test]
    fn other_sources_on_the_topic_are_not_this_sources_facts() {
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        let envelope =
            blockhub_model::Envelope::for_file_row("someone.else", "x.csv", 2, Operation::Insert);
        snapshot.fold(Event {
            envelope,
            fact: entry(P1, A, None),
        });
        assert_eq!(snapshot.observe(&entry(P2, A, None), "2"), Change::Insert);
        assert!(snapshot.deletions(None).0.is_empty());
    }

    #[test]
    fn payroll_is_additive_and_keeps_no_facts() {
        let mut snapshot = Snapshot::empty(SourceKind::Payroll);
        let payment = |month: &str| {
            Fact::PayrollPayment(PayrollPayment {
                citizen_id: CitizenId::parse(P1).unwrap(),
                name: "林雯".into(),
                unit_code: CreditCode::parse(A).unwrap(),
                unit_name: String::new(),
                month: Month::parse(month).unwrap(),
                gross: None,
                net: Some("3250.00".parse().unwrap()),
                fund_source: String::new(),
            })
        };
        snapshot.fold(Event {
            envelope: blockhub_model::Envelope::for_file_row(
                "finance.payroll",
                "payroll_202610.csv",
                2,
                Operation::Insert,
            ),
            fact: payment("202610"),
        });
        assert!(snapshot.facts.values().all(|p| p.fact.is_none()));
        assert_eq!(snapshot.observe(&payment("202611"), "2"), Change::Insert);
        assert_eq!(snapshot.observe(&payment("202610"), "2"), Change::Unchanged);
        assert!(snapshot.deletions(None).0.is_empty());
    }

    /// The order of an event exported `days` days ago and read `read` ms
    /// after the epoch of the test.
    fn exported(days: i64, read: i64) -> (i64, i64) {
        let day = 86_400_000;
        (1_800_000_000_000 - days * day, 1_800_000_000_000 + read)
    }

    /// A fact the source published from an export made `days` days ago.
    fn published_at(snapshot: &mut Snapshot, fact: Fact, operation: Operation, days: i64) {
        publish(snapshot, fact, operation, Some(days));
    }

    // The trial's three cases: an old export read late must not make the
    // connector forget what the newer export said.
    #[test]
    fn an_old_export_read_late_changes_nothing_remembered() {
        // The newest roster (a day old) says P1's contract ends 2027; a
        // month-old roster says 2025 and lacks P2.
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        published_at(
            &mut snapshot,
            entry(P1, A, Some("2027-06-30")),
            Operation::Insert,
            1,
        );
        published_at(&mut snapshot, entry(P2, A, None), Operation::Insert, 1);
        let old = exported(30, 10);
        assert_eq!(
            snapshot.observe_at(&entry(P1, A, Some("2025-11-30")), "2", old, true),
            Change::Stale
        );
        let (deleted, kept) = snapshot.deletions(DateTime::from_timestamp_millis(old.0));
        assert_eq!(
            (deleted.len(), kept),
            (0, 1),
            "P2 stated by the newer export"
        );

        // An export made today that says 2025 is an update against the
        // remembered 2027, and one that lacks P2 deletes P2 as of today.
        snapshot.start_run();
        let today = exported(0, 20);
        assert_eq!(
            snapshot.observe_at(&entry(P1, A, Some("2025-11-30")), "2", today, true),
            Change::Update
        );
        let (deleted, kept) = snapshot.deletions(DateTime::from_timestamp_millis(today.0));
        assert_eq!(kept, 0);
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].fact, entry(P2, A, None));
        assert_eq!(
            deleted[0].exported_at.map(|t| t.timestamp_millis()),
            Some(today.0)
        );

        // Replayed from the topic, a stale statement published after the
        // newer one is not what the source holds.
        let mut replayed = Snapshot::empty(SourceKind::Roster);
        published_at(
            &mut replayed,
            entry(P1, A, Some("2027-06-30")),
            Operation::Insert,
            1,
        );
        published_at(
            &mut replayed,
            entry(P1, A, Some("2025-11-30")),
            Operation::Update,
            30,
        );
        assert_eq!(
            replayed.observe_at(
                &entry(P1, A, Some("2027-06-30")),
                "2",
                exported(0, 30),
                true
            ),
            Change::Unchanged
        );
    }

    #[test]
    fn a_unit_is_deleted_from_as_of_its_own_file_in_a_run_of_several() {
        // Unit A's file is today's; unit B's a month old, in the same run.
        // P1 (unit A) was stated a day ago and is missing from A's file.
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        published_at(&mut snapshot, entry(P1, A, None), Operation::Insert, 1);
        let (today, month_old) = (exported(0, 10), exported(30, 10));
        snapshot.observe_at(&entry(P2, A, None), "2", today, true);
        snapshot.observe_at(&entry(P3, B, None), "2", month_old, true);
        let (deleted, kept) = snapshot.deletions(DateTime::from_timestamp_millis(today.0));
        assert_eq!((deleted.len(), kept), (1, 0));
        assert_eq!(
            deleted[0].exported_at.map(|t| t.timestamp_millis()),
            Some(today.0)
        );
    }

    // A second trial: a newer export that changed nothing published no
    // event, so an export made between the two, read last, deleted a
    // person the newer one listed. The newer run's record now says so.
    #[test]
    fn an_export_older_than_a_run_that_changed_nothing_is_outdated() {
        let mut snapshot = Snapshot::empty(SourceKind::Roster);
        published_at(
            &mut snapshot,
            entry(P1, A, Some("2026-12-31")),
            Operation::Insert,
            30,
        );
        published_at(&mut snapshot, entry(P2, A, None), Operation::Insert, 30);
        let (newer_ms, _) = exported(5, 0);
        snapshot.fold_run(SyncRun {
            run_id: "r".into(),
            source_system: "staffing.roster".into(),
            location: "roster_dec.csv".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            rows_read: 2,
            published: 0,
            unchanged: 2,
            rejected: 0,
            error: None,
            worst_file: None,
            exports: vec![ExportScope {
                unit_code: Some(A.into()),
                exported_at: DateTime::from_timestamp_millis(newer_ms).unwrap(),
            }],
        });
        // Made in between: another contract end, P2 missing, P3 new.
        let between = exported(15, 10);
        assert_eq!(
            snapshot.observe_at(&entry(P1, A, Some("2025-06-30")), "2", between, true),
            Change::Outdated
        );
        let new_person = "330681199803206589";
        assert_eq!(
            snapshot.observe_at(&entry(new_person, A, None), "3", between, true),
            Change::Outdated
        );
        let (deleted, kept) = snapshot.deletions(DateTime::from_timestamp_millis(between.0));
        assert_eq!((deleted.len(), kept), (0, 1));
        // Unit B was not in the newer run: its rows are not outdated.
        assert_eq!(
            snapshot.observe_at(&entry(P3, B, None), "4", between, true),
            Change::Insert
        );
        // What this run states, for its own record: unit A as of its rows
        // (older than the record already there), unit B likewise.
        let scopes = snapshot.export_scopes(DateTime::from_timestamp_millis(between.0));
        let units: Vec<_> = scopes.iter().filter_map(|s| s.unit_code.clone()).collect();
        assert_eq!(units, vec![B.to_string(), A.to_string()]);
    }

    // A third trial: two exports of one unit in one run were taken for
    // one export contradicting itself (the first file listed kept, the
    // newer rejected), and a person missing from the newer was kept.
    #[test]
    fn of_two_files_of_one_unit_in_a_run_the_newer_holds_whichever_comes_first() {
        for newer_first in [false, true] {
            let mut snapshot = Snapshot::empty(SourceKind::Roster);
            published_at(
                &mut snapshot,
                entry(P1, A, Some("2026-12-31")),
                Operation::Insert,
                30,
            );
            published_at(&mut snapshot, entry(P2, A, None), Operation::Insert, 30);
            let (older, newer) = (exported(2, 10), exported(1, 20));
            let older_rows = [
                (entry(P1, A, Some("2029-07-31")), "a.csv row 2"),
                (entry(P2, A, None), "a.csv row 3"),
            ];
            let newer_rows = [(entry(P1, A, Some("2031-07-31")), "b.csv row 2")];
            let mut changes = Vec::new();
            let mut read = |rows: &[(Fact, &str)], order| {
                for (fact, place) in rows {
                    changes.push(snapshot.observe_at(fact, place, order, true));
                }
            };
            if newer_first {
                read(&newer_rows, newer);
                read(&older_rows, older);
                assert_eq!(
                    changes,
                    vec![Change::Update, Change::Outdated, Change::Unchanged],
                    "the older file's other contract end is not published"
                );
            } else {
                read(&older_rows, older);
                read(&newer_rows, newer);
                assert_eq!(
                    changes,
                    vec![Change::Update, Change::Unchanged, Change::Update],
                    "published in export order, so the newer holds"
                );
            }
            let (deleted, kept) = snapshot.deletions(DateTime::from_timestamp_millis(newer.0));
            assert_eq!(kept, 0);
            let facts: Vec<Fact> = deleted.into_iter().map(|d| d.fact).collect();
            assert_eq!(
                facts,
                vec![entry(P2, A, None)],
                "missing from the newer file"
            );
        }
    }
}
