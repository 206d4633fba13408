//! The examination as a table for a person: one row per check (subject, step,
//! status, detail), the likely cause under each failure, and a count at the
//! end; the status coloured (green ok, red FAILED, yellow skipped) on request.

use super::{Examination, Status};

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// The table; `colour` adds ANSI colours to the statuses.
pub fn render(exam: &Examination, colour: bool) -> String {
    let header = ["SUBJECT", "STEP", "STATUS"];
    let rows: Vec<[String; 3]> = exam
        .checks
        .iter()
        .map(|c| [c.subject(), c.step.name().into(), c.status.label().into()])
        .collect();
    let widths = crate::table::widths(&header, &rows);
    let indent = widths.iter().sum::<usize>() + 6;
    let mut out = format!(
        "{:w0$}  {:w1$}  {:w2$}  DETAIL\n",
        header[0],
        header[1],
        header[2],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for (check, row) in exam.checks.iter().zip(&rows) {
        let status = format!("{:w$}", row[2], w = widths[2]);
        let status = match (colour, check.status) {
            (false, _) => status,
            (true, Status::Ok) => format!("{GREEN}{status}{RESET}"),
            (true, Status::Failed) => format!("{RED}{status}{RESET}"),
            (true, Status::Skipped) => format!("{YELLOW}{status}{RESET}"),
        };
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {status}  {}\n",
            row[0],
            row[1],
            one_line(&check.detail),
            w0 = widths[0],
            w1 = widths[1],
        ));
        if let Some(hint) = &check.hint {
            out.push_str(&format!("{:indent$}likely cause: {}\n", "", one_line(hint)));
        }
    }
    let count = |s: Status| exam.checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} checks: {} ok, {} failed, {} skipped\n",
        exam.checks.len(),
        count(Status::Ok),
        count(Status::Failed),
        count(Status::Skipped)
    ));
    out
}

/// `text` on one line: a cloud's message may hold line breaks (Key Vault's do).
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::{Check, Step};
    use super::*;
    use crate::doctor::uses::Kind;

    fn exam() -> Examination {
        let check = |status, hint: Option<&str>| Check {
            kind: Kind::Destination,
            name: "aws-dr".into(),
            step: Step::Exchange,
            status,
            detail: "AWS STS refused".into(),
            hint: hint.map(String::from),
            token: None,
        };
        Examination {
            checks: vec![
                Check {
                    detail: "Forbidden: Caller is not authorized.\r\nAction: 'read'\r\n".into(),
                    ..check(Status::Ok, None)
                },
                check(Status::Failed, Some("the audience")),
                check(Status::Skipped, None),
            ],
        }
    }

    #[test]
    fn rows_line_up_and_a_failure_carries_its_likely_cause() {
        let table = render(&exam(), false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "SUBJECT             STEP      STATUS   DETAIL");
        assert_eq!(
            lines[1],
            "destination aws-dr  exchange  ok       Forbidden: Caller is not authorized. Action: 'read'"
        );
        assert_eq!(
            lines[2],
            "destination aws-dr  exchange  FAILED   AWS STS refused"
        );
        assert_eq!(
            lines[3],
            "                                       likely cause: the audience"
        );
        assert!(
            table.ends_with("3 checks: 1 ok, 1 failed, 1 skipped\n"),
            "{table}"
        );
        assert!(!table.contains('\x1b'));
    }

    #[test]
    fn colour_marks_the_status_only() {
        let table = render(&exam(), true);
        assert!(table.contains(&format!("{GREEN}ok     {RESET}")), "{table}");
        assert!(table.contains(&format!("{RED}FAILED {RESET}")), "{table}");
        assert!(
            table.contains(&format!("{YELLOW}skipped{RESET}")),
            "{table}"
        );
    }
}
