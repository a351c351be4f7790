// The package build (npm's prepack): src/ compiled to dist/ (ESM + .d.ts) by tsc with
// tsconfig.build.json, then the files the code reads at run time beside it: the inference
// thread's script and the search page. The repository itself runs from src/ through tsx.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}/dist`, { recursive: true, force: true });
execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.build.json`], { stdio: 'inherit' });
cpSync(`${root}/src/model/session-worker.mjs`, `${root}/dist/model/session-worker.mjs`);
cpSync(`${root}/src/web`, `${root}/dist/web`, { recursive: true });
