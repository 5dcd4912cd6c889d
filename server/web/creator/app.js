// The creator page: which view the URL fragment asks for, and the player editor.
//
// #token=<player token>[&generation=<GenerationId>]  the player's editor (CreateEditorLink)
// #key=<experience API key>[&view=bundles|sessions|profile]  the experience's views (studio.js)
//
// The credential is kept in this tab's sessionStorage and taken out of the address bar at once,
// so it is not left in the history, in bookmarks or on screen.

import { ApiError, Connection, fragment } from "./api.js";
import { DocReplica, NeedsSnapshot, surface } from "./doc.js";
import { Studio } from "./studio.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);

/** What the page is doing, for people (status lines) and for the browser tests. */
const state = { ready: false, errors: [], copy: null, generationId: null, relayed: 0, published: null };
window.acsPage = {
  state,
  contentHash: () => (state.copy ? state.copy.doc.contentHash() : null),
  version: () => (state.copy ? state.copy.version : null),
};

function showError(err) {
  const message = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err && err.message || err);
  state.errors.push(message);
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function hex(rgb) {
  return "#" + rgb.map((c) => Math.round(Math.min(1, Math.max(0, c)) * 255).toString(16).padStart(2, "0")).join("");
}

function rgb(hexColor) {
  return [1, 3, 5].map((i) => Math.round(parseInt(hexColor.slice(i, i + 2), 16) / 255 * 1e4) / 1e4);
}

// ------------------------------------------------------------------ the player's editor

const SCALES = { HeightScale: [0.95, 1.05], WidthScale: [0.75, 1.3], DepthScale: [0.95, 1.3] };
const EXPRESSIONS = ["JawDrop", "LeftLipCornerPuller", "RightLipCornerPuller", "LeftEyeClosed", "RightEyeClosed",
                     "LeftInnerBrowRaiser", "RightInnerBrowRaiser", "LeftLipCornerDown", "RightLipCornerDown"];
const MAX_OPS = 1024;
const BODY_COLORS = ["HeadColor", "TorsoColor", "LeftArmColor", "RightArmColor", "LeftLegColor", "RightLegColor"];

class PlayerEditor {
  constructor(token) {
    this.conn = new Connection(token);
    this.viewer = null;
    this.outbox = [];
    this.sending = false;
    this.cursor = null;
  }

  async start(generationId) {
    $("player").hidden = false;
    this.conn.onstatus = (s) => { $("connection").textContent = s === "open" ? "Connected" : "Disconnected"; };
    this.conn.on("PromptSelectImage", (d) => this.askSelfie(d));
    this.conn.on("GenerationProgress", (d) => this.progress(d));
    this.conn.on("EditsApplied", (d) => this.relayed(d));
    this.conn.on("PromptCreateAvatar", (d) => this.askPublish(d));
    this.conn.on("SessionEnded", () => { $("sync").textContent = "The generation session has ended."; });
    await this.conn.open();
    if (generationId) await this.load(generationId);
    else $("progress-label").textContent = "Waiting for the game to start your avatar…";
    $("generation").hidden = !!generationId;
    state.ready = true;
  }

  // -- selfie and generation progress

  askSelfie(d) {
    const form = $("selfie");
    form.hidden = false;
    form.onsubmit = async (e) => {
      e.preventDefault();
      const file = $("selfie-file").files[0];
      if (!file) return showError(new ApiError("NoFileChosen", "Choose a photo first."));
      const body = new FormData();
      body.append("file", file);
      try {
        await this.conn.http(d.UploadUrl, { method: "POST", body });
        form.hidden = true;
      } catch (err) {
        showError(err);
      }
    };
    $("selfie-decline").onclick = async () => {
      form.hidden = true;
      await this.conn.call("RespondPromptSelectImage", { FileId: d.FileId, Reason: "SelfieConsentDenied" })
        .catch(showError);
    };
    $("selfie-file").focus();
  }

  progress(d) {
    $("generation").hidden = false;
    $("progress").value = d.Progress;
    const what = d.Kind === "Preview" ? "2D preview" : "3D avatar";
    $("progress-label").textContent = d.Progress >= 1 ? `Your ${what} is ready` : `Making your ${what}: ${d.Stage}`;
    if (d.Progress < 1) return;
    if (d.Kind === "Preview") this.showPreview(d.Id).catch(showError);
    else this.load(d.Id).catch(showError);
  }

  async showPreview(previewId) {
    const png = await this.conn.http(`/v1/previews/${previewId}.png`, { as: "blob" });
    $("preview").src = URL.createObjectURL(png);
    $("preview-box").hidden = false;
  }

