//! The gateway's audit log, chained entry to entry.
//!
//! Each entry's hash is HMAC-SM3 under the deployment's audit key of the
//! previous entry's hash and this entry's content. Editing an entry breaks
//! its own hash, deleting one leaves a gap in the sequence, and an entry
//! inserted (or renumbered) does not carry a hash only the key could make,
//! so `verify_audit` names the first entry where the chain breaks.
//! Appends take the chain's head and add to it in one transaction; two
//! writers racing for one sequence number make one of them retry.
//!
//! TODO(subject): entries name no person, so "who looked at X" cannot be
//! answered from the log; a keyed hash of each looked-up ID (never the ID)
//! in a new column would answer it.

use std::collections::{BTreeMap, BTreeSet};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sm3::Sm3;
use sqlx::FromRow;

use super::Store;
use crate::error::{MergerError, query};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry before it is chained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditDraft {
    /// When (ms since the epoch).
    pub at: i64,
    /// Who called: a token's hash prefix or a certificate's subject.
    pub principal: String,
    /// The department.
    pub department: String,
    /// The method, as Service.Method.
    pub method: String,
    /// The purpose named (may be empty).
    pub purpose: String,
    /// The case number named (may be empty).
    pub case_number: String,
    /// The operator named in the request's metadata.
    pub operator: String,
    /// allowed or denied.
    pub decision: String,
    /// Why denied.
    pub reason: String,
    /// The fields returned and how.
    pub fields: String,
    /// How many records were returned.
    pub result_count: i64,
}

/// A chained entry as kept: its content and its place in the chain. The
/// content's fields stay flat in the table and in the published JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// What was decided, for whom.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub content: AuditDraft,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// Where a chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The first entry that does not verify (its sequence number).
    pub seq: i64,
    /// What is wrong, in words.
    pub reason: String,
}

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries that verified before the first break (all of them when
    /// there is none).
    pub verified: i64,
    /// The first break, if any.
    pub broken: Option<AuditBreak>,
}

const COLUMNS: &str = "seq, at, principal, department, method, purpose, case_number, \
    operator, decision, reason, fields, result_count, prev_hash, hash";

/// The chain hash of an entry: HMAC-SM3 under `key` of the previous hash
/// and every field, each length-prefixed so that no two different entries
/// give the same input.
pub fn chain_hash(key: &[u8], seq: i64, prev_hash: &str, draft: &AuditDraft) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sm3>::new_from_slice(key) else {
        return String::new();
    };
    let seq = seq.to_string();
    let at = draft.at.to_string();
    let count = draft.result_count.to_string();
    let parts = [
        prev_hash,
        &seq,
        &at,
        &draft.principal,
        &draft.department,
        &draft.method,
        &draft.purpose,
        &draft.case_number,
        &draft.operator,
        &draft.decision,
        &draft.reason,
        &draft.fields,
        &count,
    ];
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

impl Store {
    /// Appends `drafts` to the chain in one transaction and returns their
    /// sequence numbers. Nothing is appended when this fails.
    pub async fn append_audit(
        &self,
        key: &[u8],
        drafts: &[AuditDraft],
    ) -> Result<Vec<i64>, MergerError> {
        // Another writer took the sequence numbers (PostgreSQL), or the
        // merger's batch holds SQLite's one write lock, which a reading
        // transaction cannot upgrade past: chain on top of what is there,
        // for up to five seconds, rather than fail the call.
        let started = std::time::Instant::now();
        let mut attempt: u64 = 0;
        loop {
            match self.try_append_audit(key, drafts).await {
                Err(MergerError::Query { source, .. })
                    if started.elapsed() < std::time::Duration::from_secs(5)
                        && is_conflict(&source) =>
                {
                    attempt += 1;
                    let pause = (5 * attempt).min(100);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_append_audit(
        &self,
        key: &[u8],
        drafts: &[AuditDraft],
    ) -> Result<Vec<i64>, MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin an audit append"))?;
        let (mut seq, mut prev) = chain_head(&mut tx).await?;
        let mut sequence = Vec::with_capacity(drafts.len());
        for draft in drafts {
            seq += 1;
            let entry = AuditEntry {
                seq,
                content: draft.clone(),
                hash: chain_hash(key, seq, &prev, draft),
                prev_hash: prev,
            };
            insert_entry(&mut tx, &entry, false, "append an audit entry").await?;
            sequence.push(seq);
            prev = entry.hash;
        }
        tx.commit().await.map_err(query("commit audit entries"))?;
        Ok(sequence)
    }

    /// Entries after `after` in chain order, at most `limit`.
    pub async fn audit_entries(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, MergerError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read audit entries"))
    }

    /// The newest `count` entries, oldest of them first.
    pub async fn audit_tail(&self, count: i64) -> Result<Vec<AuditEntry>, MergerError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1");
        let mut entries: Vec<AuditEntry> = sqlx::query_as(&sql)
            .bind(count)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read the newest audit entries"))?;
        entries.reverse();
        Ok(entries)
    }

    /// Puts back entries read from the audit topic that follow the store's
    /// own chain (all of them into a rebuild's empty store), marked
    /// published. It stops at the first that does not follow (a gap, or a
    /// version of another chain), which verifying then reports. Returns
    /// the number put back.
    pub async fn restore_audit(
        &self,
        published: &BTreeMap<i64, Vec<AuditEntry>>,
    ) -> Result<u64, MergerError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin restoring audit"))?;
        let (mut seq, mut prev) = chain_head(&mut tx).await?;
        let mut kept = 0;
        for (&next, versions) in published.range(seq + 1..) {
            let follows = |e: &&AuditEntry| next == seq + 1 && e.prev_hash == prev;
            let Some(entry) = versions.iter().find(follows) else {
                break;
            };
            insert_entry(&mut tx, entry, true, "restore an audit entry").await?;
            prev = entry.hash.clone();
            seq = next;
            kept += 1;
        }
        tx.commit().await.map_err(query("commit restored audit"))?;
        Ok(kept)
    }

    /// Entries not yet published to the audit topic, oldest first.
    pub async fn unpublished_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, MergerError> {
        let sql =
            format!("SELECT {COLUMNS} FROM audit_log WHERE published = 0 ORDER BY seq LIMIT $1");
        sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query("read unpublished audit entries"))
    }

