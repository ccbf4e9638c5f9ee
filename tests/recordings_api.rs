//! The recordings service's HTTP API against a real recording server, with
//! phone_sim as the phones: search, metadata, audio (ranges byte for byte,
//! PCM16 checked against ffmpeg), delete, hold, tokens, metrics, errors.

mod common;

use std::process::Command;

use common::service::{Options, Service, audit_summary, get, http, ids};
use sha2::{Digest, Sha256};

const ADMIN: &str = "0123456789abcdef0123456789abcdef";
const READER: &str = "fedcba9876543210fedcba9876543210";

/// Five calls: three from 1009 (numbers 2001–2003 as remote), one out from
/// 1011 to 3001, one from another phone.
fn five_calls(service: &Service) {
    service.call(&["--local-number", "1009", "--remote-number", "2001"]);
    service.call(&[
        "--local-number",
        "1009",
        "--remote-number",
        "2002",
        "--remote-name",
        "Carol Smith",
    ]);
    service.call(&["--local-number", "1009", "--remote-number", "2003"]);
    service.call(&[
        "--local-number",
        "1011",
        "--remote-number",
        "3001",
        "--dir",
        "out",
    ]);
    service.call(&[
        "--device",
        "0015650000ff",
        "--local-number",
        "1012",
        "--remote-number",
        "1009",
    ]);
    service.wait_for_finished(5);
}

fn search_by_number_device_direction_date_and_text_with_paging() {
    let service = Service::start(Options::new(52000));
    five_calls(&service);
    let base = &service.base;
    let all = get(&format!("{base}/api/recordings")).json();
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 5);
    assert!(all["next_cursor"].is_null());
    // Newest first: the last call made is first.
    assert_eq!(all["recordings"][0]["local_number"], "1012");
    let started: Vec<&str> = all["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["started_at"].as_str().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]), "{started:?}");
    for item in all["recordings"].as_array().unwrap() {
        for field in [
            "recording_id",
            "session_id",
            "device",
            "direction",
            "local_number",
            "remote_number",
            "local_name",
            "remote_name",
            "codec",
            "started_at",
            "stopped_at",
            "duration_ms",
            "stop_reason",
            "complete",
            "sha256",
        ] {
            assert!(item.get(field).is_some(), "{field} missing in {item}");
        }
        assert_eq!(item["complete"], true);
        assert_eq!(item["codec"], "PCMA");
        assert!(item["duration_ms"].as_u64().unwrap() >= 900, "{item}");
    }

    let search = |query: &str| get(&format!("{base}/api/recordings?{query}")).json();
    // `number` matches the local or the remote number.
    let by_1009 = search("number=1009");
    assert_eq!(ids(&by_1009).len(), 4, "{by_1009}");
    assert_eq!(ids(&search("number=2002")).len(), 1);
    assert_eq!(ids(&search("number=200")).len(), 0, "number is exact");
    // Device in any common spelling.
    assert_eq!(ids(&search("device=00:15:65:00:00:FF")).len(), 1);
    assert_eq!(ids(&search("device=001565aabbcc")).len(), 4);
    assert_eq!(ids(&search("direction=out")).len(), 1);
    assert_eq!(ids(&search("direction=in&number=1009")).len(), 4);
    // Free text: part of a number or a name, any case.
    assert_eq!(ids(&search("q=carol")).len(), 1);
    assert_eq!(ids(&search("q=200")).len(), 3);
    assert_eq!(
        ids(&search("q=no%25such_")).len(),
        0,
        "wildcards are literal"
    );
    // Dates: today's calls are within today, none tomorrow.
    let today = &started[0][..10];
    assert_eq!(ids(&search(&format!("from={today}&to={today}"))).len(), 5);
    assert_eq!(ids(&search("to=2000-01-01")).len(), 0);
    assert!(!ids(&search(&format!("from={}", started[0]))).is_empty());
    // A session id found by free text.
    let session = all["recordings"][2]["session_id"].as_str().unwrap();
    assert_eq!(
        ids(&search(&format!("q={session}"))),
        vec![all_ids[2].clone()]
    );

    // Paging with a cursor visits every recording once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = search(&format!("limit=2{cursor}"));
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all_ids);
    // Paging combined with a number filter.
    let first = search("number=1009&limit=3");
    let next = first["next_cursor"].as_str().unwrap();
    let rest = search(&format!("number=1009&limit=3&cursor={next}"));
    assert_eq!(ids(&rest).len(), 1);
    assert!(rest["next_cursor"].is_null());
}

