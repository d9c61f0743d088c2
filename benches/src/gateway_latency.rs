//! Gateway look-ups against the same point query issued directly against
//! the store, in the same run (issue 6, "Benchmark").
//!
//! Loads N persons straight into a fresh store (one active roster entry and
//! 12 monthly payments each, no broker), starts a real gateway on loopback
//! over that store, and for each concurrency c runs, for a fixed time each:
//!
//!   - direct: c tasks calling the store read a look-up makes
//!     (`Store::person_facts`: roster entries and latest payment) for
//!     random persons;
//!   - gateway: c tasks, each with its own channel, calling
//!     PersonLookup.Lookup with a bearer token (authentication, policy,
//!     rate limiter, the store reads, the group-committed audit append,
//!     protobuf and HTTP/2 both ways);
//!   - audit: c tasks appending one audit entry each through an
//!     `AuditWriter` of their own over the same store, the way the gateway
//!     records every call;
//!   - direct + audit: the reads and then the append, i.e. the gateway's
//!     store work without gRPC, so that the rest can be told apart.
//!
//! Prints look-ups per second, p50 and p99 per path, and the ratio of the
//! gateway's p99 to the direct p99, which issue 6 wants at most 2.
//!
//!   cargo run --release -p blockhub-benches --bin gateway-latency -- \
//!       --persons 10000 --seconds 4 --backend both

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use blockhub_benches::{Backends, person_id, unit_of};
use blockhub_gateway::AuditWriter;
use blockhub_gateway::proto::LookupRequest;
use blockhub_gateway::proto::person_lookup_client::PersonLookupClient;
use blockhub_merger::Store;
use blockhub_merger::store::{AuditDraft, Delivered, DeliveredItem};
use blockhub_model::{
    CitizenId, Envelope, Event, Fact, Operation, PayrollPayment, PostCategory, RosterEntry,
    StaffStatus,
};
use blockhub_tests::{Backend, TEST_AUDIT_KEY, TestDatabase, TestGateway, with_token};
use clap::Parser;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
struct Args {
    /// Persons to generate; each gets one roster entry and 12 payments.
    #[arg(long, default_value_t = 10_000)]
    persons: u64,
    /// Seconds each path is measured for, per concurrency.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Concurrencies to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    concurrency: Vec<usize>,
    /// Which store backends to measure.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Give every call this deadline (grpc-timeout on the gateway path,
    /// the same `within` on the direct one); on PostgreSQL the look-up
    /// then runs in a transaction with a statement timeout.
    #[arg(long)]
    deadline_ms: Option<u64>,
}

const CASE: &str = "（2024）浙0681执4278号";
const DEPARTMENT: &str = "bench";
const TOKEN: &str = "bench-token-not-for-production";
const PURPOSE: &str = "enforcement";

/// The court's shape of grant (employer and latest pay, a case number
/// required), with a rate limit high enough never to refuse a call: the
/// shipped policy's 50 per second would measure the limiter, not the
/// gateway.
const POLICY: &str = r#"
[departments.bench]
rate_per_second = 1000000
methods = ["PersonLookup.Lookup"]
[departments.bench.purposes.enforcement]
fields = ["employer", "latest_payment"]
require_case = true
"#;

fn roster_entry(person: u64) -> Result<RosterEntry> {
    let hired = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).context("hire date")?
        + chrono::Days::new(person % 1500);
    Ok(RosterEntry {
        citizen_id: person_id(person)?,
        name: format!("员工{person}"),
        unit_code: unit_of(person)?,
        unit_name: "诸暨市测试单位".into(),
        post_category: PostCategory::GeneralSupport,
        post_category_label: "普通辅助".into(),
        employment_form: "直接聘用".into(),
        hire_date: Some(hired),
        contract_start: Some(hired),
        contract_end: None,
        contract_open_ended: true,
        status: StaffStatus::Active,
        status_label: "在职".into(),
        left_on: None,
        post_name: None,
    })
}

