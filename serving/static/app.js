// streamrec demo page: a viewer's home rows, live; every button posts a real event to /v1/events
// and the page measures how long the feed took to reflect it. Plain ES module, no build step.
//
// Talks to: GET /v1/users/{id}/feed, GET /v1/videos/{id}/similar, GET /v1/trending, POST /v1/events
// (bearer token of the viewer), GET /v1/experiments/{id} (a service token from the demo's own
// GET /demo/experiment), and the demo's own GET /demo/token and GET /demo/stats.

const FEED_POLL_MS = 2500;
const FAST_POLL_MS = 100;
const REFLECT_TIMEOUT_MS = 15000;
const STATS_POLL_MS = 1000;

const $ = (sel) => document.querySelector(sel);
const state = {
  user: null, token: null, region: "", ownRegion: "", feed: null, feedSig: "",
  measuring: false, regions: ["global"], trendRegion: "global", current: null,
};

// ---------------------------------------------------------------- HTTP
async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!res.ok) {
    const reason = (data && (data.message || data.error)) || res.statusText;
    const err = new Error(`${res.status} ${typeof reason === "string" ? reason : JSON.stringify(reason)}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// ---------------------------------------------------------------- viewer
async function openUser(userId) {
  userId = String(userId || "").trim();
  if (!userId) return;
  setStatus(`Opening viewer ${userId}…`);
  const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
  try {
    if (hashToken) {
      state.token = hashToken;
    } else {
      const minted = await api(`/demo/token?user_id=${encodeURIComponent(userId)}`);
      state.token = minted.token;
      state.ownRegion = minted.region || "";
    }
  } catch (e) {
    setStatus(`No token for ${userId}: ${e.message}. Open the page as /?user=ID#token=JWT (streamrec token ID).`, true);
    return;
  }
  state.user = userId;
  state.feedSig = "";
  $("#user-id").value = userId;
  const url = new URL(location.href);
  url.searchParams.set("user", userId);
  history.replaceState(null, "", url.pathname + url.search + location.hash);
  await Promise.all([refreshFeed(), refreshTrending()]);
}

function currentRegion() {
  return $("#region").value || state.ownRegion || "";
}

// ---------------------------------------------------------------- feed
function feedUrl() {
  const region = currentRegion();
  return `/v1/users/${encodeURIComponent(state.user)}/feed` + (region ? `?region=${encodeURIComponent(region)}` : "");
}

function signature(feed) {
  return JSON.stringify((feed.rows || []).map((r) => [r.type, r.seed_video_id || r.genre || "",
    (r.items || []).map((i) => [i.video_id, i.progress_sec ?? null])]));
}

async function fetchFeed() {
  return api(feedUrl());
}

async function refreshFeed() {
  if (!state.user) return;
  try {
    const feed = await fetchFeed();
    showFeed(feed);
    if (!state.measuring) {
      const when = new Date().toLocaleTimeString();
      setStatus(`Viewer ${state.user}${currentRegion() ? " in " + currentRegion() : ""} · updated ${when}` +
        (feed.degraded ? " · degraded (served from fallback)" : ""));
    }
  } catch (e) {
    setStatus(`Feed for ${state.user} failed: ${e.message}`, true);
  }
}

function showFeed(feed) {
  const sig = signature(feed);
  if (sig === state.feedSig) return;
  const before = new Set(state.feed ? (state.feed.rows || []).flatMap((r) => (r.items || []).map((i) => r.type + "/" + i.video_id)) : []);
  state.feed = feed;
  state.feedSig = sig;
  const main = $("#feed");
  main.replaceChildren();
  if (feed.degraded) {
    const p = document.createElement("p");
    p.className = "degraded";
    p.textContent = "The store is slow or down: this feed comes from a fallback.";
    main.append(p);
  }
  const rows = feed.rows || [];
  if (!rows.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "Nothing to show yet for this viewer.";
    main.append(p);
  }
  for (const row of rows) {
    const section = document.createElement("section");
    section.className = "row";
    section.dataset.row = row.type;
    section.dataset.testid = `row-${row.type}`;
    if (row.seed_video_id) section.dataset.seed = row.seed_video_id;
    const h = document.createElement("h2");
    h.textContent = row.title || row.type.replaceAll("_", " ");
    section.append(h);
    const cards = document.createElement("div");
    cards.className = "cards";
    for (const item of row.items || []) {
      const card = renderCard(item, row.type);
      if (state.feed && before.size && !before.has(row.type + "/" + item.video_id)) card.classList.add("fresh");
      cards.append(card);
    }
    section.append(cards);
    main.append(section);
  }
}

