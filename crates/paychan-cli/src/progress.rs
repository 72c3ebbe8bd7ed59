//! Progress bars and spinners on stderr for long work (the demo's request
//! loop, waiting for confirmations). Hidden with `--json` and when stderr is
//! not a terminal, so pipes and logs stay clean.
use std::{borrow::Cow, io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress is drawn at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    visible: bool,
}

const BAR_TEMPLATE: &str = "{spinner:.green} {msg} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} ({per_sec}, eta {eta})";
const SPINNER_TEMPLATE: &str = "{spinner:.green} {msg} [{elapsed_precise}]";

impl Progress {
    /// Visible unless `json` is set or stderr is not a terminal.
    pub fn new(json: bool) -> Self {
        Self {
            visible: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Never visible (tests, library callers).
    pub fn hidden() -> Self {
        Self { visible: false }
    }

    /// Whether bars are drawn.
    pub fn is_visible(&self) -> bool {
        self.visible
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// A bar counting to `len` (requests sent, vouchers settled…).
    pub fn bar(&self, len: u64, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target()).with_message(message);
        if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// A spinner for work of unknown length (waiting for a confirmation).
    pub fn spinner(&self, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        let spinner = ProgressBar::with_draw_target(None, self.target()).with_message(message);
        if let Ok(style) = ProgressStyle::with_template(SPINNER_TEMPLATE) {
            spinner.set_style(style);
        }
        if self.visible {
            spinner.enable_steady_tick(Duration::from_millis(100));
        }
        spinner
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn json_hides_progress() {
        assert!(!Progress::new(true).is_visible());
        let bar = Progress::hidden().bar(10, "requests");
        assert!(bar.is_hidden());
        bar.inc(3);
        assert_eq!(bar.position(), 3);
        assert!(Progress::hidden().spinner("waiting").is_hidden());
    }
}
