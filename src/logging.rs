//! Logging: installs the `tracing` subscriber that writes to stderr, as text or JSON, and
//! hands back a [`LogHandle`] that changes the level while the daemon runs (on `SIGHUP`).
//!
//! The filter is `log.level` (from the file, a variable or `--log-level`) unless `RUST_LOG`
//! is set, which then wins, at start and on every reload. `main` reads `RUST_LOG` and passes
//! it in; this module does not read the environment. Targets that no directive names still
//! log errors, so a filter such as `sio_relay=debug` does not hide a library's failures.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

use crate::config::{LogConfig, LogFormat};

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `RUST_LOG` is set but is not a filter.
    #[error("RUST_LOG is not a valid filter: {0}")]
    RustLog(#[source] ParseError),
    /// The configured level is not a filter.
    #[error("log.level is not a valid filter: {0}")]
    Level(#[source] ParseError),
    /// A global subscriber was already installed.
    #[error("cannot install the logger: {0}")]
    Install(#[source] TryInitError),
    /// The running subscriber is gone, so its filter cannot change.
    #[error("cannot change the log filter: {0}")]
    Reload(#[source] reload::Error),
}

/// Whether a level change took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    /// The new filter is in force.
    Applied,
    /// `RUST_LOG` was set at start and still decides; the level was checked, not applied.
    KeptRustLog,
}

/// Changes the filter of the installed subscriber.
#[derive(Debug, Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    rust_log: bool,
}

impl LogHandle {
    /// Sets the filter to `level` (a `log.level` value), unless `RUST_LOG` decides.
    ///
    /// An invalid `level` changes nothing.
    pub fn set_level(&self, level: &str) -> Result<LevelChange, LogError> {
        let filter = parse_filter(level).map_err(LogError::Level)?;
        if self.rust_log {
            return Ok(LevelChange::KeptRustLog);
        }
        self.filter.reload(filter).map_err(LogError::Reload)?;
        Ok(LevelChange::Applied)
    }

    /// Whether `RUST_LOG` decides the filter, so that `log.level` is not used.
    pub fn follows_rust_log(&self) -> bool {
        self.rust_log
    }
}

/// Installs the process-wide subscriber: stderr, `config.format`, filtered by `rust_log`
/// (the value of `RUST_LOG`, if set and not blank) or else by `config.level`.
///
/// Call once, early in `main`; a second call fails with [`LogError::Install`].
pub fn init(config: &LogConfig, rust_log: Option<&str>) -> Result<LogHandle, LogError> {
    let ansi = std::io::stderr().is_terminal();
    let (subscriber, handle) = build(config, rust_log, std::io::stderr, ansi)?;
    subscriber.try_init().map_err(LogError::Install)?;
    Ok(handle)
}

/// The subscriber [`init`] installs, writing to `writer`.
fn build<W>(
    config: &LogConfig,
    rust_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<(impl Subscriber + Send + Sync + 'static, LogHandle), LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let rust_log = rust_log.filter(|v| !v.trim().is_empty());
    let filter = match rust_log {
        Some(directives) => parse_filter(directives).map_err(LogError::RustLog)?,
        None => parse_filter(&config.level).map_err(LogError::Level)?,
    };
    let (filter, filter_handle) = reload::Layer::new(filter);
    let output = match config.format {
        LogFormat::Text => fmt::layer().with_writer(writer).with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    let subscriber = Registry::default().with(filter).with(output);
    let handle = LogHandle {
        filter: filter_handle,
        rust_log: rust_log.is_some(),
    };
    Ok((subscriber, handle))
}

/// A filter from `directives`; targets no directive names log errors only.
fn parse_filter(directives: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::ERROR.into())
        .parse(directives)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects everything written, for assertions.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn config(level: &str, format: LogFormat) -> LogConfig {
        LogConfig {
            level: level.into(),
            format,
        }
    }

    #[test]
    fn text_output_is_filtered_and_reloadable() {
        let out = Captured::default();
        let (subscriber, handle) =
            build(&config("info", LogFormat::Text), None, out.clone(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("shown at info");
            tracing::debug!("hidden at info");
            assert_eq!(handle.set_level("debug").unwrap(), LevelChange::Applied);
            tracing::debug!("shown at debug");
        });
        let text = out.text();
        assert!(text.contains("shown at info"), "{text}");
        assert!(!text.contains("hidden at info"), "{text}");
        assert!(text.contains("shown at debug"), "{text}");
    }

    #[test]
    fn json_output_has_one_object_per_line() {
        let out = Captured::default();
        let (subscriber, _handle) =
            build(&config("info", LogFormat::Json), None, out.clone(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(answer = 42, "hello");
        });
        let text = out.text();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "hello");
        assert_eq!(line["answer"], 42);
        assert_eq!(line["level"], "INFO");
    }

    #[test]
    fn rust_log_wins_over_the_level() {
        let out = Captured::default();
        let (subscriber, handle) = build(
            &config("error", LogFormat::Text),
            Some("debug"),
            out.clone(),
            false,
        )
        .unwrap();
        assert!(handle.follows_rust_log());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("debug via RUST_LOG");
            assert_eq!(handle.set_level("warn").unwrap(), LevelChange::KeptRustLog);
            tracing::debug!("still debug");
        });
        let text = out.text();
        assert!(text.contains("debug via RUST_LOG") && text.contains("still debug"));
    }

    #[test]
    fn blank_rust_log_is_unset() {
        let (_, handle) =
            build(&config("info", LogFormat::Text), Some(" "), io::sink, false).unwrap();
        assert!(!handle.follows_rust_log());
    }

    #[test]
    fn bad_filters_are_refused() {
        let bad = config("sio_relay=loud", LogFormat::Text);
        assert!(matches!(
            build(&bad, None, io::sink, false),
            Err(LogError::Level(_))
        ));
        let good = config("info", LogFormat::Text);
        assert!(matches!(
            build(&good, Some("x=loud"), io::sink, false),
            Err(LogError::RustLog(_))
        ));
        let (_, handle) = build(&good, None, io::sink, false).unwrap();
        assert!(matches!(handle.set_level("a=b=c"), Err(LogError::Level(_))));
    }
}
