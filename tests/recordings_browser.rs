//! The web page in a real headless Chromium, driven through ChromeDriver
//! (W3C WebDriver): search, open a call, play it, seek in it.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them); with `CI=true` their absence fails the test. Set
//! `CALLREC_SCREENSHOT=FILE` to save a screenshot of the page.

mod common;

use core::time::Duration;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::service::{Options, Service};
use serde_json::{Value, json};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    url: String,
    agent: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser<'a> {
    driver: &'a Driver,
    session: String,
}

impl Driver {
    fn start() -> Option<Self> {
        if !callrec_test::have_tool("chromedriver", "--version")
            || !callrec_test::have_tool("chromium", "--version")
        {
            assert!(
                std::env::var("CI").is_err(),
                "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: no chromium/chromedriver");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .agent
                .get(format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return Some(driver);
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .unwrap();
        let status = response.status();
        let value: Value = response.body_mut().read_json().unwrap();
        assert!(status.is_success(), "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn browser(&self) -> Browser<'_> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            "--window-size=1280,820",
        ];
        let session = self.send(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
            }}})),
        );
        Browser {
            driver: self,
            session: session["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .agent
            .delete(format!("{}/session/{}", self.driver.url, self.session))
            .call();
    }
}

impl Browser<'_> {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .send(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let found = self.send(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.send("POST", &format!("/element/{id}/click"), None);
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.send("POST", &format!("/element/{id}/clear"), None);
        self.send(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn run(&self, script: &str) -> Value {
        self.send(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns true.
    fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.run(script) != Value::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}; page status: {}",
                self.run("return document.getElementById('status').textContent")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rows(&self) -> u64 {
        self.run("return document.querySelectorAll('#results tbody tr').length")
            .as_u64()
            .unwrap()
    }

    /// Waits until the results table has `n` rows.
    fn wait_for_rows(&self, what: &str, n: usize) {
        self.wait_for(
            what,
            &format!("return document.querySelectorAll('#results tbody tr').length === {n}"),
        );
    }

    fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let data = self.send("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap()
    }
}

fn search_play_and_seek_in_headless_chromium() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let service = Service::start(Options::new(52700));
    service.call(&[
        "--seconds",
        "8",
        "--remote-number",
        "6001",
        "--remote-name",
        "Erin",
    ]);
    service.call(&["--remote-number", "6002", "--remote-name", "Dora Diaz"]);
    service.call(&[
        "--device",
        "0015650000cc",
        "--remote-number",
        "6003",
        "--dir",
        "out",
    ]);
    service.wait_for_finished(3);

    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.wait_for_rows("the newest calls", 3);
    assert_eq!(
        browser.run("return document.getElementById('who').textContent"),
        "loopback (admin)"
    );
    assert_eq!(
        browser.run("return document.getElementById('token-form').offsetParent === null"),
        true,
        "no sign-in form without tokens"
    );

    // Search by number.
    browser.type_into("#number", "6001");
    browser.click("#search");
    browser.wait_for_rows("one result", 1);
    let remote = browser
        .run("return document.querySelector('#results tbody tr td:nth-child(5)').textContent");
    assert_eq!(remote, "6001 Erin");

    // Open it: details and the player.
    browser.click("#results tbody tr");
    browser.wait_for("the details", "return !document.getElementById('details').hidden && document.getElementById('facts').textContent.includes('Packets')");
    let facts = browser.run("return document.getElementById('facts').textContent");
    assert!(facts.as_str().unwrap().contains("0 lost"), "{facts}");
    assert!(
        facts.as_str().unwrap().contains("stop request: call ended"),
        "{facts}"
    );
    // Opening a recording is not playing it: the audit log has no line.
    let audio_lines = || {
        std::fs::read_to_string(service.recordings.audit_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"action\":\"play\"") || l.contains("\"action\":\"download\""))
            .count()
    };
    assert_eq!(audio_lines(), 0, "opening the details logged audio");

    // Play: the browser reads the PCM16 WAV, knows its length, and plays.
    let played = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; const a = document.getElementById('player'); \
            a.play().then(() => done('playing')).catch(e => done('error: ' + e));", "args": []})),
    );
    assert_eq!(played, "playing");
    browser.wait_for(
        "playback to advance",
        "return document.getElementById('player').currentTime > 0.3",
    );
    // The playback is one line.
    assert_eq!(audio_lines(), 1, "one playback");
    let duration = browser
        .run("return document.getElementById('player').duration")
        .as_f64()
        .unwrap();
    assert!((duration - 8.0).abs() < 0.1, "the player says {duration} s");

    // Seek to 6 s: playback goes on from there.
    browser.run("document.getElementById('player').currentTime = 6.0; return true");
    browser.wait_for(
        "playback after the seek",
        "const a = document.getElementById('player'); return !a.seeking && a.currentTime > 6.2 && !a.paused",
    );
    let position = browser
        .run("return document.getElementById('player').currentTime")
        .as_f64()
        .unwrap();
    assert!(
        (6.2..8.0).contains(&position),
        "at {position} s after seeking to 6 s"
    );
    let buffered = browser.run("const b = document.getElementById('player').seekable; return b.length > 0 && b.end(0) > 7.9");
    assert_eq!(buffered, true, "the whole call is seekable");

    // The page's own state changes pass the origin check (the browser sends
    // its Origin and Sec-Fetch-Site) under the page's CSP: hold, release.
    browser.click("#hold");
    browser.wait_for(
        "the hold",
        "return document.getElementById('hold').textContent === 'Release hold'",
    );
    browser.click("#hold");
    browser.wait_for(
        "the release",
        "return document.getElementById('hold').textContent === 'Legal hold'",
    );

    // Free text and device searches.
    browser.type_into("#number", "");
    browser.type_into("#q", "dora");
    browser.click("#search");
    browser.wait_for_rows("the free-text result", 1);
    browser.type_into("#q", "");
    browser.type_into("#device", "00:15:65:00:00:CC");
    browser.click("#search");
    browser.wait_for("the device's call", "const r = document.querySelectorAll('#results tbody tr'); return r.length === 1 && r[0].textContent.includes('6003')");
    browser.type_into("#device", "");
    browser.run("document.getElementById('to').value = '2000-01-01'; return true");
    browser.click("#search");
    browser.wait_for(
        "no results before 2000",
        "return document.getElementById('status').textContent === 'No recordings match.'",
    );
    assert_eq!(browser.rows(), 0);

    if let Ok(path) = std::env::var("CALLREC_SCREENSHOT") {
        browser.run("document.getElementById('to').value = ''; return true");
        browser.click("#search");
        browser.wait_for_rows("all calls", 3);
        browser.click("#results tbody tr:nth-child(3)");
        browser.wait_for(
            "the details",
            "return document.getElementById('facts').textContent.includes('Packets')",
        );
        std::fs::write(&path, browser.screenshot()).unwrap();
    }
}

