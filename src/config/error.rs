//! The errors a configuration can have: one [`ConfigError`] per problem, gathered into
//! [`ConfigErrors`] so that an operator sees every problem in one run.

use std::fmt;
use std::path::PathBuf;

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// What is wrong: a key path such as `server.ping_interval_ms`, or, for problems that
    /// belong to no key, the variable or flag at fault (`SIO_RELAY_SERVER_PORT`, `--config`).
    pub key: String,
    /// The line of the config file where the offending value or key is, when it is there.
    pub line: Option<usize>,
    /// Why it is refused, in words an operator can act on. Never contains a secret.
    pub reason: String,
}

impl ConfigError {
    /// A problem with `key`, not yet tied to a line.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            line: None,
            reason: reason.into(),
        }
    }

    /// The same problem, found at `line` of the config file.
    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.reason),
            None => write!(f, "{}: {}", self.key, self.reason),
        }
    }
}

/// Every problem found while loading a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The config file that was read, if any; line numbers refer to it.
    pub file: Option<PathBuf>,
    /// The problems, file problems first in line order.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Whether one of the problems is about `key`.
    pub fn mentions(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "invalid configuration ({n} problem{})",
            if n == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            f.write_str("\n  ")?;
            match (&self.file, error.line) {
                (Some(file), Some(line)) => write!(
                    f,
                    "{}:{line}: {}: {}",
                    file.display(),
                    error.key,
                    error.reason
                )?,
                _ => write!(f, "{error}")?,
            }
        }
        Ok(())
    }
}
