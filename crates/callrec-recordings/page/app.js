// The callrec recordings page: search, list, play, details. Plain DOM, no
// build step. Text from the server is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
let cursor = null;
let role = "read";
let myNode = "";
let current = null;

function setStatus(text) { $("status").textContent = text; }

// Characters that change how the text around them is shown rather than
// being shown: bidirectional embeddings, overrides and isolates, the
// direction marks, and other invisible format characters. A caller's name
// with U+202E would show "gnp.exe" as "exe.png"; each is shown as its code
// point instead.
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

// Server text as it is shown: invisible characters made visible, and cut
// at `max` characters with an ellipsis (the whole text goes in a title).
function shown(text, max = Infinity) {
  const visible = String(text).replace(INVISIBLE,
    (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}>`);
  const chars = Array.from(visible);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}\u2026` : visible;
}

// Longest value a column of the list shows.
const CELL_CHARS = 32;

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    $("token-form").hidden = false;
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || "sign in with an API token");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function badge(text, kind) {
  const span = document.createElement("span");
  span.className = `badge ${kind}`;
  span.textContent = text;
  return span;
}

function row(rec) {
  const tr = document.createElement("tr");
  tr.dataset.id = rec.recording_id;
  const siprec = rec.source === "siprec";
  const more = siprec && rec.participants && rec.participants.length > 2
    ? ` +${rec.participants.length - 2} more` : "";
  const cells = [
    rec.started_at.replace("T", " ").replace("Z", ""),
    duration(rec.duration_ms), siprec ? "SIPREC" : rec.source === "import" ? "USB" : rec.direction,
    [rec.local_number, rec.local_name].filter(Boolean).join(" "),
    [rec.remote_number, rec.remote_name].filter(Boolean).join(" ") + more,
    siprec ? "SIPREC" : rec.device,
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = shown(text, CELL_CHARS);
    if (td.textContent !== text) td.title = shown(text);
    tr.appendChild(td);
  }
  const state = document.createElement("td");
  if (rec.running) state.appendChild(badge("running", "running"));
  else if (!rec.complete) state.appendChild(badge("incomplete", "incomplete"));
  if (rec.hold) state.appendChild(badge("hold", "hold"));
  tr.appendChild(state);
  tr.addEventListener("click", () => show(rec.recording_id));
  return tr;
}

function params() {
  const p = new URLSearchParams();
  for (const name of ["number", "device", "from", "to", "direction", "q"]) {
    const value = $(name).value.trim();
    if (value) p.set(name, value);
  }
  p.set("limit", "50");
  return p;
}

async function search(more) {
  const p = params();
  if (more && cursor) p.set("cursor", cursor);
  setStatus("Searching…");
  try {
    const page = await api(`/api/recordings?${p}`);
    const body = $("results").tBodies[0];
    if (!more) body.replaceChildren();
    for (const rec of page.recordings) body.appendChild(row(rec));
    cursor = page.next_cursor;
    $("more").hidden = !cursor;
    const n = body.rows.length;
    setStatus(n ? `${n}${cursor ? "+" : ""} recording${n === 1 ? "" : "s"}` : "No recordings match.");
  } catch (e) {
    setStatus(e.message);
  }
}

function fact(dl, name, value) {
  if (value === null || value === undefined || value === "") return;
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = name;
  dd.textContent = shown(value, 512);
  dl.append(dt, dd);
}

