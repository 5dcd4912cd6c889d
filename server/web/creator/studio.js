// The experience's views (opened with the experience's API key in the URL fragment):
// published avatars, the queue and sessions at a glance, and the profile-photo page.

import { ApiError, Connection } from "./api.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["bundles", "sessions", "profile"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function details(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) dl.append(el("dt", { text: k }), el("dd", { text: v }));
  return dl;
}

const when = (t) => new Date(t * 1000).toLocaleString();
const seconds = (s) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

export class Studio {
  constructor(key, state, showError) {
    this.api = new Connection(key); // HTTP only: these views need no websocket
    this.state = state;
    this.showError = showError;
    this.viewer = null;
    this.loaded = new Set();
    this.timer = null;
  }

  start(view) {
    $("connection").textContent = "Experience key";
    $("studio-nav").hidden = false;
    for (const a of document.querySelectorAll("#studio-nav a")) {
      a.onclick = (e) => {
        e.preventDefault();
        history.replaceState(null, "", `#view=${a.dataset.view}`);
        this.show(a.dataset.view);
      };
    }
    this.show(VIEWS.includes(view) ? view : "bundles");
    $("sessions-refresh").onclick = () => this.sessions().catch(this.showError);
    $("profile-form").onsubmit = (e) => {
      e.preventDefault();
      this.profile().catch(this.showError);
    };
  }

  show(view) {
    for (const v of VIEWS) $(v).hidden = v !== view;
    for (const a of document.querySelectorAll("#studio-nav a")) {
      if (a.dataset.view === view) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    clearInterval(this.timer);
    const done = (p) => p.then(() => { this.state.ready = true; }).catch((err) => { this.showError(err); this.state.ready = true; });
    if (view === "bundles") done(this.bundles());
    else if (view === "sessions") {
      done(this.sessions());
      this.timer = setInterval(() => this.sessions().catch(this.showError), 5000);
    } else this.state.ready = true;
  }

  async objectUrl(path) {
    return URL.createObjectURL(await this.api.http(path, { as: "blob" }));
  }

  // -- published avatars

  async bundles() {
    const { Bundles } = await this.api.http("/v1/published");
    this.state.bundles = Bundles.length;
    $("bundles-empty").hidden = Bundles.length > 0;
    const list = $("bundle-list");
    list.replaceChildren();
    for (const b of [...Bundles].reverse()) {
      const img = el("img", { alt: `Published avatar ${b.Name || b.BundleId}` });
      const view = el("button", { type: "button", text: "View in 3D" });
      const download = el("button", { type: "button", text: "Download glb" });
      const desc = el("details", {}, el("summary", { text: "HumanoidDescription" }),
                      el("pre", { text: JSON.stringify(b.HumanoidDescription, null, 1) }));
      const card = el("li", { "data-bundle": b.BundleId }, img,
                      el("h3", { text: b.Name || b.BundleId }),
                      details([["Player", b.PlayerId], ["Published", when(b.CreatedAt)], ["Bundle", b.BundleId],
                               ["Outfit", b.OutfitId || "—"]]),
                      el("div", { class: "actions" }, view, download), desc);
      list.append(card);
      this.objectUrl(b.PreviewUrl).then((u) => { img.src = u; }).catch(this.showError);
      view.onclick = () => this.view3d(b).catch(this.showError);
      download.onclick = () => this.download(b.GlbUrl, `${b.BundleId}.glb`).catch(this.showError);
    }
  }

  async view3d(bundle) {
    $("bundle-viewer").hidden = false;
    if (!this.viewer) this.viewer = new Viewer($("bundle-view"));
    const glb = await this.api.http(bundle.GlbUrl, { as: "arraybuffer" });
    await this.viewer.load(glb, bundle.HumanoidDescription);
    this.state.viewing = bundle.BundleId;
    $("bundle-view").focus();
  }

  async download(path, name) {
    const a = el("a", { href: await this.objectUrl(path), download: name });
    document.body.append(a);
    a.click();
    a.remove();
  }

  // -- queue and sessions

  async sessions() {
    const o = await this.api.http("/v1/sessions");
    $("pool").textContent = `${o.ActiveSessions} of ${o.Capacity} sessions in use on this server, ` +
      `${o.QueuedRequests} waiting; a session is held for ${seconds(o.MeanHoldSeconds)} on average.`;
    const rows = (tbody, items, cells) => {
      tbody.replaceChildren(...items.map((x) => el("tr", {}, ...cells(x).map((c) => el("td", { text: c })))));
      if (!items.length) tbody.append(el("tr", {}, el("td", { colspan: "6", text: "None" })));
    };
    rows($("session-table").tBodies[0], o.Sessions, (s) => [
      s.PlayerId, s.SessionId, seconds(s.TimeLeft), `${s.Used2DGenerations} of ${s.Allowed2DGenerations}`,
      `${s.Used3DGenerations} of ${s.Allowed3DGenerations}`, s.PlayerConnected ? "yes" : "no"]);
    rows($("request-table").tBodies[0], o.Requests, (r) => [
      r.PlayerId, String(r.Position + 1), seconds(r.QueuedFor), seconds(r.waitTime)]);
    this.state.sessions = o.Sessions.length;
  }

  // -- profile photos: the 2D pipeline alone

  async profile() {
    const files = [...$("profile-files").files];
    if (!files.length) throw new ApiError("NoFileChosen", "Choose at least one photo.");
    const body = new FormData();
    for (const f of files) body.append("photo", f);
    body.append("Style", $("profile-style").value);
    if ($("profile-prompt").value.trim()) body.append("TextPrompt", $("profile-prompt").value.trim());
    body.append("HighRes", $("profile-highres").checked ? "true" : "false");
    $("profile-send").disabled = true;
    $("profile-status").textContent = `Making ${files.length} preview${files.length > 1 ? "s" : ""}…`;
    const t0 = performance.now();
    try {
      const { Results } = await this.api.http("/v1/previews/batch", { method: "POST", body });
      const list = $("profile-results");
      list.replaceChildren();
      for (const r of Results) list.append(this.profileCard(r, files[r.Index]));
      const ok = Results.filter((r) => !r.error).length;
      $("profile-status").textContent =
        `${ok} of ${Results.length} done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`;
      this.state.profileResults = Results;
    } finally {
      $("profile-send").disabled = false;
    }
  }

  profileCard(r, file) {
    const title = el("h3", { text: file ? file.name : `Photo ${r.Index + 1}` });
    if (r.error) {
      return el("li", { "data-index": String(r.Index) }, title,
                el("p", { class: "error", role: "alert", text: `${r.error.code}: ${r.error.message}` }));
    }
    const img = el("img", { alt: `Profile preview of ${file ? file.name : `photo ${r.Index + 1}`}` });
    const download = el("button", { type: "button", text: "Download PNG" });
    const fmt = (x) => (typeof x === "number" ? x.toFixed(2) : String(x));
    const warnings = (r.validation_warnings || []).join("; ") || "none";
    const card = el("li", { "data-index": String(r.Index) }, img, title,
                    details([["Style", r.style], ["Faces found", String(r.face_count)],
                             ["Likeness", fmt(r.likeness_score)], ["Photo quality", fmt(r.input_quality_score)],
                             ["Warnings", warnings]]),
                    el("div", { class: "actions" }, download));
    this.objectUrl(r.Url).then((u) => { img.src = u; }).catch(this.showError);
    download.onclick = () => this.download(r.Url, `${r.PreviewId}.png`).catch(this.showError);
    return card;
  }
}
