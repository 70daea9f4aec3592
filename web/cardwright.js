// cardwright.js — the browser client of the cardwright agent
// (docs/protocol.md). An ES module with no dependencies and no build step:
//
//   import { connect } from "./cardwright.js";
//   const agent = await connect();                  // probes the default ports
//   if (!agent.welcome.paired) await agent.pair(code => show(code));
//   const job = agent.submit({ description, fields, secret: ["PIN1"] }, {
//     onProgress: p => bar(p.n, p.total, p.step),
//     onPrompt: p => note(p.kind, p.state),
//     onRequest: async r => ({ certificate, chain }), // issue r.csr at the CA
//   });
//   const result = await job.result;                 // the result message
//   await store(result); await agent.ack(job.id);
//
// Results the portal did not acknowledge before a reload or a crash come
// again after connect (same session, kept in sessionStorage): listen for
// "redelivered" events (event.detail is the result) and ack them too.

export const PROTOCOL_VERSIONS = [1];
export const DEFAULT_PORTS = [27140, 27141, 27142, 27143];
const SESSION_KEY = "cardwright.session";

/** An error reply of the agent: code (stable, docs/protocol.md) and message. */
export class AgentError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "AgentError";
    this.code = code;
  }
}

/**
 * Why connect() could not reach the agent: code is one of
 *   agent_not_running      nothing answers on the agent's ports
 *   local_network_blocked  the browser blocks this page from reaching
 *                          127.0.0.1 (its local-network permission is
 *                          "denied": the user said no, or a headless or
 *                          managed browser cannot ask)
 *   origin_not_allowed     the agent answers but refuses this page's origin (403)
 *   incompatible_version   the agent speaks none of PROTOCOL_VERSIONS
 *   connection_failed      anything else (message says what)
 * docs/protocol.md "Why connect() fails" says what a portal should tell
 * the user for each.
 */
export class ConnectError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ConnectError";
    this.code = code;
  }
}

/**
 * Connects to the agent and says hello. options.url picks the endpoint;
 * without it the default ports on 127.0.0.1 are tried in order.
 * options.session resumes a session (default: the one in sessionStorage).
 * A failure is a ConnectError whose code says why.
 */
export async function connect(options = {}) {
  const urls = options.url ? [options.url] : DEFAULT_PORTS.map(p => `ws://127.0.0.1:${p}/v1/ws`);
  let last;
  for (const url of urls) {
    try {
      const agent = new Agent(url, options);
      await agent.open();
      return agent;
    } catch (e) {
      if (e instanceof AgentError && e.code === "unsupported_version") {
        throw new ConnectError("incompatible_version", `the agent at ${url} speaks none of the protocol versions ${PROTOCOL_VERSIONS.join(", ")}: ${e.message}`);
      }
      if (e instanceof AgentError) throw e;
      last = e;
    }
  }
  throw await diagnose(urls, last);
}

/**
 * The page's local-network permission for 127.0.0.1: "granted", "prompt",
 * "denied", or "unsupported" where the browser has no such permission.
 * Chromium ≥ 145 names it "loopback-network" (loopback addresses) beside
 * "local-network"; 142–144 had one "local-network-access" (MDN
 * browser-compat-data #29331). A managed policy shows as "granted"; a page
 * that local network access does not apply to (a local origin) "prompt".
 */
export async function localNetworkPermission() {
  if (!globalThis.navigator || !navigator.permissions) return "unsupported";
  for (const name of ["loopback-network", "local-network-access"]) {
    try {
      return (await navigator.permissions.query({ name })).state;
    } catch {
      // not a permission this browser knows: try the older name
    }
  }
  return "unsupported";
}

function fetchWithin(url, init, ms) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  return fetch(url, { ...init, signal: ctl.signal, cache: "no-store" }).finally(() => clearTimeout(timer));
}

