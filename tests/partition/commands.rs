//! Two runners at once, `status`, `pause` and `resume`, `plan`, and a verification that
//! repairs a damaged copy or refuses the swap.

use super::*;

#[test]
fn a_second_runner_is_refused_and_status_pause_and_resume_work() {
    let cluster = cluster();
    let db = Db::create(&cluster, "two_runs");
    setup_events(&db, 20_000);
    // `duty_cycle = 1`: the helper connection copies too, though the test's queries make the
    // database look busy, so that a pause meets two copying connections. The copy takes
    // about 13 s, so a pause lands half way even when starting `lockstep pause` is slow on a
    // busy machine.
    let pb = db.playbook(
        "pb.toml",
        &events_playbook(
            "max_rows_per_second = 1500\nduty_cycle = 1\n[capture]\nmode = \"trigger\"",
        ),
    );
    let pb = pb.to_str().unwrap();
    let mut first = db.spawn(&["run", pb], Some("backfill"));
    db.wait_held(&mut first, "backfill");
    let pid = db.runner_pid().expect("the runner holds the run lock");

    let second = db.lockstep(&["run", pb]);
    assert_exit(&second, 2);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another lockstep process is working on public.events: backend pid {pid} holds its run lock; its runner is alive"
        )),
        "{}",
        text(&second)
    );
    let runs: i64 = db.one("SELECT count(*) FROM lockstep.runs");
    assert_eq!(runs, 1, "the refused run recorded nothing");

    let run_id: String = db.one("SELECT id FROM lockstep.runs");
    // Three changes for the log, replayed after the copy.
    db.exec(
        "UPDATE events SET account = account + 1 WHERE id <= 3;
         UPDATE expected SET account = account + 1 WHERE id <= 3",
    );
    let status = db.lockstep(&["status"]);
    assert_exit(&status, 0);
    let s = String::from_utf8_lossy(&status.stdout);
    for want in [
        format!("run        {run_id}"),
        "table      public.events".to_string(),
        "step       capture".to_string(),
        format!("state      running (runner backend pid {pid}, heartbeat "),
        "capture    a trigger logs changed keys".to_string(),
        "logged     3 changes not replayed yet".to_string(),
    ] {
        assert!(s.contains(&want), "{want:?} not in:\n{s}");
    }

    let out = db.lockstep(&["pause", &run_id]);
    assert_exit(&out, 0);
    assert!(db.run_state().unwrap().3, "paused is set");
    let status = db.lockstep(&["status", &run_id]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(", copy paused"),
        "{}",
        text(&status)
    );
    // With a live runner, resume only un-pauses.
    let out = db.lockstep(&["resume", &run_id]);
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("copy resumed"),
        "{}",
        text(&out)
    );
    assert!(!db.run_state().unwrap().3, "paused is cleared");
    first.kill9();
    db.wait_runner_gone();
    // Finalize is only for swapped runs, and a new run waits for this one to be finished.
    let out = db.lockstep(&["finalize"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("finalize is for swapped runs"),
        "{}",
        text(&out)
    );
    let out = db.lockstep(&["run", pb]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("run {run_id} on public.events is not finished")),
        "{}",
        text(&out)
    );

    // Pausing a live copy stops it (the rows copied stay put) until resume.
    let mut runner = db.spawn(&["resume", &run_id], None);
    let copied_at_start = db.run_state().unwrap().2;
    wait_for("the copy to go on", Duration::from_secs(30), || {
        db.run_state().unwrap().2 > copied_at_start
    });
    assert_exit(&db.lockstep(&["pause"]), 0);
    wait_for("the copy to pause", Duration::from_secs(30), || {
        db.run_state().unwrap().1 == "paused"
    });
    let copied = db.run_state().unwrap().2;
    std::thread::sleep(Duration::from_millis(1500));
    let (step, status, copied_later, paused) = db.run_state().unwrap();
    assert_eq!(
        (step.as_str(), status.as_str(), copied_later, paused),
        ("capture", "paused", copied, true)
    );
    assert_exit(&db.lockstep(&["resume"]), 0);
    wait_for("the run to finish", Duration::from_secs(60), || {
        runner.try_wait().is_some()
    });
    assert!(runner.try_wait().unwrap().success(), "{}", runner.output());
    assert_exact_copy(&runner.output());
    // Said once, however many connections copy.
    assert_eq!(
        runner
            .output()
            .matches("copy paused (triggers keep capturing")
            .count(),
        1,
        "{}",
        runner.output()
    );
    assert_swapped(&db);
    // Nothing to pause after the copy.
    let out = db.lockstep(&["pause"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to pause"),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_shows_steps_sql_preflight_and_diff_and_changes_nothing() {
    let cluster = cluster();
    let db = Db::create(&cluster, "plan");
    setup_events(&db, 2_000);
    let relations = db.relations("public");
    let pb = db.playbook(
        "pb.toml",
        &events_playbook("\n[capture]\nmode = \"trigger\""),
    );
    let out = db.lockstep(&["plan", pb.to_str().unwrap()]);
    assert_exit(&out, 0);
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "plan: public.events → partitioned by RANGE (created_at) into ",
        "while the application keeps the server busy (one connection at 620k rows/s, working 60% of the time)",
        "on a quiet database (2 connections)",
        "preflight: ok",
        "note: the primary key becomes (id, created_at)",
        "1. shadow: ",
        "CREATE TABLE public.events_lockstep_new (LIKE public.events",
        "CREATE TABLE public.events_p202401 PARTITION OF public.events_lockstep_new FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')",
        "CREATE TABLE public.events_default PARTITION OF public.events_lockstep_new DEFAULT",
        "2. capture: ",
        "CREATE TRIGGER lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON public.events",
        "INSERT INTO lockstep.",
        "3. backfill: ",
        "INSERT INTO public.events_lockstep_new (id, created_at, account, payload",
        "4. indexes: ",
        "CREATE UNIQUE INDEX events_p202401_pkey ON public.events_p202401 (id, created_at)",
        "PRIMARY KEY USING INDEX events_p202401_pkey",
        "ALTER TABLE public.events_lockstep_new ADD CONSTRAINT events_lockstep_new_pkey PRIMARY KEY (id, created_at)",
        "5. replay: ",
        "REPEATABLE READ",
        "6. verify: ",
        "7. swap: ",
        "ALTER TABLE public.events RENAME TO events_old",
        "GRANT SELECT ON public.events_lockstep_new TO reader",
        "CREATE OR REPLACE VIEW public.recent_events AS",
        "8. validate: ",
        "9. finalize (separate command): ",
        "DROP TABLE IF EXISTS public.events_old",
        "definition before → after:",
        "--- ",
        "+++ ",
        "+) PARTITION BY RANGE (created_at);",
        "-ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);",
        "+ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at);",
    ] {
        assert!(s.contains(want), "{want:?} not in:\n{s}");
    }
    // Nothing was created or changed.
    assert_eq!(db.relations("public"), relations);
    let no_state: bool = db.one("SELECT to_regnamespace('lockstep') IS NULL");
    assert!(no_state, "plan created the lockstep schema");
    let triggers: i64 = db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal");
    assert_eq!(triggers, 0);
    let capture: i64 = db.one(
        "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) + (SELECT count(*) FROM pg_publication)",
    );
    assert_eq!(capture, 0, "plan made a slot or a publication");
    let locks: i64 = db.one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'");
    assert_eq!(locks, 0);
}

