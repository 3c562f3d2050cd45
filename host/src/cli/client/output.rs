//! Where the client writes: the result to stdout, messages to stderr.
//!
//! `println!` panics when stdout is a pipe whose reader has gone, as in
//! `gatehouse deployments get ID | head -1`. Every result goes through [`out`] instead,
//! which turns the failed write into [`CliError::Output`]; the command then stops, and a
//! closed pipe ends it quietly with exit 0, as `cat` or `ls` end. (Resetting SIGPIPE to its
//! default would also stop the panic, but the process would die by the signal, exit 141,
//! and mid-way through whatever it was doing; an error that travels up ends it in order.)
//! Messages on stderr are best effort: a closed stderr is no reason to fail.

use std::fmt::Display;
use std::io::Write;

use super::CliError;

/// Writes one line of the result to stdout.
pub fn out(text: impl Display) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

/// Writes one line to stderr, if it can.
pub fn note(text: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
