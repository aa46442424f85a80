//! The exit codes of every binary (README, "Exit codes"), and how an error maps to one. Errors are
//! typed where they arise (`UsageError`, `PolicyError`); nothing here looks at message text.

use std::error::Error;

/// Success.
pub const OK: i32 = 0;
/// The command failed (an AWS call, I/O, a task that failed).
pub const FAILURE: i32 = 1;
/// Bad usage: unknown or malformed flags (clap's own code), invalid settings, an invalid policy,
/// no AWS region, a confirmation that was required and not given.
pub const USAGE: i32 = 2;
/// A check found a problem (`--check`, `report rpo`, a replay that left something selected).
pub const CHECK_FAILED: i32 = 3;
/// Standard output was closed by its reader (`... | head`): the conventional 128 + SIGPIPE, and
/// nothing printed.
pub const BROKEN_PIPE: i32 = 141;

/// A mistake in how the command was called or configured (exit [`USAGE`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The exit code for an error: walks its chain of causes for a type that decides.
pub fn code_for(error: &(dyn Error + 'static)) -> i32 {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            return BROKEN_PIPE;
        }
        if error.is::<UsageError>() || error.is::<crate::policy::PolicyError>() {
            return USAGE;
        }
        current = error.source();
    }
    FAILURE
}

/// `println!` for command output that returns an `io::Result` instead of panicking when standard
/// output is closed (`backupctl dlq list --json | head -1`): the caller's `?` carries the
/// `BrokenPipe` up to [`code_for`], which ends the process quietly with [`BROKEN_PIPE`].
#[macro_export]
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock())
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Prints `program: error: message` (one line) and exits with `code`: for errors found before a
/// binary's telemetry is up (flags, settings, region).
pub fn fail(program: &str, message: impl std::fmt::Display, code: i32) -> ! {
    let message = message.to_string();
    eprintln!("{program}: error: {}", one_line(&message));
    std::process::exit(code)
}

/// The first line of a message whose detail follows on later lines (clap's usage errors put the
/// offending flag on the first line and a usage block after it).
pub fn one_line(message: &str) -> String {
    let first = message.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    first.trim().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("while doing something")]
    struct Context(#[source] Box<dyn Error + Send + Sync>);

    #[test]
    fn the_cause_decides_the_code() {
        assert_eq!(code_for(&UsageError::new("bad flag")), USAGE);
        let policy = crate::policy::PolicyError::File("no plans".into());
        assert_eq!(code_for(&Context(Box::new(policy))), USAGE);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(code_for(&Context(Box::new(pipe))), BROKEN_PIPE);
        let other = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(code_for(&Context(Box::new(other))), FAILURE);
    }
}
