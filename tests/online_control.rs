//! Watching and steering a run from outside, against a real PostgreSQL: `lockstep status
//! --format json|prometheus` (the JSON schema pinned), `lockstep set` picked up by a live
//! runner, `[swap] mode = "manual"` waiting (and catching up) until `lockstep swap`, the
//! `[hooks]` command and webhook told of every event exactly once (a local HTTP server that
//! refuses the first delivery, so a retry happens), and `--metrics-listen`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "common/db.rs"]
mod db;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use db::{assert_exit, cluster, text, wait_for, Db};
use serde_json::Value;

/// A webhook receiver: answers 500 to the first POST (so the sender must retry) and 200 to
/// the others, keeping the bodies it accepted.
struct Receiver {
    port: u16,
    accepted: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let (a, r) = (accepted.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let Some(body) = read_post(&mut s) else {
                    continue;
                };
                let first = {
                    let mut n = r.lock().unwrap();
                    let first = *n == 0 && a.lock().unwrap().is_empty();
                    if first {
                        *n += 1;
                    }
                    first
                };
                if first {
                    let _ = s.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
                    );
                } else {
                    a.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            }
        });
        Receiver {
            port,
            accepted,
            refused,
        }
    }

    fn events(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|v| {
                format!(
                    "{} {}",
                    v["event"].as_str().unwrap(),
                    v["step"].as_str().unwrap()
                )
            })
            .collect()
    }
}

/// Reads one HTTP request and returns its body.
fn read_post(s: &mut TcpStream) -> Option<String> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut len = 0usize;
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

