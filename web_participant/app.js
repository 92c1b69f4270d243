// The demo page: starts the participant worker, shows what its devices do, the coordinator's
// round and phase (GET /state, polled, plus the worker's event stream) and the accuracy of
// every global model. `window.xaynetDemo` exposes the same state to tests and the console.
//
// URL parameters: ?devices=N (devices started at load, default 8, 0..32), ?seed=S (SGD order).

import { WorkerClient } from "./worker-client.mjs";

const params = new URLSearchParams(location.search);
const INITIAL_DEVICES = Math.max(0, Math.min(32, Number.parseInt(params.get("devices") ?? "8", 10) || 0));
const STATE_POLL_MS = 1000;
const CHART_POINTS = 40;

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

let bootResolve, bootReject;
const demo = {
  ready: new Promise((resolve, reject) => ((bootResolve = resolve), (bootReject = reject))),
  boot: null, // the worker's "ready" message: versions, seconds
  connection: "connecting",
  coordinator: { round_id: null, phase: null },
  devices: new Map(),
  models: [], // {round_id, model_id, accuracy, loss}, by round
  modelsSeen: 0, // global models announced since the page loaded
  failures: 0, // rounds seen failing
  removedCounts: { accepted: 0, rejected: 0 },
  errors: [],
  call,
};
window.xaynetDemo = demo;
demo.ready.catch(() => {}); // shown on the page; tests await it themselves

// -- the worker ---------------------------------------------------------------------------------

const client = new WorkerClient("worker.mjs", {
  onStage: (stage) => ($("boot").textContent = `Starting Python in a web worker: ${stage}…`),
  onReport,
});

function call(cmd, args = {}) {
  return client.call(cmd, args);
}

function fail(text) {
  demo.errors.push(text);
  $("boot").textContent = text;
  $("boot").classList.add("failed");
  bootReject(new Error(text));
  log(text, true);
}

async function onReady(info) {
  demo.boot = info;
  $("boot").textContent = "";
  $("runtime").textContent =
    `Python ${info.python} (Pyodide ${info.pyodide}), ${info.crypto} ${info.sodium}, ready in ${info.seconds.toFixed(1)} s`;
  log(`Participant worker ready in ${info.seconds.toFixed(1)} s (${info.train} training images, ${info.test} held out)`);
  $("add").disabled = false;
  bootResolve(info);
  if (INITIAL_DEVICES > 0) await addDevices(INITIAL_DEVICES);
}

client
  .boot(params.has("seed") ? { seed: Number(params.get("seed")) } : {})
  .then(onReady, (error) => fail(error.message.charAt(0).toUpperCase() + error.message.slice(1)));