fn bad_parameters_are_400_with_a_message_and_unknown_ids_404() {
    let service = Service::start(Options::new(52050));
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    for (query, words) in [
        ("limit=0", "limit=\"0\" is not a number from 1 to 1000"),
        ("limit=1001", "from 1 to 1000"),
        ("limit=ten", "\"ten\""),
        (
            "direction=sideways",
            "direction=\"sideways\" is neither in nor out",
        ),
        ("from=yesterday", "from=\"yesterday\" is not a date"),
        ("to=2026-02-30", "to=\"2026-02-30\""),
        ("from=2026-12-02&to=2026-12-01", "from is not before to"),
        ("cursor=abc", "cursor \"abc\""),
        ("device=phone-7", "device=\"phone-7\" is not a MAC address"),
        ("colour=blue", "unknown field `colour`"),
        (
            &format!("q={}", "x".repeat(200)),
            "q is 200 bytes long; at most 128",
        ),
        ("device=hello", "device=\"hello\" is not a MAC address"),
        ("device=..%2F", "device=\"../\" is not a MAC address"),
        ("q=%00", "q=\"\\0\" holds a control character"),
        (
            "number=12%0A34",
            "number=\"12\\n34\" holds a control character",
        ),
        ("limit=%2B5", "limit=\"+5\" is not a number"),
        ("limit=%205%20", "limit=\" 5 \" is not a number"),
    ] {
        let answer = get(&format!("{base}/api/recordings?{query}"));
        assert_eq!(answer.status, 400, "{query}");
        assert!(
            answer.error().contains(words),
            "{query}: {}",
            answer.error()
        );
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        ("GET", format!("/api/recordings/{unknown}")),
        ("GET", format!("/api/recordings/{unknown}/audio")),
        ("DELETE", format!("/api/recordings/{unknown}")),
        ("PUT", format!("/api/recordings/{unknown}/hold")),
    ] {
        let answer = http(method, &format!("{base}{path}"), &[]);
        assert_eq!(answer.status, 404, "{method} {path}");
        assert_eq!(answer.error(), format!("no recording \"{unknown}\""));
    }
    let answer = get(&format!("{base}/api/recordings/not-an-id!"));
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("is not one"), "{}", answer.error());
    // Not UTF-8: the same JSON answer, for every route with an id.
    for path in ["/api/recordings/%FF", "/api/recordings/%FF/audio"] {
        let answer = get(&format!("{base}{path}"));
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert!(
            answer.error().contains("UTF-8"),
            "{path}: {}",
            answer.error()
        );
    }
    let id = service.newest_id();
    for (query, words) in [
        (
            "format=mp3",
            "format=\"mp3\" is none of wav, pcm16, rec, opus, flac",
        ),
        ("download=maybe", "neither true nor false"),
        ("speed=2", "unknown field `speed`"),
    ] {
        let answer = get(&format!("{base}/api/recordings/{id}/audio?{query}"));
        assert_eq!(answer.status, 400, "{query}");
        assert!(
            answer.error().contains(words),
            "{query}: {}",
            answer.error()
        );
    }
    // The server records WAV only here: no container to give.
    let answer = get(&format!("{base}/api/recordings/{id}/audio?format=rec"));
    assert_eq!(answer.status, 404);
    assert!(
        answer.error().contains("no phone container"),
        "{}",
        answer.error()
    );
    assert_eq!(get(&format!("{base}/no/such/page")).status, 404);
}