fn with_tokens_the_page_asks_for_one_and_plays_with_it() {
    const TOKEN: &str = "d4f1c0a7e2b95836d4f1c0a7e2b95836";
    let Some(driver) = Driver::start() else {
        return;
    };
    let mut options = Options::new(52750);
    options.tokens = Some("read supervisor d4f1c0a7e2b95836d4f1c0a7e2b95836\n");
    let service = Service::start(options);
    service.call(&["--seconds", "2"]);
    service.wait_for_finished(1);
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.wait_for(
        "the sign-in form",
        "return document.getElementById('token-form').offsetParent !== null",
    );
    assert_eq!(browser.rows(), 0);
    browser.type_into("#token", TOKEN);
    browser.click("#token-form button");
    browser.wait_for_rows("the calls", 1);
    assert_eq!(
        browser.run("return document.getElementById('who').textContent"),
        "supervisor (read)"
    );
    browser.click("#results tbody tr");
    browser.wait_for(
        "the details",
        "return document.getElementById('facts').textContent.includes('Packets')",
    );
    // A reader gets no delete or hold buttons.
    assert_eq!(
        browser.run("return document.getElementById('delete').hidden && document.getElementById('hold').hidden"),
        true
    );
    // The session is an HttpOnly cookie: no script on the page sees it,
    // and the token is not kept anywhere a script can read.
    assert_eq!(browser.run("return document.cookie"), "");
    assert_eq!(
        browser.run("return document.getElementById('token').value"),
        ""
    );
    assert_eq!(
        browser.run("return document.getElementById('sign-out').hidden"),
        false
    );
    // The audio element sends the session cookie.
    let played = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; const a = document.getElementById('player'); \
            a.play().then(() => done(a.duration)).catch(e => done('error: ' + e));", "args": []})),
    );
    assert!((played.as_f64().unwrap() - 2.0).abs() < 0.1, "{played}");
    // Signing out ends the session: the page asks for a token again.
    browser.click("#sign-out");
    browser.wait_for(
        "the sign-in form after signing out",
        "return document.getElementById('token-form').offsetParent !== null",
    );
    assert_eq!(browser.rows(), 0);
}

