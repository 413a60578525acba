/**
 * A generic walker over binaryen.js expressions, shared by the image passes (the memory.size
 * rewrite and the dirty-page store instrumentation): every expression kind binaryen.js can
 * describe, with its child slots, so a pass can visit and replace expressions anywhere in a body.
 */
import type binaryenModule from 'binaryen';
import { WaterbearError } from '../errors.js';

export type Binaryen = typeof binaryenModule;
export type BModule = binaryenModule.Module;
export type ExprRef = number;
export type FuncRef = number;

/** One child slot of an expression: read it, or replace it. */
export interface Slot { get(): ExprRef; set(v: ExprRef): void }

type Accessors = Record<string, (...args: never[]) => unknown>;

/** Child expressions by accessor stem (getX/setX), and lists (getNumXs/getXAt/setXAt). */
interface ChildSpec { fields?: string[]; lists?: { count: string; at: string }[] }

/** Expression kinds, by binaryen.js wrapper class, with the accessors of their child expressions. */
const CHILD_SPECS: Record<string, ChildSpec> = {
  Block: { lists: [{ count: 'getNumChildren', at: 'ChildAt' }] },
  If: { fields: ['Condition', 'IfTrue', 'IfFalse'] },
  Loop: { fields: ['Body'] },
  Break: { fields: ['Condition', 'Value'] },
  Switch: { fields: ['Condition', 'Value'] },
  Call: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  CallIndirect: { fields: ['Target'], lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  LocalSet: { fields: ['Value'] },
  GlobalSet: { fields: ['Value'] },
  TableGet: { fields: ['Index'] },
  TableSet: { fields: ['Index', 'Value'] },
  TableGrow: { fields: ['Value', 'Delta'] },
  MemoryGrow: { fields: ['Delta'] },
  Load: { fields: ['Ptr'] },
  Store: { fields: ['Ptr', 'Value'] },
  Unary: { fields: ['Value'] },
  Binary: { fields: ['Left', 'Right'] },
  Select: { fields: ['IfTrue', 'IfFalse', 'Condition'] },
  Drop: { fields: ['Value'] },
  Return: { fields: ['Value'] },
  AtomicRMW: { fields: ['Ptr', 'Value'] },
  AtomicCmpxchg: { fields: ['Ptr', 'Expected', 'Replacement'] },
  AtomicWait: { fields: ['Ptr', 'Expected', 'Timeout'] },
  AtomicNotify: { fields: ['Ptr', 'NotifyCount'] },
  SIMDExtract: { fields: ['Vec'] },
  SIMDReplace: { fields: ['Vec', 'Value'] },
  SIMDShuffle: { fields: ['Left', 'Right'] },
  SIMDTernary: { fields: ['A', 'B', 'C'] },
  SIMDShift: { fields: ['Vec', 'Shift'] },
  SIMDLoad: { fields: ['Ptr'] },
  SIMDLoadStoreLane: { fields: ['Ptr', 'Vec'] },
  MemoryInit: { fields: ['Dest', 'Offset', 'Size'] },
  MemoryCopy: { fields: ['Dest', 'Source', 'Size'] },
  MemoryFill: { fields: ['Dest', 'Value', 'Size'] },
  RefIsNull: { fields: ['Value'] },
  RefAs: { fields: ['Value'] },
  RefEq: { fields: ['Left', 'Right'] },
  RefTest: { fields: ['Ref'] },
  RefCast: { fields: ['Ref'] },
  BrOn: { fields: ['Ref'] },
  Try: { fields: ['Body'], lists: [{ count: 'getNumCatchBodies', at: 'CatchBodyAt' }] },
  Throw: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  TupleMake: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  TupleExtract: { fields: ['Tuple'] },
  RefI31: { fields: ['Value'] },
  I31Get: { fields: ['I31'] },
  CallRef: { fields: ['Target'], lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  StructNew: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  StructGet: { fields: ['Ref'] },
  StructSet: { fields: ['Ref', 'Value'] },
  ArrayNew: { fields: ['Init', 'Size'] },
  ArrayNewFixed: { lists: [{ count: 'getNumValues', at: 'ValueAt' }] },
  ArrayNewData: { fields: ['Offset', 'Size'] },
  ArrayNewElem: { fields: ['Offset', 'Size'] },
  ArrayGet: { fields: ['Ref', 'Index'] },
  ArraySet: { fields: ['Ref', 'Index', 'Value'] },
  ArrayLen: { fields: ['Ref'] },
  ArrayFill: { fields: ['Ref', 'Index', 'Value', 'Size'] },
  ArrayCopy: { fields: ['DestRef', 'DestIndex', 'SrcRef', 'SrcIndex', 'Length'] },
  ArrayInitData: { fields: ['Ref', 'Index', 'Offset', 'Size'] },
  ArrayInitElem: { fields: ['Ref', 'Index', 'Offset', 'Size'] },
};

/** Expression kinds with no child expressions. */
const LEAF_KINDS = [
  'Nop', 'Unreachable', 'Const', 'LocalGet', 'GlobalGet', 'MemorySize', 'RefNull', 'RefFunc',
  'DataDrop', 'AtomicFence', 'TableSize', 'Pop', 'Rethrow',
];

type ChildEnumerator = (expr: ExprRef, out: Slot[]) => void;

const walkers = new WeakMap<object, Map<number, ChildEnumerator>>();

/** The table from expression id to child enumerator, built once per binaryen instance. */
export function childEnumerators(binaryen: Binaryen): Map<number, ChildEnumerator> {
  const cached = walkers.get(binaryen);
  if (cached !== undefined) return cached;
  const b = binaryen as unknown as Record<string, unknown>;
  const byId = new Map<number, ChildEnumerator>();
  for (const leaf of LEAF_KINDS) {
    const id = b[`${leaf}Id`];
    if (typeof id === 'number') byId.set(id, () => {});
  }
  for (const [kind, spec] of Object.entries(CHILD_SPECS)) {
    const id = b[`${kind}Id`];
    const cls = b[kind] as Accessors | undefined;
    // A kind binaryen.js cannot describe stays unknown: the walk refuses it if it ever appears.
    if (typeof id !== 'number' || cls === undefined) continue;
    const accessor = (name: string): ((...args: never[]) => unknown) | null => (typeof cls[name] === 'function' ? cls[name] : null);
    const fields = (spec.fields ?? []).map((f) => ({ get: accessor(`get${f}`), set: accessor(`set${f}`) }));
    const lists = (spec.lists ?? []).map((l) => ({ count: accessor(l.count), get: accessor(`get${l.at}`), set: accessor(`set${l.at}`) }));
    if (fields.some((f) => f.get === null || f.set === null) || lists.some((l) => l.count === null || l.get === null || l.set === null)) continue;
    const fs = fields as unknown as Array<{ get: (e: ExprRef) => ExprRef; set: (e: ExprRef, v: ExprRef) => void }>;
    const ls = lists as unknown as Array<{ count: (e: ExprRef) => number; get: (e: ExprRef, i: number) => ExprRef; set: (e: ExprRef, i: number, v: ExprRef) => void }>;
    byId.set(id, (expr, out) => {
      for (const f of fs) out.push({ get: () => f.get(expr), set: (v) => f.set(expr, v) });
      for (const l of ls) {
        const n = l.count(expr);
        for (let i = 0; i < n; i++) out.push({ get: () => l.get(expr, i), set: (v) => l.set(expr, i, v) });
      }
    });
  }
  walkers.set(binaryen, byId);
  return byId;
}

/**
 * What a visitor decides for one expression: null to leave it and walk its children; or a
 * replacement (put in the expression's place, not visited) plus the slots still to walk (e.g.
 * the original operands, now inside the replacement).
 */
export type Visit = null | { replacement: ExprRef | null; next: Slot[] };

/**
 * Walk every expression of `fn`'s body, pre-order, letting `visit` replace expressions.
 * Throws WB_IMAGE_PREPARATION on an expression kind the walker does not know.
 */
export function rewriteFunctionBody(binaryen: Binaryen, fn: FuncRef, what: string, visit: (expr: ExprRef) => Visit): void {
  const byId = childEnumerators(binaryen);
  const F = binaryen as unknown as { Function: { getBody(fn: FuncRef): ExprRef; setBody(fn: FuncRef, body: ExprRef): void } };
  const body = F.Function.getBody(fn);
  if (body === 0) return;
  const pending: Slot[] = [{ get: () => F.Function.getBody(fn), set: (v) => F.Function.setBody(fn, v) }];
  const children: Slot[] = [];
  while (pending.length > 0) {
    const slot = pending.pop()!;
    const expr = slot.get();
    if (expr === 0) continue; // optional child absent (if without else, br without value…)
    const decision = visit(expr);
    if (decision !== null) {
      if (decision.replacement !== null) slot.set(decision.replacement);
      for (const s of decision.next) pending.push(s);
      continue;
    }
    const id = binaryen.getExpressionId(expr);
    const enumerate = byId.get(id);
    if (enumerate === undefined) {
      throw new WaterbearError('WB_IMAGE_PREPARATION',
        `cannot ${what} in function ${binaryen.getFunctionInfo(fn).name}: it uses an expression kind (id ${id}) ` +
        'that waterbear does not know (a newer WebAssembly proposal?). Build the guest for plain wasm32-wasip1');
    }
    children.length = 0;
    enumerate(expr, children);
    for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]);
  }
}

/** The module's defined (non-imported) functions, collected before anything is added. */
export function definedFunctions(binaryen: Binaryen, module: BModule): FuncRef[] {
  const out: FuncRef[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(fn);
    if (info.module === null || info.module === '') out.push(fn);
  }
  return out;
}

/**
 * Add an unnamed local of `type` to `fn` and return its index (binaryen.js exposes the C call
 * only). Unnamed: a name could clash with one of the guest's.
 */
export function addLocal(binaryen: Binaryen, fn: FuncRef, type: number): number {
  return (binaryen as unknown as { _BinaryenFunctionAddVar(fn: FuncRef, type: number): number })._BinaryenFunctionAddVar(fn, type);
}

/** A name not yet used by `exists`, starting from `base`. */
export function freshName(exists: (name: string) => boolean, base: string): string {
  if (!exists(base)) return base;
  for (let i = 1; ; i++) if (!exists(`${base}_${i}`)) return `${base}_${i}`;
}