fn audio_is_the_stored_wav_byte_for_byte_with_ranges_and_pcm16_matches_ffmpeg() {
    let service = Service::start(Options::new(52100));
    service.call(&["--seconds", "3"]);
    service.wait_for_finished(1);
    let base = &service.base;
    let item = &get(&format!("{base}/api/recordings")).json()["recordings"][0];
    let id = item["recording_id"].as_str().unwrap().to_owned();
    let meta = get(&format!("{base}/api/recordings/{id}")).json();
    let wav_rel = meta["sidecar"]["files"][0]["path"].as_str().unwrap();
    let wav_path = service.recordings_dir().join(wav_rel);
    let stored = std::fs::read(&wav_path).unwrap();
    assert_eq!(meta["sidecar"]["recording_id"], id.as_str());
    assert!(meta["sidecar"]["packets_received"].as_u64().unwrap() >= 100);

    let url = format!("{base}/api/recordings/{id}/audio");
    let full = get(&url);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, stored);
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("content-type"), Some("audio/wav"));
    let sha = format!("{:x}", Sha256::digest(&stored));
    assert_eq!(item["sha256"], sha.as_str());
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));

    let len = stored.len();
    for (range, start, end) in [
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, len),
        ("bytes=-50", len - 50, len),
        ("bytes=1000-1000", 1000, 1001),
        (&format!("bytes={}-{}", len - 10, len + 500), len - 10, len),
    ] {
        let part = http("GET", &url, &[("Range", range)]);
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, &stored[start..end], "{range}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {start}-{}/{len}", end - 1).as_str()),
            "{range}"
        );
    }
    // Ignored ranges give the whole file; a range past the end is 416.
    assert_eq!(http("GET", &url, &[("Range", "bytes=50-10")]).status, 200);
    assert_eq!(
        http("GET", &url, &[("Range", "bytes=0-1,5-9")]).body,
        stored
    );
    let past = http("GET", &url, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    // PCM16 for browsers: the same samples ffmpeg decodes from the A-law WAV.
    let pcm = get(&format!("{url}?format=pcm16"));
    assert_eq!(pcm.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.wav");
    std::fs::write(&ours, &pcm.body).unwrap();
    let decode = |path: &std::path::Path| {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(["-f", "s16le", "-acodec", "pcm_s16le", "-"])
            .output()
            .expect("ffmpeg (apt-get install ffmpeg)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let reference = decode(&wav_path);
    assert_eq!(
        &pcm.body[44..],
        &reference[..],
        "our PCM16 data is ffmpeg's decoding"
    );
    assert_eq!(decode(&ours), reference, "ffmpeg reads our PCM16 WAV");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ])
        .arg(&ours)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "pcm_s16le,8000,1"
    );
    // Any range of the PCM16 file is that slice of the whole, odd offsets too.
    let pcm_len = pcm.body.len();
    for (start, end) in [(0, 10), (40, 51), (45, 1045), (1001, pcm_len)] {
        let part = http(
            "GET",
            &format!("{url}?format=pcm16"),
            &[("Range", &format!("bytes={start}-{}", end - 1))],
        );
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &pcm.body[start..end], "{start}-{end}");
    }
    // HEAD says the length and reads nothing (not audited below).
    let head = http("HEAD", &url, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert!(head.body.is_empty());
    // A download names the file.
    let download = get(&format!("{url}?download=1"));
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}.wav\"").as_str())
    );
    // Playback from the start is audited; a seek (a later range) is not.
    let audit = std::fs::read_to_string(service.recordings.audit_path()).unwrap();
    let count = |action: &str| {
        audit
            .lines()
            .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
            .count()
    };
    // From byte 0: the whole file, bytes=0-99, the two ignored ranges, the
    // PCM16 file and its bytes=0-9 are played; the download is one.
    assert_eq!(count("play"), 6, "{audit}");
    assert_eq!(count("download"), 1, "{audit}");
    assert_eq!(audit.matches("\"detail\":\"format pcm16\"").count(), 2);
    assert!(service.recordings.verify_audit().is_ok());
}

