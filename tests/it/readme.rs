//! The README's examples are what the binary prints: every `$ keyfall …`
//! line in a ```console block that is followed by output is run on a fresh
//! demo database and its stdout compared line by line, a `...` line
//! standing for any number of lines. (The scripting section's commands,
//! which show exit codes rather than output, are run by
//! `cli::readme_scripting_examples_run`.)

use crate::cli::keyfall;
use crate::support::TestDb;

/// One example: the command's words, the exit code its comment states (0
/// when none), and the output shown.
struct Example {
    line: String,
    args: Vec<String>,
    exit: i32,
    output: Vec<String>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut rest = readme;
    while let Some(at) = rest.find("```console\n") {
        let body = &rest[at + "```console\n".len()..];
        let end = body.find("```").expect("a closed block");
        let block = &body[..end];
        rest = &body[end + 3..];
        // A block that sets up its own database (an app's) is not the demo.
        if block.lines().any(|l| l.starts_with("$ export ")) {
            continue;
        }
        let mut current: Option<Example> = None;
        for line in block.lines() {
            if let Some(command) = line.strip_prefix("$ keyfall ") {
                out.extend(current.take());
                let (command, comment) = command.split_once('#').unwrap_or((command, ""));
                let exit = comment.trim().strip_prefix("exit ").and_then(|c| c.split(':').next()?.trim().parse().ok());
                current = Some(Example {
                    line: line.to_string(),
                    args: command.split_whitespace().map(str::to_string).collect(),
                    exit: exit.unwrap_or(0),
                    output: Vec::new(),
                });
            } else if line.starts_with('$') {
                out.extend(current.take());
            } else if let Some(example) = current.as_mut() {
                example.output.push(line.to_string());
            }
        }
        out.extend(current.take());
    }
    for example in &mut out {
        while example.output.last().is_some_and(|l| l.trim().is_empty()) {
            example.output.pop();
        }
    }
    out.retain(|e| !e.output.is_empty());
    out
}

/// Whether `actual` is `expected`, each `...` in it any run of lines.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((first, rest)) => actual.split_first().is_some_and(|(a, more)| a == first && matches(rest, more)),
    }
}

#[test]
fn the_ellipsis_matches_any_run_of_lines_and_nothing_else() {
    let expected: Vec<String> = ["a", "...", "d"].map(str::to_string).to_vec();
    assert!(matches(&expected, &["a", "b", "c", "d"]));
    assert!(matches(&expected, &["a", "d"]));
    assert!(!matches(&expected, &["a", "b", "c"]));
    assert!(!matches(&expected, &["x", "d"]));
}

#[tokio::test]
async fn every_example_output_in_the_readme_is_what_the_binary_prints() {
    let readme = include_str!("../../README.md");
    let examples = examples(readme);
    assert!(examples.len() >= 4, "the README's examples with output: {}", examples.len());
    let db = TestDb::demo().await;
    for example in examples {
        let args: Vec<&str> = example.args.iter().map(String::as_str).collect();
        let run = keyfall(&db, &args, None);
        assert_eq!(run.code, example.exit, "{}\n{}{}", example.line, run.stdout, run.stderr);
        let mut actual: Vec<&str> = run.stdout.lines().collect();
        while actual.last().is_some_and(|l| l.trim().is_empty()) {
            actual.pop();
        }
        assert!(
            matches(&example.output, &actual),
            "README example differs from the binary:\n{}\n--- the README shows:\n{}\n--- keyfall prints:\n{}",
            example.line,
            example.output.join("\n"),
            actual.join("\n")
        );
    }
}