  // -- the avatar and its shared document

  async load(generationId) {
    const bundle = await this.conn.call("LoadGeneratedAvatarAsync", { GenerationId: generationId });
    state.generationId = generationId;
    state.copy = new DocReplica(bundle.Document, bundle.Version);
    this.headSurface = null;
    if (state.copy.doc.contentHash() !== bundle.ContentHash) {
      showError(new ApiError("HashMismatch", "This page's copy of the avatar differs from the server's."));
    }
    // edited since it was built: its shape may have changed too (a hairstyle), so the document as it is now
    const url = bundle.Version > 0 ? `/v1/generations/${generationId}/current.glb` : bundle.GlbUrl;
    const glb = await this.conn.http(url, { as: "arraybuffer" });
    $("editor").hidden = false;
    if (!this.viewer) this.viewer = window.acsPage.viewer = new Viewer($("view"));
    // the scales the meshes were built at; the description's may have been edited since
    await this.viewer.load(glb, state.copy.doc.metadata.BuiltScales || bundle.HumanoidDescription);
    this.buildControls();
    this.shownColors = bundle.Version > 0 ? null : this.colorsKey(); // the glb shows the avatar as built
    this.refresh(bundle.Version > 0 ? Object.keys(state.copy.doc.images) : []);
  }

  buildControls() {
    const desc = state.copy.doc.description;
    const box = $("expressions");
    box.querySelectorAll("label, input").forEach((n) => n.remove());
    const names = this.viewer.expressions();
    for (const name of EXPRESSIONS.filter((n) => names.includes(n))) {
      const id = `expr-${name}`;
      box.insertAdjacentHTML("beforeend",
        `<label for="${id}">${name.replace(/([a-z])([A-Z])/g, "$1 $2")}</label>` +
        `<input id="${id}" type="range" min="0" max="1" step="0.05" value="0">`);
      $(id).oninput = (e) => this.viewer.setExpression(name, Number(e.target.value));
    }
    const scales = $("scales");
    scales.querySelectorAll("label, input").forEach((n) => n.remove());
    for (const [name, [lo, hi]] of Object.entries(SCALES)) {
      const id = `scale-${name}`;
      scales.insertAdjacentHTML("beforeend",
        `<label for="${id}">${name.replace("Scale", "")}</label>` +
        `<input id="${id}" type="range" min="${lo}" max="${hi}" step="0.01" value="${desc[name] ?? 1}">`);
      $(id).oninput = (e) => this.viewer.setScales({ ...state.copy.doc.description, [name]: Number(e.target.value) });
      $(id).onchange = (e) => this.edit([{ op: "SetProperty", Property: name, Value: Number(e.target.value) }]);
    }
    $("hair-color").disabled = !this.hairAccessory(desc);
    $("hair-color").onchange = (e) => {
      const accessories = (state.copy.doc.description.Accessories || []).map((a) =>
        a.AccessoryType === "Hair" ? { ...a, Color: rgb(e.target.value) } : a);
      this.edit([{ op: "SetProperty", Property: "Accessories", Value: accessories }]);
    };
    $("hairstyle").disabled = !this.hairAccessory(desc);
    if (state.copy.doc.metadata.HairStyle) $("hairstyle").value = state.copy.doc.metadata.HairStyle; // as built
    this.hairstyle = $("hairstyle").value;
    $("hairstyle").onchange = async (e) => {
      const select = e.target;
      select.disabled = true; // one hairstyle at a time
      $("sync").textContent = "Making the new hairstyle…";
      try {
        await this.conn.call("SetHairstyle", { GenerationId: state.generationId, Style: select.value });
        this.hairstyle = select.value;
      } catch (err) {
        showError(err);
        select.value = this.hairstyle || select.value;
        $("sync").textContent = `In sync with the game: version ${state.copy.version}`;
      } finally {
        select.disabled = false;
      }
    };
    // one skin colour for the six body parts, as a player thinks of it
    $("skin-color").onchange = (e) => this.edit(BODY_COLORS.map((name) =>
      ({ op: "SetProperty", Property: name, Value: rgb(e.target.value) })));
    $("shirt-color").onchange = (e) => this.edit([{ op: "SetProperty", Property: "ShirtColor", Value: rgb(e.target.value) }]);
    $("pants-color").onchange = (e) => this.edit([{ op: "SetProperty", Property: "PantsColor", Value: rgb(e.target.value) }]);
    this.showColors(desc);
    $("turntable").onchange = (e) => { this.viewer.turntable = e.target.checked; };
    $("pose").onchange = (e) => this.viewer.setPose(e.target.value);
    this.setUpPainting();
  }

