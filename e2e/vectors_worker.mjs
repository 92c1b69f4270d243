// Test-only worker (served by the test through Playwright routing, never by the coordinator):
// the browser's runtime -- Pyodide, libsodium.js and the xaynet wheel, all as the coordinator
// serves them to the demo's worker -- plus pytest, running the known-answer vector tests.
//
// Message in: {wheels: [urls], files: [repo paths], args: [pytest args]}.
// Message out: {rc, output}.

import { loadPyodide } from "/vendor/pyodide/pyodide.mjs";
import sodium from "/vendor/sodium/libsodium-wrappers.mjs";

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

self.onmessage = async (event) => {
  const { wheels, files, args } = event.data;
  const output = [];
  try {
    const pyodide = await loadPyodide({ indexURL: "/vendor/pyodide/" });
    pyodide.setStdout({ batched: (line) => output.push(line) });
    pyodide.setStderr({ batched: (line) => output.push(line) });
    await sodium.ready;
    pyodide.registerJsModule("sodium_js", sodium);
    const site = pyodide.runPython("import site; site.getsitepackages()[0]");
    for (const url of ["/wheels/xaynet.whl", ...wheels]) {
      pyodide.unpackArchive(await bytes(url), "wheel", { extractDir: site });
    }
    for (const path of files) {
      const target = `/repo/${path}`;
      pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf("/")));
      pyodide.FS.writeFile(target, new Uint8Array(await bytes(`/__e2e__/repo/${path}`)));
    }
    pyodide.runPython("import os; os.chdir('/repo')");
    pyodide.globals.set("pytest_args", pyodide.toPy(args));
    const rc = pyodide.runPython("import pytest; int(pytest.main(list(pytest_args)))");
    self.postMessage({ rc, output: output.join("\n") });
  } catch (error) {
    self.postMessage({ rc: -1, output: `${output.join("\n")}\n${error}` });
  }
};
