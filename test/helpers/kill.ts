import { spawn } from 'node:child_process';

/**
 * Runs `node --import tsx SCRIPT ARGS` and SIGKILLs it `delayMs` after its first line on
 * stdout; resolves with the numbers of the `committed N` lines it printed before dying. A child
 * that ends by itself rejects: the kill, not the child, must end it.
 */
export function runAndKill(script: string, args: readonly string[], delayMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const committed: number[] = [];
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        const m = /^committed (\d+)$/.exec(line);
        if (m) committed.push(Number(m[1]));
      }
      timer ??= setTimeout(() => proc.kill('SIGKILL'), delayMs);
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(committed);
      else reject(new Error(`${script} ended by itself (code ${code}): ${stderr.slice(-2000)}`));
    });
  });
}
