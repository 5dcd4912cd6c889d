// The page's connection to the server: the SDK's msgpack frames over /v1/ws
// (client_sim/connection.py), and the HTTP routes with the credential in a header.
//
// The credential (a player token or an experience API key) comes from the URL fragment,
// which browsers never send to a server; the websocket carries it as the
// "acs.bearer.<credential>" subprotocol, never in a query string.

import { Decoder, Encoder } from "@msgpack/msgpack";

const encoder = new Encoder();
const decoder = new Decoder({ useBigInt64: true });

export const pack = (v) => encoder.encode(v);
export const unpack = (b) => decoder.decode(b);

/** A refusal: the server's typed error code and its message for people. */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The credential and the generation named in the page's URL fragment. */
export function fragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  return Object.fromEntries(params.entries());
}

export class Connection {
  constructor(credential) {
    this.credential = credential;
    this.nextId = 1;
    this.calls = new Map();
    this.handlers = new Map();
    this.ws = null;
    this.onstatus = () => {};
  }

  async open() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
    const ws = new WebSocket(url, ["acs", `acs.bearer.${this.credential}`]);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new ApiError("ConnectionFailed", "Could not connect to the server."));
    });
    ws.onmessage = (m) => this.receive(unpack(new Uint8Array(m.data)));
    ws.onclose = () => {
      for (const { reject } of this.calls.values()) reject(new ApiError("ConnectionLost", "The connection dropped."));
      this.calls.clear();
      this.onstatus("closed");
    };
    this.ws = ws;
    this.onstatus("open");
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
  }

  receive(frame) {
    if (frame.event !== undefined) {
      for (const h of this.handlers.get(frame.event) || []) h(frame.data || {});
      return;
    }
    const call = this.calls.get(frame.id);
    if (!call) return;
    if (frame.progress !== undefined) {
      call.progress(frame.progress.Progress, frame.progress.Stage);
    } else {
      this.calls.delete(frame.id);
      if (frame.error !== undefined) call.reject(new ApiError(frame.error.code, frame.error.message));
      else call.resolve(frame.result);
    }
  }

  /** One RPC; ``progress(value, stage)`` gets the progress frames. */
  call(method, params, progress = () => {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ApiError("ConnectionLost", "Not connected to the server."));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject, progress });
      this.ws.send(pack({ id, method, params }));
    });
  }

  /** A GET or POST with the credential in the Authorization header; JSON errors become ApiError. */
  async http(path, { method = "GET", body = undefined, as = "json" } = {}) {
    const res = await fetch(path, { method, body, headers: { Authorization: `Bearer ${this.credential}` } });
    if (!res.ok) {
      let code = `HTTP${res.status}`, message = res.statusText;
      try {
        const err = (await res.json()).error;
        code = err.code;
        message = err.message;
      } catch (_) { /* not a JSON error */ }
      throw new ApiError(code, message);
    }
    if (as === "json") return res.json();
    if (as === "blob") return res.blob();
    return res.arrayBuffer();
  }
}
