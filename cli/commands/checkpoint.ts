import { WaterbearError } from '../../libos-host/errors.js';
import { openDirStore, readCheckpointDir } from '../../checkpoint/checkpoint-dir.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

export const CHECKPOINT_USAGE = `usage: waterbear checkpoint inspect DIR [--json] [--verify]

Print what a checkpoint directory holds: the guest and how it was launched, the latest complete
epoch, the pages and bytes stored, and the last epochs (full or incremental, pages, sizes, the
guest's pause). --verify also rebuilds the latest state and checks every checksum (exit 1 when
something is corrupt).`;

function kib(n: number): string { return `${(n / 1024).toFixed(1)} KiB`; }

/** `waterbear checkpoint inspect DIR` */
export async function checkpointCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') { io.out(CHECKPOINT_USAGE + '\n'); return sub === undefined ? 2 : 0; }
  if (sub !== 'inspect') throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint: unknown subcommand "${sub}"\n${CHECKPOINT_USAGE}`);
  const { values, positionals } = parseCommandArgs(rest, {
    json: { type: 'boolean' }, verify: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, 'checkpoint inspect');
  if (values.help === true) { io.out(CHECKPOINT_USAGE + '\n'); return 0; }
  const dir = positionals[0];
  if (dir === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint inspect: missing DIR\n${CHECKPOINT_USAGE}`);
  const { record } = readCheckpointDir(dir);
  const store = openDirStore(dir, { readOnly: true });
  try {
    const stats = store.stats();
    const epochs = store.epochSummaries();
    let verified: string | null = null;
    if (values.verify === true) {
      const image = store.loadImage();
      verified = image === null ? 'empty' : `ok: epoch ${image.epoch}, ${image.lvm.memory.length} bytes of memory, ${image.libos.vfs.length} VFS records`;
    }
    if (values.json === true) {
      io.out(JSON.stringify({ dir, launch: record, store: stats, epochs, verified }, null, 2) + '\n');
      return 0;
    }
    const lines = [
      `checkpoint directory ${dir}`,
      `  guest          ${record.programName} (sha256 ${record.guestSha256.slice(0, 16)}…), memory limit ${record.memoryLimitBytes} bytes`,
      `  tracker        ${record.tracker}; image ${record.imageChoices.dirtyTracking === 'instrument' ? 'instrumented' : 'plain'}${record.imageChoices.yieldPoints ? ' with yield points' : ''}; interval ${record.checkpointIntervalMs} ms`,
      `  latest epoch   ${stats.latestEpoch}`,
      `  store          ${stats.pages} pages (${kib(stats.pages * 4096)}), VFS ${kib(stats.vfsBytes)}; ${kib(stats.bytes)} on disk, data file ${kib(stats.fileBytes)}; guest memory ${kib(stats.memoryBytes)}`,
    ];
    if (verified !== null) lines.push(`  verify         ${verified}`);
    lines.push('', '  epoch  kind         pages  tracker-pages  page-bytes    vfs-bytes  pause-ms  captured-at');
    for (const e of epochs) {
      lines.push(`  ${String(e.epoch).padStart(5)}  ${(e.full ? 'full' : 'incremental').padEnd(11)}  ${String(e.pages).padStart(5)}  ${String(e.trackerPages).padStart(13)}  ` +
        `${kib(e.pageBytes).padStart(10)}  ${kib(e.vfsBytes).padStart(11)}  ${(e.pauseUs / 1000).toFixed(3).padStart(8)}  ${new Date(e.capturedAtMs).toISOString()}`);
    }
    io.out(lines.join('\n') + '\n');
    return 0;
  } finally {
    store.close();
  }
}
