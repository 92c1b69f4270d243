"""The browser participant: simulated devices that run inside a Pyodide web worker.

* :mod:`xaynet.browser.digits` -- the demo's learning task in pure Python (no numpy in the
  browser): data parsing, non-IID shards, softmax regression.
* :mod:`xaynet.browser.fleet` -- devices driving :class:`~xaynet.sdk.agent.Agent` objects over
  one shared transport, reporting what they do as JSON-ready dicts.
* :mod:`xaynet.browser.fetch` -- the transport over ``fetch`` and ``EventSource`` (Pyodide only).
* :mod:`xaynet.browser.worker` -- the entry points ``web_participant/worker.mjs`` calls.

The same protocol code as every other participant: the state machine of
:mod:`xaynet.participant`, libsodium.js as the crypto backend (:mod:`xaynet.crypto`).
"""