async function addDevices(count) {
  try {
    const { numbers } = await call("add", { count });
    log(`Added ${numbers.length === 1 ? "device" : "devices"} ${numbers.map((n) => `#${n}`).join(", ")}`);
  } catch (error) {
    log(error.message, true);
  }
}

$("add").addEventListener("click", () => addDevices(1));
$("remove").addEventListener("click", async () => {
  const numbers = [...demo.devices.keys()];
  if (numbers.length === 0) return;
  await call("remove", { number: numbers[numbers.length - 1] }).catch((error) => log(error.message, true));
});

// -- reports from the devices -------------------------------------------------------------------

function onReport(report) {
  switch (report.type) {
    case "device":
      onDevice(report);
      break;
    case "removed": {
      const device = demo.devices.get(report.number);
      if (device) {
        demo.removedCounts.accepted += device.accepted;
        demo.removedCounts.rejected += device.rejected;
      }
      demo.devices.delete(report.number);
      document.querySelector(`.device[data-number="${report.number}"]`)?.remove();
      log(`Removed device #${report.number}`);
      renderCounts();
      break;
    }
    case "global_model":
      onGlobalModel(report);
      break;
    case "coordinator":
      onCoordinatorEvent(report.kind, report.data);
      break;
  }
}

function onDevice(status) {
  const before = demo.devices.get(status.number);
  demo.devices.set(status.number, status);
  if (status.error && status.error !== before?.error) log(`Device #${status.number}: ${status.error}`, true);
  renderDevice(status);
  renderCounts();
}

function onGlobalModel(model) {
  demo.modelsSeen += 1;
  demo.models = demo.models.filter((m) => m.round_id !== model.round_id).concat([model]);
  demo.models.sort((a, b) => a.round_id - b.round_id);
  const percent = (100 * model.accuracy).toFixed(1);
  $("accuracy-now").textContent = `${percent} % on 450 held-out digits (round ${model.round_id})`;
  log(`Round ${model.round_id}: new global model, accuracy ${percent} %`);
  renderChart();
}

function onCoordinatorEvent(kind, data) {
  if (kind === "phase" && data) {
    setCoordinator(data.round_id, data.phase);
    if (data.phase === "failure") explainFailure(data.round_id);
  } else if (kind === "round" && data) {
    log(`Round ${data.round_id} started`);
  }
}

// A round fails when a phase ends without enough messages (e.g. nobody drew the sum role):
// the coordinator says why in GET /state, and the next round starts soon after.
async function explainFailure(roundId) {
  let reason = "a phase ended without enough messages";
  try {
    const state = await (await fetch("state", { cache: "no-store" })).json();
    if (state.last_failure?.round_id === roundId) reason = state.last_failure.reason;
  } catch {
    // the log line goes out without the reason
  }
  demo.failures += 1;
  log(`Round ${roundId} failed: ${reason}; the next round draws new roles`);
}

function setCoordinator(roundId, phase) {
  demo.coordinator = { round_id: roundId, phase };
  $("round").textContent = roundId ?? "–";
  $("phase").textContent = phase ?? "–";
}

// -- the coordinator's state (polled: it also tells whether the coordinator is there) ------------

function setConnection(state, text) {
  if (state !== demo.connection) {
    if (state === "unreachable") log("The coordinator is unreachable: the devices keep retrying", true);
    if (state === "connected" && demo.connection === "unreachable") log("The coordinator is back");
  }
  demo.connection = state;
  $("connection").dataset.state = state;
  $("connection").textContent = text;
}

async function pollState() {
  try {
    const response = await fetch("state", { cache: "no-store", signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    setCoordinator(state.round_id, state.phase);
    if (state.phase === "shutdown") setConnection("unreachable", "coordinator shutting down");
    else setConnection("connected", "coordinator connected");
  } catch {
    setConnection("unreachable", "coordinator unreachable");
  } finally {
    setTimeout(pollState, STATE_POLL_MS);
  }
}
pollState();

// -- rendering ----------------------------------------------------------------------------------

const BUSY = /training|masking|aggregating|sending|choosing|drawing|fetching/;

function renderDevice(status) {
  let card = document.querySelector(`.device[data-number="${status.number}"]`);
  if (!card) {
    card = document.createElement("article");
    card.className = "device";
    card.dataset.number = status.number;
    card.innerHTML = `
      <div class="device-head"><span class="device-name"></span><span class="role"></span></div>
      <div class="activity"></div>
      <div class="meta"><span class="samples"></span><span class="loss"></span><span class="msgs"></span></div>
      <div class="labels" title="digits this device holds (0 to 9)"></div>
      <div class="note" hidden></div>
      <div class="error" hidden></div>`;
    const labels = card.querySelector(".labels");
    const most = Math.max(...status.labels, 1);
    status.labels.forEach((count, digit) => {
      const bar = document.createElement("span");
      bar.style.height = `${(100 * count) / most}%`;
      bar.title = `digit ${digit}: ${count} images`;
      labels.append(bar);
    });
    const cards = [...$("devices").children];
    const after = cards.find((c) => Number(c.dataset.number) > status.number);
    $("devices").insertBefore(card, after ?? null);
  }
  const role = status.role ?? "waiting";
  card.dataset.role = role;
  card.querySelector(".device-name").textContent = `Device #${status.number}`;
  const roleEl = card.querySelector(".role");
  roleEl.textContent = status.round_id === null ? role : `${role} · round ${status.round_id}`;
  roleEl.className = `role ${role}`;
  const activity = card.querySelector(".activity");
  activity.textContent = status.activity;
  activity.classList.toggle("busy", BUSY.test(status.activity));
  card.querySelector(".samples").textContent = `${status.samples} images`;
  card.querySelector(".loss").textContent = status.loss === null ? "loss –" : `loss ${status.loss.toFixed(3)}`;
  card.querySelector(".msgs").textContent = `✓ ${status.accepted}` + (status.rejected ? ` ✗ ${status.rejected}` : "");
  const note = card.querySelector(".note");
  note.hidden = !status.note;
  note.textContent = status.note ?? "";
  const error = card.querySelector(".error");
  error.hidden = !status.error;
  error.textContent = status.error ?? "";
}

function renderCounts() {
  let accepted = demo.removedCounts.accepted;
  let rejected = demo.removedCounts.rejected;
  for (const device of demo.devices.values()) {
    accepted += device.accepted;
    rejected += device.rejected;
  }
  $("accepted").textContent = accepted;
  $("rejected").textContent = rejected;
  $("device-count").textContent = demo.devices.size;
  $("remove").disabled = demo.devices.size === 0;
  $("add").disabled = demo.boot === null || demo.devices.size >= 32;
}

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function renderChart() {
  const chart = $("chart");
  chart.replaceChildren();
  const [width, height, left, right, top, bottom] = [600, 220, 66, 12, 12, 30];
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + plotH * (1 - tick);
    chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y, y2: y }));
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, `${tick * 100}%`));
  }
  const points = demo.models.slice(-CHART_POINTS);
  if (points.length === 0) {
    chart.append(svg("text", { class: "empty", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" },
      "waiting for the first global model…"));
    return;
  }
  const first = points[0].round_id;
  const span = Math.max(points[points.length - 1].round_id - first, 1);
  const x = (round) => left + (plotW * (round - first)) / span;
  const y = (accuracy) => top + plotH * (1 - accuracy);
  chart.append(svg("polyline", {
    class: "line",
    points: points.map((p) => `${x(p.round_id)},${y(p.accuracy)}`).join(" "),
  }));
  for (const p of points) {
    const dot = svg("circle", { class: "dot", cx: x(p.round_id), cy: y(p.accuracy), r: 3.5 });
    dot.append(svg("title", {}, `round ${p.round_id}: ${(100 * p.accuracy).toFixed(1)} %`));
    chart.append(dot);
  }
  const firstRound = points[0].round_id;
  const lastRound = points[points.length - 1].round_id;
  chart.append(svg("text", { x: x(firstRound), y: height - 8, "text-anchor": "start" }, `round ${firstRound}`));
  if (lastRound !== firstRound) {
    chart.append(svg("text", { x: x(lastRound), y: height - 8, "text-anchor": "end" }, `round ${lastRound}`));
  }
}

function log(text, bad = false) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  const body = document.createElement("span");
  body.textContent = text;
  if (bad) body.className = "bad";
  item.append(time, body);
  $("log").prepend(item);
  while ($("log").children.length > 60) $("log").lastChild.remove();
}

renderChart();
renderCounts();
