/**
 * The `waterbear.image` custom section: a prepared image describes itself (layout, exported
 * globals, what it was prepared from), so a runtime given only the prepared bytes, or a
 * checkpoint naming an image, can check it has the image it expects.
 */
import { WaterbearError } from '../errors.js';
import { IMAGE_SECTION } from './image-names.js';
import type { ImageLayout } from './layout.js';
import { customSections } from './wasm-binary.js';

/**
 * Version of the preparation pipeline and of this section's format. Bump it whenever prepared
 * output would change for the same input (it is part of the cache key), and whenever the
 * section's fields change meaning.
 */
export const PREPARATION_VERSION = 2;

/** A mutable global of the guest (or added by preparation), exported for capture/restore. */
export interface ExportedGlobal {
  /** Export name, `wb_global_<index>`. */
  exportName: string;
  type: 'i32' | 'i64' | 'f32' | 'f64';
  /** Internal name from the name section, e.g. `__stack_pointer`, `__asyncify_state`, `wb_grown`. Informative only. */
  name: string;
}

/** Contents of the `waterbear.image` section. */
export interface ImageMetadata {
  format: 'waterbear.image';
  preparationVersion: number;
  binaryenVersion: string;
  /** sha256 (hex) of the guest module the image was prepared from. */
  sourceSha256: string;
  layout: ImageLayout;
  mutableGlobals: ExportedGlobal[];
  /** False only for images prepared with the test-only `unsafeSkipMemorySizeRewrite`. */
  memorySizeRewritten: boolean;
}

/** Serialize metadata as the section's contents (UTF-8 JSON). */
export function encodeImageMetadata(meta: ImageMetadata): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(meta));
}

/**
 * Read the metadata of a prepared image, from its bytes or its compiled module. Returns null
 * when the module has no `waterbear.image` section (it was not prepared). Throws
 * WB_INVALID_MODULE when the section is unreadable or from another preparation version.
 */
export function readImageMetadata(image: Uint8Array | WebAssembly.Module): ImageMetadata | null {
  const sections = image instanceof Uint8Array
    ? customSections(image, IMAGE_SECTION)
    : WebAssembly.Module.customSections(image, IMAGE_SECTION).map((b) => new Uint8Array(b));
  if (sections.length === 0) return null;
  if (sections.length > 1) throw new WaterbearError('WB_INVALID_MODULE', `prepared image has ${sections.length} ${IMAGE_SECTION} sections: re-prepare it from the original guest`);
  let meta: ImageMetadata;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(sections[0])) as ImageMetadata;
  } catch (err) {
    throw new WaterbearError('WB_INVALID_MODULE', `prepared image has an unreadable ${IMAGE_SECTION} section: re-prepare it from the original guest`, { cause: err });
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'waterbear.image' || typeof meta.layout !== 'object' || !Array.isArray(meta.mutableGlobals)) {
    throw new WaterbearError('WB_INVALID_MODULE', `prepared image has a malformed ${IMAGE_SECTION} section: re-prepare it from the original guest`);
  }
  if (meta.preparationVersion !== PREPARATION_VERSION) {
    throw new WaterbearError('WB_INVALID_MODULE',
      `prepared image is from preparation version ${meta.preparationVersion}, this waterbear understands ${PREPARATION_VERSION}: re-prepare it from the original guest`,
      { details: { preparationVersion: meta.preparationVersion } });
  }
  return meta;
}
