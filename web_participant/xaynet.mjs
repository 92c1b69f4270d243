// Embed a Xaynet participant in a web app: your page trains, the participant masks and sends.
//
//   import { startParticipant } from "/xaynet.mjs";   // served by the coordinator ([web])
//   const participant = await startParticipant({
//     maxWeight: 10000,            // the same bound on weights for every participant
//     modelLength: 650,            // what the coordinator's rounds announce
//     async train(globalModel, roundId) {
//       // globalModel: Float64Array of the newest global model, or null before the first
//       const model = await myTraining(globalModel);      // Float64Array or array of numbers
//       return { model, weight: numberOfLocalSamples };   // or null: no model this round
//     },
//     onGlobalModel(values, roundId) { ... },              // every new global model
//     onStatus(status) { ... },                            // role, activity, counts, errors
//   });
//   ...
//   participant.stop();
//
// The participant is the same Python code as every other (the state machine of
// xaynet.participant, libsodium.js for the cryptography) running in a module web worker
// (worker.mjs, Pyodide), loaded from the coordinator that serves this file; it takes the role
// each round assigns it and asks `train` for a local model only when it updates. Its private
// data stay in the page: only the masked model leaves. The page must be of the coordinator's
// origin (served by it, or by the same reverse proxy): browsers start workers from their page's
// origin only.

import { WorkerClient } from "./worker-client.mjs";

export async function startParticipant({
  maxWeight,
  modelLength,
  train,
  onGlobalModel = () => {},
  onStatus = () => {},
  bootTimeoutMs = 120000,
} = {}) {
  if (typeof train !== "function") throw new TypeError("startParticipant: train must be a function");
  let number = null;
  const client = new WorkerClient(new URL("worker.mjs", import.meta.url), {
    onReport: (report) => {
      if (report.type === "need_model" && report.number === number) answer(report);
      else if (report.type === "device" && report.number === number) onStatus(report);
      else if (report.type === "global_model" && report.values) {
        onGlobalModel(Float64Array.from(report.values), report.round_id);
      }
    },
  });

  async function answer(request) {
    const ids = { number, request: request.request };
    let result = null;
    try {
      const global = request.global_model ? Float64Array.from(request.global_model.values) : null;
      result = await train(global, request.round_id);
    } catch (error) {
      console.error("xaynet: train() failed; the participant asks again later", error);
    }
    if (result == null) {
      await client.call("decline", ids);
      return;
    }
    try {
      await client.call("model", { ...ids, model: Array.from(result.model), weight: result.weight });
    } catch (error) {
      // a model of the wrong length or a bad weight: say so, and let it be asked again
      console.error(`xaynet: the model was refused: ${error.message}`);
      await client.call("decline", ids);
    }
  }

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the participant did not start in ${bootTimeoutMs} ms`)), bootTimeoutMs);
  });
  try {
    const info = await Promise.race([client.boot({ data: false }), timeout]);
    ({ number } = await client.call("join", { max_weight: maxWeight, model_length: modelLength }));
    return {
      info,
      number,
      // role, activity, counts, errors, as onStatus gets them
      status: () => client.call("status").then((s) => s.devices.find((d) => d.number === number)),
      // what it sent in a round: {model, weight, scalar, accepted}, or undefined
      sent: (roundId) =>
        client
          .call("local_models", { round_id: roundId })
          .then((r) => r.models.find((m) => m.number === number)),
      stop: () => client.terminate(),
    };
  } catch (error) {
    client.terminate();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
