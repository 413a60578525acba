import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainRecord } from '../protocol/chain-record-rules.js';

/** `chain.json` in a backup's data folder; what it says and when: replica/protocol/chain-record-rules.ts. */
const CHAIN_RECORD = 'chain.json';

/** The record, or null when missing or written by an older version (which did not record the view). */
export function readChainRecord(dataDir: string): ChainRecord | null {
  try {
    const r = JSON.parse(readFileSync(join(dataDir, CHAIN_RECORD), 'utf8')) as { primary?: unknown; view?: unknown };
    return typeof r.primary === 'string' && typeof r.view === 'number' ? { primary: r.primary, view: r.view } : null;
  } catch {
    return null;
  }
}

export function writeChainRecord(dataDir: string, r: ChainRecord): void {
  const tmp = join(dataDir, `${CHAIN_RECORD}.tmp`);
  writeFileSync(tmp, JSON.stringify(r));
  renameSync(tmp, join(dataDir, CHAIN_RECORD));
}
