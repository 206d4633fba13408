//! The configuration loader (`Config::parse`). Loading is deterministic. An
//! error never repeats the offending line: a TOML error quotes no more of the
//! text than an excerpt, and no problem holds a whole `key = value` line. A
//! configuration that loads has name templates that print back to themselves,
//! and names rendered from them pass their destination's rules.

#![no_main]

use fedsync::config::Config;
use fedsync::naming::{NameTemplate, NameVars};
use fedsync_fuzz::{Input, assert_same, shared_run};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.toml";

/// Lines shorter than this may turn up in a message by coincidence.
const SHORTEST_LINE: usize = 16;

fn assert_not_repeated(message: &str, line: &str) {
    let line = line.as_bytes();
    if shared_run(message.as_bytes(), std::iter::once(line), line.len()).is_some() {
        panic!(
            "{message:?} repeats the line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = Config::parse(text, ORIGIN);
    assert_same(
        &format!("{first:?}"),
        &format!("{:?}", Config::parse(text, ORIGIN)),
    );
    match first {
        Err(error) => {
            assert_eq!(error.origin, ORIGIN);
            assert!(!error.problems.is_empty());
            let input = Input::new(data).with_toml(text);
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= SHORTEST_LINE)
                .collect();
            for problem in &error.problems {
                let message = &problem.message;
                if problem.key.is_empty() {
                    // A TOML error: "line L, column C: what".
                    input.assert_not_echoed(message);
                    for line in &lines {
                        assert_not_repeated(message, line);
                    }
                } else {
                    for line in lines.iter().filter(|l| l.contains('=')) {
                        assert_not_repeated(message, line);
                    }
                }
            }
        }
        Ok(config) => {
            for rule in &config.rules {
                assert_eq!(
                    NameTemplate::parse(&rule.name.to_string()),
                    Ok(rule.name.clone())
                );
                let _ = rule.matches(&rule.source, &rule.pattern);
                for destination in &rule.destinations {
                    let rules = config.destinations[destination].name_rules();
                    let vars = NameVars {
                        name: &rule.pattern,
                        source: &rule.source,
                        destination,
                        key: Some(&rule.pattern),
                    };
                    if let Ok(name) = rule.name.render(&vars, rules) {
                        assert_eq!(rules.check(&name), Ok(()), "{name:?}");
                    }
                }
            }
        }
    }
});
