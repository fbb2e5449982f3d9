#!/usr/bin/env node
// Builds the case image viewer (web/static/js/viewer.js with Cornerstone3D from node_modules) into
// web/static/vendor/viewer/ with esbuild: the page's ES module, the DICOM decoding web worker and the WASM
// codecs it loads. Called by scripts/copy_vendor.mjs (`npm run vendor`) after it has emptied the vendor folder;
// it can also be run alone. Nothing generated here is committed: the lock file pins what goes in.
//
// web/clinical/viewer.py serves this folder under /viewer/assets/ with the viewer's CSP, so that the worker
// (whose CSP is that of its own response) may compile the codecs ('wasm-unsafe-eval'). The worker is found
// by the loader at new URL('./decodeImageFrameWorker.js', import.meta.url), i.e. next to viewer.js, and the
// codecs at the `wasmBasePath` viewer.js gives the loader (the same folder).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const modules = join(root, 'node_modules');
const out = join(root, 'web', 'static', 'vendor', 'viewer');

// WASM codecs of @cornerstonejs/dicom-image-loader, under the names its decoders ask wasmBasePath for.
const CODECS = [
  ['@cornerstonejs/codec-charls', 'dist/charlswasm_decode.wasm', 'charlswasm_decode.wasm'],
  ['@cornerstonejs/codec-openjpeg', 'dist/openjpegwasm_decode.wasm', 'openjpegwasm_decode.wasm'],
  ['@cornerstonejs/codec-libjxl', 'dist/jpegxlwasm_decode.wasm', 'jpegxlwasm_decode.wasm'],
  ['@cornerstonejs/codec-libjpeg-turbo-8bit', 'dist/libjpegturbowasm_decode.wasm', 'libjpegturbowasm_decode.wasm'],
  ['@cornerstonejs/codec-openjph', 'dist/openjphjs.wasm', 'openjphjs.wasm'],
];
const LICENSES = ['@cornerstonejs/core', '@cornerstonejs/tools', '@cornerstonejs/dicom-image-loader'];

// Node built-ins that some dependencies require in code paths the browser never takes (the codecs' emscripten
// glue under Node, vtk.js's XML writer): they resolve to this stand-in instead of failing the build.
const NODE_BUILTINS = /^(node:)?(fs|path|crypto|events|url|util|stream|buffer|os|module|worker_threads|child_process)$/;
const NODE_STANDIN = 'module.exports = { EventEmitter: class EventEmitter {}, URL: globalThis.URL };';
const nodeStandIn = {
  name: 'node-builtins-stand-in',
  setup(b) {
    b.onResolve({ filter: NODE_BUILTINS }, (args) => ({ path: args.path, namespace: 'node-stand-in' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stand-in' }, () => ({ contents: NODE_STANDIN, loader: 'js' }));
  },
};

// Code served under a CSP without 'unsafe-eval' must not compile code at run time.
// Two known uses are left aside, neither reached by the viewer: lodash's global-object fallback
// `||Function("return this")()` (runs only where neither `global` nor `self` exists) and ndarray's compiled
// constructors (`new Function(...)`, pulled in by dcmjs for segmentations, which the viewer never loads). Were
// one reached, the browser would refuse it under the CSP and the e2e viewer test would fail on the report.
const FORBIDDEN_IN_JS = /(^|[^\w$.])(eval|Function)\s*\(/;
const KNOWN_UNREACHED = [/\|\|Function\("return this"\)\(\)/g, /new Function\("TrivialArray",\w+\)/g,
  /new Function\(\w+\);return \w+\(\)\}else if/g, /new Function\("CTOR_LIST","ORDER",/g];
const withoutKnown = (code) => KNOWN_UNREACHED.reduce((text, re) => text.replace(re, ''), code);

function fail(message) {
  console.error(`build_viewer: ${message}`);
  process.exit(1);
}

export async function buildViewer() {
  const esbuildPath = join(modules, 'esbuild', 'lib', 'main.js');
  if (!existsSync(esbuildPath)) fail('esbuild is not installed (run `npm ci` first)');
  const { build } = await import(pathToFileURL(esbuildPath).href);
  mkdirSync(out, { recursive: true });
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
    nodePaths: [modules],
    plugins: [nodeStandIn],
  };
  await build({
    ...common,
    entryPoints: { viewer: join(root, 'web', 'static', 'js', 'viewer.js') },
    outdir: out,
  });
  await build({
    ...common,
    entryPoints: {
      decodeImageFrameWorker: join(modules, '@cornerstonejs', 'dicom-image-loader', 'dist', 'esm',
        'decodeImageFrameWorker.js'),
    },
    outdir: out,
  });
  for (const [pkg, src, dst] of CODECS) {
    const file = join(modules, ...pkg.split('/'), src);
    if (!existsSync(file)) fail(`missing ${relative(root, file)} (run \`npm ci\` first)`);
    copyFileSync(file, join(out, dst));
  }
  for (const pkg of LICENSES) {
    const file = join(modules, ...pkg.split('/'), 'LICENSE');
    if (existsSync(file)) copyFileSync(file, join(out, `LICENSE.${pkg.split('/')[1]}`));
  }
  for (const name of readdirSync(out)) {
    if (name.endsWith('.js') && FORBIDDEN_IN_JS.test(withoutKnown(readFileSync(join(out, name), 'utf8')))) {
      fail(`${name} calls eval or Function(): it would need 'unsafe-eval'`);
    }
  }
  console.log(`build_viewer: ${readdirSync(out).length} files -> ${relative(root, out)}/`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildViewer();
}
