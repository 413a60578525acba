import net from 'node:net';
import { encodeCommand, RespParser, type RespValue } from './resp.js';

/** Default reply timeout of `call`. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/**
 * A small pipelining Redis-protocol client over a real TCP socket. Replies resolve in request
 * order; a closed or failed connection rejects every outstanding request.
 */
export class RespClient {
  private readonly parser = new RespParser();
  private readonly waiting: Array<{ resolve: (v: RespValue) => void; reject: (e: Error) => void }> = [];
  private closedError: Error | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.parser.feed(d);
      for (let v = this.parser.next(); v !== undefined; v = this.parser.next()) this.waiting.shift()?.resolve(v);
    });
    const fail = (err: Error): void => {
      this.closedError ??= err;
      for (const w of this.waiting.splice(0)) w.reject(this.closedError);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Connect to host:port; rejects on connection error or after `timeoutMs`. */
  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${host}:${port} timed out`)); }, timeoutMs);
      socket.once('connect', () => { clearTimeout(timer); resolve(new RespClient(socket)); });
      socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
  }

  /** Reply timeout for `call` (ms); 0 waits forever. A timed-out call closes the connection. */
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS;

  /** Send one command; resolves with its reply. */
  call(...args: Array<string | Buffer | number>): Promise<RespValue> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      if (this.timeoutMs > 0) {
        timer = setTimeout(() => {
          // Replies come in order: after a timeout the connection's replies no longer match calls.
          this.closedError ??= new Error(`no reply to ${String(args[0])} within ${this.timeoutMs} ms`);
          this.socket.destroy();
        }, this.timeoutMs);
      }
      this.waiting.push({
        resolve: (v) => { if (timer !== null) clearTimeout(timer); resolve(v); },
        reject: (e) => { if (timer !== null) clearTimeout(timer); reject(e); },
      });
      this.socket.write(encodeCommand(args));
    });
  }

  /** Send raw bytes (inline commands, malformed input for tests); replies queue like `call`. */
  raw(bytes: string | Buffer, expectReplies: number): Promise<RespValue[]> {
    const ps: Array<Promise<RespValue>> = [];
    for (let i = 0; i < expectReplies; i++) ps.push(new Promise((resolve, reject) => this.waiting.push({ resolve, reject })));
    this.socket.write(bytes);
    return Promise.all(ps);
  }

  close(): void { this.socket.destroy(); }
}
