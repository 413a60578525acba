/**
 * Where trace lines go. The file-backed sink lives in `platform/trace-sink.ts` (only the platform
 * touches `fs`, rule 4); tests and embedders use `MemoryTraceSink`.
 */
export interface TraceSink {
  /** Append one line (without its newline). Must not block for long: buffer. */
  write(line: string): void;
  /** Flush everything written and release the sink. Writes after close are dropped. */
  close(): Promise<void>;
}

/** A TraceSink that keeps lines in memory, for tests and for in-process inspection. */
export class MemoryTraceSink implements TraceSink {
  readonly lines: string[] = [];
  closed = false;

  write(line: string): void {
    if (!this.closed) this.lines.push(line);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The lines parsed as JSON. */
  records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