function yearOf(item) {
  return item.year ?? item.release_year ?? "";
}

function renderCard(item, rowType) {
  const card = document.createElement("button");
  card.type = "button";
  card.className = "card secondary";
  card.dataset.videoId = item.video_id;
  card.dataset.testid = "card";
  if (item.thumbnail) {
    const img = document.createElement("img");
    img.className = "poster";
    img.src = item.thumbnail;
    img.alt = "";
    img.loading = "lazy";
    img.decoding = "async";
    card.append(img);
  }
  const t = document.createElement("div");
  t.className = "t";
  t.textContent = item.title || item.video_id;
  const y = document.createElement("div");
  y.className = "y";
  y.textContent = [yearOf(item), item.maturity_rating].filter(Boolean).join(" · ");
  const g = document.createElement("div");
  g.className = "g";
  g.textContent = (item.genres || []).join(", ");
  card.append(t, y, g);
  if (rowType === "continue_watching" && item.duration_sec) {
    const p = document.createElement("div");
    p.className = "p";
    const bar = document.createElement("div");
    bar.style.width = `${Math.min(100, (100 * (item.progress_sec || 0)) / item.duration_sec).toFixed(0)}%`;
    p.append(bar);
    p.title = `${Math.round((item.progress_sec || 0) / 60)} of ${Math.round(item.duration_sec / 60)} min`;
    card.append(p);
  } else if (typeof item.match_score === "number") {
    const m = document.createElement("div");
    m.className = "m";
    m.textContent = `${Math.round(item.match_score * 100)}% match`;
    card.append(m);
  }
  card.addEventListener("click", () => openDetails(item));
  return card;
}

// ---------------------------------------------------------------- details, similar, actions
async function openDetails(item) {
  state.current = item;
  $("#d-title").textContent = item.title || item.video_id;
  $("#d-meta").textContent = [yearOf(item), (item.genres || []).join(", "), item.content_type, `id ${item.video_id}`]
    .filter(Boolean).join(" · ");
  $("#d-result").textContent = "";
  $("#d-result").classList.remove("error");
  const dialog = $("#details");
  if (!dialog.open) dialog.showModal();
  const similar = $("#d-similar");
  similar.replaceChildren(Object.assign(document.createElement("p"), { className: "muted small", textContent: "Loading…" }));
  try {
    const data = await api(`/v1/videos/${encodeURIComponent(item.video_id)}/similar?limit=12`);
    const items = data.items || [];
    similar.replaceChildren(...items.map((i) => renderCard(i, "similar")));
    if (!items.length) similar.replaceChildren(Object.assign(document.createElement("p"), { className: "muted small", textContent: "Nothing similar yet." }));
  } catch (e) {
    similar.replaceChildren(Object.assign(document.createElement("p"), { className: "muted small", textContent: `similar: ${e.message}` }));
  }
}

function rowIds(feed, type) {
  return new Set((feed.rows || []).filter((r) => r.type === type).flatMap((r) => (r.items || []).map((i) => i.video_id)));
}

function anywhere(feed, id) {
  return (feed.rows || []).some((r) => (r.items || []).some((i) => i.video_id === id));
}

// What each action should visibly change; "the feed changed at all" is the fallback.
const EXPECT = {
  play: (f, id) => rowIds(f, "continue_watching").has(id),
  stop: (f, id) => rowIds(f, "continue_watching").has(id),
  complete: (f, id) => !rowIds(f, "continue_watching").has(id) && !rowIds(f, "top_picks").has(id)
    && (f.rows || []).some((r) => r.type === "because_you_watched" && r.seed_video_id === id),
  dislike: (f, id) => !anywhere(f, id),
};

function eventsFor(action, item) {
  const now = Date.now() / 1000;
  const duration = item.duration_sec || 5400;
  const base = { user_id: state.user, video_id: item.video_id, device: "web" };
  if (currentRegion()) base.region = currentRegion();
  const at = (offset, extra) => ({ ...base, timestamp: now + offset, ...extra });
  switch (action) {
    case "play":
      return [at(0, { event_type: "play", position_sec: 0, duration_sec: duration }),
        at(0.001, { event_type: "heartbeat", position_sec: Math.round(duration * 0.05), duration_sec: duration })];
    case "complete":
      return [at(0, { event_type: "play", position_sec: 0, duration_sec: duration }),
        at(0.002, { event_type: "complete", position_sec: duration, duration_sec: duration })];
    case "stop":
      return [at(0, { event_type: "play", position_sec: 0, duration_sec: duration }),
        at(0.001, { event_type: "heartbeat", position_sec: Math.round(duration * 0.25), duration_sec: duration }),
        at(0.002, { event_type: "pause", position_sec: Math.round(duration / 2), duration_sec: duration })];
    case "like":
    case "dislike":
      return [at(0, { event_type: action })];
    case "rate":
      return [at(0, { event_type: "rate", rating: Number($("#d-stars").value) })];
    default:
      throw new Error(`unknown action ${action}`);
  }
}

