// The thread that runs ONNX Runtime. onnxruntime-node's run() executes synchronously on the
// calling thread, so sessions live here and the main thread stays free for HTTP and images.
// Plain JavaScript: a worker started from ./bin/tessera does not inherit the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const sessions = new Map();
// Set by the main thread to kill this thread (terminateInferenceThread). Terminating it
// while onnxruntime-node is inside a native call, or letting it exit with live sessions,
// aborts the whole process (Napi::Error). So at the next point where no native call runs
// (before an operation, or after one returns and before its answer is sent, as a crash there
// would) it tells the main thread, which terminates it, and blocks until then.
const killed = new Int32Array(workerData.killed);
const dieIfKilled = () => {
  if (Atomics.load(killed, 0) !== 1) return;
  parentPort.postMessage({ dying: true });
  for (;;) Atomics.wait(killed, 0, 1);
};

function plain(tensor) {
  // Outputs may live in native memory: copy them into transferable buffers.
  const data = tensor.data.slice();
  return { type: tensor.type, data, dims: [...tensor.dims] };
}

parentPort.on('message', async (message) => {
  const { id, op } = message;
  dieIfKilled();
  try {
    if (op === 'create') {
      const session = await ort.InferenceSession.create(message.path, message.options);
      dieIfKilled();
      sessions.set(message.session, session);
      parentPort.postMessage({ id, result: { inputNames: session.inputNames, outputNames: session.outputNames } });
    } else if (op === 'run') {
      const session = sessions.get(message.session);
      const feeds = Object.fromEntries(Object.entries(message.feeds).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]));
      const outputs = message.fetches ? await session.run(feeds, message.fetches) : await session.run(feeds);
      dieIfKilled();
      const result = Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, plain(t)]));
      parentPort.postMessage({ id, result }, Object.values(result).map((t) => t.data.buffer));
    } else if (op === 'release') {
      await sessions.get(message.session)?.release();
      sessions.delete(message.session);
      parentPort.postMessage({ id, result: null });
    }
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