/// A caller's name cannot trick the eye: bidirectional overrides show as
/// their code points (U+202E made "gnp.exe" read "exe.png"), and a long
/// name is cut with an ellipsis in the list (whole in its title) instead
/// of pushing the other columns off the screen.
fn names_with_bidi_overrides_or_200_characters_show_as_they_are() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let service = Service::start(Options::new(52950));
    let long = "W".repeat(200);
    service.call(&[
        "--seconds",
        "1",
        "--remote-number",
        "7001",
        "--remote-name",
        "gnp\u{202e}.exe",
    ]);
    service.call(&[
        "--seconds",
        "1",
        "--remote-number",
        "7002",
        "--remote-name",
        &long,
    ]);
    service.wait_for_finished(2);
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.wait_for_rows("the calls", 2);
    let cells = browser.run(
        "return Array.from(document.querySelectorAll('#results tbody td:nth-child(5)')).map(td => [td.textContent, td.title])",
    );
    let cells = cells.as_array().unwrap();
    let texts: Vec<&str> = cells.iter().map(|c| c[0].as_str().unwrap()).collect();
    assert!(texts.contains(&"7001 gnp<U+202E>.exe"), "{texts:?}");
    let cut = cells
        .iter()
        .find(|c| c[0].as_str().unwrap().starts_with("7002"))
        .unwrap();
    let shown = cut[0].as_str().unwrap();
    assert_eq!(shown.chars().count(), 32, "{shown}");
    assert!(shown.ends_with('\u{2026}'), "{shown}");
    assert_eq!(cut[1].as_str().unwrap(), format!("7002 {long}"));
    // The table fits the page: nothing is pushed off the screen.
    let fits = browser.run(
        "return document.getElementById('results').getBoundingClientRect().right <= document.documentElement.clientWidth",
    );
    assert_eq!(fits, true, "the list is wider than the page");
    // The details heading shows the override as well.
    browser.click("#results tbody tr:nth-child(2)");
    browser.wait_for(
        "the details of 7001",
        "return document.getElementById('title').textContent.includes('7001 gnp<U+202E>.exe')",
    );
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
/// A SIPREC recording in the page: found by the second participant's
/// number, its participants and channels shown, played, and its audio two
/// channels each with its party's signal (Web Audio decodes what the
/// player gets).
fn a_siprec_recording_shows_its_participants_and_plays_both_channels() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let mut options = Options::new(54300);
    options.sip = true;
    let service = Service::start(options);
    callrec_phone::siprec::two_party_session(
        service.sip.unwrap(),
        "page-1@127.0.0.1",
        callrec_phone::siprec::ALICE_AND_BOB,
        3.0,
    )
    .unwrap();
    service.wait_for_finished(1);
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.type_into("#number", "+4930222");
    browser.click("#search");
    browser.wait_for_rows("the SIPREC call", 1);
    let cells = browser.run(
        "return [...document.querySelectorAll('#results tbody tr td')].map(t => t.textContent)",
    );
    assert_eq!(cells[2], "SIPREC", "{cells}");
    assert_eq!(cells[3], "+4930111 Alice Example", "{cells}");
    assert_eq!(cells[4], "+4930222 Bob Example", "{cells}");
    browser.click("#results tbody tr");
    browser.wait_for(
        "the details",
        "return document.getElementById('facts').textContent.includes('Channel 2')",
    );
    let facts = browser.run("return document.getElementById('facts').textContent");
    let facts = facts.as_str().unwrap();
    for expected in [
        "sip:+4930111@example.com Alice Example",
        "sip:+4930222@example.com Bob Example",
        "left, stream a1: sip:+4930111@example.com (PCMA)",
        "right, stream b1: sip:+4930222@example.com (PCMU)",
    ] {
        assert!(facts.contains(expected), "{expected:?} not in {facts}");
    }
    let title = browser.run("return document.getElementById('title').textContent");
    assert_eq!(title, "SIPREC: Alice Example ↔ Bob Example");
    let played = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; const a = document.getElementById('player'); \
            a.play().then(() => done('playing')).catch(e => done('error: ' + e));", "args": []})),
    );
    assert_eq!(played, "playing");
    browser.wait_for(
        "playback to advance",
        "return document.getElementById('player').currentTime > 0.3",
    );
    let decoded = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; \
            fetch(document.getElementById('player').src).then(r => r.arrayBuffer()) \
            .then(b => new OfflineAudioContext(2, 8000, 8000).decodeAudioData(b)) \
            .then(a => { const rms = c => { const d = a.getChannelData(c); let s = 0; for (const x of d) s += x * x; return Math.sqrt(s / d.length); }; \
              done([a.numberOfChannels, rms(0), rms(1), a.duration]); }) \
            .catch(e => done('error: ' + e));", "args": []})),
    );
    let decoded = decoded.as_array().unwrap_or_else(|| panic!("{decoded}"));
    assert_eq!(decoded[0], 2, "{decoded:?}");
    for c in [1, 2] {
        let rms = decoded[c].as_f64().unwrap();
        assert!(rms > 0.1, "channel {c} is silent: {decoded:?}");
    }
    let seconds = decoded[3].as_f64().unwrap();
    assert!((2.7..3.6).contains(&seconds), "{seconds} s for a 3 s call");
}