  showColors(desc) {
    const hair = this.hairAccessory(desc);
    const shown = { "skin-color": desc.HeadColor, "hair-color": hair && hair.Color, "shirt-color": desc.ShirtColor,
                    "pants-color": desc.PantsColor };
    for (const [id, value] of Object.entries(shown)) {
      $(id).disabled = !Array.isArray(value);
      if (Array.isArray(value) && document.activeElement !== $(id)) $(id).value = hex(value);
    }
  }

  /** A key that changes when any colour a surface depends on changes. */
  colorsKey() {
    const d = state.copy.doc.description;
    return JSON.stringify([BODY_COLORS.map((n) => d[n]), d.ShirtColor, d.PantsColor,
                           (d.Accessories || []).map((a) => a && a.Color)]);
  }

  hairAccessory(desc) {
    return (desc.Accessories || []).find((a) => a && a.AccessoryType === "Hair") || null;
  }

  setUpPainting() {
    const canvas = $("face");
    const head = state.copy.doc.images.Head;
    if (!head) return;
    const face = this.viewer.faceUv() || [0.5, 0.5];
    this.cursor = [Math.floor(face[0] * head.width), Math.floor(face[1] * head.height)];
    const paintAt = (x, y) => {
      const radius = Math.max(1, Math.round(Number($("paint-size").value) * head.width / 512));
      this.edit([{ op: "DrawCircle", Image: "Head", Center: [x, y], Radius: radius, Color: rgb($("paint-color").value),
                   Transparency: 0 }]);
    };
    canvas.onclick = (e) => {
      const r = canvas.getBoundingClientRect();
      this.cursor = [Math.floor((e.clientX - r.left) / r.width * head.width),
                     Math.floor((e.clientY - r.top) / r.height * head.height)];
      paintAt(...this.cursor);
    };
    // On the 3D view: a click (not a drag) on the head paints there.
    const view = $("view");
    let down = null;
    view.onpointerdown = (e) => { down = [e.clientX, e.clientY]; };
    view.onpointerup = (e) => {
      if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 4) return;
      const hit = this.viewer.pick(e.clientX, e.clientY);
      if (hit && hit.part === "Head") {
        this.cursor = [Math.floor(hit.uv[0] * head.width), Math.floor(hit.uv[1] * head.height)];
        paintAt(...this.cursor);
      }
    };
    canvas.onkeydown = (e) => {
      const step = Math.max(1, Math.round(head.width / 64));
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[e.key]) {
        const [dx, dy] = moves[e.key];
        this.cursor = [Math.min(head.width - 1, Math.max(0, this.cursor[0] + dx)),
                       Math.min(head.height - 1, Math.max(0, this.cursor[1] + dy))];
        this.drawFace();
      } else if (e.key === "Enter" || e.key === " ") {
        paintAt(...this.cursor);
      } else {
        return;
      }
      e.preventDefault();
    };
    this.drawFace();
  }

  drawFace() {
    const head = state.copy && state.copy.doc.images.Head;
    if (!head) return;
    const canvas = $("face");
    canvas.width = head.width;
    canvas.height = head.height;
    const ctx = canvas.getContext("2d");
    // what the head shows (its skin follows the skin colour: doc.js surface), not the raw layer
    if (!this.headSurface) this.headSurface = surface(state.copy.doc, "Head");
    ctx.putImageData(new ImageData(new Uint8ClampedArray(this.headSurface.buffer), head.width, head.height), 0, 0);
    if (document.activeElement === canvas && this.cursor) {
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = Math.max(1, head.width / 256);
      ctx.beginPath();
      ctx.arc(this.cursor[0], this.cursor[1], head.width / 50, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  // -- edits: ours go out one batch at a time (what piles up meanwhile rides together)

  edit(ops) {
    this.outbox.push(...ops);
    if (!this.sending) this.flush();
  }

  async flush() {
    this.sending = true;
    try {
      while (this.outbox.length) {
        const ops = this.outbox.splice(0, MAX_OPS);
        const batchId = state.copy.nextBatchId();
        try {
          const res = await this.conn.call("ApplyEdits", { GenerationId: state.generationId,
            BaseVersion: state.copy.version, Ops: ops, BatchId: batchId });
          await this.ordered(Number(res.Version), ops);
        } catch (err) {
          showError(err);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  relayed(d) {
    if (d.GenerationId !== state.generationId || !state.copy) return;
    state.relayed += 1;
    this.ordered(Number(d.Version), d.Ops).catch(showError);
  }

  async ordered(version, ops) {
    let touched;
    try {
      touched = state.copy.ordered(version, ops);
    } catch (err) {
      if (!(err instanceof NeedsSnapshot)) throw err;
      touched = await this.resync();
    }
    this.refresh([...touched]);
  }

  /** A batch this copy cannot replay (a mesh edit): take a snapshot, then what came after it. */
  async resync() {
    const snap = await this.conn.call("SyncDocument", { GenerationId: state.generationId,
      Version: state.copy.version, Snapshot: true });
    if (Number(snap.Version) <= state.copy.version) return new Set(); // an earlier answer came later
    state.copy.reset(snap.Document, Number(snap.Version));
    this.reshape();
    try {
      state.copy.drain();
    } catch (err) {
      if (!(err instanceof NeedsSnapshot)) throw err;
      return this.resync();
    }
    return new Set(Object.keys(state.copy.doc.images));
  }

  /** A mesh edit changed the avatar's shape: show the document as it is now (one reload at a time). */
  async reshape() {
    if (this.reshaping) {
      this.reshapeAgain = true;
      return;
    }
    this.reshaping = true;
    try {
      do {
        this.reshapeAgain = false;
        const version = state.copy.version;
        const glb = await this.conn.http(`/v1/generations/${state.generationId}/current.glb`, { as: "arraybuffer" });
        await this.viewer.load(glb, this.viewer.built, { keepView: true });
        this.shownColors = null; // textures again from the copy, which may have moved on meanwhile
        this.refresh(Object.keys(state.copy.doc.images));
        state.reshaped = version;
      } while (this.reshapeAgain);
    } catch (err) {
      showError(err);
    } finally {
      this.reshaping = false;
    }
  }

  refresh(images) {
    const key = this.colorsKey();
    const parts = key === this.shownColors ? images : Object.keys(state.copy.doc.images);
    this.shownColors = key;
    for (const part of parts) {
      const img = state.copy.doc.images[part];
      const shown = surface(state.copy.doc, part);
      if (part === "Head") this.headSurface = shown;
      this.viewer.setTexture(part, shown, img.width, img.height);
    }
    if (parts.includes("Head")) this.drawFace();
    const desc = state.copy.doc.description;
    this.viewer.setScales(desc);
    for (const name of Object.keys(SCALES)) {
      const input = $(`scale-${name}`);
      if (input && document.activeElement !== input) input.value = desc[name] ?? 1;
    }
    this.showColors(desc);
    $("sync").textContent = `In sync with the game: version ${state.copy.version}`;
  }

  // -- publishing

  askPublish(d) {
    const dialog = $("publish");
    const answer = async (accepted) => {
      dialog.close();
      const params = { PromptId: d.PromptId, Accepted: accepted };
      if (accepted && state.copy && state.generationId === d.GenerationId) params.ContentHash = state.copy.doc.contentHash();
      try {
        await this.conn.call("RespondPromptCreateAvatar", params);
        state.published = accepted;
        $("sync").textContent = accepted ? "Sent: the game is publishing your avatar." : "Not published.";
      } catch (err) {
        showError(err);
      }
    };
    $("publish-yes").onclick = () => answer(true);
    $("publish-no").onclick = () => answer(false);
    dialog.showModal();
    $("publish-yes").focus();
  }
}

// ------------------------------------------------------------------ which view

function credentials() {
  const f = fragment();
  for (const k of ["token", "key"]) {
    if (f[k]) {
      sessionStorage.setItem("acs." + k, f[k]);
      sessionStorage.removeItem("acs." + (k === "token" ? "key" : "token"));
    }
  }
  if (f.token || f.key) {
    const rest = new URLSearchParams(Object.entries(f).filter(([k]) => k !== "token" && k !== "key"));
    history.replaceState(null, "", rest.toString() ? `#${rest}` : location.pathname);
  }
  return { token: sessionStorage.getItem("acs.token"), key: sessionStorage.getItem("acs.key"), ...fragment() };
}

async function main() {
  const f = credentials();
  try {
    if (f.token) {
      await new PlayerEditor(f.token).start(f.generation);
    } else if (f.key) {
      new Studio(f.key, state, showError).start(f.view);
    } else {
      $("connection").textContent = "";
      $("welcome").hidden = false;
      state.ready = true;
    }
  } catch (err) {
    showError(err);
    state.ready = true;
  }
}

// A new link pasted into this tab (same page, another fragment): start again with it.
window.addEventListener("hashchange", () => {
  const f = fragment();
  if (f.token || f.key) location.reload();
});

main();