fn delete_and_legal_hold() {
    let service = Service::start(Options::new(52150));
    service.call(&["--remote-number", "4001"]);
    service.call(&["--remote-number", "4002"]);
    service.wait_for_finished(2);
    let base = &service.base;
    let all = get(&format!("{base}/api/recordings")).json();
    let (newer, older) = (ids(&all)[0].clone(), ids(&all)[1].clone());
    let files: Vec<std::path::PathBuf> = {
        let meta = get(&format!("{base}/api/recordings/{older}")).json();
        let wav = meta["sidecar"]["files"][0]["path"]
            .as_str()
            .unwrap()
            .to_owned();
        let dir = service.recordings_dir();
        vec![dir.join(&wav), dir.join(wav.replace(".wav", ".json"))]
    };
    assert!(files.iter().all(|f| f.exists()));

    // On hold: not deletable, and it says so.
    let hold = http("PUT", &format!("{base}/api/recordings/{older}/hold"), &[]);
    assert_eq!(hold.status, 200);
    assert_eq!(hold.json()["hold"], true);
    assert_eq!(
        get(&format!("{base}/api/recordings/{older}")).json()["hold"],
        true
    );
    let refused = http("DELETE", &format!("{base}/api/recordings/{older}"), &[]);
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.error(),
        format!("recording {older} is on legal hold")
    );
    assert!(files.iter().all(|f| f.exists()));

    // Released, it goes, files and all.
    assert_eq!(
        http(
            "DELETE",
            &format!("{base}/api/recordings/{older}/hold"),
            &[]
        )
        .status,
        200
    );
    let deleted = http("DELETE", &format!("{base}/api/recordings/{older}"), &[]);
    assert_eq!(
        deleted.status,
        200,
        "{}",
        String::from_utf8_lossy(&deleted.body)
    );
    assert!(files.iter().all(|f| !f.exists()));
    assert_eq!(get(&format!("{base}/api/recordings/{older}")).status, 404);
    assert_eq!(
        ids(&get(&format!("{base}/api/recordings")).json()),
        vec![newer.clone()]
    );

    let actions = audit_summary(service.recordings.audit_path());
    assert_eq!(
        actions,
        vec![
            format!("hold {older} loopback"),
            format!("release {older} loopback"),
            format!("delete {older} loopback"),
        ]
    );
    let verify = get(&format!("{base}/api/audit/verify")).json();
    assert_eq!(verify["valid"], true);
    assert_eq!(verify["entries"], 3);
    assert_eq!(verify["anchored"], true);
}