    /// Records that entries up to and including `seq` were published.
    pub async fn mark_audit_published(&self, up_to: i64) -> Result<(), MergerError> {
        sqlx::query("UPDATE audit_log SET published = 1 WHERE published = 0 AND seq <= $1")
            .bind(up_to)
            .execute(&self.pool)
            .await
            .map_err(query("mark audit entries published"))?;
        Ok(())
    }

    /// Walks the whole chain under `key` and reports the first entry that
    /// does not verify.
    pub async fn verify_audit(&self, key: &[u8]) -> Result<AuditReport, MergerError> {
        self.verify_audit_against(key, &BTreeMap::new()).await
    }

    /// As `verify_audit`, and in the same pass compares every entry with
    /// the copies published to the audit topic (every hash seen per
    /// sequence number). This finds what the chain alone cannot: the newest
    /// entries deleted, or deleted and written anew.
    pub async fn verify_audit_against(
        &self,
        key: &[u8],
        copies: &BTreeMap<i64, BTreeSet<String>>,
    ) -> Result<AuditReport, MergerError> {
        let (mut expected_seq, mut prev) = (1_i64, GENESIS.to_string());
        let mut verified = 0;
        let broken = |verified, seq, reason| {
            Ok(AuditReport {
                verified,
                broken: Some(AuditBreak { seq, reason }),
            })
        };
        loop {
            let page = self.audit_entries(expected_seq - 1, 1000).await?;
            if page.is_empty() {
                // Published copies beyond the store's last entry: deleted.
                if let Some((seq, _)) = copies.range(expected_seq..).next()
                    && let Some(reason) = copy_break(*seq, None, copies)
                {
                    return broken(verified, *seq, reason);
                }
                return Ok(AuditReport {
                    verified,
                    broken: None,
                });
            }
            for entry in page {
                if let Some(reason) = check(key, &entry, expected_seq, &prev) {
                    return broken(verified, entry.seq.min(expected_seq), reason);
                }
                if let Some(reason) = copy_break(entry.seq, Some(&entry.hash), copies) {
                    return broken(verified, entry.seq, reason);
                }
                verified += 1;
                expected_seq = entry.seq + 1;
                prev = entry.hash;
            }
        }
    }
}