async function act(action) {
  const item = state.current;
  if (!item || !state.user) return;
  const result = $("#d-result");
  result.classList.remove("error");
  const buttons = document.querySelectorAll(".actions button");
  buttons.forEach((b) => { b.disabled = true; });
  state.measuring = true;
  const label = `${action === "stop" ? "stop halfway" : action === "complete" ? "watch to the end" : action} “${item.title || item.video_id}”`;
  const sigBefore = state.feedSig;
  const t0 = performance.now();
  try {
    const events = eventsFor(action, item);
    await api("/v1/events", { method: "POST", body: events.length === 1 ? events[0] : { events } });
    const accepted = performance.now() - t0;
    result.textContent = `${label}: accepted by Kafka in ${accepted.toFixed(0)} ms, waiting for the feed…`;
    const expect = EXPECT[action];
    let feed = null;
    let seen = false;
    while (performance.now() - t0 < REFLECT_TIMEOUT_MS) {
      feed = await fetchFeed();
      seen = expect ? expect(feed, item.video_id) : signature(feed) !== sigBefore;
      if (seen) break;
      await new Promise((r) => setTimeout(r, FAST_POLL_MS));
    }
    const took = performance.now() - t0;
    if (feed) showFeed(feed);
    if (seen) {
      const text = `${label} → feed reflected it in ${took.toFixed(0)} ms`;
      result.textContent = `${text} (event accepted in ${accepted.toFixed(0)} ms)`;
      $("#c-mine").textContent = `${took.toFixed(0)} ms`;
      setStatus(text);
    } else {
      result.textContent = `${label}: accepted, but the feed showed no change after ${(REFLECT_TIMEOUT_MS / 1000).toFixed(0)} s`;
      result.classList.add("error");
      $("#c-mine").textContent = "no change";
    }
  } catch (e) {
    result.textContent = `${label} failed: ${e.message}`;
    result.classList.add("error");
  } finally {
    state.measuring = false;
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ---------------------------------------------------------------- live panel
// A time of day for today, with the date otherwise (backfilled windows are years old).
function fmtWhen(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

async function refreshStats() {
  let s;
  try { s = await api("/demo/stats"); } catch { return; }
  $("#c-rate").textContent = s.events_per_s != null ? s.events_per_s.toFixed(0) : "–";
  $("#c-total").textContent = s.replayed_events != null ? s.replayed_events.toLocaleString() : "–";
  $("#c-last").textContent = s.last_event_ms ? fmtWhen(s.last_event_ms) : "–";
  $("#c-lag").textContent = fmtMs(s.pipeline_lag_ms);
  if (s.replay_total) $("#c-progress").style.width = `${(100 * (s.replayed_sessions || 0)) / s.replay_total}%`;
  if (Array.isArray(s.regions) && s.regions.join() !== state.regions.slice(1).join()) {
    state.regions = ["global", ...s.regions];
    renderRegionChoices();
  }
}

function renderRegionChoices() {
  const select = $("#region");
  const chosen = select.value;
  select.replaceChildren(new Option("own", ""), ...state.regions.filter((r) => r !== "global").map((r) => new Option(r, r)));
  select.value = chosen;
  const tabs = $("#trend-tabs");
  tabs.replaceChildren(...state.regions.map((r) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = r;
    b.setAttribute("role", "tab");
    b.setAttribute("aria-selected", String(r === state.trendRegion));
    b.addEventListener("click", () => { state.trendRegion = r; renderRegionChoices(); refreshTrending(); });
    return b;
  }));
}

async function refreshTrending() {
  const list = $("#trending");
  if (!state.token) return; // trending needs a token like every API read
  try {
    const data = await api(`/v1/trending?region=${encodeURIComponent(state.trendRegion)}`);
    const items = (data.items || []).slice(0, 10);
    list.replaceChildren(...items.map((item) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.textContent = item.title || item.video_id;
      a.title = item.title || item.video_id;
      a.addEventListener("click", () => openDetails(item));
      li.append(a);
      const score = item.count ?? item.score;
      if (score !== undefined) li.append(Object.assign(document.createElement("span"), { textContent: Number(score).toFixed(0) }));
      return li;
    }));
    if (!items.length) list.replaceChildren(Object.assign(document.createElement("li"), { className: "muted", textContent: "nothing yet" }));
    const windowEnd = data.window_end ? fmtWhen(data.window_end * (data.window_end < 1e12 ? 1000 : 1)) : "–";
    $("#trend-meta").textContent = `${data.window || ""} window ending ${windowEnd}`;
  } catch (e) {
    $("#trend-meta").textContent = `trending: ${e.message}`;
  }
}

// ---------------------------------------------------------------- experiment panel
// The running experiment's results as any client reads them: GET /v1/experiments/{id} with a
// service token (the demo hands the page one); counts from the pipeline's attribution.
const experiment = { id: null, token: null, mintedAt: 0 };

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(2)} %`);

async function refreshExperiment() {
  try {
    if (!experiment.token || Date.now() - experiment.mintedAt > 30 * 60 * 1000) {
      const res = await fetch("/demo/experiment", { headers: { Accept: "application/json" } });
      if (!res.ok) return;
      Object.assign(experiment, await res.json(), { mintedAt: Date.now() });
    }
    if (!experiment.id) return;
    const res = await fetch(`/v1/experiments/${encodeURIComponent(experiment.id)}`,
      { headers: { Accept: "application/json", Authorization: `Bearer ${experiment.token}` } });
    if (!res.ok) { $("#exp-meta").textContent = `results: ${res.status}`; return; }
    const r = await res.json();
    const lift = Object.fromEntries(r.comparisons.filter((c) => c.metric === "play_rate").map((c) => [c.variant, c]));
    $("#experiment-panel").hidden = false;
    $("#exp-id").textContent = `${r.experiment.id}${r.running ? "" : " (stopped)"}`;
    $("#exp-rows").replaceChildren(...r.variants.map((v) => {
      const tr = document.createElement("tr");
      const c = lift[v.variant];
      const lifted = v.variant === r.control ? ["control", ""]
        : c && c.lift !== null ? [`${c.lift >= 0 ? "+" : ""}${(100 * c.lift).toFixed(1)} %`,
          `p ${c.p_value === null ? "–" : c.p_value.toFixed(3)}`] : ["–", ""];
      const cells = [[v.variant, ""], [v.impressions.toLocaleString(), ""],
        [v.plays.toLocaleString(), ""], [pct(v.play_rate.value), `${pct(v.play_rate.low)} – ${pct(v.play_rate.high)}`], lifted];
      tr.replaceChildren(...cells.map(([text, note]) => {
        const td = Object.assign(document.createElement("td"), { textContent: text });
        if (note) td.append(Object.assign(document.createElement("small"), { textContent: note }));
        return td;
      }));
      if (c && c.significant) tr.lastChild.className = c.lift > 0 ? "up" : "down";
      return tr;
    }));
    const srm = r.sample_ratio;
    const split = Object.entries(srm.observed).map(([arm, n]) => `${arm} ${n}`).join(" / ");
    $("#exp-meta").textContent = `viewer-days ${split}; split check (chi-square): ${srm.p_value === null ? "not enough data"
      : srm.mismatch ? `MISMATCH, p = ${srm.p_value.toExponential(1)}` : `ok, p = ${srm.p_value.toFixed(3)}`}`
      + ` · updated ${new Date(r.generated_at * 1000).toLocaleTimeString()}`;
  } catch {
    // the panel keeps its last numbers; the next poll tries again
  }
}

// ---------------------------------------------------------------- wiring
$("#user-form").addEventListener("submit", (ev) => { ev.preventDefault(); openUser($("#user-id").value); });
$("#new-user").addEventListener("click", () => openUser(`guest-${Math.random().toString(36).slice(2, 8)}`));
$("#region").addEventListener("change", () => { state.feedSig = ""; refreshFeed(); });
document.querySelectorAll(".actions button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));

renderRegionChoices();
const initialUser = new URLSearchParams(location.search).get("user");
if (initialUser) openUser(initialUser);
setInterval(() => { if (!state.measuring && !document.hidden) refreshFeed(); }, FEED_POLL_MS);
setInterval(() => { if (!document.hidden) refreshStats(); }, STATS_POLL_MS);
setInterval(() => { if (!document.hidden) refreshTrending(); }, 5000);
setInterval(() => { if (!document.hidden) refreshExperiment(); }, 2000);
refreshExperiment();
refreshStats();
refreshTrending();
