// The page's copy of the shared edit document: the same content hash as the server's
// (meshes/avatar.py canonical_hash, specified in the README), and the ops a page applies
// bit for bit as meshes/ops.py does: SetProperty and the EditableImage ops.  A batch with a
// mesh op (the game server moving vertices) cannot be replayed here: the copy asks for a
// snapshot instead (SyncDocument with Snapshot), so it still ends equal to the server's.
//
// Plain ES module: runs in the page and in node (tests/test_creator_page.py).

import { sha256 } from "@noble/hashes/sha2.js";
import { decode as decodePng } from "fast-png";

const utf8 = new TextEncoder();
const EXACT_INT = 2 ** 53;

// ------------------------------------------------------------------ canonical hash

function u32le(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64le(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

const TAG = Object.fromEntries([..."NTFifsbld"].map((c) => [c, utf8.encode(c)]));

function feedInt(h, text) {
  const s = utf8.encode(text);
  h.update(TAG.i);
  h.update(u32le(s.length));
  h.update(s);
}

function feed(h, v) {
  if (v === null || v === undefined) {
    h.update(TAG.N);
  } else if (v === true || v === false) {
    h.update(v ? TAG.T : TAG.F);
  } else if (typeof v === "bigint") {
    feedInt(h, v.toString());
  } else if (typeof v === "number") {
    if (Number.isInteger(v) && Math.abs(v) <= EXACT_INT) {
      feedInt(h, Object.is(v, -0) ? "0" : String(v));
    } else {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      h.update(TAG.f);
      h.update(b);
    }
  } else if (typeof v === "string") {
    const s = utf8.encode(v);
    h.update(TAG.s);
    h.update(u64le(s.length));
    h.update(s);
  } else if (v instanceof Uint8Array) {
    h.update(TAG.b);
    h.update(u64le(v.length));
    h.update(v);
  } else if (Array.isArray(v)) {
    h.update(TAG.l);
    h.update(u64le(v.length));
    for (const x of v) feed(h, x);
  } else if (typeof v === "object") {
    const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    h.update(TAG.d);
    h.update(u64le(keys.length));
    for (const k of keys) {
      feed(h, k);
      feed(h, v[k]);
    }
  } else {
    throw new TypeError(`cannot hash a ${typeof v}`);
  }
}

/** sha256 hex of the type-tagged canonical encoding of a msgpack value. */
export function canonicalHash(value) {
  const h = sha256.create();
  feed(h, value);
  return Array.from(h.digest(), (x) => x.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------------ images

/** A texture: RGBA8 pixels, (0, 0) top left, as meshes.editable_image.EditableImage. */
export class Image {
  constructor(width, height, rgba) {
    this.width = width;
    this.height = height;
    this.rgba = rgba;
  }

  static fromWire(w) {
    if (w.format === "RGBA8") return new Image(w.width, w.height, new Uint8Array(w.data));
    if (w.format !== "PNG") throw new Error(`unknown image format ${w.format}`);
    const png = decodePng(w.data);
    if (png.width !== w.width || png.height !== w.height || png.depth !== 8 || png.palette) {
      throw new Error("unexpected PNG layout in the document");
    }
    const n = png.width * png.height;
    let rgba = png.data;
    if (png.channels === 3) {
      rgba = new Uint8Array(n * 4);
      for (let i = 0; i < n; i++) {
        rgba[4 * i] = png.data[3 * i];
        rgba[4 * i + 1] = png.data[3 * i + 1];
        rgba[4 * i + 2] = png.data[3 * i + 2];
        rgba[4 * i + 3] = 255;
      }
    } else if (png.channels !== 4) {
      throw new Error(`unexpected PNG with ${png.channels} channels`);
    }
    return new Image(png.width, png.height, new Uint8Array(rgba));
  }

  toWire() {
    return { type: "EditableImage", version: 1, width: this.width, height: this.height, format: "RGBA8",
             data: this.rgba };
  }
}

// numpy's rint: halves to even.
function rint(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

const OVERWRITE = 2;

function combineType(ct) {
  if (ct === undefined || ct === "BlendSourceOver" || ct === 1) return 1;
  if (ct === "Overwrite" || ct === 2) return OVERWRITE;
  throw new Error(`unknown CombineType ${ct}`);
}

// meshes/editable_image.py _blend, pixel by pixel, in the same float64 order.
function blendPixel(px, i, rgb, alpha, combine) {
  let out;
  if (combine === OVERWRITE) {
    out = [rgb[0], rgb[1], rgb[2], alpha];
  } else {
    const da = px[i + 3] / 255.0;
    const oa = alpha + da * (1.0 - alpha);
    const safe = oa > 0 ? oa : 1.0;
    out = [0, 0, 0, oa];
    for (let c = 0; c < 3; c++) {
      out[c] = oa > 0 ? (rgb[c] * alpha + (px[i + c] / 255.0) * da * (1.0 - alpha)) / safe : 0.0;
    }
  }
  for (let c = 0; c < 4; c++) px[i + c] = Math.min(255, Math.max(0, rint(out[c] * 255.0)));
}

function drawRectangle(img, op) {
  const [x, y] = op.Position;
  const w = Math.min(op.Size[0], img.width - x);
  const h = Math.min(op.Size[1], img.height - y);
  const alpha = 1.0 - op.Transparency;
  const ct = combineType(op.CombineType);
  for (let r = y; r < y + h; r++) {
    for (let c = x; c < x + w; c++) blendPixel(img.rgba, 4 * (r * img.width + c), op.Color, alpha, ct);
  }
}

function drawCircle(img, op) {
  const [cx, cy] = op.Center;
  const r = op.Radius;
  const alpha = 1.0 - op.Transparency;
  const ct = combineType(op.CombineType);
  const x0 = Math.max(cx - r, 0), x1 = Math.min(cx + r + 1, img.width);
  const y0 = Math.max(cy - r, 0), y1 = Math.min(cy + r + 1, img.height);
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0; xx < x1; xx++) {
      if ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) blendPixel(img.rgba, 4 * (yy * img.width + xx), op.Color, alpha, ct);
    }
  }
}

function writePixels(img, op) {
  const [x, y] = op.Position;
  const [w, h] = op.Size;
  for (let r = 0; r < h; r++) {
    img.rgba.set(op.Buffer.subarray(4 * r * w, 4 * (r + 1) * w), 4 * ((y + r) * img.width + x));
  }
}

// ------------------------------------------------------------------ the document

const BODY_PARTS = ["Head", "Torso", "LeftArm", "RightArm", "LeftLeg", "RightLeg"];
const IMAGE_OPS = new Set(["WritePixelsBuffer", "DrawRectangle", "DrawCircle"]);

/** Raised for an op this copy does not replay (mesh ops): resync with a snapshot. */
export class NeedsSnapshot extends Error {}

function plainCopy(v) {
  if (v instanceof Uint8Array) return v.slice();
  if (Array.isArray(v)) return v.map(plainCopy);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainCopy(x)]));
  return v;
}