fn status_json(db: &Db, args: &[&str]) -> Value {
    let mut all = vec!["status", "--format", "json"];
    all.extend_from_slice(args);
    let out = db.lockstep(&all);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// The status as JSON, or `None` while there is no run yet.
fn try_status_json(db: &Db) -> Option<Value> {
    let out = db.lockstep(&["status", "--format", "json"]);
    (out.status.code() == Some(0)).then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The JSON schema of `lockstep status --format json`, version 1: these keys, no others.
fn assert_schema(doc: &Value) {
    assert_eq!(doc["version"], 1);
    assert_eq!(keys(doc), set_of(&["version", "runs"]));
    for run in doc["runs"].as_array().unwrap() {
        assert_eq!(
            keys(run),
            set_of(&[
                "id",
                "kind",
                "table",
                "step",
                "status",
                "interrupted",
                "runner",
                "paused",
                "rows",
                "rows_per_second",
                "eta_seconds",
                "batch_size",
                "throttle",
                "replica_lag_ms",
                "log_backlog",
                "replay",
                "reverse_backlog",
                "capture",
                "lanes",
                "settings",
                "swap",
                "swaps",
                "started_at",
                "updated_at",
                "last_error",
                "message",
            ])
        );
        assert_eq!(
            keys(&run["runner"]),
            set_of(&["alive", "backend_pid", "heartbeat_age_seconds", "process"])
        );
        assert_eq!(keys(&run["rows"]), set_of(&["done", "total", "percent"]));
        assert_eq!(keys(&run["throttle"]), set_of(&["active", "reason"]));
        assert_eq!(
            keys(&run["settings"]),
            set_of(&["max_rows_per_second", "target_batch_ms", "duty_cycle"])
        );
        assert_eq!(keys(&run["swap"]), set_of(&["mode", "requested", "ready"]));
        if !run["replay"].is_null() {
            assert_eq!(
                keys(&run["replay"]),
                set_of(&["backlog", "growth_per_second", "behind", "age_seconds"])
            );
        }
        if !run["capture"].is_null() {
            assert_eq!(
                keys(&run["capture"]),
                set_of(&["method", "slot", "retained_wal_bytes"])
            );
            let method = run["capture"]["method"].as_str().unwrap();
            assert!(method == "logical" || method == "trigger", "{method}");
        }
        for attempt in run["swaps"].as_array().unwrap() {
            assert_eq!(
                keys(attempt),
                set_of(&["what", "waited_ms", "held_ms", "error"])
            );
        }
        if !run["lanes"].is_null() {
            assert_eq!(
                keys(&run["lanes"]),
                set_of(&["total", "copied", "under_way", "waiting"])
            );
        }
        let started = run["started_at"].as_str().unwrap();
        assert!(
            started.len() == 24 && started.ends_with('Z') && &started[10..11] == "T",
            "not RFC 3339 UTC: {started}"
        );
    }
}

/// GET `url`'s path from `addr`.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn status_set_manual_swap_hooks_webhook_and_metrics() {
    let cluster = cluster();
    let db = Db::create(&cluster, "control");
    db.exec(
        "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL);
         INSERT INTO items SELECT g, g FROM generate_series(1, 20000) g;",
    );
    let receiver = Receiver::start();
    let log = db.dir.path().join("events.log");
    let ready = db.dir.path().join("ready.txt");
    let pb = db.playbook(
        "items.toml",
        &format!(
            "kind = \"column-type\"\ntable = \"items\"\n[column_type]\ncolumn = \"v\"\ntype = \"bigint\"\n\
             [backfill]\nbatch_size = 100\ntarget_batch_ms = 10\nmax_rows_per_second = 1000\nworkers = 1\n\
             [swap]\nmode = \"manual\"\n\
             [hooks]\ncommand = \"echo \\\"$LOCKSTEP_EVENT $LOCKSTEP_STEP\\\" >> '{}'\"\n\
             webhook = \"http://127.0.0.1:{}/hook\"\nretries = 2\ntimeout = \"5s\"\n\
             [hooks.on]\nready_to_swap = \"echo \\\"$LOCKSTEP_RUN_ID $LOCKSTEP_TABLE\\\" > '{}'\"\n",
            log.display(),
            receiver.port,
            ready.display()
        ),
    );

    // Nothing recorded yet: --all lists nothing, in every format.
    assert_eq!(status_json(&db, &["--all"])["runs"], serde_json::json!([]));

    let mut runner = db.spawn(
        &[
            "run",
            pb.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        None,
    );

    // The copy is throttled by max_rows_per_second, as status says.
    wait_for("the copy to be throttled", Duration::from_secs(120), || {
        try_status_json(&db)
            .is_some_and(|doc| doc["runs"][0]["throttle"]["reason"] == "max_rows_per_second")
    });
    let doc = status_json(&db, &[]);
    assert_schema(&doc);
    let run = &doc["runs"][0];
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["kind"], "column-type");
    assert_eq!(run["table"], "public.items");
    assert_eq!(run["status"], "running");
    assert_eq!(run["runner"]["alive"], true);
    assert_eq!(run["interrupted"], false);
    assert_eq!(run["swap"]["mode"], "manual");
    assert_eq!(run["settings"]["max_rows_per_second"], 1000);
    assert!(run["runner"]["backend_pid"].as_i64().unwrap() > 0);
    assert!(run["runner"]["heartbeat_age_seconds"].as_f64().unwrap() < 60.0);
    assert!(run["runner"]["process"]
        .as_str()
        .unwrap()
        .starts_with("lockstep "));
    // The same run by id, and in --all.
    assert_eq!(status_json(&db, &[&id])["runs"][0]["id"], id.as_str());
    assert_eq!(
        status_json(&db, &["--all"])["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Prometheus, from the state table.
    let out = db.lockstep(&["status", "--format", "prometheus"]);
    assert_exit(&out, 0);
    let prom = String::from_utf8(out.stdout).unwrap();
    let labels = format!("run=\"{id}\",kind=\"column-type\",table=\"public.items\"");
    for line in [
        format!("lockstep_run_runner_alive{{{labels}}} 1"),
        format!("lockstep_run_max_rows_per_second{{{labels}}} 1000"),
        "# TYPE lockstep_run_rows_done gauge".to_string(),
    ] {
        assert!(prom.lines().any(|l| l == line), "no `{line}` in:\n{prom}");
    }
    assert!(
        prom.contains(&format!("lockstep_run_info{{{labels},step=\"")),
        "{prom}"
    );

    // /metrics, served by the runner.
    let mut addr = String::new();
    wait_for("the metrics address", Duration::from_secs(30), || {
        let err = std::fs::read_to_string(runner.log.with_extension("err")).unwrap();
        match err
            .lines()
            .find_map(|l| l.strip_prefix("metrics: serving http://"))
        {
            Some(a) => {
                addr = a.trim_end_matches("/metrics").to_string();
                true
            }
            None => false,
        }
    });
    let page = http_get(&addr, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("lockstep_runner_rows_done "), "{page}");
    assert!(
        page.contains("lockstep_runner_step{step=\"backfill\"} 1"),
        "{page}"
    );
    assert!(
        page.contains(&format!("lockstep_run_runner_alive{{{labels}}} 1")),
        "{page}"
    );
    assert!(http_get(&addr, "/").starts_with("HTTP/1.1 404"));

    // `lockstep set` lifts the limit; the live runner picks it up.
    assert_exit(&db.lockstep(&["set", &id, "max_rows_per_secnd=0"]), 2);
    let out = db.lockstep(&["set", &id, "max_rows_per_second=0", "duty_cycle=1"]);
    assert_exit(&out, 0);
    wait_for(
        "the run to wait for `lockstep swap`",
        Duration::from_secs(300),
        || status_json(&db, &[])["runs"][0]["status"] == "ready_to_swap",
    );
    let err = std::fs::read_to_string(runner.log.with_extension("err")).unwrap();
    assert!(
        err.contains("settings changed: max_rows_per_second 1000 → 0"),
        "{err}"
    );
    let run = status_json(&db, &[])["runs"][0].clone();
    assert_eq!(run["settings"]["max_rows_per_second"], 0);
    assert_eq!(run["swap"]["ready"], true);
    // The ready_to_swap hook ran with the run's facts.
    wait_for("the ready_to_swap hook", Duration::from_secs(30), || {
        std::fs::read_to_string(&ready).is_ok_and(|s| s == format!("{id} public.items\n"))
    });

    // Waiting is not swapping: the column is still an integer, writes go on and are
    // caught up.
    db.exec("INSERT INTO items SELECT g, g FROM generate_series(20001, 20500) g; UPDATE items SET v = -v WHERE id <= 100");
    wait_for("the writes to be replayed", Duration::from_secs(60), || {
        status_json(&db, &[])["runs"][0]["log_backlog"] == 0
    });
    assert_eq!(
        db.one::<String>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'v'"),
        "integer"
    );
    assert!(
        runner.try_wait().is_none(),
        "the runner must wait: {}",
        runner.output()
    );

    // `lockstep swap` from another terminal: the runner swaps and ends.
    let out = db.lockstep(&["swap", &id]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("swap requested"),
        "{}",
        text(&out)
    );
    wait_for("the runner to finish", Duration::from_secs(120), || {
        runner.try_wait().is_some()
    });
    let status = runner.try_wait().unwrap();
    assert!(status.success(), "{}", runner.output());
    assert_eq!(
        db.one::<String>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'v'"),
        "bigint"
    );
    assert_eq!(db.one::<i64>("SELECT count(*) FROM items"), 20500);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM items WHERE v < 0"), 100);
    // The swap's attempt, timed, in the JSON status; the capture's slot is gone with it.
    let doc = try_status_json(&db).expect("the status after the swap");
    assert_schema(&doc);
    let run = &doc["runs"][0];
    let swapped = run["swaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["what"] == "swap" && a["held_ms"].is_number() && a["error"].is_null());
    assert!(swapped, "no successful swap attempt in {run}");
    assert_eq!(run["capture"]["method"], "logical");

    // Every event, once, to the command and (after one refused delivery) the webhook, in
    // the same order.
    let commands: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        receiver.events(),
        commands,
        "webhook and command saw other events"
    );
    assert_eq!(*receiver.refused.lock().unwrap(), 1);
    let count = |e: &str| {
        commands
            .iter()
            .filter(|l| l.split(' ').next() == Some(e))
            .count()
    };
    for (event, n) in [
        ("ready_to_swap", 1),
        ("swapped", 1),
        ("finished", 1),
        ("failed", 0),
    ] {
        assert_eq!(count(event), n, "{event}: {commands:#?}");
    }
    let started: Vec<&str> = commands
        .iter()
        .filter_map(|l| l.strip_prefix("step_started "))
        .collect();
    let done: Vec<&str> = commands
        .iter()
        .filter_map(|l| l.strip_prefix("step_done "))
        .collect();
    assert_eq!(
        started, done,
        "each step starts once and is done once: {commands:#?}"
    );
    for step in ["backfill", "swap"] {
        assert!(started.contains(&step), "no {step} step: {commands:#?}");
    }
    assert_eq!(
        commands.last().map(String::as_str),
        Some("finished validate"),
        "{commands:#?}"
    );
    let first = &receiver.accepted.lock().unwrap()[0];
    assert_eq!(first["version"], 1);
    assert_eq!(first["run"]["id"], id.as_str());
    assert_eq!(first["run"]["database"], "control");

    // After the run: nothing left to change or swap.
    let out = db.lockstep(&["set", &id, "duty_cycle=0.5"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing left to change"),
        "{}",
        text(&out)
    );
    let out = db.lockstep(&["swap", &id]);
    assert_exit(&out, 2);
    let doc = status_json(&db, &["--all"]);
    assert_schema(&doc);
    assert_eq!(doc["runs"][0]["status"], "swapped");
    assert_eq!(doc["runs"][0]["runner"]["alive"], false);
}

#[test]
fn swap_and_set_refuse_what_does_not_apply() {
    let cluster = cluster();
    let db = Db::create(&cluster, "refuse");
    db.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, v int NOT NULL);
         INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;
         CREATE TABLE u (id bigint PRIMARY KEY, v int NOT NULL);
         INSERT INTO u SELECT g, g FROM generate_series(1, 100) g;",
    );
    // A kind without a swap cannot wait for one.
    let pb = db.playbook(
        "check.toml",
        "kind = \"check\"\ntable = \"t\"\n[check]\nname = \"t_v_positive\"\nexpression = \"v > 0\"\n[swap]\nmode = \"manual\"\n",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`swap.mode`"),
        "{}",
        text(&out)
    );
    // A run that swaps by itself refuses `lockstep swap`.
    let pb = db.playbook(
        "ct.toml",
        "kind = \"column-type\"\ntable = \"t\"\n[column_type]\ncolumn = \"v\"\ntype = \"bigint\"\n",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let out = db.lockstep(&["swap"]);
    assert_exit(&out, 2);
    // A required hook that fails stops the run, recorded as failed.
    let pb = db.playbook(
        "nn.toml",
        "kind = \"check\"\ntable = \"u\"\n[check]\nname = \"u_v_pos\"\nexpression = \"v > 0\"\n[hooks]\ncommand = \"exit 7\"\nrequired = true\n",
    );
    let out = db.lockstep(&["run", pb.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a required hook failed") && err.contains("exit status: 7"),
        "{}",
        text(&out)
    );
    let doc = status_json(&db, &[]);
    assert_eq!(doc["runs"][0]["status"], "failed");
    assert!(doc["runs"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("required hook"));
}
