// The demo portal: connects to the agent, runs jobs from a form, answers
// certificate requests through the demo server's test CA (POST /issue on
// this page's own origin), shows progress and the result, acknowledges it.
import { connect } from "./cardwright.js";

const $ = id => document.getElementById(id);
const params = new URLSearchParams(location.search);
// With ?fake=1 (cardwright serve --fake-runner --demo-portal) the page adds
// the fields that steer the fake runner; a real runner reads the description.
const fake = params.get("fake") === "1";
let agent, running = null, count = 0;
// The job the demo server offers (cardwright serve --demo-job FILE), if any.
let demoJob = null;

function log(line) {
  $("log").textContent += line + "\n";
}

// What the portal tells the user for each ConnectError code
// (docs/protocol.md "Why connect() fails").
const advice = {
  agent_not_running: "Start cardwright on this computer (the desktop app, or the cardwright service), then reload this page.",
  local_network_blocked: "Your browser does not let this site reach programs on this computer. Allow \"local network access\" for this site in the site settings (the icon left of the address), or ask your administrator to run: cardwright browser-policy install --origin " + location.origin,
  origin_not_allowed: "cardwright on this computer does not accept this site. Ask your administrator to add " + location.origin + " to [server] origin.",
  incompatible_version: "The cardwright on this computer is too old or too new for this portal: install the version the portal names.",
  connection_failed: "cardwright answered but the connection failed; reload the page, and if it stays so, restart cardwright.",
};

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = cls || "";
}

async function issue(req) {
  const resp = await fetch("/issue", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ csr: req.csr, template: req.template, application: req.application, key_archival: !!req.key_archival }),
  });
  if (!resp.ok) return { error: `issuing failed: HTTP ${resp.status}` };
  return resp.json(); // {certificate, chain}, or {pkcs12, password} for key archival
}

function show(result) {
  if (result.ok) {
    const f = result.fields || {};
    const parts = Object.keys(f).sort().map(k => `${k}=${f[k]}`);
    $("result").textContent = "OK " + parts.join(" ");
    $("result").className = "ok";
  } else {
    $("result").textContent = `FAILED ${result.error.code}: ${result.error.message}`;
    $("result").className = "bad";
  }
}

async function runJob(ev) {
  ev.preventDefault();
  if (running) return;
  const name = $("name").value;
  const fields = { Name: name };
  if (fake) {
    Object.assign(fields, { Echo: name, Steps: "4", StepDelayMs: "40" });
    if ($("request").checked) fields.Request = "DemoLogon";
  }
  let job = { description: $("description").value, fields };
  if (demoJob) {
    job = structuredClone(demoJob);
    job.fields = { ...(job.fields || {}), ...(fake ? fields : {}) };
    if ("HOLDER_NAME" in job.fields) job.fields.HOLDER_NAME = name;
    // HOLDER: a profile parameter, base64 of the name's UTF-8 bytes.
    if ("HOLDER" in job.fields) job.fields.HOLDER = btoa(String.fromCharCode(...new TextEncoder().encode(name)));
  }
  if ($("reader").value) job.reader = $("reader").value;
  $("encode").disabled = true;
  $("cancel").disabled = false;
  $("result").textContent = "running…";
  $("result").className = "";
  $("progress").value = 0;
  log(`job for ${name}`);
  running = agent.submit(job, {
    onProgress: p => {
      $("progress").max = p.total;
      $("progress").value = p.n;
      $("step").textContent = `${p.n}/${p.total} ${p.step}`;
    },
    onPrompt: p => log(`prompt ${p.kind}: ${p.state}`),
    onRequest: async r => {
      log(`${r.key_archival ? "key-archival" : "certificate"} request ${r.request} (${r.template})`);
      return issue(r);
    },
  });
  try {
    const result = await running.result;
    show(result);
    log(`result ${result.ok ? "ok" : result.error.code}`);
    await agent.ack(running.id);
    if (result.ok) {
      count += 1;
      $("count").textContent = String(count);
    }
  } catch (e) {
    $("result").textContent = `FAILED ${e.code || "error"}: ${e.message}`;
    $("result").className = "bad";
  } finally {
    running = null;
    $("encode").disabled = false;
    $("cancel").disabled = true;
  }
}

async function main() {
  try {
    const resp = await fetch("/demo-job.json", { cache: "no-store" });
    if (resp.ok) {
      demoJob = await resp.json();
      delete demoJob.id;
      $("description").value = demoJob.description || "(.dsz job)";
      $("description").readOnly = true;
      if (demoJob.reader) $("reader").value = demoJob.reader;
    }
  } catch {
    // no demo job: the form's description is used
  }
  try {
    agent = await connect({ url: params.get("agent") || undefined, client: "demo-portal" });
  } catch (e) {
    const code = e.code || "connection_failed";
    setStatus(`${code}: ${e.message}`, "bad");
    $("status").dataset.code = code;
    $("why").textContent = advice[code] || "";
    return;
  }
  agent.addEventListener("close", ev => setStatus(`disconnected (${ev.detail.code})`, "bad"));
  agent.addEventListener("redelivered", async ev => {
    show(ev.detail);
    log(`earlier result ${ev.detail.id} delivered again`);
    await agent.ack(ev.detail.id);
    log(`earlier result ${ev.detail.id} acknowledged`);
  });
  if (!agent.welcome.paired) {
    setStatus("waiting for approval on this computer", "");
    try {
      await agent.pair(code => { $("pairing").textContent = `code ${code}`; });
    } catch (e) {
      setStatus(`not approved: ${e.message}`, "bad");
      return;
    }
    $("pairing").textContent = "";
  }
  const readers = await agent.readers(ev => log(`${ev.type} ${ev.event} ${ev.reader}`));
  log(`readers: ${readers.map(r => r.name + (r.card ? " (card)" : "")).join(", ") || "none"}`);
  setStatus(`connected to ${agent.welcome.agent}`, "ok");
  $("encode").disabled = false;
}

$("job").addEventListener("submit", runJob);
$("cancel").addEventListener("click", () => running && running.cancel());
main();