export class AvatarDoc {
  /** From the wire form the server sends (``LoadGeneratedAvatarAsync``'s ``Document``). */
  constructor(wire) {
    if (wire.type !== "Avatar" || wire.version !== 1) throw new Error("not an Avatar document");
    this.description = wire.description;
    this.bones = wire.bones;
    this.attachments = wire.attachments;
    this.metadata = wire.metadata;
    this.parts = wire.parts;
    this.images = Object.fromEntries(Object.entries(wire.images).map(([k, w]) => [k, Image.fromWire(w)]));
  }

  toWire() {
    return {
      type: "Avatar", version: 1, description: this.description, bones: this.bones,
      attachments: this.attachments, metadata: this.metadata, parts: this.parts,
      images: Object.fromEntries(Object.entries(this.images).map(([k, img]) => [k, img.toWire()])),
    };
  }

  contentHash() {
    return canonicalHash(this.toWire());
  }

  /** Whether this copy can replay every op of a batch. */
  static replayable(ops) {
    return ops.every((op) => op.op === "SetProperty" || IMAGE_OPS.has(op.op));
  }

  /** Apply a batch the server ordered (so already validated); returns the images it touched. */
  apply(ops) {
    if (!AvatarDoc.replayable(ops)) throw new NeedsSnapshot("a mesh edit: this copy takes a snapshot");
    const touched = new Set();
    for (const op of ops) {
      if (op.op === "SetProperty") {
        this.setProperty(op.Property, op.Value);
        continue;
      }
      const img = this.images[op.Image];
      if (op.op === "WritePixelsBuffer") writePixels(img, op);
      else if (op.op === "DrawRectangle") drawRectangle(img, op);
      else drawCircle(img, op);
      touched.add(op.Image);
    }
    return touched;
  }

  setProperty(name, value) {
    this.description[name] = plainCopy(value);
    if (name.endsWith("Color") && BODY_PARTS.includes(name.slice(0, -5))) {
      for (const bp of this.description.BodyParts || []) {
        if (bp && bp.BodyPart === name.slice(0, -5)) bp.Color = plainCopy(value);
      }
    }
  }
}

// ------------------------------------------------------------------ what a part shows

