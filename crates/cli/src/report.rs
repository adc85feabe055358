//! Text renderings of engine results.

use ventral_dag::{Action, StageOutcome, StageStatus};

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Ran => "ran",
        Action::Restored => "restored",
        Action::UpToDate => "up-to-date",
        Action::Failed => "FAILED",
        Action::Skipped => "skipped",
    }
}

/// One line for a finished stage.
pub fn outcome_line(o: &StageOutcome) -> String {
    let why: Vec<String> = o.reasons.iter().map(ToString::to_string).collect();
    let mut line = format!(
        "{:<10} {:<28} {:>7.2} s",
        action_word(o.action),
        o.stage,
        o.seconds
    );
    if !why.is_empty() {
        line.push_str(&format!("  ({})", why.join("; ")));
    }
    if let Some(e) = &o.error {
        line.push_str(&format!("\n  {}", e.replace('\n', "\n  ")));
    }
    line
}

/// One line for a stage's status.
pub fn status_line(s: &StageStatus) -> String {
    let why: Vec<String> = s.reasons.iter().map(ToString::to_string).collect();
    let mut line = format!("{:<11} {:<28}", s.status.word(), s.stage);
    if !why.is_empty() {
        line.push_str(&format!(" {}", why.join("; ")));
    }
    line.trim_end().to_string()
}
