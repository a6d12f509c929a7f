//! The README runs as written (issue 18): every shell command of `README.md` (the lines of its
//! ```` ```sh ```` blocks and the `$ `-prefixed lines of its indented blocks) is one a newcomer
//! can type after the README's set-up commands, in the repository's root, on a fresh clone.
//!
//! - `watchsim` is called as `target/release/watchsim` (built by the first set-up command) or
//!   through `cargo run --release --`; a bare `watchsim` is not on a fresh clone's PATH.
//! - Every `watchsim` command line parses (`watchsim::cli::parse_check`, clap itself), and every
//!   file it names exists in the repository, is a scenario the README shows (a ```` ```toml ````
//!   block with `name = "X"`, saved as `X.toml`), or is written by an earlier README command.
//! - The cheap ones (`run`, `check`, `explore`, `replay` except the scopes in [`NOT_RUN`]) run for
//!   real through the binary, in a scratch directory that links the repository's files, and end
//!   with exit 0 or 1 (a violation the README announces), never 2 or 3; the `script` and `watches`
//!   of `run compacted-watch.toml --json` equal the README's JSON block.
//! - `cargo test --test NAME` names a test file that exists.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Commands checked for parsing and files but not run: too slow for a unit test.
const NOT_RUN: [&str; 2] = ["explore-2x3x3.toml", "--merge"];

/// A shell command of the README, its 1-based line and whether a preceding fenced block marks
/// it as JSON output to compare.
#[derive(Debug)]
struct ShellCommand {
    line: usize,
    text: String,
}

/// Fenced blocks of a language: (first line of the body, body).
fn fenced_blocks<'a>(readme: &'a str, langs: &[&str]) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut current: Option<(bool, usize, Vec<&str>)> = None;
    for (i, line) in readme.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            match current.take() {
                Some((wanted, start, body)) => {
                    if wanted {
                        out.push((start, body));
                    }
                }
                None => current = Some((langs.contains(&rest.trim()), i + 2, Vec::new())),
            }
        } else if let Some((_, _, body)) = current.as_mut() {
            body.push(line);
        }
    }
    out
}

