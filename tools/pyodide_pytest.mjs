// Run pytest inside Pyodide (CPython 3.14 compiled to WebAssembly) under Node, with libsodium.js
// as the crypto backend: the same interpreter and bindings the browser participant gets.
//
//   node tools/pyodide_pytest.mjs [PYTEST ARGS...]       e.g. node tools/pyodide_pytest.mjs shared/tests -q
//   node tools/pyodide_pytest.mjs --script PATH [ARGS...]   run a Python script instead (benchmarks)
//
// Needs `npm ci` (pyodide, libsodium-wrappers) and tools/fetch_pyodide_wheels.sh (pytest,
// hypothesis and their pure-Python dependencies in .cache/pyodide-wheels). The checkout is
// mounted at /repo, so pytest reads the root pyproject.toml exactly as under CPython; shared/src
// goes first on sys.path. Exits with pytest's (or the script's) exit code; 3, pytest's "internal
// error", if the runner itself fails first.

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


def _exit_code(status):
    # SystemExit semantics: None -> 0, int -> itself, anything else is printed -> 1.
    if status is None or isinstance(status, int):
        return status or 0
    print(status, file=sys.stderr)
    return 1


def _run(args):
    if args[:1] == ["--script"]:
        import runpy

        if len(args) < 2:
            print("usage: pyodide_pytest.mjs --script PATH [ARGS...]", file=sys.stderr)
            return 4
        sys.argv = args[1:]
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[1])))
        try:
            runpy.run_path(args[1], run_name="__main__")
        except SystemExit as stop:
            return _exit_code(stop.code)
        except Exception:
            # As python itself does: traceback on stderr, exit status 1.
            import traceback

            traceback.print_exc()
            return 1
        return 0

    import pytest

    sys.argv = ["pytest", *args]
    return int(pytest.main([*args, "-p", "no:cacheprovider"]))


_run(json.loads(_runner_args))
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