/// A phone's USB recording, imported and archived as Ogg Opus, is found
/// by device and number, and plays in the page as the stored Opus.
fn an_imported_usb_recording_archived_as_opus_plays_in_the_page() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let mut options = Options::new(55250);
    options.settings = Box::new(|settings| {
        settings.archive.format = callrec_recordings::ArchiveFormat::Opus;
    });
    let service = Service::start(options);
    let usb = tempfile::tempdir().unwrap();
    let out = common::run_example(
        "phone_sim",
        &[
            &"--local",
            &usb.path(),
            &"--seconds",
            &"5",
            &"--max-file-size",
            &"30000",
        ],
    );
    common::stdout_of_success(&out);
    let mut request = callrec_recordings::ImportRequest::default();
    request.device = "00:15:65:12:34:56".into();
    request.local_number = "1009".into();
    request.remote_number = "2001".into();
    request.files = std::fs::read_dir(usb.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(request.files.len(), 2, "two parts");
    let imported = service
        .recordings
        .import(&request, &callrec_recordings::Actor::new("test", None))
        .unwrap();
    let id = imported[0].recording_id.clone();
    callrec_test::wait_until("the import archived", Duration::from_secs(60), || {
        service
            .recordings
            .get(&id)
            .unwrap()
            .is_some_and(|r| r.archive.is_some())
    });
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.type_into("#device", "00:15:65:12:34:56");
    browser.type_into("#number", "2001");
    browser.click("#search");
    browser.wait_for_rows("the imported call", 1);
    let cells = browser.run(
        "return [...document.querySelectorAll('#results tbody tr td')].map(t => t.textContent)",
    );
    assert_eq!(cells[2], "USB", "{cells}");
    browser.click("#results tbody tr");
    browser.wait_for(
        "the details",
        "return document.getElementById('facts').textContent.includes('Ogg Opus')",
    );
    let facts = browser.run("return document.getElementById('facts').textContent");
    assert!(
        facts
            .as_str()
            .unwrap()
            .contains("the phone's own recording (USB), imported"),
        "{facts}"
    );
    let src = browser.run("return document.getElementById('player').src");
    assert!(
        src.as_str().unwrap().ends_with("/audio"),
        "the stored Opus: {src}"
    );
    let played = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; const a = document.getElementById('player'); \
            a.play().then(() => done('playing')).catch(e => done('error: ' + e));", "args": []})),
    );
    assert_eq!(played, "playing");
    browser.wait_for(
        "playback to advance",
        "return document.getElementById('player').currentTime > 0.3",
    );
    let decoded = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; \
            fetch(document.getElementById('player').src).then(r => r.arrayBuffer()) \
            .then(b => new OfflineAudioContext(1, 48000, 48000).decodeAudioData(b)) \
            .then(a => { const d = a.getChannelData(0); let s = 0; for (const x of d) s += x * x; \
              done([Math.sqrt(s / d.length), a.duration]); }) \
            .catch(e => done('error: ' + e));", "args": []})),
    );
    let decoded = decoded.as_array().unwrap_or_else(|| panic!("{decoded}"));
    assert!(decoded[0].as_f64().unwrap() > 0.05, "silent: {decoded:?}");
    let seconds = decoded[1].as_f64().unwrap();
    assert!(
        (4.9..5.1).contains(&seconds),
        "{seconds} s for a 5 s recording"
    );
}

