//! The `blockhub` command: parse flags, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Die quietly when a reader such as `head` closes the pipe, as other
    // command-line tools do, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal at start,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = blockhub::Cli::parse();
    blockhub::run(cli)
}