fn a_running_recording_cannot_be_deleted() {
    let service = Service::start(Options::new(52200));
    let control = service.control.to_string();
    let mut phone = Command::new(common::example_path("phone_sim"))
        .args(["--server", &control, "--seconds", "30", "--speed", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = service.base.clone();
    let deadline = std::time::Instant::now() + core::time::Duration::from_secs(10);
    let id = loop {
        service.recordings.flush();
        let page = get(&format!("{base}/api/recordings")).json();
        if let Some(first) = page["recordings"].as_array().unwrap().first() {
            assert_eq!(first["running"], true);
            assert!(first["stopped_at"].is_null());
            break first["recording_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the call never showed up"
        );
        std::thread::sleep(core::time::Duration::from_millis(50));
    };
    let refused = http("DELETE", &format!("{base}/api/recordings/{id}"), &[]);
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error(), format!("recording {id} is still running"));
    // Its audio is already there, growing.
    let partial = get(&format!("{base}/api/recordings/{id}/audio?format=pcm16"));
    assert_eq!(
        partial.status,
        200,
        "{}",
        String::from_utf8_lossy(&partial.body)
    );
    assert!(partial.body.len() >= 44);
    phone.kill().unwrap();
    phone.wait().unwrap();
    service.wait_for_finished(1);
    let done = get(&format!("{base}/api/recordings/{id}")).json();
    assert_eq!(done["running"], false);
    assert_eq!(done["stop_reason"], "control connection lost");
    assert_eq!(
        http("DELETE", &format!("{base}/api/recordings/{id}"), &[]).status,
        200
    );
}

fn tokens_read_and_admin_401_and_403() {
    let tokens: &'static str =
        Box::leak(format!("admin alice {ADMIN}\nread supervisor {READER}\n").into_boxed_str());
    let mut options = Options::new(52250);
    options.tokens = Some(tokens);
    let service = Service::start(options);
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let url = format!("{base}/api/recordings");

    let none = get(&url);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert!(none.error().contains("an API token is needed"));
    let wrong = http(
        "GET",
        &url,
        &[("Authorization", "Bearer 00000000000000000000")],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.error().contains("not known"), "{}", wrong.error());
    assert_eq!(get(&format!("{base}/metrics")).status, 401);

    let reader = format!("Bearer {READER}");
    let page = http("GET", &url, &[("Authorization", &reader)]);
    assert_eq!(page.status, 200);
    let id = ids(&page.json())[0].clone();
    // A token in a cookie is not taken (scripts could read such a cookie).
    let token_cookie = format!("callrec_token={READER}");
    assert_eq!(http("GET", &url, &[("Cookie", &token_cookie)]).status, 401);
    // Signing in exchanges the token for a session cookie: HttpOnly,
    // SameSite=Strict, Path=/, holding a random id, not the token.
    let session_url = format!("{base}/api/session");
    let signed_in = http("POST", &session_url, &[("Authorization", &reader)]);
    assert_eq!(signed_in.status, 200, "{}", signed_in.error());
    assert_eq!(signed_in.json()["role"], "read");
    let set_cookie = signed_in.header("set-cookie").unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(READER) && !set_cookie.contains("Secure"),
        "{set_cookie}"
    );
    let pair = set_cookie.split(';').next().unwrap();
    let (name, session_id) = pair.split_once('=').unwrap();
    assert_eq!((name, session_id.len()), ("callrec_session", 64));
    let cookie = format!("theme=dark; {pair}");
    assert_eq!(http("GET", &url, &[("Cookie", &cookie)]).status, 200);
    let me = http("GET", &session_url, &[("Cookie", &cookie)]).json();
    assert_eq!(
        (me["name"].as_str(), me["session"].as_bool()),
        (Some("supervisor"), Some(true))
    );
    // A proxy's Basic credentials do not hide the session.
    let basic = [
        ("Cookie", cookie.as_str()),
        ("Authorization", "Basic dXNlcjpwYXNz"),
    ];
    assert_eq!(http("GET", &url, &basic).status, 200);
    // Behind HTTPS the cookie is Secure.
    let over_https = http(
        "POST",
        &session_url,
        &[("Authorization", &reader), ("X-Forwarded-Proto", "https")],
    );
    assert!(
        over_https
            .header("set-cookie")
            .unwrap()
            .contains("; Secure")
    );
    // Signing in needs a known token; signing out ends the session.
    let wrong_sign_in = http(
        "POST",
        &session_url,
        &[("Authorization", "Bearer 00000000000000000000")],
    );
    assert_eq!(wrong_sign_in.status, 401);
    assert!(wrong_sign_in.header("set-cookie").is_none());
    let out = http("DELETE", &session_url, &[("Cookie", &cookie)]);
    assert_eq!(out.json()["signed_out"], true);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let ended = http("GET", &url, &[("Cookie", &cookie)]);
    assert_eq!(ended.status, 401);
    assert!(ended.error().contains("sign in again"), "{}", ended.error());
    assert_eq!(
        http(
            "GET",
            &format!("{base}/api/session"),
            &[("Authorization", &reader)]
        )
        .json()["role"],
        "read"
    );
    for (method, path) in [
        ("DELETE", format!("/api/recordings/{id}")),
        ("PUT", format!("/api/recordings/{id}/hold")),
        ("GET", "/api/audit/verify".to_owned()),
    ] {
        let answer = http(
            method,
            &format!("{base}{path}"),
            &[("Authorization", &reader)],
        );
        assert_eq!(answer.status, 403, "{method} {path}");
        assert!(
            answer
                .error()
                .contains("\"supervisor\" has the role read; this needs the role admin"),
            "{}",
            answer.error()
        );
    }
    let admin = format!("Bearer {ADMIN}");
    let held = http(
        "PUT",
        &format!("{base}/api/recordings/{id}/hold"),
        &[("Authorization", &admin)],
    );
    assert_eq!(held.status, 200);
    // The audit log names the token's owner and the client.
    let audit = std::fs::read_to_string(service.recordings.audit_path()).unwrap();
    assert!(
        audit.contains("\"actor\":\"alice\",\"address\":\"127.0.0.1:"),
        "{audit}"
    );
    // Health needs no token (load balancers ask it).
    let health = get(&format!("{base}/healthz"));
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    // The page itself is public; its data is not.
    assert_eq!(get(&format!("{base}/")).status, 200);
}

fn without_tokens_the_api_only_binds_to_loopback_and_bind_errors_name_the_address() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let recordings =
        callrec_recordings::Recordings::open(callrec_recordings::Settings::new(dir.path()))
            .unwrap();
    runtime.block_on(async {
        let open = callrec_recordings::HttpApi::bind(
            "0.0.0.0:0".parse().unwrap(),
            None,
            recordings.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            open.starts_with("cannot serve the HTTP API on 0.0.0.0:0: without API tokens"),
            "{open}"
        );
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let busy = callrec_recordings::HttpApi::bind(addr, None, recordings.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            busy.starts_with(&format!("cannot serve the HTTP API on {addr}: ")),
            "{busy}"
        );
        assert!(busy.to_lowercase().contains("in use"), "{busy}");
    });
}

