import type { Extension, HostAbi } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { createFaultExtension } from './fault.js';
import { faultRuleFromOptions } from './fault-rule.js';
import { MetricsExtension, parseMetricsOptions } from './metrics.js';
import type { TimingClock } from './observing-abi.js';
import { splitOptions } from './spec-options.js';
import { parseTraceOptions, TraceExtension } from './trace.js';
import type { TraceSink } from './trace-sink.js';

export { parseFaultRule } from './fault-rule.js';

/** One extension of a stack: its registered name and its options (`trace:file=/tmp/t.jsonl`). */
export interface ExtensionSpec {
  name: string;
  options: Record<string, string>;
}

/**
 * What the launcher provides to extensions that need the world outside the ABI. Extensions
 * never touch `fs` (rule 4), so the launcher passes sinks and openers built on `platform/`.
 * Extensions registered later may read their own keys.
 */
export interface ExtensionDeps {
  /** Sink for `trace` specs without `file=`; owned by the caller (the stack does not close it). */
  traceSink?: TraceSink;
  /** Opens a file sink for `trace:file=PATH`, e.g. `openFileTraceSink` from platform/trace-sink.ts. */
  openTraceFile?: (path: string) => TraceSink;
  /**
   * Monotonic clock (ns) that observing extensions time calls with. composeExtensions sets it to
   * the base ABI's clock unless given, so timing reads skip the other extensions.
   */
  timingClockNs?: TimingClock;
  readonly [other: string]: unknown;
}

/**
 * Builds an extension over `lower`. An `ExtensionFactory` from host-abi.ts (two parameters) is
 * also a StackExtensionFactory.
 */
export type StackExtensionFactory = (lower: HostAbi, options: Record<string, string>, deps: ExtensionDeps) => Extension;

interface RegistryEntry {
  factory: StackExtensionFactory;
  /** Checks options when a spec is parsed, so a bad flag fails before anything starts. */
  validate?: (options: Record<string, string>) => void;
}

const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;
const registry = new Map<string, RegistryEntry>();

/**
 * Register an extension under `name` (e.g. the output-commit network buffer registers itself
 * from `network-buffer/`). `validate`, when given, checks a spec's options at parse time.
 * Throws WB_CONFIG_INVALID for a malformed or already registered name.
 */
export function registerExtension(name: string, factory: StackExtensionFactory, validate?: (options: Record<string, string>) => void): void {
  if (!NAME_PATTERN.test(name)) throw new WaterbearError('WB_CONFIG_INVALID', `extension name '${name}' must be lower-case letters, digits and dashes`);
  if (registry.has(name)) throw new WaterbearError('WB_CONFIG_INVALID', `extension '${name}' is already registered`);
  registry.set(name, validate === undefined ? { factory } : { factory, validate });
}

/** The registered extension names, sorted. */
export function registeredExtensions(): string[] {
  return [...registry.keys()].sort();
}

function entryFor(name: string, text: string): RegistryEntry {
  const entry = registry.get(name);
  if (entry === undefined) {
    throw new WaterbearError('WB_CONFIG_INVALID', `extension "${text}": unknown extension '${name}'; extensions are: ${registeredExtensions().join(', ')}`);
  }
  return entry;
}

/**
 * Parse `NAME` or `NAME:KEY=VALUE,KEY=VALUE` (e.g. `trace`, `trace:file=/tmp/t.jsonl,data=1`,
 * `metrics`, `fault:call=read,errno=ECONNRESET,p=0.1`) and validate the options of the named
 * extension. Throws WB_CONFIG_INVALID naming the problem.
 */
export function parseExtensionSpec(text: string): ExtensionSpec {
  const t = text.trim();
  const colon = t.indexOf(':');
  const name = colon < 0 ? t : t.slice(0, colon);
  if (name === '') throw new WaterbearError('WB_CONFIG_INVALID', `extension "${text}": missing name; extensions are: ${registeredExtensions().join(', ')}`);
  const entry = entryFor(name, t);
  const options = splitOptions(colon < 0 ? '' : t.slice(colon + 1), name === 'fault' ? '--fault' : `--extension ${name}`);
  entry.validate?.(options);
  return { name, options };
}

/** The spec of one `--fault RULE` flag (the fault grammar without `fault:`). Throws WB_CONFIG_INVALID. */
export function faultSpec(rule: string): ExtensionSpec {
  return parseExtensionSpec(`fault:${rule.trim()}`);
}

/** A composed stack: the top ABI for the library OS, and the extensions bottom-up. */
export interface ExtensionStack {
  /** The ABI to hand to the library OS: the last extension, or `base` when there are none. */
  abi: HostAbi;
  /** The extensions in stack order: index 0 sits directly on the platform. */
  extensions: Extension[];
  /** Flush and close what the stack opened (trace files). Call once at shutdown. */
  dispose(): Promise<void>;
}

/**
 * Compose extensions over `base`. Order: the FIRST spec is closest to the platform and the LAST
 * is what the library OS calls, so `[fault, trace]` traces the faults fault injected, while
 * `[trace, fault]` traces only what reached the platform. Throws WB_CONFIG_INVALID for unknown
 * names, bad options, or a `trace` spec with no sink.
 */
export function composeExtensions(base: HostAbi, specs: readonly ExtensionSpec[], deps: ExtensionDeps = {}): ExtensionStack {
  let abi = base;
  const extensions: Extension[] = [];
  const withClock: ExtensionDeps = { ...deps, timingClockNs: deps.timingClockNs ?? (() => base.now('monotonic')) };
  try {
    for (const spec of specs) {
      const ext = entryFor(spec.name, spec.name).factory(abi, spec.options, withClock);
      extensions.push(ext);
      abi = ext;
    }
  } catch (err) {
    disposeAll(extensions).catch(() => {}); // the configuration error is what the caller needs
    throw err;
  }
  return { abi, extensions, dispose: () => disposeAll(extensions) };
}

async function disposeAll(extensions: readonly Extension[]): Promise<void> {
  for (const ext of [...extensions].reverse()) {
    const d = (ext as { dispose?: () => Promise<void> }).dispose;
    if (typeof d === 'function') await d.call(ext);
  }
}

function createTrace(lower: HostAbi, options: Record<string, string>, deps: ExtensionDeps): Extension {
  const opts = parseTraceOptions(options);
  if (opts.file !== undefined) {
    if (deps.openTraceFile === undefined) {
      throw new WaterbearError('WB_CONFIG_INVALID', 'trace:file= needs a file opener; the launcher must pass openTraceFile (platform/trace-sink.ts)');
    }
    return new TraceExtension(lower, deps.openTraceFile(opts.file), opts, { ownsSink: true, clockNs: deps.timingClockNs });
  }
  if (deps.traceSink === undefined) {
    throw new WaterbearError('WB_CONFIG_INVALID', 'trace needs somewhere to write: use trace:file=PATH, e.g. trace:file=/tmp/trace.jsonl');
  }
  return new TraceExtension(lower, deps.traceSink, opts, { clockNs: deps.timingClockNs });
}

registerExtension('trace', createTrace, (o) => { parseTraceOptions(o); });
registerExtension('metrics', (lower, o, deps) => { parseMetricsOptions(o); return new MetricsExtension(lower, deps.timingClockNs); }, parseMetricsOptions);
registerExtension('fault', createFaultExtension, (o) => { faultRuleFromOptions(o, ''); });
