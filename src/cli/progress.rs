//! `watchsim run`'s progress line on stderr: virtual time reached, steps per second and an ETA,
//! drawn with `indicatif` only when stderr is a terminal. It observes the run through
//! [`crate::sim::run_observed`]'s callback, so the wall clock stays in the command line and out
//! of the model; the report, its JSON and the trace are the same with or without it.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sim::Progress;

/// The progress display of one run: a bar over virtual milliseconds, hidden when stderr is not
/// a terminal.
pub(super) struct RunProgress {
    bar: ProgressBar,
    started: Instant,
}

impl RunProgress {
    /// A bar on stderr when it is a terminal, else one that draws nothing.
    pub(super) fn on_stderr() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "run {bar:30} {msg}, {elapsed_precise} elapsed, eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        RunProgress {
            bar,
            started: Instant::now(),
        }
    }

    /// Shows `p`: the bar's position is the virtual time in milliseconds (indicatif's ETA then
    /// follows the virtual-time rate), the message the virtual time and steps per second.
    pub(super) fn update(&self, p: Progress) {
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            p.steps as f64 / secs
        } else {
            0.0
        };
        self.bar.set_length(p.end_ns / 1_000_000);
        self.bar.set_position(p.now_ns.min(p.end_ns) / 1_000_000);
        self.bar.set_message(message(p, rate));
    }

    /// Removes the bar before the report is printed.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The bar's text: `virtual 750.0s / 1800s, 1234567 steps, 154320 steps/s`.
fn message(p: Progress, steps_per_second: f64) -> String {
    format!(
        "virtual {:.1}s / {}s, {} steps, {:.0} steps/s",
        p.now_ns as f64 / 1e9,
        p.end_ns / 1_000_000_000,
        p.steps,
        steps_per_second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_virtual_time_and_rate() {
        let p = Progress {
            now_ns: 90_000_000_000,
            end_ns: 1_800_000_000_000,
            steps: 1000,
        };
        let m = message(p, 2500.4);
        assert!(m.contains("virtual 90.0s / 1800s"), "{m}");
        assert!(m.contains("1000 steps, 2500 steps/s"), "{m}");
    }
}