fn metrics_count_recordings_refusals_packets_and_each_phone_last_call() {
    let service = Service::start(Options::new(52300));
    service.call(&["--device", "00156500000a"]);
    service.call(&["--device", "00156500000b"]);
    service.wait_for_finished(2);
    let text = String::from_utf8(get(&format!("{}/metrics", service.base)).body).unwrap();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("callrec_recordings_started_total"), 2);
    assert_eq!(value("callrec_recordings_finished_total"), 2);
    assert_eq!(value("callrec_recordings_active"), 0);
    assert_eq!(value("callrec_recordings_stored"), 2);
    assert_eq!(value("callrec_rtp_packets_received_total"), 100);
    assert_eq!(value("callrec_rtp_packets_lost_total"), 0);
    assert_eq!(value("callrec_audio_bytes_written_total"), 16_000);
    assert!(value("callrec_disk_free_bytes") > 0);
    assert_eq!(
        value("callrec_start_refused_total{reason=\"not_allowed\"}"),
        0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for device in ["00156500000a", "00156500000b"] {
        let last = value(&format!(
            "callrec_device_last_recording_timestamp_seconds{{device=\"{device}\"}}"
        ));
        assert!(now - last < 60, "{device}: {last} vs {now}");
    }
    assert!(text.contains("# TYPE callrec_start_refused_total counter"));
}

fn healthz_is_503_naming_the_index_when_it_cannot_be_read() {
    let service = Service::start(Options::new(52800));
    service.call(&[]);
    service.wait_for_finished(1);
    let health = get(&format!("{}/healthz", service.base));
    assert_eq!(health.status, 200);
    assert!(health.json()["free_bytes"].as_u64().unwrap() > 0);
    // Break the index under the running server, as a damaged or replaced
    // file would: its table is gone.
    let index = std::path::PathBuf::from(service.recordings.index_location());
    rusqlite::Connection::open(&index)
        .unwrap()
        .execute_batch("DROP TABLE recordings")
        .unwrap();
    let health = get(&format!("{}/healthz", service.base));
    assert_eq!(health.status, 503, "{}", health.error());
    let expected = format!("the index {} cannot be read", index.display());
    assert_eq!(health.error(), expected);
    // Searches fail loudly too, naming the file and SQLite's reason.
    let search = get(&format!("{}/api/recordings", service.base));
    assert_eq!(search.status, 500);
    assert!(
        search.error().contains(&index.display().to_string())
            && search.error().contains("no such table: recordings"),
        "{}",
        search.error()
    );
}

fn refusals_are_counted_by_reason() {
    let mut options = Options::new(52350);
    options.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let service = Service::start(options);
    let control = service.control.to_string();
    let out = common::run_example(
        "phone_sim",
        &[&"--server", &control, &"--speed", &"0", &"--seconds", &"1"],
    );
    assert!(!out.status.success(), "the phone is refused");
    let text = String::from_utf8(get(&format!("{}/metrics", service.base)).body).unwrap();
    assert!(
        text.contains("callrec_start_refused_total{reason=\"not_allowed\"} 1"),
        "{text}"
    );
}

