// The page's side of the participant worker (worker.mjs): boot it, call its commands, receive
// its reports. Used by the demo page (app.js) and by the embedding library (xaynet.mjs).

export class WorkerClient {
  // `url`: worker.mjs; `onStage(text)`: boot progress; `onReport(report)`: every report of the
  // worker's devices (xaynet.browser.fleet), parsed.
  constructor(url, { onStage = () => {}, onReport = () => {} } = {}) {
    this.worker = new Worker(url, { type: "module" });
    this.pending = new Map();
    this.nextId = 1;
    this.info = null;
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (event) => {
        const message = event.data;
        switch (message.type) {
          case "boot":
            onStage(message.stage);
            break;
          case "ready":
            this.info = message;
            resolve(message);
            break;
          case "fatal":
            reject(new Error(`the participant could not start: ${message.error}`));
            break;
          case "report":
            onReport(JSON.parse(message.json));
            break;
          case "reply":
            this.#settle(message);
            break;
        }
      };
      this.worker.onerror = (event) =>
        reject(new Error(`the participant worker failed: ${event.message || `could not load ${url}`}`));
    });
  }

  // Start Python in the worker; `options` go to xaynet.browser.worker.start (seed, data).
  boot(options = {}) {
    this.worker.postMessage({ cmd: "boot", args: options });
    return this.ready;
  }

  // Run a command of xaynet.browser.worker; resolves with its answer, rejects with its error.
  call(cmd, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, args });
    });
  }

  terminate() {
    this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new Error("the worker was stopped"));
    this.pending.clear();
  }

  #settle(message) {
    const waiter = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (!waiter) return;
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(message.error));
  }
}
