// The official @fal-ai/client, unchanged, on the surface beyond the queue:
// every HTTP request goes through `proxyUrl` pointed at the mock (no fetch
// rewriting). Only the realtime WebSocket, whose host the client hard-codes,
// is redirected (by wrapping the global WebSocket). The mock runs on a manual
// clock, moved through its control API. Prints one JSON line of findings.
import { createFalClient } from "@fal-ai/client";

const base = process.env.MOCK_BASE_URL;
const credentials = process.env.FAL_CREDENTIALS || undefined; // none: the proxy adds a key
// Outside a browser the client proxies only when told to ("always").
const fal = createFalClient({
  credentials,
  proxyUrl: { url: `${base}/api/fal/proxy`, when: "always" },
});
const DEV = "fal-ai/flux-1/dev";
// A kept-alive socket the server closed meanwhile fails once (a race of
// keep-alive timeouts on a busy machine): the test's own calls try again.
const get = async (url, init) => {
  try {
    return await fetch(url, init);
  } catch {
    return await fetch(url, init);
  }
};
const control = (path, body) =>
  get(`${base}/_mock${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((r) => r.json());
const failure = (error) => ({
  status: error.status,
  requestId: error.requestId,
  timeoutType: error.timeoutType ?? null,
});

// streaming
const stream = await fal.stream(DEV, { input: { prompt: "streamed", seed: 4 } });
const events = [];
for await (const event of stream) events.push(event);
const streamedDone = await stream.done();

let streamError = null;
await control("/outcomes", { endpoint_id: DEV, outcome: { kind: "model_error" } });
try {
  await (await fal.stream(DEV, { input: { prompt: "fails" } })).done();
} catch (error) {
  streamError = failure(error);
}

// storage: a direct upload, an auto-uploaded Blob input, a multipart upload
const uploaded = await fal.storage.upload(new Blob(["hello from js"], { type: "text/plain" }));
const uploadedText = await (await get(uploaded)).text();
await fal.queue.submit("fal-ai/flux-1/dev/image-to-image", {
  input: { prompt: "auto", image_url: new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" }) },
});
const submitted = (await control("/requests")).filter((r) => r.action === "submit").pop();
const autoUploaded = submitted.body.image_url;
const autoUploadedBytes = (await (await get(autoUploaded)).arrayBuffer()).byteLength;
// multipart (above 90 MiB: 10 MiB parts) costs a few seconds: one run does it
let bigSame = null;
let multipartParts = null;
if (process.env.JS_MULTIPART) {
  const big = new Uint8Array(91 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  const bigUrl = await fal.storage.upload(new Blob([big], { type: "application/octet-stream" }));
  const bigBack = new Uint8Array(await (await get(bigUrl)).arrayBuffer());
  bigSame = bigBack.length === big.length && bigBack.every((value, i) => value === big[i]);
  multipartParts = (await control("/requests")).filter(
    (r) => r.action === "upload" && r.method === "PUT" && /\/\d+$/.test(r.path),
  ).length;
}

// a start deadline the client must not retry
await control("/outcomes", { endpoint_id: DEV, outcome: { kind: "slow", run_seconds: 30, queue_seconds: 0 } });
await fal.queue.submit(DEV, { input: { prompt: "keeps the runner busy" } });
const late = await fal.queue.submit(DEV, { input: { prompt: "late" }, startTimeout: 2 });
await control("/clock/advance", { seconds: 2 });
let deadline = null;
try {
  await fal.queue.result(DEV, { requestId: late.request_id });
} catch (error) {
  deadline = failure(error);
}
const resultCalls = (await control("/requests")).filter(
  (r) => r.action === "result" && r.request_id === late.request_id,
).length;

// realtime: token through the proxy, then the WebSocket (redirected to the mock)
const Native = globalThis.WebSocket;
globalThis.WebSocket = class extends Native {
  constructor(url, protocols) {
    super(url.replace("wss://fal.run", base.replace("http", "ws") + "/_run"), protocols);
  }
};
const realtime = await new Promise((resolve, reject) => {
  const connection = fal.realtime.connect("fal-ai/flux-1/schnell", {
    onResult: (result) => {
      connection.close();
      resolve(result);
    },
    onError: reject,
  });
  connection.send({ prompt: "realtime", seed: 6 });
});

console.log(
  JSON.stringify({
    progress: events.slice(0, -1).map((e) => e.progress),
    streamedPrompt: events.at(-1).prompt,
    streamedDone: streamedDone.prompt,
    streamError,
    uploadedText,
    autoUploaded: autoUploaded.startsWith(`${base}/files/uploads/`),
    autoUploadedBytes,
    bigSame,
    multipartParts,
    deadline,
    lateRequestId: late.request_id,
    resultCalls,
    realtime: [realtime.prompt, realtime.seed],
  }),
);
