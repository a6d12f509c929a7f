//! `watchsim validate` (issue 18) on watch streams recorded from a real etcd (Debian's etcd and
//! etcdctl): the clean recording passes, doctored copies (an event reordered, duplicated,
//! missing against the recorded history) fail with the right invariant, file and line; a watch
//! cancelled by compaction is reported without failing. Kubernetes streams: hand-written
//! `kubectl get -w --output-watch-events -o json` outputs, clean and with a reordered, duplicated,
//! backwards-bookmark and time-travelling relist. Malformed input exits 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::real_etcd::{EtcdGuard, etcd_or_skip};

const BIN: &str = env!("CARGO_BIN_EXE_watchsim");

fn validate(args: &[&Path]) -> Output {
    Command::new(BIN)
        .arg("validate")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("watchsim-validate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The etcdctl next to the etcd binary or on PATH.
fn etcdctl(etcd: &Path) -> Option<PathBuf> {
    let beside = etcd.with_file_name("etcdctl");
    if beside.is_file() {
        return Some(beside);
    }
    Command::new("etcdctl")
        .arg("version")
        .output()
        .ok()
        .map(|_| PathBuf::from("etcdctl"))
}

struct Ctl {
    bin: PathBuf,
    endpoint: String,
}

impl Ctl {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint));
        c
    }
    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
    fn txn(&self, ops: &str) {
        let mut child = self
            .cmd()
            .arg("txn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("\n{ops}\n\n\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
}

/// Waits until `path` has `lines` lines (the watch has printed them).
fn wait_lines(path: &Path, lines: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if t.lines().count() >= lines {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "the watch printed only {t:?}, waiting for {lines} lines"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rewrites `src`'s lines with `f` into `dir/name`.
fn doctor(dir: &Path, name: &str, src: &str, f: impl Fn(&mut Vec<&str>)) -> PathBuf {
    let mut lines: Vec<&str> = src.lines().collect();
    f(&mut lines);
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn etcd_streams_recorded_from_a_real_etcd() {
    let Some(etcd) = etcd_or_skip("etcd_streams_recorded_from_a_real_etcd") else {
        return;
    };
    let Some(ctl_bin) = etcdctl(&etcd) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcdctl missing under CI"
        );
        eprintln!("SKIPPED: etcdctl not installed (apt-get install etcd-client)");
        return;
    };
    let guard = EtcdGuard::start(&etcd).expect("etcd starts");
    let ctl = Ctl {
        bin: ctl_bin,
        endpoint: guard.addr.to_string(),
    };
    let dir = scratch("etcd");
    let stream = dir.join("watch.jsonl");
    let mut watch = ctl
        .cmd()
        .args(["watch", "--prefix", "/r/", "-w", "json"])
        .stdout(std::fs::File::create(&stream).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The watch is running once it prints the first put.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&stream)
        .unwrap_or_default()
        .is_empty()
    {
        ctl.run(&["put", "/r/ready", "x"]);
        assert!(Instant::now() < deadline, "the watch never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = std::fs::read_to_string(&stream).unwrap().lines().count();
    ctl.run(&["put", "/r/a", "1"]);
    ctl.run(&["put", "/r/once", "2"]);
    ctl.txn("put /r/a 3\nput /r/c 4");
    ctl.run(&["del", "/r/c"]);
    ctl.run(&["put", "/r/a", "5"]);
    let recorded = wait_lines(&stream, before + 5);
    let _ = watch.kill();
    let _ = watch.wait();
    let history = dir.join("history.json");
    std::fs::write(&history, ctl.run(&["get", "--prefix", "/r/", "-w", "json"])).unwrap();

    // The clean recording passes, with and without its history.
    let out = validate(&[&stream]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hist_args = |p: &Path| -> Output {
        Command::new(BIN)
            .args(["validate".as_ref(), p.as_os_str()])
            .args(["--history".as_ref(), history.as_os_str()])
            .output()
            .unwrap()
    };
    let out = hist_args(&stream);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let n = before; // index of the line of `put /r/a 1`
    let find = |needle: &str| -> usize {
        let b64 = match needle {
            "/r/once" => "L3Ivb25jZQ==",
            _ => unreachable!(),
        };
        recorded
            .lines()
            .position(|l| l.contains(b64))
            .expect("the put is recorded")
    };
    // Reordered: the txn's response before `put /r/once`.
    let p = doctor(&dir, "reordered.jsonl", &recorded, |l| l.swap(n + 1, n + 2));
    let out = validate(&[&p]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "reordered.jsonl:{}: watch-order: PUT /r/once",
            n + 3
        )),
        "{}",
        text(&out)
    );
    // Duplicated.
    let p = doctor(&dir, "duplicated.jsonl", &recorded, |l| {
        let line = l[n + 1];
        l.insert(n + 2, line)
    });
    let out = validate(&[&p]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "duplicated.jsonl:{}: watch-unique: PUT /r/once",
            n + 3
        )),
        "{}",
        text(&out)
    );
    // Missing: only the history shows it.
    let once = find("/r/once");
    let p = doctor(&dir, "missing.jsonl", &recorded, |l| {
        l.remove(once);
    });
    let out = validate(&[&p]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = hist_args(&p);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("watch-no-gap: the history has /r/once at revision"),
        "{}",
        text(&out)
    );

    // A watch from a compacted revision: canceled, reported, not a violation.
    let rev: i64 = {
        let v: serde_json::Value =
            serde_json::from_str(&ctl.run(&["get", "/r/a", "-w", "json"])).unwrap();
        v["header"]["revision"].as_i64().unwrap()
    };
    ctl.run(&["compact", &rev.to_string()]);
    let compacted = dir.join("compacted.jsonl");
    let _ = ctl
        .cmd()
        .args(["watch", "--prefix", "/r/", "--rev", "2", "-w", "json"])
        .stdout(std::fs::File::create(&compacted).unwrap())
        .stderr(Stdio::null())
        .status();
    let out = validate(&[&compacted]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "compacted.jsonl:1: note: compacted: the watch was canceled: the revision it needed next is compacted (compact revision {rev})"
        )),
        "{}",
        text(&out)
    );
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `kubectl get -w --output-watch-events -o json` event, pretty-printed as kubectl prints it.
fn kube_event(kind: &str, name: &str, rv: u64) -> String {
    let v = serde_json::json!({
        "type": kind,
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string()}
        }
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn kube_file(dir: &Path, name: &str, events: &[(&str, &str, u64)]) -> PathBuf {
    let p = dir.join(name);
    let text: String = events
        .iter()
        .map(|(k, n, rv)| kube_event(k, n, *rv))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn kubernetes_streams() {
    let dir = scratch("kube");
    // Each pretty-printed event takes 12 lines.
    let first = kube_file(
        &dir,
        "first.json",
        &[
            ("ADDED", "b", 12),
            ("ADDED", "a", 10),
            ("MODIFIED", "a", 15),
            ("BOOKMARK", "", 15),
            ("DELETED", "b", 17),
            ("BOOKMARK", "", 20),
        ],
    );
    let out = validate(&[&first]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A relist that starts at or above what the client saw is fine ...
    let relist_ok = kube_file(&dir, "relist-ok.json", &[("ADDED", "a", 21)]);
    let out = validate(&[&first, &relist_ok]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // ... one below it is time travel.
    let relist_old = kube_file(
        &dir,
        "relist-old.json",
        &[("ADDED", "a", 15), ("MODIFIED", "a", 25)],
    );
    let out = validate(&[&first, &relist_old]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("relist-old.json:13: no-time-travel: this stream starts at resourceVersion 15, older than 20"),
        "{}",
        text(&out)
    );
    let reordered = kube_file(
        &dir,
        "reordered.json",
        &[
            ("ADDED", "a", 10),
            ("DELETED", "b", 17),
            ("MODIFIED", "a", 15),
        ],
    );
    let out = validate(&[&reordered]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "reordered.json:25: watch-order: MODIFIED default/a at resourceVersion 15 after resourceVersion 17"
        ),
        "{}",
        text(&out)
    );
    let duplicated = kube_file(
        &dir,
        "duplicated.json",
        &[
            ("ADDED", "a", 10),
            ("MODIFIED", "a", 15),
            ("MODIFIED", "a", 15),
        ],
    );
    let out = validate(&[&duplicated]);
    assert!(
        text(&out).contains("duplicated.json:25: watch-unique: MODIFIED default/a at resourceVersion 15 delivered a second time"),
        "{}",
        text(&out)
    );
    let bookmark_back = kube_file(
        &dir,
        "bookmark.json",
        &[
            ("ADDED", "a", 10),
            ("BOOKMARK", "", 30),
            ("BOOKMARK", "", 20),
        ],
    );
    let out = validate(&[&bookmark_back]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "bookmark.json:25: watch-order: a BOOKMARK at resourceVersion 20 after one at 30"
        ),
        "{}",
        text(&out)
    );
    // JSON lines of {type, object} work the same.
    let lines = dir.join("lines.jsonl");
    std::fs::write(
        &lines,
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"4\"}}}\n",
    )
    .unwrap();
    let out = validate(&[&lines]);
    assert!(
        text(&out).contains(
            "lines.jsonl:2: watch-order: MODIFIED a at resourceVersion 4 after resourceVersion 5"
        ),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_input_exits_2_with_file_and_line() {
    let dir = scratch("bad");
    let cases = [
        (
            "truncated.json",
            "{\"type\":\"ADDED\",\n\"object\": {",
            "truncated.json:2",
        ),
        ("unknown.json", "{\"kind\": 1}\n", "truncated"),
        (
            "rv.json",
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"abc\"}}}\n",
            "rv.json:1: resourceVersion \"abc\" is not a number",
        ),
    ];
    for (name, body, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        let out = validate(&[&p]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let want = if want == "truncated" {
            "unknown.json:1: neither"
        } else {
            want
        };
        assert!(text(&out).contains(want), "{name}: {}", text(&out));
    }
    let out = validate(&[&dir.join("absent.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("absent.json: cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}
