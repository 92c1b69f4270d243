// The browser participant: a module web worker running Pyodide, libsodium.js and the xaynet
// wheel. Everything is loaded from the server that served the page (never a CDN); paths are
// relative to this file so the demo also works behind a path prefix.
//
// Messages from the page: {id, cmd, args} -> {type: "reply", id, ok, result | error}.
// Messages to the page: {type: "boot", stage}, {type: "ready", seconds, ...},
// {type: "fatal", error}, and {type: "report", json} for every report of the device fleet
// (xaynet.browser.fleet).

import { loadPyodide } from "./vendor/pyodide/pyodide.mjs";
import sodium from "./vendor/sodium/libsodium-wrappers.mjs";

const base = new URL(".", import.meta.url);
const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;

function post(message) {
  self.postMessage(message);
}

function errorText(error) {
  // A PythonError's message is the whole traceback: its last line says what went wrong.
  // Pyodide may add a line of advice after it; keep the line naming the exception.
  const text = String((error && error.message) || error).trim();
  const lines = text.split("\n").filter((line) => line.trim());
  const named = lines.filter((line) => /^[A-Za-z_.]*(Error|Exception|Exit)\b/.test(line));
  return named.length ? named.slice(-1)[0] + (lines.at(-1) !== named.at(-1) ? ` ${lines.at(-1)}` : "") : lines.at(-1) || text;
}

async function fetchOk(path) {
  const response = await fetch(new URL(path, base), { cache: "no-cache" });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return response;
}

async function boot(options) {
  post({ type: "boot", stage: "loading Python (Pyodide)" });
  const pyodide = await loadPyodide({ indexURL: new URL("vendor/pyodide/", base).href });
  const pythonSeconds = seconds();
  post({ type: "boot", stage: "loading libsodium" });
  await sodium.ready;
  pyodide.registerJsModule("sodium_js", sodium);
  post({ type: "boot", stage: "installing xaynet" });
  // options.data === false: the page supplies the models (xaynet.mjs), no data set needed
  const withData = options.data !== false;
  const [wheel, data] = await Promise.all([
    fetchOk("wheels/xaynet.whl").then((r) => r.arrayBuffer()),
    withData ? fetchOk("data/digits.json").then((r) => r.text()) : "",
  ]);
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  pyodide.unpackArchive(wheel, "wheel", { extractDir: sitePackages });
  const api = pyodide.pyimport("xaynet.browser.worker");
  post({ type: "boot", stage: withData ? "loading the data" : "starting" });
  const url = base.href.replace(/\/$/, "");
  delete options.data;
  const sizes = JSON.parse(
    await api.start((json) => post({ type: "report", json }), data, JSON.stringify({ url, ...options })),
  );
  const versions = JSON.parse(
    pyodide.runPython(
      "import json, sys, xaynet, xaynet.crypto as c; " +
        "json.dumps({'python': sys.version.split()[0], 'xaynet': xaynet.__version__, " +
        "'crypto': c.get_backend().name})",
    ),
  );
  post({
    type: "ready",
    seconds: seconds(),
    python_seconds: pythonSeconds,
    sodium: sodium.sodium_version_string(),
    pyodide: pyodide.version,
    ...versions,
    ...sizes,
  });
  return api;
}

let booting = null;

self.onmessage = async (event) => {
  const { id, cmd, args } = event.data;
  if (cmd === "boot") {
    booting = booting || boot(args || {});
    booting.catch((error) => {
      console.error(error);
      post({ type: "fatal", error: errorText(error) });
    });
    return;
  }
  try {
    if (booting === null) throw new Error("boot the worker first");
    const api = await booting;
    const reply = await api.command(cmd, JSON.stringify(args || {}));
    post({ type: "reply", id, ok: true, result: JSON.parse(reply) });
  } catch (error) {
    post({ type: "reply", id, ok: false, error: errorText(error) });
  }
};
