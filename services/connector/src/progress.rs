//! Progress of a long ingest: a bar on a terminal, plain periodic log
//! lines otherwise (a data centre's scheduler reads logs, not bars).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// Reports rows read for one file.
pub struct Progress {
    bar: Option<ProgressBar>,
    file: String,
    last_log: Instant,
    rows: u64,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Starts reporting for `file`.
    pub fn start(file: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            let style = ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(file.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            file: file.to_string(),
            last_log: Instant::now(),
            rows: 0,
        }
    }

    /// Counts one row.
    pub fn row(&mut self) {
        self.rows += 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                info!(file = %self.file, rows = self.rows, "Ingest in progress.");
            }
            None => {}
        }
    }

    /// Ends reporting.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
