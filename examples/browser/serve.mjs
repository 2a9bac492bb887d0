// A static server for the browser example, on loopback only (node:http, no dependencies):
//   /            → this directory (index.html, generate.mjs, tokenizer.mjs)
//   /model.onnx  → the exported model given on the command line
//   /ort/        → onnxruntime-web's dist/ (its ES module and WebAssembly files)
//   /protobufjs/ → protobufjs's minimal build (the reader of the model's metadata)
//
//   node examples/browser/serve.mjs model.onnx [port]     (port 0 or absent: any free port)
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The directory of an installed package: up from its entry point to its package.json (whose
 * own path may be hidden by the package's `exports`). */
function packageDir(name) {
  for (let dir = path.dirname(require.resolve(name)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === name) return dir;
  }
  throw new Error(`serve: package ${name} not found (npm install ${name})`);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.json': 'application/json',
  '.map': 'application/json',
};

const [model, port = '0'] = process.argv.slice(2);
if (!model || !fs.existsSync(model)) {
  console.error(model ? `serve: model file not found: ${model}` : 'usage: node examples/browser/serve.mjs model.onnx [port]');
  process.exit(2);
}
// URL prefix → directory; a path is served only when it stays inside its directory.
const roots = [
  ['/ort/', path.join(packageDir('onnxruntime-web'), 'dist')],
  ['/protobufjs/', path.join(packageDir('protobufjs'), 'dist', 'minimal')],
  ['/', here],
];
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  let file;
  if (url.pathname === '/model.onnx') file = path.resolve(model);
  else {
    const [prefix, dir] = roots.find(([p]) => url.pathname.startsWith(p));
    const rel = decodeURIComponent(url.pathname.slice(prefix.length)) || 'index.html';
    const resolved = path.resolve(dir, rel);
    if (resolved.startsWith(dir + path.sep)) file = resolved;
  }
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${url.pathname}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
// The line a caller (the test) reads the port from.
server.listen(Number(port), '127.0.0.1', () => console.log(`serving ${model} at http://127.0.0.1:${server.address().port}/`));