/// One request over a raw TCP connection, for headers a client library
/// sets itself (`Host`): the status and the answer's text.
fn raw_request(base: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

/// DNS rebinding: a page on another domain that resolves to 127.0.0.1
/// sends its own name as `Host`; in loopback mode only loopback names are
/// served. A state change from another origin is refused in every mode,
/// and the recording stays.
fn loopback_mode_serves_only_loopback_hosts_and_state_changes_only_its_own_origin() {
    let service = Service::start(Options::new(52850));
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let port = base.rsplit(':').next().unwrap();
    let id = service.newest_id();

    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1.nip.io",
    ] {
        let (status, answer) =
            raw_request(base, "GET", "/api/recordings", &[&format!("Host: {host}")]);
        assert_eq!(status, 421, "{answer}");
        assert!(
            answer.contains(&format!("Host \\\"{host}\\\" is not a loopback name")),
            "{answer}"
        );
        assert!(answer.contains("application/json"), "{answer}");
        let (status, _) = raw_request(
            base,
            "DELETE",
            &format!("/api/recordings/{id}"),
            &[&format!("Host: {host}")],
        );
        assert_eq!(status, 421);
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".into(),
    ] {
        let (status, answer) =
            raw_request(base, "GET", "/api/recordings", &[&format!("Host: {host}")]);
        assert_eq!(status, 200, "{host}: {answer}");
    }

    // A same-origin fetch from another port's page, and a cross-site one.
    let url = format!("{base}/api/recordings/{id}");
    let other = http("DELETE", &url, &[("Origin", "http://127.0.0.1:1")]);
    assert_eq!(other.status, 403);
    assert!(
        other
            .error()
            .contains("origin \"http://127.0.0.1:1\" is refused"),
        "{}",
        other.error()
    );
    let cross = http(
        "PUT",
        &format!("{url}/hold"),
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(cross.status, 403);
    assert!(
        cross.error().contains("Sec-Fetch-Site \"cross-site\""),
        "{}",
        cross.error()
    );
    assert_eq!(get(&url).json()["hold"], false);
    assert_eq!(get(&url).status, 200, "the recording is still there");
    // The page's own origin may.
    let own = http(
        "DELETE",
        &url,
        &[("Origin", base.as_str()), ("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(own.status, 200, "{}", own.error());
    assert_eq!(get(&url).status, 404);
}

/// The page may not be framed and runs no inline script; no answer is
/// sniffed; recordings, metadata, metrics and health are never cached.
fn security_headers_on_the_page_the_api_and_audio() {
    let service = Service::start(Options::new(52900));
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let id = service.newest_id();
    let page = get(&format!("{base}/"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    for path in [
        "/api/recordings".to_owned(),
        format!("/api/recordings/{id}"),
        format!("/api/recordings/{id}/audio"),
        "/api/recordings/nosuch".to_owned(),
        "/metrics".to_owned(),
        "/healthz".to_owned(),
        "/no/such/endpoint".to_owned(),
    ] {
        let answer = get(&format!("{base}{path}"));
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(
            answer
                .header("content-security-policy")
                .unwrap()
                .contains("sandbox"),
            "{path}"
        );
    }
}

/// Whether the server has closed `stream` (a read sees the end or an
/// error) without waiting more than a moment.
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(core::time::Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (408 or the like) before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Connections that send nothing, trickle a request head, or idle after
/// an answer are closed after the request-head timeout; connections past
/// the per-address limit are closed at once; the API still answers.
fn slow_idle_and_surplus_connections_are_closed() {
    use std::io::Write;
    use std::net::TcpStream;
    let mut options = Options::new(52980);
    options.settings = Box::new(|settings| {
        settings.http_limits.request_head_timeout = core::time::Duration::from_secs(1);
        settings.http_limits.max_connections_per_address = 20;
    });
    let service = Service::start(options);
    let address = service.base.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    // 10 silent, 10 trickling a byte of a request head on every poll (each
    // poll reads all 20 for up to 20 ms apiece).
    let mut silent: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let mut trickling: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    // The limit is reached: one more from this address is closed at once.
    let mut surplus = TcpStream::connect(&address).unwrap();
    callrec_test::wait_until(
        "the 21st connection closed",
        core::time::Duration::from_secs(5),
        || closed_by_server(&mut surplus),
    );
    assert!(
        started.elapsed() < core::time::Duration::from_millis(900),
        "the surplus connection was not refused at once ({:?})",
        started.elapsed()
    );
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let mut sent = 0;
    callrec_test::wait_until(
        "the slow connections closed",
        core::time::Duration::from_secs(10),
        || {
            if sent < head.len() {
                for stream in &mut trickling {
                    let _ = stream.write_all(&head[sent..=sent]);
                }
                sent += 1;
            }
            silent
                .iter_mut()
                .chain(trickling.iter_mut())
                .all(closed_by_server)
        },
    );
    let waited = started.elapsed();
    assert!(
        waited >= core::time::Duration::from_millis(900),
        "closed before the timeout: {waited:?}"
    );
    // A client that asked once and then idles is closed too.
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    callrec_test::wait_until(
        "the idle keep-alive connection closed",
        core::time::Duration::from_secs(10),
        || closed_by_server(&mut idle),
    );
    // The slots are free again: the API answers.
    assert_eq!(get(&format!("{}/healthz", service.base)).status, 200);
}

/// An audit log replaced while the service runs is noticed: the check
/// says so (the new file alone would verify), nothing more is written to
/// either file, audited requests are `503`, and `/metrics` shows it.
fn an_audit_log_replaced_under_the_service_refuses_audited_requests() {
    let service = Service::start(Options::new(53900));
    service.call(&[]);
    service.wait_for_finished(1);
    let base = &service.base;
    let id = service.newest_id();
    let audio = format!("{base}/api/recordings/{id}/audio");
    assert_eq!(get(&audio).status, 200);
    let path = service.recordings.audit_path().to_owned();
    let replacement = path.with_extension("new");
    std::fs::write(&replacement, "").unwrap();
    std::fs::rename(&replacement, &path).unwrap();

    let verify = get(&format!("{base}/api/audit/verify")).json();
    assert_eq!(verify["valid"], false);
    assert!(
        verify["error"].as_str().unwrap().contains("replaced"),
        "{verify}"
    );
    let refused = get(&audio);
    assert_eq!(refused.status, 503);
    assert!(refused.error().contains("audit log"), "{}", refused.error());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).unwrap();
    assert!(metrics.contains("\ncallrec_audit_broken 1\n"), "{metrics}");
    // Reading what is not audited goes on.
    assert_eq!(get(&format!("{base}/api/recordings")).status, 200);
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFMPEG, FFPROBE, Test, run_tests};
    run_tests(vec![
        Test::new(
            "search_by_number_device_direction_date_and_text_with_paging",
            search_by_number_device_direction_date_and_text_with_paging,
        ),
        Test::new(
            "bad_parameters_are_400_with_a_message_and_unknown_ids_404",
            bad_parameters_are_400_with_a_message_and_unknown_ids_404,
        ),
        Test::new(
            "audio_is_the_stored_wav_byte_for_byte_with_ranges_and_pcm16_matches_ffmpeg",
            audio_is_the_stored_wav_byte_for_byte_with_ranges_and_pcm16_matches_ffmpeg,
        )
        .needs(&[FFMPEG, FFPROBE]),
        Test::new("delete_and_legal_hold", delete_and_legal_hold),
        Test::new(
            "a_running_recording_cannot_be_deleted",
            a_running_recording_cannot_be_deleted,
        ),
        Test::new(
            "tokens_read_and_admin_401_and_403",
            tokens_read_and_admin_401_and_403,
        ),
        Test::new(
            "without_tokens_the_api_only_binds_to_loopback_and_bind_errors_name_the_address",
            without_tokens_the_api_only_binds_to_loopback_and_bind_errors_name_the_address,
        ),
        Test::new(
            "metrics_count_recordings_refusals_packets_and_each_phone_last_call",
            metrics_count_recordings_refusals_packets_and_each_phone_last_call,
        ),
        Test::new(
            "healthz_is_503_naming_the_index_when_it_cannot_be_read",
            healthz_is_503_naming_the_index_when_it_cannot_be_read,
        ),
        Test::new(
            "refusals_are_counted_by_reason",
            refusals_are_counted_by_reason,
        ),
        Test::new(
            "loopback_mode_serves_only_loopback_hosts_and_state_changes_only_its_own_origin",
            loopback_mode_serves_only_loopback_hosts_and_state_changes_only_its_own_origin,
        ),
        Test::new(
            "security_headers_on_the_page_the_api_and_audio",
            security_headers_on_the_page_the_api_and_audio,
        ),
        Test::new(
            "slow_idle_and_surplus_connections_are_closed",
            slow_idle_and_surplus_connections_are_closed,
        ),
        Test::new(
            "an_audit_log_replaced_under_the_service_refuses_audited_requests",
            an_audit_log_replaced_under_the_service_refuses_audited_requests,
        ),
    ])
}