// meshes/surface.py: each texture is painted in the colours the avatar was built with
// (metadata.BuiltColors); metadata.Bases says per texel which description colour it was
// painted in; where that colour changed, the texel's (1 − alpha) share follows it, the
// ratio taken in linear light.
const BASE_NONE = 0; // then 1 the body colour, 2 ShirtColor, 3 PantsColor, 4 the hair accessory's Color

const toLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const toSrgb = (c) => (c <= 0.0031308 ? c * 12.92 : 1.055 * Math.max(c, 0.0031308) ** (1 / 2.4) - 0.055);
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => toLinear(v / 255));

/** The colour of each base code for ``part`` in ``colors`` (a description or BuiltColors). */
function basePalette(colors, part, bodyOf) {
  const body = bodyOf[part];
  const hair = (colors.Accessories || []).find((a) => a && a.Instance === part);
  const pal = [null, body ? colors[`${body}Color`] : null, colors.ShirtColor, colors.PantsColor, hair && hair.Color];
  return pal.map((c) => (Array.isArray(c) && c.length === 3 ? c.map((x) => Math.min(1, Math.max(0, x))) : null));
}

/** Per code and channel, what an 8-bit value becomes (unrounded), or null when nothing changed. */
function tintTables(now, then) {
  let changed = false;
  const tables = now.map((c, code) => {
    const t = then[code];
    if (code === BASE_NONE || !c || !t || c.every((x, i) => x === t[i])) return null;
    changed = true;
    return c.map((x, ch) => {
      const ratio = toLinear(x) / Math.max(toLinear(t[ch]), 1e-3);
      return Float64Array.from(LINEAR, (l) => toSrgb(Math.min(1, Math.max(0, l * ratio))) * 255);
    });
  });
  return changed ? tables : null;
}

const basesCache = new WeakMap();

function bases(doc, part) {
  let cache = basesCache.get(doc.metadata);
  if (!cache) basesCache.set(doc.metadata, (cache = new Map()));
  if (!cache.has(part)) {
    const data = (doc.metadata.Bases || {})[part];
    cache.set(part, data instanceof Uint8Array ? decodePng(data).data : null);
  }
  return cache.get(part);
}

/** What ``part`` shows: RGBA pixels (alpha 255) of its texture over the description's colours. */
export function surface(doc, part) {
  const img = doc.images[part];
  const out = new Uint8Array(img.rgba.length);
  const src = img.rgba;
  const codes = bases(doc, part);
  const bodyOf = {};
  for (const bp of doc.description.BodyParts || []) for (const p of bp.Instance || []) bodyOf[p] = bp.BodyPart;
  const built = doc.metadata.BuiltColors;
  const tables = codes && codes.length === img.width * img.height && built
    ? tintTables(basePalette(doc.description, part, bodyOf), basePalette(built, part, bodyOf)) : null;
  for (let i = 0, n = img.width * img.height; i < n; i++) {
    const o = 4 * i;
    const t = tables && tables[codes[i]];
    if (t) {
      const a = src[o + 3] / 255;
      for (let ch = 0; ch < 3; ch++) {
        const v = src[o + ch];
        out[o + ch] = Math.round(a * v + (1 - a) * t[ch][v]);
      }
    } else {
      out[o] = src[o]; out[o + 1] = src[o + 1]; out[o + 2] = src[o + 2];
    }
    out[o + 3] = 255;
  }
  return out;
}

/**
 * The page's side of meshes/sync.py's Replica: a confirmed copy that applies batches in the
 * server's version order (its own when acknowledged, the other side's when relayed),
 * buffering what arrives early.
 */
export class DocReplica {
  constructor(wire, version) {
    this.reset(wire, version);
    this.token = Math.random().toString(36).slice(2, 10);
    this.n = 0;
  }

  reset(wire, version) {
    this.doc = new AvatarDoc(wire);
    this.version = version;
    // batches relayed while a snapshot was on its way and newer than it still apply after it
    const kept = [...(this.early || new Map())].filter(([v]) => v > version);
    this.early = new Map(kept); // version -> ops
  }

  nextBatchId() {
    this.n += 1;
    return `2-${this.token}-${this.n}`; // side 2: the game client
  }

  /**
   * A batch the server ordered as ``version``.  Returns the images touched, or throws
   * NeedsSnapshot when a batch cannot be replayed here.
   */
  ordered(version, ops) {
    if (version <= this.version) return new Set();
    this.early.set(version, ops);
    return this.drain();
  }

  /** Apply the buffered batches that now follow in order; returns the images touched. */
  drain() {
    const touched = new Set();
    while (this.early.has(this.version + 1)) {
      const next = this.early.get(this.version + 1);
      this.early.delete(this.version + 1);
      for (const name of this.doc.apply(next)) touched.add(name);
      this.version += 1;
    }
    return touched;
  }
}