#[test]
fn verification_repairs_a_damaged_copy_and_refuses_one_it_cannot_repair() {
    let cluster = cluster();
    let db = Db::create(&cluster, "damaged");
    setup_events(&db, 20_000);
    let pb = db.playbook("pb.toml", &events_playbook(""));
    let mut run = db.spawn(&["run", pb.to_str().unwrap()], Some("replay"));
    db.wait_held(&mut run, "replay");
    run.kill9();
    db.wait_runner_gone();
    // Damage the copy behind the log's back, in both halves of the key range (so in both
    // verification lanes): a changed row and a missing one. And a trigger that damages a
    // row again whenever it is copied, so that copying its range again cannot repair it.
    db.exec(
        "UPDATE events_lockstep_new SET payload = 'damaged' WHERE id = 15000;
         DELETE FROM events_lockstep_new WHERE id = 3;
         CREATE FUNCTION damage() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN NEW.payload := 'damaged'; RETURN NEW; END $$;
         CREATE TRIGGER damage BEFORE INSERT ON events_lockstep_new
             FOR EACH ROW WHEN (NEW.id = 10) EXECUTE FUNCTION damage();
         UPDATE events_lockstep_new SET payload = 'damaged' WHERE id = 10;",
    );
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 1);
    let said = text(&out);
    assert!(
        said.contains("verification found rows that differ between public.events and the copy in the key range after the start"),
        "{said}"
    );
    assert!(said.contains("copying it again"), "{said}");
    let kind: String = db.one("SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass");
    assert_eq!(kind, "r", "the swap must be refused");
    // Without the trigger, copying the ranges again repairs the copy, and the run swaps.
    db.exec("DROP TRIGGER damage ON events_lockstep_new");
    let out = db.lockstep(&["resume"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("copying it again"));
    assert_swapped(&db);
}
