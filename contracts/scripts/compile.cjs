#!/usr/bin/env node
// Compiles contracts/src/**/*.sol with solcjs (the `solc` npm package, which bundles the
// compiler: nothing is downloaded) and writes one <Contract>.json per contract with
// {contractName, sourceName, abi, bytecode, deployedBytecode} into the output directory
// (default contracts/build). Warnings go to stderr; errors exit 1.
//
// contracts/test/ (TestGST, the token anyone can mint) is compiled only with --with-test,
// which the dev-chain tests pass: what a deployment takes from contracts/build is the
// production set alone, so the open mint cannot be deployed by picking the wrong file.
//
//   node contracts/scripts/compile.cjs [--with-test] [OUT_DIR]
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const root = path.resolve(__dirname, '..');
const srcDir = path.join(root, 'src');
const args = process.argv.slice(2);
const withTest = args.includes('--with-test');
const positional = args.filter((a) => a !== '--with-test');
const outDir = path.resolve(positional[0] || path.join(root, 'build'));

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.sol') ? [p] : [];
  });
}

const sources = {};
const dirs = withTest ? [srcDir, path.join(root, 'test')] : [srcDir];
for (const file of dirs.flatMap(walk).sort()) {
  sources[path.relative(root, file).split(path.sep).join('/')] = { content: fs.readFileSync(file, 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

function findImports(p) {
  const file = path.join(root, p);
  if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  return { error: `not found: ${p}` };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
let failed = false;
for (const e of output.errors || []) {
  process.stderr.write(`${e.formattedMessage || e.message}\n`);
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
let n = 0;
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  for (const [contractName, c] of Object.entries(contracts)) {
    const bytecode = c.evm.bytecode.object;
    if (!bytecode) continue; // interfaces
    const artifact = {
      contractName,
      sourceName,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: `0x${bytecode}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
    };
    fs.writeFileSync(path.join(outDir, `${contractName}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
    n += 1;
  }
}
process.stderr.write(`compiled ${n} contracts with solc ${solc.version()} into ${outDir}\n`);