/// A G.722 call archived as FLAC plays in the page as the stored FLAC.
fn a_flac_archive_plays_in_the_page() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let mut options = Options::new(55400);
    options.settings = Box::new(|settings| {
        settings.archive.format = callrec_recordings::ArchiveFormat::Flac;
    });
    let service = Service::start(options);
    service.call(&[
        "--seconds",
        "3",
        "--codec",
        "G722",
        "--remote-number",
        "7001",
    ]);
    service.wait_for_finished(1);
    let id = service.newest_id();
    callrec_test::wait_until("the FLAC archive", Duration::from_secs(60), || {
        service
            .recordings
            .get(&id)
            .unwrap()
            .is_some_and(|r| r.archive.is_some())
    });
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.type_into("#number", "7001");
    browser.click("#search");
    browser.wait_for_rows("the call", 1);
    browser.click("#results tbody tr");
    browser.wait_for(
        "the details",
        "return document.getElementById('facts').textContent.includes('FLAC')",
    );
    let download = browser.run("return document.getElementById('download').textContent");
    assert_eq!(download, "Download FLAC");
    let played = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; const a = document.getElementById('player'); \
            a.play().then(() => done('playing')).catch(e => done('error: ' + e));", "args": []})),
    );
    assert_eq!(played, "playing");
    browser.wait_for(
        "playback to advance",
        "return document.getElementById('player').currentTime > 0.3",
    );
    let decoded = browser.send(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[0]; \
            fetch(document.getElementById('player').src).then(r => r.arrayBuffer()) \
            .then(b => new OfflineAudioContext(1, 16000, 16000).decodeAudioData(b)) \
            .then(a => { const d = a.getChannelData(0); let s = 0; for (const x of d) s += x * x; \
              done([Math.sqrt(s / d.length), a.duration]); }) \
            .catch(e => done('error: ' + e));", "args": []})),
    );
    let decoded = decoded.as_array().unwrap_or_else(|| panic!("{decoded}"));
    assert!(decoded[0].as_f64().unwrap() > 0.05, "silent: {decoded:?}");
    let seconds = decoded[1].as_f64().unwrap();
    assert!((2.9..3.1).contains(&seconds), "{seconds} s for a 3 s call");
}