// diagnose tells the failures apart after every WebSocket closed before
// opening (always code 1006: the API hides why). Measured with Chromium
// 156 (docs/protocol.md "Local Network Access"): a public page without
// permission gets 1006 and the permission turns "denied" whether or not an
// agent listens, so the permission is asked first; then a no-cors fetch of
// /v1/health rejects only when nothing listens (an opaque answer, even a
// 403, resolves it), and a CORS fetch of it succeeds only for an allowed
// origin.
async function diagnose(urls, last) {
  if (await localNetworkPermission() === "denied") {
    return new ConnectError("local_network_blocked", "the browser blocks this page from reaching the agent on this computer (local network access is not allowed for this site)");
  }
  for (const url of urls) {
    const health = url.replace(/^ws/, "http").replace(/\/v1\/ws$/, "/v1/health");
    try {
      await fetchWithin(health, { mode: "no-cors" }, 3000);
    } catch {
      continue; // nothing listens here
    }
    let h;
    try {
      const resp = await fetchWithin(health, {}, 3000);
      h = await resp.json();
    } catch {
      return new ConnectError("origin_not_allowed", `the agent at ${url} does not allow this site (${location.origin}); its administrator adds the origin to [server] origin`);
    }
    if (Array.isArray(h.protocol) && !h.protocol.some(v => PROTOCOL_VERSIONS.includes(v))) {
      return new ConnectError("incompatible_version", `the agent ${h.agent} speaks protocol ${h.protocol.join(", ")}, this page ${PROTOCOL_VERSIONS.join(", ")}`);
    }
    return new ConnectError("connection_failed", `the agent ${h.agent || ""} at ${url} answers but the connection failed: ${last ? last.message : "unknown"}`);
  }
  return new ConnectError("agent_not_running", "no cardwright agent is running on this computer");
}

let counter = 0;
function newID() {
  counter += 1;
  return `${Date.now().toString(36)}-${counter}`;
}