async function show(id) {
  try {
    const rec = await api(`/api/recordings/${encodeURIComponent(id)}`);
    current = rec;
    for (const tr of $("results").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === id);
    const s = rec.sidecar || {};
    $("details").hidden = false;
    const siprec = rec.source === "siprec";
    const party = (p) => [p.aor, p.name].filter(Boolean).join(" ");
    $("title").textContent = siprec
      ? shown(`SIPREC: ${(rec.participants || []).map((p) => p.name || p.aor).join(" ↔ ") || rec.session_id}`, 80)
      : shown(`${rec.direction === "in" ? "From" : "To"} ${rec.remote_number || "?"} ${rec.remote_name || ""}`, 80);
    const audio = $("player");
    if (audio.dataset.id !== id) {
      audio.dataset.id = id;
      stopListening();
      // An archive (Ogg Opus, FLAC) plays as it is stored; a WAV as
      // 16-bit PCM, as browsers do not play A-law or µ-law WAV.
      audio.src = `/api/recordings/${encodeURIComponent(id)}/audio${rec.archive ? "" : "?format=pcm16"}`;
    }
    $("download").href = `/api/recordings/${encodeURIComponent(id)}/audio?download=1`;
    $("download").textContent = `Download ${rec.archive ? (rec.archive.format === "opus" ? "Opus" : "FLAC") : "WAV"}`;
    const dl = $("facts");
    dl.replaceChildren();
    fact(dl, "Recording", rec.recording_id);
    fact(dl, "Session", rec.session_id);
    fact(dl, "Device", rec.device);
    if (siprec) {
      fact(dl, "Source", "SIPREC (from a PBX or SBC)");
      (rec.participants || []).forEach((p, i) => fact(dl, `Participant ${i + 1}`, party(p)));
      (rec.channels || []).forEach((c, i) => {
        const side = (rec.channels.length === 2 ? ["left", "right"][i] + ", " : "");
        fact(dl, `Channel ${i + 1}`, `${side}${c.label ? "stream " + c.label + ": " : ""}${c.participant || "sender unknown"}${c.codec ? " (" + c.codec + ")" : ""}`);
      });
    } else {
      if (rec.source === "import") fact(dl, "Source", "the phone's own recording (USB), imported");
      fact(dl, "Local", `${rec.local_number} ${rec.local_name}`.trim());
      fact(dl, "Remote", `${rec.remote_number} ${rec.remote_name}`.trim());
    }
    if (s.final_parties && s.final_parties.remote_number !== rec.remote_number) {
      fact(dl, "Transferred to", `${s.final_parties.remote_number} ${s.final_parties.remote_name}`.trim());
    }
    fact(dl, "Started", rec.started_at);
    fact(dl, "Stopped", rec.stopped_at);
    fact(dl, "Length", duration(rec.duration_ms));
    fact(dl, "Codec", rec.codec);
    fact(dl, "Why it stopped", rec.stop_reason);
    fact(dl, "Complete", rec.complete ? "yes" : "no");
    fact(dl, "Legal hold", rec.hold ? "yes" : "no");
    if (s.packets_received !== undefined) {
      const expected = s.packets_received + Math.max(0, s.packets_lost);
      const loss = expected ? (100 * Math.max(0, s.packets_lost) / expected).toFixed(2) : "0.00";
      fact(dl, "Packets", `${s.packets_received} received, ${s.packets_lost} lost (${loss} %)`);
      fact(dl, "Gaps filled", `${s.silence_inserted_ms} ms of silence`);
      fact(dl, "Jitter", `${s.jitter_ms.toFixed(1)} ms`);
      fact(dl, "Other senders", s.packets_foreign);
      fact(dl, "RTP source", s.rtp_source);
      fact(dl, "Write error", s.write_error);
    }
    if (rec.archive) {
      const a = rec.archive;
      const rate = a.bitrate ? `, ${a.bitrate / 1000} kbit/s` : "";
      fact(dl, "Archive", `${a.format === "opus" ? "Ogg Opus" : "FLAC"}${rate}, ${a.bytes} bytes (WAV ${a.wav_bytes} bytes)`);
      fact(dl, "WAV SHA-256", a.wav_sha256);
    }
    fact(dl, "SHA-256", rec.sha256);
    $("dtmf").textContent = (s.dtmf || []).map((d) => `${d.digit} @ ${(d.offset_ms / 1000).toFixed(1)} s`).join(", ") || "none";
    const timeline = $("timeline");
    timeline.replaceChildren();
    for (const note of s.timeline || []) {
      const li = document.createElement("li");
      li.textContent = shown(`${(note.offset_ms / 1000).toFixed(1)} s: ${note.note}`, 512);
      timeline.appendChild(li);
    }
    const admin = role === "admin";
    const mayListen = rec.running && (role === "listen" || admin);
    const elsewhere = mayListen && rec.node && myNode && rec.node !== myNode;
    $("listen").hidden = !mayListen || elsewhere;
    $("listen-elsewhere").hidden = !(elsewhere && rec.node_url);
    if (elsewhere && rec.node_url) {
      $("listen-elsewhere").href = `${rec.node_url}/#listen=${encodeURIComponent(id)}`;
      $("listen-elsewhere").textContent = shown(`Listen on node ${rec.node}`, 80);
    }
    $("listen").textContent = live ? "Stop listening" : "Listen";
    $("hold").hidden = !admin;
    $("hold").textContent = rec.hold ? "Release hold" : "Legal hold";
    $("delete").hidden = !admin || rec.hold || rec.running;
  } catch (e) {
    setStatus(e.message);
  }
}

// Live listening: a WebSocket of 20 ms PCM frames into an AudioWorklet's
// jitter buffer, an analyser for the level meter. One at a time.
let live = null;

function stopListening(reason) {
  if (!live) return;
  const stopping = live;
  live = null;
  window.callrecLive = null;
  clearInterval(stopping.meter);
  stopping.socket.onclose = null;
  if (stopping.socket.readyState <= WebSocket.OPEN) stopping.socket.close(1000, "the listener stopped");
  if (stopping.context) stopping.context.close().catch(() => {});
  $("listen").textContent = "Listen";
  $("level").value = 0;
  $("live").hidden = true;
  if (reason) setStatus(reason);
}

