//! Retention by age and by size (never a recording on hold), the audit
//! log's chain, and rebuilding the index from the files.

mod common;

use std::path::Path;

use common::service::{Options, Service, audit_summary, get, http, ids};
use serde_json::Value;

/// Copies the recording `sidecar_rel` (relative to `dir`) as if it had been
/// made on `date` (YYYY-MM-DD), with the id `id`.
fn backdate(dir: &Path, sidecar_rel: &str, date: &str, id: &str) {
    let mut sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.join(sidecar_rel)).unwrap()).unwrap();
    let wav_rel = sidecar["files"][0]["path"].as_str().unwrap().to_owned();
    let device = wav_rel.split('/').next().unwrap();
    let name = Path::new(&wav_rel).file_name().unwrap().to_str().unwrap();
    let new_wav = format!(
        "{device}/{date}/{}",
        name.replace(".wav", &format!("-{id}.wav"))
    );
    std::fs::create_dir_all(dir.join(device).join(date)).unwrap();
    std::fs::copy(dir.join(&wav_rel), dir.join(&new_wav)).unwrap();
    sidecar["recording_id"] = id.into();
    sidecar["started_at"] = format!("{date}T10:00:00Z").into();
    sidecar["stopped_at"] = format!("{date}T10:00:01Z").into();
    sidecar["files"][0]["path"] = new_wav.clone().into();
    std::fs::write(
        dir.join(new_wav.replace(".wav", ".json")),
        serde_json::to_vec_pretty(&sidecar).unwrap(),
    )
    .unwrap();
}

#[test]
fn old_recordings_are_deleted_except_on_hold_and_each_deletion_is_audited() {
    let mut options = Options::new(52400);
    options.settings = Box::new(|s| {
        s.retain_days = Some(30);
        s.sweep_interval = core::time::Duration::from_secs(3600);
    });
    let service = Service::start(options);
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let today = get(&format!("{base}/api/recordings")).json()["recordings"][0].clone();
    let today_id = today["recording_id"].as_str().unwrap().to_owned();
    let dir = service.recordings_dir();
    let sidecar_rel = get(&format!("{base}/api/recordings/{today_id}")).json()["sidecar"]["files"]
        [0]["path"]
        .as_str()
        .unwrap()
        .replace(".wav", ".json");
    for (date, id) in [
        ("2020-01-01", "aaaa0000000000000000000000000001"),
        ("2020-01-02", "aaaa0000000000000000000000000002"),
        ("2020-01-03", "aaaa0000000000000000000000000003"),
    ] {
        backdate(&dir, &sidecar_rel, date, id);
    }
    let summary = service.recordings.reindex().unwrap();
    assert_eq!(summary.recordings, 4);
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let held = "aaaa0000000000000000000000000002";
    assert_eq!(
        http("PUT", &format!("{base}/api/recordings/{held}/hold"), &[]).status,
        200
    );

    let swept = service.recordings.sweep().unwrap();
    assert_eq!(swept.deleted, 2);
    let left = ids(&get(&format!("{base}/api/recordings")).json());
    assert_eq!(left, vec![today_id.clone(), held.to_owned()]);
    assert!(
        !dir.join("001565aabbcc/2020-01-01").exists(),
        "empty old date directories go"
    );
    assert!(dir.join("001565aabbcc/2020-01-02").exists());

    let audit = std::fs::read_to_string(service.recordings.audit_path()).unwrap();
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = audit_summary(service.recordings.audit_path());
    assert_eq!(
        summary,
        vec![
            format!("hold {held} loopback"),
            "retention_delete aaaa0000000000000000000000000001 retention".to_owned(),
            "retention_delete aaaa0000000000000000000000000003 retention".to_owned(),
        ]
    );
    assert_eq!(entries[1]["detail"], "older than 30 days");

    // Holds survive rebuilding the index (from the audit log).
    let again = service.recordings.reindex().unwrap();
    assert_eq!((again.recordings, again.held), (2, 1));
    assert_eq!(
        get(&format!("{base}/api/recordings/{held}")).json()["hold"],
        true
    );

    // The chain verifies; a changed line is found and named.
    let verify = get(&format!("{base}/api/audit/verify")).json();
    assert_eq!(
        (verify["valid"].clone(), verify["entries"].clone()),
        (true.into(), 3.into())
    );
    let path = service.recordings.audit_path().to_owned();
    // In place and the same length (a shorter file is noticed as cut
    // before the chain is read: see the API tests).
    std::fs::write(&path, audit.replacen("\"retention\"", "\"intruder1\"", 1)).unwrap();
    let changed = 1 + audit
        .lines()
        .position(|l| l.contains("\"retention\""))
        .unwrap();
    let verify = get(&format!("{base}/api/audit/verify")).json();
    assert_eq!(verify["valid"], false);
    let error = verify["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("line {changed}: changed")),
        "{error}"
    );
}

