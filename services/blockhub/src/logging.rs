//! Logging setup: human-readable lines on stderr, filtered by RUST_LOG
//! (or BLOCKHUB_LOG); INFO by default for services, WARN for commands that
//! print their own answer (ingest, lookup, ...), so the answer is not lost
//! among log lines. -v shows everything.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Starts the tracing subscriber.
pub fn init(verbose: u8, service: bool) {
    let default = match verbose {
        0 if service => "info,rdkafka=warn,sqlx=warn,h2=warn,tower=warn",
        // Progress lines stay: off a terminal they replace the progress bar.
        0 => "warn,blockhub_connector::progress=info",
        1 => "debug,rdkafka=info,sqlx=warn,h2=info,tower=info,hyper=info",
        _ => "trace",
    };
    let filter = std::env::var("BLOCKHUB_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