export class Agent extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = options;
    this.welcome = null;
    this._replies = new Map(); // id -> {resolve, reject, onPairing}
    this._jobs = new Map(); // id -> Job
    this._subs = new Map(); // id -> callback
  }

  /** Opens the socket and exchanges hello/welcome. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      ws.onerror = () => { if (!opened) reject(new Error(`cannot reach the agent at ${this.url}`)); };
      ws.onclose = ev => {
        const err = new Error(`connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
        for (const r of this._replies.values()) r.reject(err);
        this._replies.clear();
        for (const j of this._jobs.values()) j._fail(err);
        this._jobs.clear();
        this.dispatchEvent(new CustomEvent("close", { detail: { code: ev.code, reason: ev.reason } }));
        if (!opened) reject(err);
      };
      ws.onmessage = ev => this._onMessage(ev.data);
      ws.onopen = async () => {
        opened = true;
        const storage = this.options.storage === undefined ? globalThis.sessionStorage : this.options.storage;
        const session = this.options.session || (storage && storage.getItem(SESSION_KEY)) || undefined;
        try {
          const hello = { type: "hello", id: newID(), versions: PROTOCOL_VERSIONS, client: this.options.client || "cardwright.js" };
          if (session) hello.session = session;
          this.welcome = await this._call(hello);
          if (storage) storage.setItem(SESSION_KEY, this.welcome.session);
          resolve(this);
        } catch (e) {
          reject(e);
        }
      };
    });
  }

  close() { this.ws.close(1000); }

  _send(msg) { this.ws.send(JSON.stringify(msg)); }

  _call(msg, extra = {}) {
    return new Promise((resolve, reject) => {
      this._replies.set(msg.id, { resolve, reject, ...extra });
      this._send(msg);
    });
  }

  _onMessage(data) {
    let m;
    try { m = JSON.parse(data); } catch { return; }
    const job = this._jobs.get(m.id);
    switch (m.type) {
      case "progress": case "prompt": case "request": case "result":
        if (job) { job._event(m); return; }
        if (m.type === "prompt") { // a dialog of a softtoken or sign request
          const r = this._replies.get(m.id);
          if (r && r.onPrompt) r.onPrompt(m);
          return;
        }
        if (m.type === "result") this.dispatchEvent(new CustomEvent("redelivered", { detail: m }));
        return;
      case "reader_event": case "card_event": {
        const cb = this._subs.get(m.id);
        if (cb) cb(m);
        return;
      }
      case "pairing": {
        const r = this._replies.get(m.id);
        if (r && r.onPairing) r.onPairing(m.code, m.origin);
        return;
      }
    }
    const r = this._replies.get(m.id);
    if (r) {
      this._replies.delete(m.id);
      if (m.type === "error") r.reject(new AgentError(m.code, m.message));
      else r.resolve(m);
      return;
    }
    if (m.type === "error") {
      this.dispatchEvent(new CustomEvent("error", { detail: new AgentError(m.code, m.message) }));
    }
  }

  /** Asks the local user to approve this origin; onCode(code) shows the code. */
  pair(onCode) {
    return this._call({ type: "pair", id: newID() }, { onPairing: onCode });
  }

  /** Lists readers; with onEvent, card and reader events follow. */
  async readers(onEvent) {
    const id = newID();
    const msg = { type: "readers", id };
    if (onEvent) { msg.subscribe = true; this._subs.set(id, onEvent); }
    const list = await this._call(msg);
    return list.readers;
  }

  /**
   * Submits a job. handlers: onProgress, onPrompt, onRequest (returns or
   * resolves to {certificate, chain} | {pkcs12, password} | {error}).
   * Returns a Job whose .accepted and .result are promises.
   */
  submit(job, handlers = {}) {
    const msg = { ...job, type: "job", id: job.id || newID() };
    const j = new Job(this, msg.id, handlers);
    this._jobs.set(msg.id, j);
    j.accepted = this._call(msg).catch(e => { this._jobs.delete(msg.id); j._fail(e); throw e; });
    j.accepted.catch(() => {});
    return j;
  }

  /** Answers a certificate request of a running job. */
  answer(jobID, requestID, answer) {
    return this._call({ ...answer, type: "answer", id: newID(), job: jobID, request: requestID });
  }

  /** Lists the certificates matching filter (docs/protocol.md, certificates). */
  async certificates(filter) {
    const list = await this._call({ type: "certificates", id: newID(), filter });
    return list.certificates;
  }

  /**
   * Signs data (base64) with the key of the one certificate matching
   * filter; the PIN or passphrase is typed into the agent's dialog, whose
   * prompt events go to onPrompt. Resolves to the signature message.
   */
  sign(filter, data, onPrompt) {
    return this._call({ type: "sign", id: newID(), filter, data }, { onPrompt });
  }

  /**
   * Delivers a PKCS#12 soft token (docs/protocol.md, softtoken): token is
   * {pkcs12 (base64), label, profile_type, store, token}. Its passphrase is
   * typed into the agent's dialog, never into the page; onPrompt sees the
   * dialog open and close. Resolves to the softtoken_stored message.
   */
  softToken(token, onPrompt) {
    return this._call({ ...token, type: "softtoken", id: newID() }, { onPrompt });
  }

  /** Tells the agent the result of jobID is stored; it forgets it. */
  ack(jobID) { return this._call({ type: "ack", id: newID(), job: jobID }); }

  /** Cancels a running job; its result then has code "cancelled". */
  cancel(jobID) { return this._call({ type: "cancel", id: newID(), job: jobID }); }
}

export class Job {
  constructor(agent, id, handlers) {
    this.agent = agent;
    this.id = id;
    this.handlers = handlers;
    this.result = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.result.catch(() => {});
  }

  cancel() { return this.agent.cancel(this.id); }

  _event(m) {
    const h = this.handlers;
    switch (m.type) {
      case "progress": if (h.onProgress) h.onProgress(m); break;
      case "prompt": if (h.onPrompt) h.onPrompt(m); break;
      case "request": this._request(m); break;
      case "result":
        this.agent._jobs.delete(this.id);
        this._resolve(m);
        break;
    }
  }

  async _request(m) {
    let answer;
    try {
      answer = this.handlers.onRequest ? await this.handlers.onRequest(m) : { error: "this portal issues no certificates" };
    } catch (e) {
      answer = { error: String(e && e.message || e) };
    }
    try {
      await this.agent.answer(this.id, m.request, answer);
    } catch (e) {
      // The job ends with issuer_error or cancelled; its result says so.
    }
  }

  _fail(err) { this._reject(err); }
}
