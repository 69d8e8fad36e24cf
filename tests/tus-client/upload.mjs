// Uploads a file to a tus server with tus-js-client in small chunks, aborts after the first chunks, then resumes the
// same upload from its URL (a HEAD, then PATCHes from the server's offset). Prints one JSON line with what happened.
// Usage: node upload.mjs <endpoint> <file> <chunkSize>
import { readFileSync } from 'node:fs';
import * as tus from 'tus-js-client';

const [endpoint, file, chunkText] = process.argv.slice(2);
const data = readFileSync(file);
const chunkSize = Number(chunkText);

function run(options) {
  return new Promise((resolve, reject) => {
    let upload;
    upload = new tus.Upload(data, {
      chunkSize,
      retryDelays: [],
      metadata: { filename: 'model.onnx', kind: 'model' },
      ...options,
      onError: reject,
      onSuccess: () => resolve({ url: upload.url, done: true }),
      onChunkComplete: (size, accepted) => {
        if (options.onChunk && options.onChunk(accepted)) {
          upload.abort().then(() => resolve({ url: upload.url, done: false, accepted }));
        }
      },
    });
    upload.start();
  });
}

const first = await run({ endpoint, onChunk: (accepted) => accepted >= 2 * chunkSize });
let resumedFrom = null;
const second = await run({
  endpoint,
  uploadUrl: first.url,
  onChunk: (accepted) => {
    if (resumedFrom === null) resumedFrom = accepted - chunkSize;
    return false;
  },
});
console.log(JSON.stringify({ url: second.url, abortedAt: first.accepted, resumedFrom, done: second.done, size: data.length }));
