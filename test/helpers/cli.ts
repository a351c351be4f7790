import { spawn, type ChildProcess } from 'node:child_process';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ./bin/tessera as a user would, and collects what it printed and its exit code. */
export function tessera(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('./bin/tessera', args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

export interface ServeProcess {
  child: ChildProcess;
  /** The address serve prints once it listens; rejects if it exits first. */
  address: Promise<string>;
  exited: Promise<number | null>;
  stderr(): string;
}

/**
 * `tessera serve ARGS` as a real process: through ./bin/tessera as a user runs it, or with
 * `direct` the CLI itself (`node --import tsx src/cli/main.ts`), so that signals reach the
 * server process with no watcher between.
 */
export function startServe(args: string[], options: { env?: NodeJS.ProcessEnv; direct?: boolean } = {}): ServeProcess {
  const [command, prefix] = options.direct ? [process.execPath, ['--import', 'tsx', 'src/cli/main.ts']] : ['./bin/tessera', []];
  const child = spawn(command, [...prefix, 'serve', ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
      const match = /serving .* on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, address, exited, stderr: () => stderr };
}
