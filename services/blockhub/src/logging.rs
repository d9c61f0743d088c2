//! Logging setup: human-readable lines on stderr, filtered by RUST_LOG
//! (or BLOCKHUB_LOG), INFO by default.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Starts the tracing subscriber.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "info,rdkafka=warn,sqlx=warn,h2=warn,tower=warn",
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
