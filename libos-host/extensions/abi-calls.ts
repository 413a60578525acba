/** The names of every host ABI call, in the order HostAbi declares them. Used by trace, metrics and fault rules. */
export const ABI_CALLS = [
  'listen', 'open', 'info', 'accept', 'read', 'write', 'shutdown', 'close', 'poll', 'wait',
  'now', 'resolution', 'random', 'readHostTree',
] as const;

export type AbiCallName = (typeof ABI_CALLS)[number];

/** True when `name` is a host ABI call name. */
export function isAbiCall(name: string): name is AbiCallName {
  return (ABI_CALLS as readonly string[]).includes(name);
}
