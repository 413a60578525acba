import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { WaterbearError } from '../errors.js';

/** Bytes buffered before a trace file is written to. */
export const TRACE_FLUSH_BYTES = 64 * 1024;
/** Longest time a trace line waits in the buffer. */
export const TRACE_FLUSH_INTERVAL_MS = 200;

/**
 * A trace sink appending JSON lines to a file (the `TraceSink` of extensions/trace-sink.ts).
 * Lines are buffered and written when the buffer reaches TRACE_FLUSH_BYTES, every
 * TRACE_FLUSH_INTERVAL_MS, and on close. Lives in `platform/` because only the platform touches
 * `fs` (rule 4). A write error is reported by `close()` as WB_HOST_IO.
 */
export class FileTraceSink {
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private readonly stream: WriteStream;
  private readonly timer: NodeJS.Timeout;
  private error: Error | null = null;
  private closed = false;

  /** Open (truncate) `path` now, so a bad path fails at launch. Throws WB_HOST_IO. */
  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (err) {
      throw new WaterbearError('WB_HOST_IO', `cannot open trace file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; choose a writable path`, { cause: err });
    }
    try {
      this.stream = createWriteStream(path, { fd, autoClose: true });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.stream.on('error', (err) => { this.error ??= err; });
    this.timer = setInterval(() => this.flush(), TRACE_FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Buffer one line. Dropped after close or after a write error (which close reports). */
  write(line: string): void {
    if (this.closed || this.error !== null) return;
    this.buffer.push(line);
    this.bufferedBytes += line.length + 1;
    if (this.bufferedBytes >= TRACE_FLUSH_BYTES) this.flush();
  }

  /** Hand buffered lines to the file stream. */
  flush(): void {
    if (this.buffer.length === 0 || this.error !== null) return;
    this.stream.write(this.buffer.join('\n') + '\n');
    this.buffer = [];
    this.bufferedBytes = 0;
  }

  /** Write everything buffered, close the file. Rejects with WB_HOST_IO if any write failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.timer);
    // 'close' follows both a clean finish and an error (emitClose is on by default).
    await new Promise<void>((resolve) => { this.stream.once('close', () => resolve()); this.stream.end(); });
    if (this.error !== null) {
      throw new WaterbearError('WB_HOST_IO', `writing trace file ${this.path} failed: ${this.error.message}`, { cause: this.error });
    }
  }
}

/** Open a file trace sink: pass as `openTraceFile` to composeExtensions. Throws WB_HOST_IO. */
export function openFileTraceSink(path: string): FileTraceSink {
  return new FileTraceSink(path);
}
