//! The index in a real PostgreSQL (a throwaway cluster in a temp dir): the
//! same search, hold and delete behaviour as SQLite, nodes that start at
//! the same moment, a database that is down (calls refused, entries kept
//! and written when it returns), a schema from a newer server, and each
//! node's audit log anchored in the shared index.

use core::time::Duration;
use std::path::Path;
use std::sync::{Arc, Barrier};

use callrec_recordings::{Actor, Error, Query, Recordings, Settings};
use callrec_server::{Parties, Sidecar};
use callrec_test::servers::Postgres;
use callrec_test::wait_until;

/// A finished recording of `node` as the server reports it, with its WAV
/// (4 bytes) written under `dir`.
fn finished(dir: &Path, id: &str, start: &str, remote: &str, name: &str) -> Sidecar {
    let rel = format!("001565aabbcc/{}/080000_in_{remote}_{id}.wav", &start[..10]);
    std::fs::create_dir_all(dir.join(&rel).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&rel), b"RIFF").unwrap();
    let mut s = Sidecar::default();
    s.recording_id = id.into();
    s.session_id = format!("session-{id}");
    s.device = "001565aabbcc".into();
    s.direction = "in".into();
    s.codec = "PCMA".into();
    s.started_at = start.into();
    s.stopped_at = Some(start.into());
    s.complete = true;
    s.duration_ms = 1000;
    let mut parties = Parties::default();
    parties.local_number = "1009".into();
    parties.remote_number = remote.into();
    parties.remote_name = name.into();
    s.start_parties = parties.clone();
    s.final_parties = parties;
    s.files = vec![
        serde_json::from_value(serde_json::json!({
            "path": rel, "kind": "wav", "bytes": 4, "sha256": "00"
        }))
        .unwrap(),
    ];
    s
}

fn open(url: &str, dir: &Path, node: &str) -> Recordings {
    let mut settings = Settings::new(dir);
    settings.index = Some(url.to_owned());
    settings.node = Some(node.to_owned());
    Recordings::open(settings).unwrap()
}

fn all(recordings: &Recordings) -> Vec<String> {
    let mut query = Query::default();
    query.limit = 1000;
    let page = recordings.search(&query).unwrap();
    page.recordings
        .into_iter()
        .map(|r| r.recording_id)
        .collect()
}

