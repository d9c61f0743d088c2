//! The health monitor: measures the merger's lag, judges every source
//! every few seconds, logs each change of status once, and hands the
//! latest report to the gRPC service, the metrics and the status page.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockhub_merger::{MergerConfig, Store};
use blockhub_model::{Clock, KafkaSettings};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::HealthConfig;
use crate::error::HealthError;
use crate::report::{HealthReport, LagView};
use crate::status::Status;

/// Judges the sources and keeps the latest report.
pub struct Monitor {
    store: Store,
    config: HealthConfig,
    merger: Option<MergerConfig>,
    clock: Clock,
    lag: Mutex<LagView>,
    latest: watch::Sender<Option<Arc<HealthReport>>>,
    span: tracing::Span,
}

impl Monitor {
    /// A monitor of `store`; with the merger's settings (its broker and
    /// consumer group), also of its lag.
    pub fn new(
        store: Store,
        config: HealthConfig,
        merger: Option<MergerConfig>,
        clock: Clock,
    ) -> Arc<Self> {
        let (latest, _) = watch::channel(None);
        Arc::new(Self {
            store,
            config,
            merger,
            clock,
            lag: Mutex::new(LagView::default()),
            latest,
            span: info_span!("health"),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// A report made now; also becomes the latest, so that watchers see
    /// any change it shows.
    pub async fn report(&self) -> Result<Arc<HealthReport>, HealthError> {
        let lag = self.lag.lock().map(|lag| lag.clone()).unwrap_or_default();
        let topic_of = |kind| match &self.merger {
            Some(merger) => merger.kafka.topic(kind),
            None => KafkaSettings::new("").topic(kind),
        };
        let report = Arc::new(
            HealthReport::gather(&self.store, &self.config, topic_of, &lag, self.clock.now())
                .await?,
        );
        self.publish(report.clone());
        Ok(report)
    }

    /// Reports as they change; the current one (if any) first.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<HealthReport>>> {
        self.latest.subscribe()
    }

    /// Measures lag and judges every `every` until `stop` completes.
    pub async fn run(self: Arc<Self>, every: Duration, stop: impl Future<Output = ()>) {
        let span = self.span.clone();
        async move {
            tokio::pin!(stop);
            let mut failing = false;
            loop {
                self.measure_lag().await;
                match self.report().await {
                    Ok(_) if std::mem::take(&mut failing) => info!("Health reports resumed."),
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        warn!(%error, "Health report failed; retrying.");
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
            debug!("Health monitor stopped.");
        }
        .instrument(span)
        .await
    }

    /// Reads the broker's watermarks against the store's offsets, and
    /// notes since when each topic has waited without the store moving.
    async fn measure_lag(&self) {
        let Some(merger) = &self.merger else {
            return;
        };
        let partitions = match blockhub_merger::lag(merger, &self.store).await {
            Ok(partitions) => partitions,
            Err(error) => {
                debug!(%error, "Lag not measured this time.");
                return;
            }
        };
        let now = self.clock.now();
        let Ok(mut view) = self.lag.lock() else {
            return;
        };
        let before: BTreeMap<(String, i32), i64> = view
            .partitions
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.next_offset))
            .collect();
        let mut waiting_since = BTreeMap::new();
        for partition in &partitions {
            if partition.lag() == 0 {
                continue;
            }
            let moved = before
                .get(&(partition.topic.clone(), partition.partition))
                .is_none_or(|next| *next != partition.next_offset);
            let since = match view.waiting_since.get(&partition.topic) {
                Some(since) if !moved => *since,
                _ => now,
            };
            let entry = waiting_since
                .entry(partition.topic.clone())
                .or_insert(since);
            *entry = (*entry).max(since);
        }
        *view = LagView {
            partitions,
            waiting_since,
        };
    }

    /// Makes `report` the latest and logs every change of status.
    fn publish(&self, report: Arc<HealthReport>) {
        // A report asked for by a page or a call is logged as the loop's.
        let _entered = self.span.enter();
        self.latest.send_if_modified(|latest| {
            let before: BTreeMap<&str, Status> = latest
                .iter()
                .flat_map(|r| r.sources.iter())
                .map(|s| (s.source.as_str(), s.status))
                .collect();
            let mut changed = latest.is_none();
            for source in &report.sources {
                let previous = before.get(source.source.as_str()).copied();
                if previous == Some(source.status) {
                    continue;
                }
                changed = true;
                let reason = source
                    .reasons
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default();
                let (name, status) = (&source.source, source.status.label());
                match (previous, source.status) {
                    (None | Some(Status::Ok), Status::Ok) => {}
                    // A new hub has no feed delivered yet: that is news, not
                    // trouble. A feed that had delivered and is late or
                    // failing when the hub starts needs attention.
                    (None, _) if source.last_delivery_at.is_none() => {
                        info!(source = %name, status, %reason, "Source status.")
                    }
                    (_, Status::Ok) => info!(source = %name, status, %reason, "Source recovered."),
                    _ => warn!(source = %name, status, %reason, "Source needs attention."),
                }
            }
            *latest = Some(report);
            changed
        });
    }
}
