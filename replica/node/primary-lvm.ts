import { basename } from 'node:path';
import { Checkpointer } from '../../checkpoint/checkpointer.js';
import type { RestoreImage } from '../../checkpoint/restore-image.js';
import { restoreFromImage } from '../../checkpoint/restore.js';
import { selectTracker } from '../../checkpoint/trackers/select-tracker.js';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import { readGuestModule } from '../config/guest-module.js';
import { parseListenUri } from '../../libos-host/platform/listen-address.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { launchLvm, type ImageChoices, type LaunchedLvm } from '../../libos-host/runtime/launch.js';
import type { LvmHooks, MemoryContents } from '../../libos-host/runtime/lvm.js';
import type { ListenSpec } from '../../libos-host/wasi/lib-os.js';
import { NetworkBuffer } from '../../network-buffer/network-buffer.js';
import type { ClusterConfig } from '../config/cluster-config.js';

/** How long a promoted replica keeps trying to bind the service address (the old primary may hold it). */
export const LISTEN_RETRY_TIMEOUT_MS = 30_000;
export const LISTEN_RETRY_INTERVAL_MS = 50;

/** The guest as a primary runs it: platform, output-commit buffer, LVM and checkpointer. */
export interface PrimaryLvm extends LaunchedLvm {
  platform: NodePlatform;
  nb: NetworkBuffer;
  checkpointer: Checkpointer;
  startEpoch: number;
}

/** The image choices every replica of a cluster uses (images must be identical to restore). */
export function clusterImageChoices(c: ClusterConfig): ImageChoices & { tracker: 'instrument' | 'uffd' } {
  return { dirtyTracking: c.replication.tracker === 'instrument' ? 'instrument' : 'none', yieldPoints: true, tracker: c.replication.tracker };
}

export function listenSpecs(c: ClusterConfig): ListenSpec[] {
  return c.listen.map((a) => {
    const { host, port } = parseListenUri(a);
    return { uri: `tcp.srv:${host.includes(':') ? `[${host}]` : host}:${port}`, name: null };
  });
}

/**
 * Start the guest fresh (view 1) or restore it from `image` (a promotion), under a network
 * buffer whose passthrough releases are gated on `leaseValid`. Retries binding the service
 * address while another process (a dying or paused old primary) still holds it.
 */
export async function startPrimaryLvm(c: ClusterConfig, from: { image: RestoreImage<Uint8Array | MemoryContents> } | null, hooks: LvmHooks, leaseValid: () => boolean): Promise<PrimaryLvm> {
  const guest = readGuestModule(c);
  const choices = clusterImageChoices(c);
  const selection = selectTracker(choices.tracker);
  const imageChoices: ImageChoices = { dirtyTracking: selection.dirtyTracking, yieldPoints: choices.yieldPoints };
  const deadline = Date.now() + LISTEN_RETRY_TIMEOUT_MS;
  const unsafeReleaseEarly = unsafeTestReleaseEarly(); // TEST ONLY, see below
  for (;;) {
    const platform = new NodePlatform();
    const nb = unsafeReleaseEarly
      ? new UnsafeEarlyReleaseNetworkBuffer(platform, { releaseGate: leaseValid, passthrough: true })
      : new NetworkBuffer(platform, { releaseGate: leaseValid });
    try {
      const launched = from === null
        ? await launchLvm({
          guest, programName: basename(c.guest.module), args: c.guest.args, env: c.guest.env, listeners: listenSpecs(c),
          dirs: c.guest.dirs, memoryLimitBytes: c.guest.memoryLimitBytes, abi: nb, hooks, imageChoices,
        })
        : await restoreFromImage(from.image, { guest, memoryLimitBytes: c.guest.memoryLimitBytes, imageChoices, abi: nb, extensions: [nb], hooks });
      const startEpoch = from?.image.epoch ?? 0;
      const checkpointer = new Checkpointer(launched.lvm, { tracker: selection.create(launched.image), extensions: [nb], continueFrom: startEpoch });
      return { ...launched, platform, nb, checkpointer, startEpoch };
    } catch (err) {
      platform.closeAll();
      if (!isWaterbearError(err, 'WB_LISTEN_FAILED') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, LISTEN_RETRY_INTERVAL_MS));
    }
  }
}

// ---- TEST ONLY: the deliberately unsafe build the chaos checkers must catch (tests/chaos) ----
// With WATERBEAR_UNSAFE_TEST_RELEASE_EARLY=1 (and WATERBEAR_UNSAFE_TEST_I_UNDERSTAND=1), the
// primary releases the guest's output as soon as it is produced, before any backup acknowledged
// it: a broken output commit (DESIGN rule 1). Never set these outside a test.

/** True when the test-only unsafe switch is on; refuses it without the acknowledgement variable. */
function unsafeTestReleaseEarly(): boolean {
  if (process.env.WATERBEAR_UNSAFE_TEST_RELEASE_EARLY !== '1') return false;
  if (process.env.WATERBEAR_UNSAFE_TEST_I_UNDERSTAND !== '1') {
    throw new WaterbearError('WB_CONFIG_INVALID', 'WATERBEAR_UNSAFE_TEST_RELEASE_EARLY=1 breaks output commit and is for tests only: it also needs WATERBEAR_UNSAFE_TEST_I_UNDERSTAND=1');
  }
  process.stderr.write('waterbear: !!! UNSAFE TEST BUILD: WATERBEAR_UNSAFE_TEST_RELEASE_EARLY=1 — output is released BEFORE backups acknowledge it; acknowledged writes WILL be lost on failover !!!\n');
  return true;
}

/** A network buffer stuck in passthrough: the protocol's "hold output" is ignored (test only). */
class UnsafeEarlyReleaseNetworkBuffer extends NetworkBuffer {
  override setPassthrough(_on: boolean): void { super.setPassthrough(true); }
}
