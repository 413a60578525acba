import { packageFile, packageRoot } from '../libos-host/platform/package-files.js';

export { packageRoot };

/** Path of a bundled example guest, e.g. guestPath('kv') → <root>/guests/kv.wasm. */
export function guestPath(name: string): string {
  return packageFile(`guests/${name}.wasm`);
}
