import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { accepting } from './ports.js'

// A redis-server of a test's own, on a port it chose (tests that need Redis skip where it is not installed).

export const hasRedis = (): boolean => spawnSync('redis-server', ['--version']).status === 0

export async function startRedis (port: number): Promise<ChildProcess> {
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    if (await accepting(port)) return p
    await sleep(50)
  }
  p.kill('SIGKILL')
  throw new Error('redis-server did not start')
}