/// Writes the persons without a broker: roster entries through the
/// merger's own batch apply (there is no direct-insert helper for them and
/// the apply keeps the bench independent of the table's columns), payments
/// through the direct multi-row insert the merger bench uses.
async fn load(store: &Store, persons: u64) -> Result<()> {
    const CHUNK: u64 = 1000;
    let mut start = 0;
    while start < persons {
        let end = (start + CHUNK).min(persons);
        let mut roster = Vec::with_capacity((end - start) as usize);
        let mut envelopes = Vec::with_capacity((end - start) as usize * 12);
        let mut payments = Vec::with_capacity((end - start) as usize * 12);
        for person in start..end {
            roster.push(Delivered {
                topic: "bench.staffing.roster".into(),
                partition: 0,
                offset: person as i64,
                item: DeliveredItem::Event(Event {
                    envelope: Envelope::for_file_row(
                        "staffing.roster",
                        "bench.xlsx",
                        person + 2,
                        Operation::Upsert,
                    ),
                    fact: Fact::RosterEntry(roster_entry(person)?),
                }),
            });
            for month in 1..=12 {
                envelopes.push(Envelope::for_file_row(
                    "finance.payroll",
                    "bench.csv",
                    person * 12 + u64::from(month) + 1,
                    Operation::Upsert,
                ));
                payments.push(blockhub_benches::payment(person, month)?);
            }
        }
        store.apply_batch("bench-load", &roster).await?;
        let rows: Vec<(PayrollPayment, &Envelope)> =
            payments.into_iter().zip(envelopes.iter()).collect();
        store.insert_payments_direct(&rows).await?;
        start = end;
    }
    Ok(())
}

/// A small deterministic generator (SplitMix64): random persons without
/// another dependency, and the same sequence of persons on every path.
struct Persons {
    state: u64,
    count: u64,
}

impl Persons {
    fn new(seed: u64, count: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            count,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % self.count
    }
}

/// One look-up's worth of work on one path.
#[derive(Clone)]
enum Worker {
    Direct(Store, Option<Duration>),
    Audit(AuditWriter),
    DirectAudit(Store, Option<Duration>, AuditWriter),
    Gateway(PersonLookupClient<Channel>, Option<Duration>),
}

/// The entry the gateway writes for an allowed look-up, so that the
/// appended rows are the same size.
fn audit_draft() -> AuditDraft {
    AuditDraft {
        at: chrono::Utc::now().timestamp_millis(),
        principal: "token:0123456789ab".into(),
        department: DEPARTMENT.into(),
        method: "PersonLookup.Lookup".into(),
        purpose: PURPOSE.into(),
        case_number: CASE.into(),
        decision: "allowed".into(),
        fields: "employer,latest_payment".into(),
        result_count: 1,
        ..AuditDraft::default()
    }
}

/// The store read the gateway's look-up makes, with the deadline it
/// would pass on.
async fn read_direct(store: &Store, id: &CitizenId, within: Option<Duration>) -> Result<()> {
    let (entries, latest) = store.person_facts(id, within, None).await?;
    anyhow::ensure!(
        !entries.is_empty() && latest.is_some(),
        "{id} is missing from the store"
    );
    Ok(())
}

impl Worker {
    async fn once(&mut self, id: &CitizenId) -> Result<()> {
        match self {
            Worker::Direct(store, within) => read_direct(store, id, *within).await,
            Worker::Audit(writer) => writer
                .write(vec![audit_draft()])
                .await
                .map_err(anyhow::Error::msg),
            Worker::DirectAudit(store, within, writer) => {
                read_direct(store, id, *within).await?;
                writer
                    .write(vec![audit_draft()])
                    .await
                    .map_err(anyhow::Error::msg)
            }
            Worker::Gateway(client, within) => {
                let request = LookupRequest {
                    citizen_id: id.as_str().to_string(),
                    provenance: false,
                    purpose: PURPOSE.into(),
                    case_number: CASE.into(),
                };
                let mut request = with_token(request, TOKEN);
                if let Some(within) = within {
                    request.set_timeout(*within);
                }
                let reply = client.lookup(request).await?;
                let reply = reply.get_ref();
                anyhow::ensure!(
                    !reply.employers.is_empty() && reply.latest_payment.is_some(),
                    "the gateway answered {id} without employer or pay"
                );
                Ok(())
            }
        }
    }
}

/// Latencies of one path at one concurrency.
struct Sample {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    count: usize,
}