fn nodes_that_start_together_share_one_index_with_sqlites_behaviour() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    let tmp = tempfile::tempdir().unwrap();
    // Four nodes start at the same instant: one creates the tables, the
    // others wait on the advisory lock and find them.
    let barrier = Arc::new(Barrier::new(4));
    let nodes: Vec<Recordings> = (0..4)
        .map(|n| {
            let (url, dir, barrier) = (
                url.clone(),
                tmp.path().join(format!("n{n}")),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                open(&url, &dir, &format!("node-{n}"))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let (a, b) = (&nodes[0], &nodes[1]);
    let dir_a = a.settings().dir.clone();
    let observer = a.observer();
    for (i, (remote, name)) in [("1010", "Bob"), ("2020", "Carol"), ("1010", "bobby")]
        .iter()
        .enumerate()
    {
        let id = format!("a{i:031}");
        let start = format!("2026-12-01T08:00:0{i}Z");
        observer.recording_finished(&finished(&dir_a, &id, &start, remote, name));
    }
    a.flush();
    // Node b sees what a entered, newest first.
    assert_eq!(
        all(b),
        [
            "a0000000000000000000000000000002",
            "a0000000000000000000000000000001",
            "a0000000000000000000000000000000"
        ]
    );
    let found = b.get("a0000000000000000000000000000001").unwrap().unwrap();
    assert_eq!(found.node, "node-0");
    assert!(!found.uploaded);
    // Exact number, either side; free text ignores ASCII case, as SQLite.
    let mut q = Query::default();
    q.number = Some("1010".into());
    assert_eq!(b.search(&q).unwrap().recordings.len(), 2);
    let mut q = Query::default();
    q.text = Some("BOB".into());
    assert_eq!(b.search(&q).unwrap().recordings.len(), 2);
    // Cursor paging.
    let mut q = Query::default();
    q.limit = 2;
    let first = b.search(&q).unwrap();
    assert_eq!(first.recordings.len(), 2);
    q.cursor = Some(first.next_cursor.unwrap().parse().unwrap());
    let second = b.search(&q).unwrap();
    assert_eq!(
        ids(&second.recordings),
        ["a0000000000000000000000000000000"]
    );
    assert!(second.next_cursor.is_none());

    // A hold set on b protects the recording on a.
    let admin = Actor::new("test", None);
    b.set_hold("a0000000000000000000000000000000", true, &admin)
        .unwrap();
    let held = a
        .delete("a0000000000000000000000000000000", &admin)
        .unwrap_err();
    assert!(
        matches!(
            held,
            Error::Busy {
                reason: "on legal hold",
                ..
            }
        ),
        "{held}"
    );
    // Without an object store, a recording lives on its node's disk: only
    // that node deletes it.
    let elsewhere = b
        .delete("a0000000000000000000000000000001", &admin)
        .unwrap_err();
    assert!(
        elsewhere.to_string().contains("another node"),
        "{elsewhere}"
    );
    assert_eq!(
        a.delete("a0000000000000000000000000000001", &admin)
            .unwrap(),
        4
    );
    assert!(matches!(
        b.delete("a0000000000000000000000000000001", &admin),
        Err(Error::UnknownRecording(_))
    ));
    assert_eq!(all(b).len(), 2);

    // Many searches at once share a bounded set of connections: at most
    // eight for searches per node.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut open = || -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'callrec'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = open();
    let searching: Vec<_> = (0..32)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || all(&b).len())
        })
        .collect();
    for search in searching {
        assert_eq!(search.join().unwrap(), 2);
    }
    let after = open();
    assert!(
        after > before && after - before < 8,
        "{before} -> {after} connections"
    );

    // Each node's audit log is anchored in the shared index under its
    // name: a's holds its deletion, b's its hold.
    let anchor_of = |r: &Recordings| {
        callrec_recordings::read_audit_anchor(r.settings())
            .unwrap()
            .unwrap()
    };
    assert_eq!(anchor_of(a).entries, 1);
    assert_eq!(anchor_of(b).entries, 1);
    assert_ne!(anchor_of(a).head, anchor_of(b).head);
    let report = a.verify_audit().unwrap();
    assert!(report.anchored && report.entries == 1);
    // A log emptied while its node was stopped is found against the anchor.
    std::fs::write(a.audit_path(), "").unwrap();
    let restarted = self::open(&url, &dir_a, "node-0");
    let e = restarted.verify_audit().unwrap_err().to_string();
    assert!(e.contains("line 1 is missing"), "{e}");
    assert!(matches!(
        restarted.set_hold("a0000000000000000000000000000002", true, &admin),
        Err(Error::Audit { .. })
    ));
}

fn ids(list: &[callrec_recordings::RecordingSummary]) -> Vec<&str> {
    list.iter().map(|r| r.recording_id.as_str()).collect()
}