/// The page listens to a running call: a phone streams tone bursts in
/// real time, the page's Listen plays them through its AudioWorklet, and an
/// analyser on the page's audio graph finds each burst's onset. Audio must
/// start within a second of Listen, and each burst must be heard within
/// 500 ms (p95) of the phone sending it; the audit log has the listen's
/// start and end. Prints the latencies (docs/PERFORMANCE.md).
fn listen_live_in_the_page_and_hear_each_tone_burst() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let service = Service::start(Options::new(55700));
    // 14 s (or CALLREC_LIVE_SECONDS, for a longer measurement): silence,
    // then a 200 ms burst of 1 kHz at the start of every second from the
    // third on.
    const RATE: usize = 8000;
    let seconds: usize = std::env::var("CALLREC_LIVE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let audio: Vec<i16> = (0..seconds * RATE)
        .map(|i| {
            let in_second = i % RATE;
            if i >= 2 * RATE && in_second < RATE / 5 {
                let t = i as f64 / RATE as f64;
                (9000.0 * (2.0 * core::f64::consts::PI * 1000.0 * t).sin()) as i16
            } else {
                0
            }
        })
        .collect();
    let call = service.call_in_background("livepage", callrec_control::Codec::Pcma, audio);
    let id = service.running_id();
    let browser = driver.browser();
    browser.open(&format!("{}/", service.base));
    browser.wait_for_rows("the running call", 1);
    browser.click("#results tbody tr");
    browser.wait_for(
        "the Listen button",
        "return !document.getElementById('listen').hidden",
    );
    browser.click("#listen");
    browser.wait_for(
        "live audio",
        "return !!(window.callrecLive && window.callrecLive.firstAudioAt !== null)",
    );
    let started_ms = browser
        .run("return window.callrecLive.firstAudioAt - window.callrecLive.openedAt")
        .as_f64()
        .unwrap();
    assert!(
        started_ms < 1000.0,
        "audio started {started_ms:.0} ms after Listen"
    );
    // An analyser of 16 ms on the page's player, read every 5 ms: the
    // wall-clock time of each burst's onset.
    browser.run(
        "const live = window.callrecLive;
         const analyser = live.context.createAnalyser();
         analyser.fftSize = 128;
         live.node.connect(analyser);
         const samples = new Float32Array(analyser.fftSize);
         window.onsets = [];
         let loud = false;
         setInterval(() => {
           analyser.getFloatTimeDomainData(samples);
           let sum = 0;
           for (const s of samples) sum += s * s;
           const rms = Math.sqrt(sum / samples.length);
           if (!loud && rms > 0.05) { loud = true; window.onsets.push(Date.now()); }
           else if (loud && rms < 0.01) loud = false;
         }, 5);
         return true;",
    );
    let result = call.join().unwrap();
    browser.wait_for(
        "the end of the recording on the page",
        "return document.getElementById('status').textContent.includes('recording ended')",
    );
    let onsets: Vec<f64> = browser
        .run("return window.onsets")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let started = result
        .stream_started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    // Burst k is sent at second k; an onset belongs to the last burst sent
    // before it.
    let mut latencies: Vec<f64> = onsets
        .iter()
        .map(|&at| {
            let k = ((at - started) / 1000.0).floor();
            assert!(
                k >= 2.0,
                "a burst heard {at} before any was sent ({started})"
            );
            at - (started + k * 1000.0)
        })
        .collect();
    let heard_bursts = latencies.len();
    let sent_bursts = seconds - 2;
    assert!(
        heard_bursts * 4 >= sent_bursts * 3,
        "only {heard_bursts} of {sent_bursts} bursts heard: onsets {onsets:?}, stream started {started}"
    );
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "live, phone to page: {heard_bursts} bursts, p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, \
         max {:.0} ms; audio {started_ms:.0} ms after Listen",
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0)
    );
    assert!(at(0.95) <= 500.0, "p95 {:.0} ms: {latencies:?}", at(0.95));
    let audit =
        common::service::audit_summary(&service.recordings_dir().join(".callrec/audit.jsonl"));
    for action in ["listen", "listen end"] {
        let line = format!("{action} {id} loopback");
        assert!(audit.contains(&line), "{line:?} not in {audit:?}");
    }
}

fn main() -> std::process::ExitCode {
    use callrec_test::harness::{CHROMEDRIVER, CHROMIUM, Test, run_tests};
    run_tests(vec![
        Test::new(
            "search_play_and_seek_in_headless_chromium",
            search_play_and_seek_in_headless_chromium,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "with_tokens_the_page_asks_for_one_and_plays_with_it",
            with_tokens_the_page_asks_for_one_and_plays_with_it,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "a_siprec_recording_shows_its_participants_and_plays_both_channels",
            a_siprec_recording_shows_its_participants_and_plays_both_channels,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "an_imported_usb_recording_archived_as_opus_plays_in_the_page",
            an_imported_usb_recording_archived_as_opus_plays_in_the_page,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "listen_live_in_the_page_and_hear_each_tone_burst",
            listen_live_in_the_page_and_hear_each_tone_burst,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "a_flac_archive_plays_in_the_page",
            a_flac_archive_plays_in_the_page,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
        Test::new(
            "names_with_bidi_overrides_or_200_characters_show_as_they_are",
            names_with_bidi_overrides_or_200_characters_show_as_they_are,
        )
        .needs(&[CHROMIUM, CHROMEDRIVER]),
    ])
}
