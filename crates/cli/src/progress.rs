//! The live display of a run: a spinner per running stage and an overall bar, drawn only
//! when stdout is a terminal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ventral_dag::{Action, Progress, StageOutcome};

/// Draws stage progress with indicatif.
pub struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    /// A display for a run of `stages` stages.
    pub fn new(stages: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let total = multi.add(ProgressBar::new(stages as u64));
        total.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} stages {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Live {
            multi,
            total,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Remove the display.
    pub fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Progress for Live {
    fn started(&self, stage: &str, what: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:.bold} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(format!("{what} {stage}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(stage.to_string(), bar);
        }
    }

    fn message(&self, stage: &str, msg: &str) {
        if let Ok(bars) = self.bars.lock()
            && let Some(b) = bars.get(stage)
        {
            b.set_message(msg.to_string());
        }
    }

    fn finished(&self, outcome: &StageOutcome) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(b) = bars.remove(&outcome.stage)
        {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
        if outcome.action != Action::UpToDate {
            let _ = self.multi.println(crate::report::outcome_line(outcome));
        }
        self.total.inc(1);
    }
}
