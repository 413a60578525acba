import { RespClient } from '../clients/resp-client.js';
import { RespError, type RespValue } from '../clients/resp.js';
import type { History, Op, OpFunction } from './history.js';

/** Reply timeout of one operation: past it the outcome is unknown and the connection is dropped. */
export const DEFAULT_OP_TIMEOUT_MS = 2000;
/** Connect timeout: a refused or timed-out connect means the operation was never sent (fail). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 500;

export interface OpRequest { f: OpFunction; key: string; value?: string }

/**
 * One logical client of a workload: a Redis-protocol connection to the service address that it
 * re-opens after any failure. Every operation is recorded in the history: ok with the reply, fail
 * when it certainly did not run (no connection, or the server answered with an error), unknown
 * when it was sent but no reply came (timeout, connection lost mid-call).
 */
export class WorkloadClient {
  private conn: RespClient | null = null;

  constructor(
    readonly process: number,
    private readonly port: number,
    private readonly history: History,
    private readonly o: { opTimeoutMs?: number; connectTimeoutMs?: number; host?: (attempt: number) => string } = {},
  ) {}

  private connects = 0;

  async run(req: OpRequest, final = false): Promise<Op> {
    const op = this.history.invoke(this.process, req.f, req.key, req.value, final);
    if (this.conn !== null && this.conn.socket.destroyed) this.drop();
    if (this.conn === null) {
      try {
        // The service address: loopback, or (chaos --netns) the current primary's own address.
        const host = this.o.host?.(this.connects++) ?? '127.0.0.1';
        this.conn = await RespClient.connect(this.port, host, this.o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
        this.conn.timeoutMs = this.o.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
      } catch (err) {
        this.history.complete(op, 'fail', undefined, `connect: ${(err as Error).message}`);
        return op;
      }
    }
    const args: string[] = req.f === 'read' ? ['GET', req.key] : req.f === 'write' ? ['SET', req.key, req.value!] : ['INCR', req.key];
    let reply: RespValue;
    try {
      reply = await this.conn.call(...args);
    } catch (err) {
      // Sent (or possibly sent) and no reply: the server may or may not have executed it.
      this.drop();
      this.history.complete(op, 'unknown', undefined, (err as Error).message);
      return op;
    }
    if (reply instanceof RespError) {
      this.history.complete(op, 'fail', undefined, `server: ${reply.message}`);
      return op;
    }
    if (req.f === 'read') this.history.complete(op, 'ok', reply === null ? null : String(reply));
    else if (req.f === 'incr') this.history.complete(op, 'ok', Number(reply));
    else this.history.complete(op, 'ok', String(reply));
    return op;
  }

  private drop(): void {
    this.conn?.close();
    this.conn = null;
  }

  close(): void { this.drop(); }
}