#[test]
fn the_oldest_recordings_go_while_the_total_is_over_the_limit() {
    let mut options = Options::new(52450);
    options.settings = Box::new(|s| {
        s.max_disk_usage = Some(20_000);
        s.sweep_interval = core::time::Duration::from_secs(3600);
    });
    let service = Service::start(options);
    for number in ["5001", "5002", "5003", "5004"] {
        service.call(&["--remote-number", number]);
    }
    service.wait_for_finished(4);
    let base = &service.base;
    let page = get(&format!("{base}/api/recordings")).json();
    let all = ids(&page);
    let bytes: Vec<u64> = page["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .collect();
    assert!(
        bytes.iter().all(|&b| (6_000..10_000).contains(&b)),
        "{bytes:?}"
    );
    // The oldest is on hold: the next two oldest go instead.
    let oldest = &all[3];
    assert_eq!(
        http("PUT", &format!("{base}/api/recordings/{oldest}/hold"), &[]).status,
        200
    );
    let swept = service.recordings.sweep().unwrap();
    assert_eq!(swept.deleted, 2);
    assert_eq!(swept.bytes_freed, bytes[1] + bytes[2]);
    assert_eq!(
        ids(&get(&format!("{base}/api/recordings")).json()),
        vec![all[0].clone(), oldest.clone()]
    );
    // Under the limit now: nothing more goes.
    assert_eq!(service.recordings.sweep().unwrap().deleted, 0);
    // The index's running totals (what retention and /metrics read) agree.
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).unwrap();
    let stored = format!("callrec_recordings_stored_bytes {}\n", bytes[0] + bytes[3]);
    assert!(metrics.contains(&stored), "{stored} not in\n{metrics}");
    assert!(metrics.contains("callrec_recordings_stored 2\n"));
    service.recordings.reindex().unwrap();
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).unwrap();
    assert!(metrics.contains(&stored), "after reindex: {metrics}");
}

#[test]
fn reindex_enters_recordings_without_sidecar_as_incomplete_with_the_wav_length() {
    let service = Service::start(Options::new(52500));
    service.call(&["--seconds", "2", "--remote-number", "+4930123"]);
    service.wait_for_finished(1);
    let base = &service.base;
    let before = get(&format!("{base}/api/recordings")).json()["recordings"][0].clone();
    let id = before["recording_id"].as_str().unwrap();
    let meta = get(&format!("{base}/api/recordings/{id}")).json();
    let wav_rel = meta["sidecar"]["files"][0]["path"].as_str().unwrap();
    let dir = service.recordings_dir();
    std::fs::remove_file(dir.join(wav_rel.replace(".wav", ".json"))).unwrap();
    let summary = service.recordings.reindex().unwrap();
    assert_eq!((summary.recordings, summary.incomplete), (1, 1));
    let after = get(&format!("{base}/api/recordings")).json()["recordings"][0].clone();
    assert_ne!(
        after["recording_id"], before["recording_id"],
        "an id derived from the path"
    );
    for field in [
        "device",
        "direction",
        "remote_number",
        "session_id",
        "started_at",
        "duration_ms",
        "codec",
    ] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["complete"], false);
    assert!(
        after["stop_reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted")
    );
    // The derived id is stable: rebuilding again gives the same one.
    service.recordings.reindex().unwrap();
    assert_eq!(
        get(&format!("{base}/api/recordings")).json()["recordings"][0]["recording_id"],
        after["recording_id"]
    );
}

#[test]
fn a_tampered_sidecar_cannot_make_the_service_read_or_delete_outside_its_directory() {
    let service = Service::start(Options::new(52550));
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let id = service.newest_id();
    let meta = get(&format!("{base}/api/recordings/{id}")).json();
    let wav_rel = meta["sidecar"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = service.recordings_dir();
    let outside = service.dir.path().join("precious.txt");
    std::fs::write(&outside, "not a recording").unwrap();
    let sidecar_path = dir.join(wav_rel.replace(".wav", ".json"));
    let mut sidecar: Value =
        serde_json::from_slice(&std::fs::read(&sidecar_path).unwrap()).unwrap();
    sidecar["files"][0]["path"] = "../precious.txt".into();
    std::fs::write(&sidecar_path, serde_json::to_vec(&sidecar).unwrap()).unwrap();
    service.recordings.reindex().unwrap();

    let audio = get(&format!("{base}/api/recordings/{id}/audio"));
    assert_eq!(audio.status, 500);
    assert!(
        audio
            .error()
            .contains("../precious.txt: not a path inside the recordings directory"),
        "{}",
        audio.error()
    );
    let delete = http("DELETE", &format!("{base}/api/recordings/{id}"), &[]);
    assert_eq!(delete.status, 500);
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "not a recording"
    );
    // Refused before anything was logged.
    let audit = std::fs::read_to_string(service.recordings.audit_path()).unwrap();
    assert!(!audit.contains("\"delete\""), "{audit}");
}