fn a_database_that_is_down_refuses_calls_and_keeps_what_it_could_not_enter() {
    let Some(pg) = Postgres::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    pg.stop();
    // The node starts without its database: it opens, and refuses calls.
    let node = open(&pg.url(), tmp.path(), "lonely");
    let observer = node.observer();
    assert!(!node.index_available());
    let refused = observer.admit().unwrap_err();
    assert!(
        refused.contains("127.0.0.1") && refused.contains("unavailable"),
        "{refused}"
    );
    assert!(!refused.contains("password"));
    pg.resume();
    wait_until("the index answers", Duration::from_secs(20), || {
        observer.admit().is_ok()
    });
    observer.recording_finished(&finished(
        tmp.path(),
        "b0000000000000000000000000000000",
        "2026-12-01T09:00:00Z",
        "3030",
        "Dan",
    ));
    node.flush();
    assert_eq!(all(&node), ["b0000000000000000000000000000000"]);

    // Down while a call ends: the entry waits, and is written on return.
    pg.stop();
    wait_until("the outage is noticed", Duration::from_secs(20), || {
        observer.admit().is_err()
    });
    observer.recording_finished(&finished(
        tmp.path(),
        "b0000000000000000000000000000001",
        "2026-12-01T09:00:01Z",
        "3030",
        "Dan",
    ));
    node.flush();
    pg.resume();
    wait_until(
        "the waiting entry is written",
        Duration::from_secs(20),
        || {
            node.search(&Query::default())
                .is_ok_and(|p| p.recordings.len() == 2)
        },
    );
}

fn a_schema_from_a_newer_server_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    drop(open(&pg.url(), tmp.path(), "first"));
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client
        .execute("UPDATE callrec_schema SET version = 99", &[])
        .unwrap();
    let mut settings = Settings::new(tmp.path());
    settings.index = Some(pg.url());
    let e = Recordings::open(settings).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("newer server") && text.contains("schema 99"),
        "{text}"
    );
}

/// A database from before the schema sequence was shared with SQLite
/// says version 1 for the tables of version 2 and has no `by_node` index:
/// it opens, and is brought to the shared version.
fn a_database_of_the_first_postgres_schema_is_migrated() {
    let Some(pg) = Postgres::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    drop(open(&pg.url(), tmp.path(), "first"));
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DROP INDEX by_node; DROP TABLE participant_numbers; DROP TABLE imported_files; \
             DROP TABLE nodes; \
             ALTER TABLE recordings DROP COLUMN source, DROP COLUMN participants, DROP COLUMN channels, \
             DROP COLUMN archive_path, DROP COLUMN archive, DROP COLUMN manifest_path; \
             UPDATE callrec_schema SET version = 1",
        )
        .unwrap();
    let recordings = open(&pg.url(), tmp.path(), "first");
    assert_eq!(all(&recordings), Vec::<String>::new());
    let version: i32 = client
        .query_one("SELECT MAX(version) FROM callrec_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        version, 7,
        "SIPREC's columns and numbers table are version 5, the archive's columns 6, the nodes 7"
    );
    let by_node: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'by_node'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(by_node, 1);
}

fn a_url_that_is_not_postgres_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = Settings::new(tmp.path());
    settings.index = Some("mysql://root:hunter2@db/x".into());
    let text = Recordings::open(settings).unwrap_err().to_string();
    assert!(
        text.contains("mysql://root@db/x") && !text.contains("hunter2"),
        "{text}"
    );
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{POSTGRES, Test, run_tests};
    run_tests(vec![
        Test::new(
            "nodes_that_start_together_share_one_index_with_sqlites_behaviour",
            nodes_that_start_together_share_one_index_with_sqlites_behaviour,
        )
        .needs(&[POSTGRES]),
        Test::new(
            "a_database_that_is_down_refuses_calls_and_keeps_what_it_could_not_enter",
            a_database_that_is_down_refuses_calls_and_keeps_what_it_could_not_enter,
        )
        .needs(&[POSTGRES]),
        Test::new(
            "a_schema_from_a_newer_server_is_refused",
            a_schema_from_a_newer_server_is_refused,
        )
        .needs(&[POSTGRES]),
        Test::new(
            "a_database_of_the_first_postgres_schema_is_migrated",
            a_database_of_the_first_postgres_schema_is_migrated,
        )
        .needs(&[POSTGRES]),
        Test::new(
            "a_url_that_is_not_postgres_is_named_in_the_error",
            a_url_that_is_not_postgres_is_named_in_the_error,
        ),
    ])
}
