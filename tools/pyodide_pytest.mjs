// Run pytest inside Pyodide (CPython 3.14 compiled to WebAssembly) under Node, with libsodium.js
// as the crypto backend: the same interpreter and bindings the browser participant gets.
//
//   node tools/pyodide_pytest.mjs [pytest args...]      e.g.  node tools/pyodide_pytest.mjs shared/tests -q
//
// Needs `npm ci` (pyodide, libsodium-wrappers) and tools/fetch_pyodide_wheels.sh (pytest,
// hypothesis and their pure-Python dependencies in .cache/pyodide-wheels). The checkout is
// mounted at /repo, so pytest reads the root pyproject.toml exactly as under CPython; shared/src
// goes first on sys.path. Exits with pytest's exit code (3, pytest's "internal error", if the
// runner itself fails before pytest starts).

import fs from "node:fs";
import path from "node:path";
import tty from "node:tty";
import { fileURLToPath } from "node:url";

import sodium from "libsodium-wrappers";
import { loadPyodide } from "pyodide";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WHEELS = path.join(REPO, ".cache", "pyodide-wheels");
const MOUNT = "/repo";
const RUNNER_ERROR = 3;

// Raw byte writers: pytest's progress output is not line-based, and ordering between stdout and
// stderr is kept by writing synchronously.
function writer(fd) {
  return {
    isatty: tty.isatty(fd),
    write(buffer) {
      let done = 0;
      while (done < buffer.length) {
        try {
          done += fs.writeSync(fd, buffer, done, buffer.length - done);
        } catch (error) {
          if (error.code !== "EAGAIN") throw error; // non-blocking pipe is full: retry
        }
      }
      return buffer.length;
    },
  };
}

function wheelFiles() {
  const files = fs.existsSync(WHEELS)
    ? fs.readdirSync(WHEELS).filter((name) => name.endsWith(".whl")).sort()
    : [];
  if (files.length === 0) {
    throw new Error(`no wheels in ${WHEELS}: run tools/fetch_pyodide_wheels.sh first`);
  }
  return files.map((name) => path.join(WHEELS, name));
}

// The host working directory inside the mount, so relative pytest arguments mean the same thing.
function guestCwd() {
  const relative = path.relative(REPO, process.cwd());
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new Error(`run from inside the repository (${REPO}), not ${process.cwd()}`);
  }
  return path.posix.join(MOUNT, ...relative.split(path.sep));
}

async function main(args) {
  const wheels = wheelFiles();
  const cwd = guestCwd();

  const pyodide = await loadPyodide();
  pyodide.setStdout(writer(1));
  pyodide.setStderr(writer(2));

  await sodium.ready;
  pyodide.registerJsModule("sodium_js", sodium);

  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  for (const wheel of wheels) {
    // A Node Buffer is refused ("Unknown typed array type"): hand over a plain Uint8Array.
    pyodide.unpackArchive(new Uint8Array(fs.readFileSync(wheel)), "wheel", {
      extractDir: sitePackages,
    });
  }

  pyodide.mountNodeFS(MOUNT, REPO);
  pyodide.globals.set("_runner_args", JSON.stringify(args));
  pyodide.globals.set("_runner_cwd", cwd);
  const code = pyodide.runPython(`
import importlib, json, os, sys
# Keep the checkout clean: no __pycache__ or Hypothesis files written through the mount.
sys.dont_write_bytecode = True
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = "/tmp/hypothesis"
sys.path.insert(0, "${MOUNT}/shared/src")
importlib.invalidate_caches()
os.chdir(_runner_cwd)
sys.argv = ["pytest", *json.loads(_runner_args)]

import pytest
int(pytest.main([*sys.argv[1:], "-p", "no:cacheprovider"]))
`);
  return Number(code);
}

let exitCode;
try {
  exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(`pyodide_pytest: ${error && error.stack ? error.stack : error}`);
  exitCode = RUNNER_ERROR;
}
process.exit(exitCode);
