/** RESP2 (Redis protocol) encoding and an incremental reply parser. */

export type RespValue = string | number | null | RespError | RespValue[] | Buffer;

export class RespError {
  constructor(readonly message: string) {}
}

/** Encode a command as a RESP multibulk request. */
export function encodeCommand(args: ReadonlyArray<string | Buffer | number>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Incremental parser: feed bytes, take complete replies. Bulk strings are returned as UTF-8
 * strings unless `binary` is set.
 */
export class RespParser {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly binary = false) {}

  feed(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
  }

  /** Next complete reply, or undefined when more bytes are needed. */
  next(): RespValue | undefined {
    const r = this.parse(0);
    if (r === undefined) return undefined;
    this.buf = this.buf.subarray(r.end);
    return r.value;
  }

  private parse(at: number): { value: RespValue; end: number } | undefined {
    if (at >= this.buf.length) return undefined;
    const eol = this.buf.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const type = String.fromCharCode(this.buf[at]);
    const line = this.buf.toString('utf8', at + 1, eol);
    const after = eol + 2;
    switch (type) {
      case '+': return { value: line, end: after };
      case '-': return { value: new RespError(line), end: after };
      case ':': return { value: Number(line), end: after };
      case '$': {
        const len = Number(line);
        if (len < 0) return { value: null, end: after };
        if (this.buf.length < after + len + 2) return undefined;
        const body = this.buf.subarray(after, after + len);
        return { value: this.binary ? Buffer.from(body) : body.toString('utf8'), end: after + len + 2 };
      }
      case '*': {
        const n = Number(line);
        if (n < 0) return { value: null, end: after };
        const items: RespValue[] = [];
        let pos = after;
        for (let i = 0; i < n; i++) {
          const r = this.parse(pos);
          if (r === undefined) return undefined;
          items.push(r.value);
          pos = r.end;
        }
        return { value: items, end: pos };
      }
      default:
        throw new Error(`RESP protocol error: unexpected type byte 0x${this.buf[at].toString(16)}`);
    }
  }
}
