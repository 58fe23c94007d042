// The official @fal-ai/client, unchanged, against the mock. Its hosts are
// hard-coded, so (as its docs suggest) a custom fetch points them at the mock.
// Prints one JSON line of findings for tests/e2e/test_js_client.py.
import { createFalClient } from "@fal-ai/client";

const base = process.env.MOCK_BASE_URL;
const toMock = (url) =>
  url.replace("https://queue.fal.run", base).replace("https://fal.run", `${base}/_run`);
const fal = createFalClient({
  credentials: "js-client-key",
  fetch: (input, init) => fetch(toMock(typeof input === "string" ? input : input.url), init),
});
const endpoint = "fal-ai/flux-1/dev";

const polled = new Set();
const viaPolling = await fal.subscribe(endpoint, {
  input: { prompt: "polled", num_images: 2 },
  logs: true,
  pollInterval: 50,
  onQueueUpdate: (update) => polled.add(update.status),
});

const streamed = new Set();
let streamedLogs = [];
const viaStreaming = await fal.subscribe(endpoint, {
  input: { prompt: "streamed", seed: 11 },
  logs: true,
  mode: "streaming",
  onQueueUpdate: (update) => {
    streamed.add(update.status);
    // the client accumulates each event's logs itself: duplicates here would
    // mean the server re-sent old lines
    streamedLogs = (update.logs ?? []).map((line) => line.message);
  },
});

const { request_id } = await fal.queue.submit(endpoint, { input: { prompt: "to cancel" } });
const status = await fal.queue.status(endpoint, { requestId: request_id, logs: true });
await fal.queue.cancel(endpoint, { requestId: request_id });

let validation = null;
try {
  await fal.queue.submit(endpoint, { input: { num_images: 2 } });
} catch (error) {
  validation = { status: error.status, loc: error.body?.detail?.[0]?.loc };
}

const ran = await fal.run("fal-ai/flux-1/schnell", { input: { prompt: "sync" } });

console.log(
  JSON.stringify({
    polled: [...polled].sort(),
    polledImages: viaPolling.data.images.length,
    polledRequestId: typeof viaPolling.requestId,
    streamed: [...streamed].sort(),
    streamedLogs,
    streamedSeed: viaStreaming.data.seed,
    statusBeforeCancel: status.status,
    validation,
    ranPrompt: ran.data.prompt,
  }),
);