/// The newest entry's sequence number and hash; (0, GENESIS) for none.
async fn chain_head(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<(i64, String), MergerError> {
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(query("read the audit chain's head"))?;
    Ok(head.unwrap_or((0, GENESIS.to_string())))
}

/// Writes one chained entry, marked published or not.
async fn insert_entry(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entry: &AuditEntry,
    published: bool,
    action: &'static str,
) -> Result<(), MergerError> {
    let sql = format!(
        "INSERT INTO audit_log ({COLUMNS}, published) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    let c = &entry.content;
    sqlx::query(&sql)
        .bind(entry.seq)
        .bind(c.at)
        .bind(&c.principal)
        .bind(&c.department)
        .bind(&c.method)
        .bind(&c.purpose)
        .bind(&c.case_number)
        .bind(&c.operator)
        .bind(&c.decision)
        .bind(&c.reason)
        .bind(&c.fields)
        .bind(c.result_count)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .bind(i64::from(published))
        .execute(&mut **tx)
        .await
        .map_err(query(action))?;
    Ok(())
}

/// Why entry `seq` (whose kept hash is `kept`, `None` when the store has
/// no such entry) disagrees with its copies on the audit topic, if it does.
/// An entry not yet published has no copy and agrees.
fn copy_break(
    seq: i64,
    kept: Option<&str>,
    copies: &BTreeMap<i64, BTreeSet<String>>,
) -> Option<String> {
    let hashes = copies.get(&seq)?;
    match kept {
        None => Some(format!(
            "entry {seq} is on the audit topic but missing from the store"
        )),
        Some(_) if hashes.len() > 1 => Some(format!(
            "the audit topic holds {} different versions of entry {seq}: it was replaced \
             after it was published, or a store without this log (a rebuild of an older \
             release, a restored backup) started a new chain",
            hashes.len()
        )),
        Some(hash) if !hashes.contains(hash) => Some(format!(
            "entry {seq} differs from its copy on the audit topic: it was replaced"
        )),
        Some(_) => None,
    }
}

/// Why `entry` does not follow the chain so far, if it does not.
fn check(key: &[u8], entry: &AuditEntry, expected_seq: i64, prev: &str) -> Option<String> {
    if entry.seq != expected_seq {
        let missing = if entry.seq == expected_seq + 1 {
            format!("entry {expected_seq} is missing")
        } else {
            format!("entries {expected_seq} to {} are missing", entry.seq - 1)
        };
        return Some(format!(
            "{missing} (deleted): the chain jumps to entry {}",
            entry.seq
        ));
    }
    if entry.prev_hash != prev {
        return Some(format!(
            "entry {} does not follow entry {}: an entry was inserted or replaced here",
            entry.seq,
            entry.seq - 1
        ));
    }
    if chain_hash(key, entry.seq, prev, &entry.content) != entry.hash {
        return Some(format!(
            "entry {} does not match its hash: it was altered, or inserted without the key",
            entry.seq
        ));
    }
    None
}

/// Another writer took the next sequence number, or holds the store.
fn is_conflict(error: &sqlx::Error) -> bool {
    let taken = matches!(error, sqlx::Error::Database(db) if db.is_unique_violation());
    taken || crate::error::is_contention(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_on_the_topic_reveal_deleted_and_replaced_entries() {
        let copy = |pairs: &[(i64, &str)]| {
            let mut copies: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
            for (seq, hash) in pairs {
                copies.entry(*seq).or_default().insert(hash.to_string());
            }
            copies
        };
        // Published so far: 1 and 2; 3 not yet. Duplicates of one entry
        // (a crash between publishing and marking) are fine.
        let published = copy(&[(1, "a"), (2, "b"), (2, "b")]);
        for (seq, kept) in [(1, "a"), (2, "b"), (3, "c")] {
            assert_eq!(copy_break(seq, Some(kept), &published), None);
        }
        let deleted = copy_break(4, None, &copy(&[(3, "c"), (4, "d")])).unwrap();
        assert!(deleted.contains("missing from the store"), "{deleted}");
        let replaced = copy_break(2, Some("b"), &copy(&[(1, "a"), (2, "x")])).unwrap();
        assert!(replaced.contains("replaced"), "{replaced}");
        let twice = copy_break(1, Some("a"), &copy(&[(1, "a"), (1, "z")])).unwrap();
        assert!(twice.contains("2 different versions of entry 1"), "{twice}");
    }

    #[test]
    fn the_hash_depends_on_key_chain_and_every_field() {
        let draft = AuditDraft {
            department: "court".into(),
            fields: "employer".into(),
            result_count: 1,
            ..AuditDraft::default()
        };
        let base = chain_hash(b"k", 1, GENESIS, &draft);
        assert_eq!(base.len(), 64);
        assert_ne!(base, chain_hash(b"other", 1, GENESIS, &draft));
        assert_ne!(base, chain_hash(b"k", 2, GENESIS, &draft));
        assert_ne!(base, chain_hash(b"k", 1, &base, &draft));
        let mut changed = draft.clone();
        changed.result_count = 2;
        assert_ne!(base, chain_hash(b"k", 1, GENESIS, &changed));
        // Moving text between fields changes the hash too.
        let (mut a, mut b) = (draft.clone(), draft);
        a.purpose = "ab".into();
        b.purpose = "a".into();
        b.case_number = "b".into();
        assert_ne!(
            chain_hash(b"k", 1, GENESIS, &a),
            chain_hash(b"k", 1, GENESIS, &b)
        );
    }
}
