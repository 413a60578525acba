/**
 * The names a prepared image exports, and the name of its self-describing custom section.
 * The runtime and the checkpointer look these up; they never change within a preparation version.
 */

/** The guest's entry point (a WASI command module). */
export const START_EXPORT = '_start';

/** The guest's linear memory, exported exactly once under this name. */
export const MEMORY_EXPORT = 'memory';

/** Control functions added by binaryen's Asyncify pass. */
export const ASYNCIFY_EXPORTS = [
  'asyncify_start_unwind',
  'asyncify_stop_unwind',
  'asyncify_start_rewind',
  'asyncify_stop_rewind',
  'asyncify_get_state',
] as const;

/** Every mutable, non-imported global is exported as `wb_global_<index>` (wasm global index). */
export const GLOBAL_EXPORT_PREFIX = 'wb_global_';

/** Export names a guest must not use itself, because preparation adds them. */
export function isReservedExportName(name: string): boolean {
  return name.startsWith(GLOBAL_EXPORT_PREFIX) || (ASYNCIFY_EXPORTS as readonly string[]).includes(name);
}

/** Custom section holding the image's layout and preparation metadata as UTF-8 JSON. */
export const IMAGE_SECTION = 'waterbear.image';

/**
 * Internal (binaryen) names of what preparation adds. They do not appear in exports except
 * through `wb_global_<index>`; they do appear in the name section, which helps debugging.
 */
export const GROWN_FLAG_GLOBAL = 'wb_grown';
export const MEMORY_GROW_HELPER = 'wb_memory_grow';