// The audio graph for a listener once the format is known; each await may
// find the listener stopped meanwhile.
async function startPlayer(me, format) {
  me.channels = format.channels;
  // The context runs at the call's own rate; the browser resamples.
  const context = new AudioContext({ sampleRate: format.rate, latencyHint: "interactive" });
  me.context = context;
  // Stopped meanwhile: stopListening closed the context, or will not.
  const abandoned = () => { context.close().catch(() => {}); };
  await context.audioWorklet.addModule("/live-worklet.js");
  if (live !== me) return abandoned();
  me.node = new AudioWorkletNode(context, "callrec-live", {
    numberOfInputs: 0, outputChannelCount: [format.channels],
    processorOptions: { channels: format.channels },
  });
  me.analyser = context.createAnalyser();
  me.analyser.fftSize = 512;
  me.node.connect(me.analyser);
  me.analyser.connect(context.destination);
  await context.resume();
  if (live !== me) return abandoned();
  const samples = new Float32Array(me.analyser.fftSize);
  me.meter = setInterval(() => {
    me.analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    $("level").value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
  }, 100);
  window.callrecLive = me;
  const n = format.channels;
  setStatus(`Listening live: ${format.rate} Hz, ${n} channel${n === 1 ? "" : "s"}.`);
}

function listen(rec) {
  if (live) { stopListening("Stopped listening."); return; }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/recordings/${encodeURIComponent(rec.recording_id)}/live`);
  socket.binaryType = "arraybuffer";
  const me = {
    socket, context: null, node: null, analyser: null, meter: 0, channels: 1, frames: 0,
    openedAt: performance.now(), firstAudioAt: null,
  };
  live = me;
  $("listen").textContent = "Stop listening";
  $("live").hidden = false;
  setStatus("Connecting…");
  socket.onmessage = async (event) => {
    if (typeof event.data === "string") {
      try {
        await startPlayer(me, JSON.parse(event.data));
      } catch (e) {
        if (live === me) stopListening(`Live listening failed: ${e.message}`);
      }
      return;
    }
    if (!me.node) return; // before the worklet is ready
    const view = new DataView(event.data);
    const channels = me.channels;
    const count = (event.data.byteLength - 4) / 2 / channels;
    const planes = [];
    for (let c = 0; c < channels; c++) planes.push(new Float32Array(count));
    for (let i = 0; i < count; i++) {
      for (let c = 0; c < channels; c++) {
        planes[c][i] = view.getInt16(4 + 2 * (i * channels + c), true) / 32768;
      }
    }
    me.frames += 1;
    if (me.firstAudioAt === null) me.firstAudioAt = performance.now();
    me.node.port.postMessage(planes, planes.map((p) => p.buffer));
  };
  socket.onclose = (event) => {
    if (live !== me) return;
    stopListening(event.code === 1000 ? `Live: ${event.reason || "ended"}.` : `Live listening stopped: ${event.reason || `code ${event.code}`}.`);
  };
}

async function toggleHold() {
  if (!current) return;
  const method = current.hold ? "DELETE" : "PUT";
  try {
    await api(`/api/recordings/${current.recording_id}/hold`, { method });
    await show(current.recording_id);
    await search(false);
  } catch (e) { setStatus(e.message); }
}

async function remove() {
  if (!current || !confirm(`Delete recording ${current.recording_id}? This cannot be undone.`)) return;
  try {
    await api(`/api/recordings/${current.recording_id}`, { method: "DELETE" });
    $("details").hidden = true;
    $("player").removeAttribute("src");
    current = null;
    await search(false);
  } catch (e) { setStatus(e.message); }
}

async function start() {
  try {
    const me = await api("/api/session");
    role = me.role;
    myNode = me.node || "";
    $("who").textContent = shown(`${me.name} (${me.role})`, 80);
    $("sign-out").hidden = !me.session;
    $("token-form").hidden = true;
    await search(false);
    // Sent here by another node of the pool to listen to a call this one
    // records: its details, with Listen (a click starts the audio).
    const wanted = /^#listen=([A-Za-z0-9]{1,64})$/.exec(location.hash);
    if (wanted) await show(wanted[1]);
  } catch (e) {
    setStatus(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(false); });
  $("more").addEventListener("click", () => search(true));
  $("hold").addEventListener("click", toggleHold);
  $("listen").addEventListener("click", () => { if (current) listen(current); });
  $("delete").addEventListener("click", remove);
  $("delete").classList.add("danger");
  $("token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    // The token buys a session: the server sets it as an HttpOnly cookie
    // (no script here holds the token after this), which the audio
    // element sends too.
    const token = $("token").value.trim();
    $("token").value = "";
    try {
      await api("/api/session", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      start();
    } catch (err) {
      setStatus(err.message);
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await api("/api/session", { method: "DELETE" }).catch(() => {});
    location.reload();
  });
  start();
});