/// Every shell command: the lines of ```` ```sh ```` blocks and the `$ ` lines of indented
/// blocks, with `\` continuations joined.
fn shell_commands(readme: &str) -> Vec<ShellCommand> {
    let mut raw: Vec<(usize, String)> = Vec::new();
    for (start, body) in fenced_blocks(readme, &["sh", "bash", "shell", "console"]) {
        for (j, l) in body.iter().enumerate() {
            raw.push((start + j, l.strip_prefix("$ ").unwrap_or(l).to_string()));
        }
    }
    let mut in_fence = false;
    for (i, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence && let Some(cmd) = line.strip_prefix("    $ ") {
            raw.push((i + 1, cmd.to_string()));
        }
    }
    raw.sort_by_key(|(l, _)| *l);
    let mut out: Vec<ShellCommand> = Vec::new();
    let mut pending: Option<ShellCommand> = None;
    for (line, text) in raw {
        let text = text.trim().to_string();
        if let Some(p) = pending.as_mut() {
            p.text.push(' ');
            p.text.push_str(text.trim_end_matches('\\').trim());
            if !text.ends_with('\\') {
                out.push(pending.take().unwrap());
            }
            continue;
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let cmd = ShellCommand {
            line,
            text: text.trim_end_matches('\\').trim().to_string(),
        };
        if text.ends_with('\\') {
            pending = Some(cmd);
        } else {
            out.push(cmd);
        }
    }
    assert!(pending.is_none(), "README ends inside a continued command");
    out
}

/// A shell word split of one command, up to a comment; `|` and `>` end the first command
/// (returned separately: the words, and the files redirected to).
fn split_words(cmd: &str) -> (Vec<String>, Vec<String>) {
    let mut words = Vec::new();
    let mut redirects = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = cmd.chars().peekable();
    let mut stage_done = false;
    let mut redirect_next = false;
    let mut push = |w: String, stage_done: bool, redirect: bool| {
        if redirect {
            redirects.push(w);
        } else if !stage_done {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                has = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(d),
                    }
                }
            }
            '#' if !has => break,
            '|' | '>' => {
                if has {
                    push(std::mem::take(&mut cur), stage_done, redirect_next);
                    has = false;
                }
                stage_done = true;
                redirect_next = c == '>';
            }
            c if c.is_whitespace() => {
                if has {
                    push(std::mem::take(&mut cur), stage_done, redirect_next);
                    redirect_next = false;
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        push(cur, stage_done, redirect_next);
    }
    (words, redirects)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory that looks like the repository's root to the README's commands.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("watchsim-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "sim-scenarios",
        "deploy",
        "docs",
        "tests",
        "Dockerfile",
        "Cargo.toml",
    ] {
        std::os::unix::fs::symlink(repo().join(name), dir.join(name)).unwrap();
    }
    dir
}

/// A word that names a file the command reads.
fn names_file(word: &str) -> bool {
    !word.starts_with('-')
        && !word.contains('=')
        && [".toml", ".jsonl", ".json", ".yaml"]
            .iter()
            .any(|e| word.ends_with(e))
}

#[test]
fn readme_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let dir = scratch();
    // Scenarios the README shows in full.
    let mut shown: BTreeSet<String> = BTreeSet::new();
    for (_, body) in fenced_blocks(&readme, &["toml"]) {
        let text = body.join("\n") + "\n";
        if let Some(name) = body.iter().find_map(|l| {
            l.strip_prefix("name = \"")
                .and_then(|r| r.split('"').next())
        }) {
            std::fs::write(dir.join(format!("{name}.toml")), &text).unwrap();
            shown.insert(format!("{name}.toml"));
        }
    }
    let json_blocks = fenced_blocks(&readme, &["json"]);
    let commands = shell_commands(&readme);
    assert!(
        commands.len() >= 10,
        "found only {} README commands: {commands:?}",
        commands.len()
    );
    let mut failures = Vec::new();
    let mut produced_by_skipped: BTreeSet<String> = BTreeSet::new();
    let mut ran = 0;
    let bin = env!("CARGO_BIN_EXE_watchsim");
    for cmd in &commands {
        let at = format!("README.md:{}: `{}`", cmd.line, cmd.text);
        let (words, redirects) = split_words(&cmd.text);
        let args: Vec<String> = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["target/release/watchsim", ..] => words[1..].to_vec(),
            ["cargo", "run", "--release", "--", ..] => words[4..].to_vec(),
            ["cargo", "build", "--release"] | ["cargo", "install", "--path", "."] => continue,
            ["cargo", "test", ..] => {
                if let Some(i) = words.iter().position(|w| w == "--test") {
                    let name = &words[i + 1];
                    if !repo().join(format!("tests/{name}.rs")).exists() {
                        failures.push(format!("{at}: no tests/{name}.rs"));
                    }
                }
                continue;
            }
            ["docker" | "kubectl" | "etcdctl", ..] => {
                for w in words.iter().filter(|w| names_file(w)) {
                    if !dir.join(w).exists() {
                        failures.push(format!("{at}: {w} does not exist"));
                    }
                }
                produced_by_skipped.extend(redirects);
                continue;
            }
            ["watchsim", ..] => {
                failures.push(format!(
                    "{at}: a bare `watchsim` is not on a fresh clone's PATH; write target/release/watchsim"
                ));
                continue;
            }
            _ => {
                failures.push(format!("{at}: a command this test does not know"));
                continue;
            }
        };
        if let Err(e) = watchsim::cli::parse_check(&args) {
            failures.push(format!("{at}: does not parse: {e}"));
            continue;
        }
        let mut runnable = !NOT_RUN
            .iter()
            .any(|s| args.iter().any(|a| a == s || a.ends_with(&format!("/{s}"))))
            && matches!(args[0].as_str(), "run" | "check" | "explore" | "replay");
        for w in args.iter().filter(|w| names_file(w)) {
            if produced_by_skipped.contains(w) {
                runnable = false;
            } else if !dir.join(w).exists() {
                failures.push(format!(
                    "{at}: {w} is neither in the repository, nor a scenario shown in the README, nor written by an earlier command"
                ));
                runnable = false;
            }
        }
        if !runnable {
            continue;
        }
        let out = Command::new(bin)
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        ran += 1;
        let code = out.status.code();
        if !matches!(code, Some(0 | 1)) {
            failures.push(format!(
                "{at}: exit {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        if args.first().map(String::as_str) == Some("run") && args.iter().any(|a| a == "--json") {
            check_shown_json(&at, cmd.line, &out.stdout, &json_blocks, &mut failures);
        }
    }
    assert!(ran >= 4, "only {ran} README commands ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first JSON block after a `run --json` command shows parts of its report: each must equal
/// the report's.
fn check_shown_json(
    at: &str,
    line: usize,
    stdout: &[u8],
    blocks: &[(usize, Vec<&str>)],
    failures: &mut Vec<String>,
) {
    let Some((_, body)) = blocks.iter().find(|(start, _)| *start > line) else {
        return;
    };
    let shown: serde_json::Value = match serde_json::from_str(&format!("{{{}}}", body.join("\n"))) {
        Ok(v) => v,
        Err(e) => return failures.push(format!("{at}: the README's JSON block: {e}")),
    };
    let report: serde_json::Value = match serde_json::from_slice(stdout) {
        Ok(v) => v,
        Err(e) => return failures.push(format!("{at}: the report is not JSON: {e}")),
    };
    for (key, value) in shown.as_object().unwrap() {
        if &report[key] != value {
            failures.push(format!(
                "{at}: the report's `{key}` is {} but the README shows {value}",
                report[key]
            ));
        }
    }
}

#[test]
fn the_extractor_finds_continued_and_indented_commands() {
    let md = "x\n\n```sh\ncargo build --release\ntarget/release/watchsim sweep a.toml \\\n  --vary k=1,2   # c\n```\n\n    $ target/release/watchsim replay c.jsonl\n    output\n";
    let cmds = shell_commands(md);
    let texts: Vec<&str> = cmds.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "cargo build --release",
            "target/release/watchsim sweep a.toml --vary k=1,2   # c",
            "target/release/watchsim replay c.jsonl"
        ]
    );
    assert_eq!(cmds[2].line, 9);
    let (w, r) = split_words("kubectl logs -l 'a b' | grep '^{\"s\"' > out.jsonl");
    assert_eq!(w, ["kubectl", "logs", "-l", "a b"]);
    assert_eq!(r, ["out.jsonl"]);
}