impl Sample {
    /// Rate, p50 and p99 as three table cells.
    fn cells(&self) -> String {
        format!(
            "{:.0} | {} | {}",
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

/// Nearest-rank percentile of sorted nanoseconds.
fn percentile(sorted: &[u64], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs `workers` (one task each) for `duration`, each task looking up
/// random persons back to back, and collects every call's latency.
async fn measure(workers: Vec<Worker>, persons: u64, duration: Duration) -> Result<Sample> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(workers.len());
    for (index, mut worker) in workers.into_iter().enumerate() {
        let ids: Vec<CitizenId> = {
            // IDs computed before the clock matters, so that building
            // them is not measured as latency.
            let mut persons_of = Persons::new(index as u64 + 1, persons);
            (0..4096)
                .map(|_| person_id(persons_of.next()))
                .collect::<Result<_>>()?
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut next = 0;
            while Instant::now() < deadline {
                let id = &ids[next % ids.len()];
                next += 1;
                let call = Instant::now();
                worker.once(id).await?;
                latencies.push(call.elapsed().as_nanos() as u64);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Ok(Sample {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        count: all.len(),
    })
}

async fn connect(address: std::net::SocketAddr) -> Result<PersonLookupClient<Channel>> {
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await
        .context("connect to the gateway")?;
    Ok(PersonLookupClient::new(channel))
}

struct Row {
    concurrency: usize,
    direct: Sample,
    gateway: Sample,
    audit: Sample,
    direct_audit: Sample,
}

async fn bench_backend(backend: Backend, args: &Args) -> Result<Vec<Row>> {
    let database = TestDatabase::create(backend).await;
    let store = Store::open(&database.url).await?;
    let loading = Instant::now();
    load(&store, args.persons).await?;
    eprintln!(
        "loaded {} persons in {:.1} s",
        args.persons,
        loading.elapsed().as_secs_f64()
    );
    let gateway = TestGateway::start(&store, &[(DEPARTMENT, TOKEN)], POLICY).await;
    // A second writer over the same store for the audit-only paths; the
    // gateway's own writer is idle while they run, and the chain allows
    // either to append on top of the other.
    let writer = AuditWriter::start(store.clone(), TEST_AUDIT_KEY.to_vec());
    let duration = Duration::from_secs(args.seconds);
    let max = args.concurrency.iter().copied().max().unwrap_or(1);
    let within = args.deadline_ms.map(Duration::from_millis);
    let mut clients = Vec::with_capacity(max);
    for _ in 0..max {
        clients.push(Worker::Gateway(connect(gateway.address).await?, within));
    }
    let direct = |c: usize| vec![Worker::Direct(store.clone(), within); c];

    // Warm both paths (connection pools, prepared statements, HTTP/2
    // windows) before anything is recorded.
    let warm = Duration::from_secs(1);
    measure(direct(max), args.persons, warm).await?;
    measure(clients.clone(), args.persons, warm).await?;

    let mut rows = Vec::new();
    for &c in &args.concurrency {
        // Direct and gateway back to back, so that the ratio compares
        // paths measured under the same state of the database.
        let direct_sample = measure(direct(c), args.persons, duration).await?;
        let gateway_sample = measure(clients[..c].to_vec(), args.persons, duration).await?;
        let audits = vec![Worker::Audit(writer.clone()); c];
        let audit = measure(audits, args.persons, duration).await?;
        let both = vec![Worker::DirectAudit(store.clone(), within, writer.clone()); c];
        let direct_audit = measure(both, args.persons, duration).await?;
        eprintln!(
            "c={c}: direct {} gateway {} audit {} direct+audit {} calls",
            direct_sample.count, gateway_sample.count, audit.count, direct_audit.count
        );
        rows.push(Row {
            concurrency: c,
            direct: direct_sample,
            gateway: gateway_sample,
            audit,
            direct_audit,
        });
    }
    drop(clients);
    gateway.stop().await;
    database.remove(store).await;
    Ok(rows)
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.persons > 0, "--persons must be at least 1");
    anyhow::ensure!(
        args.concurrency.iter().all(|&c| c > 0),
        "concurrencies must be at least 1"
    );
    let backends = args.backend.selected();
    let mut results = Vec::new();
    for (name, backend) in backends {
        results.push((name, bench_backend(backend, &args).await?));
    }
    let deadline = args
        .deadline_ms
        .map_or("no deadline".to_string(), |ms| format!("deadline {ms} ms"));
    println!(
        "persons {} (12 payments each), {} s per path and concurrency, {deadline}",
        args.persons, args.seconds
    );
    println!();
    println!(
        "| backend | c | direct look-ups/s | direct p50 ms | direct p99 ms \
         | gateway look-ups/s | gateway p50 ms | gateway p99 ms | gateway p99 / direct p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, rows) in &results {
        for row in rows {
            println!(
                "| {name} | {} | {} | {} | {:.2} |",
                row.concurrency,
                row.direct.cells(),
                row.gateway.cells(),
                row.gateway.p99.as_secs_f64() / row.direct.p99.as_secs_f64(),
            );
        }
    }
    println!();
    println!(
        "| backend | c | audit append/s | audit p50 ms | audit p99 ms \
         | direct + audit/s | direct + audit p50 ms | direct + audit p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, rows) in &results {
        for row in rows {
            println!(
                "| {name} | {} | {} | {} |",
                row.concurrency,
                row.audit.cells(),
                row.direct_audit.cells(),
            );
        }
    }
    Ok(())
}
