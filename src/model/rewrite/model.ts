/**
 * An ONNX model file opened for rewriting: its graph as nodes the passes can match and
 * replace, its initializers as headers pointing at their bytes (in the .onnx file or in
 * external data files), and a writer that produces the rewritten file.
 *
 * Nothing large is read: nodes, graph inputs and outputs and tensor headers are decoded from
 * positioned reads; a tensor's values are read only when a pass asks for them (small
 * constants, and the weights a merge concatenates). The rewritten model keeps every
 * ModelProto and GraphProto field it does not change as the original bytes; every node left
 * alone keeps its original encoding; and the weights it keeps are not copied: a tensor held
 * inline in the original (raw_data) becomes an external-data reference to those same bytes in
 * the original file, a tensor already external keeps its reference. New tensors (concatenated
 * weights) go to a data file of the rewritten model's own.
 */
import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  AttrType,
  decodeNode,
  decodeTensor,
  decodeValueInfo,
  elemBytes,
  ElemType,
  F,
  FileCursor,
  lengthDelimited,
  NodeProto,
  OperatorSetIdProto,
  TensorProto,
  varint,
  type DecodedAttribute,
  type DecodedTensor,
  type FieldRange,
} from './proto.ts';

export const MS_DOMAIN = 'com.microsoft';

/** A symbolic or known dimension as declared by a graph input: number, name, or undefined (unknown). */
export type DeclaredDim = number | string | undefined;

export interface TensorInfo {
  name: string;
  dims: number[];
  dataType: number;
  /** The header fields (everything but raw_data) of an initializer from the file. */
  header?: DecodedTensor;
  /** Where raw_data lies in the source file. */
  raw?: { offset: number; length: number };
  /** An external-data reference, as the file holds it. */
  external?: { location: string; offset: number; length: number | undefined };
  /** The initializer field's bytes in the source file (copied as is when kept inline). */
  range?: FieldRange;
  /** Values of a small tensor a pass made. */
  data?: Uint8Array;
  /** Where a large tensor a pass made lies in the rewritten model's data file. */
  spilled?: { offset: number; length: number };
}

export interface Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: DecodedAttribute[];
  /** The original encoding; set for nodes from the file, dropped if a pass edits the node. */
  raw?: Buffer;
  /** Position key for the topological order of the output (new nodes take their anchor's). */
  order: number;
  /** True for nodes with subgraph attributes: never matched, never moved across. */
  hasSubgraph: boolean;
}

export interface GraphValue {
  name: string;
  elemType: number | undefined;
  dims: DeclaredDim[] | undefined;
}

/** Plain attribute helpers for nodes the passes make. */
export const attr = {
  int: (name: string, i: number): DecodedAttribute => ({ name, type: AttrType.INT, i }),
  float: (name: string, f: number): DecodedAttribute => ({ name, type: AttrType.FLOAT, f }),
  ints: (name: string, ints: readonly number[]): DecodedAttribute => ({ name, type: AttrType.INTS, ints: [...ints] }),
};

export function getAttr(node: Node, name: string): DecodedAttribute | undefined {
  return node.attrs.find((a) => a.name === name);
}

export function intAttr(node: Node, name: string, fallback: number): number;
export function intAttr(node: Node, name: string): number | undefined;
export function intAttr(node: Node, name: string, fallback?: number): number | undefined {
  const a = getAttr(node, name);
  return a?.i ?? (a ? 0 : fallback);
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? a.f ?? 0 : fallback;
}

export function intsAttr(node: Node, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? a.ints ?? [] : undefined;
}

/** Tensors of this many bytes or more are referenced (external data), smaller ones stay inline. */
const EXTERNAL_MIN_BYTES = 1024;
/** Alignment of new tensors in the rewritten model's data file (as the forge's writer aligns). */
const ALIGN_LARGE = 1 << 16;
const ALIGN_SMALL = 64;
const LARGE_TENSOR = 1 << 20;

/**
 * Where the rewritten model finds the original's bytes, relative to its own folder: the
 * original file (default: its name, the rewrite written beside it) and each external data
 * file by the location the original names it with (default: unchanged).
 */
export interface WriteLocations {
  source?: string;
  data?: ReadonlyMap<string, string>;
}

export class OnnxModel {
  readonly dir: string;
  readonly cursor: FileCursor;
  /** ModelProto's fields, in file order. */
  private readonly modelFields: FieldRange[];
  private readonly graphField: FieldRange;
  /** GraphProto fields other than nodes, initializers and value_info. */
  private readonly graphOther: FieldRange[];
  private readonly valueInfos: { name: string; range: FieldRange }[];
  readonly opsets = new Map<string, number>();
  readonly inputs: GraphValue[] = [];
  readonly outputs: GraphValue[] = [];
  nodes: Node[] = [];
  readonly initializers = new Map<string, TensorInfo>();
  /** External data files by location, opened when read. */
  private readonly dataFiles = new Map<string, FileCursor>();
  /** Initializers some removed node read: dropped from the output if nothing reads them any more. */
  private readonly orphanCandidates = new Set<string>();
  /** Nodes that lost a consumer to a removal: removed too if they end up feeding nothing. */
  private readonly deadCandidates = new Set<Node>();
  private indexed: { producer: Map<string, Node>; consumers: Map<string, Node[]> } | undefined;
  private names = new Set<string>();
  private counter = 0;
  /** The rewritten model's data file while passes add tensors to it (see setOutput). */
  private spill: { path: string; partial: string; fd: number; end: number } | undefined;

  constructor(readonly path: string) {
    this.dir = dirname(path);
    this.cursor = new FileCursor(path);
    try {
      this.modelFields = this.cursor.fields(0, this.cursor.size);
      const graphs = this.modelFields.filter((f) => f.field === F.model.graph);
      if (graphs.length !== 1 || graphs[0]!.wire !== 2) throw new Error(`${path}: expected one graph, found ${graphs.length}`);
      this.graphField = graphs[0]!;
      for (const f of this.modelFields.filter((f) => f.field === F.model.opsetImport)) {
        const opset = OperatorSetIdProto.toObject(OperatorSetIdProto.decode(this.payload(f)), { longs: Number }) as { domain?: string; version?: number };
        this.opsets.set(opset.domain === 'ai.onnx' ? '' : opset.domain ?? '', opset.version ?? 0);
      }
      this.graphOther = [];
      this.valueInfos = [];
      let order = 0;
      for (const f of this.cursor.fields(this.graphField.payload, this.graphField.end)) {
        if (f.field === F.graph.node) {
          const raw = this.cursor.read(f.start, f.end - f.start);
          const n = decodeNode(raw.subarray(f.payload - f.start));
          const attrs = n.attribute ?? [];
          this.nodes.push({
            name: n.name ?? '',
            opType: n.opType ?? '',
            domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '',
            inputs: n.input ?? [],
            outputs: n.output ?? [],
            attrs,
            raw,
            order: order++,
            hasSubgraph: attrs.some((a) => a.g !== undefined || (a.graphs?.length ?? 0) > 0),
          });
        } else if (f.field === F.graph.initializer) {
          const t = this.readInitializer(f);
          this.initializers.set(t.name, t);
        } else if (f.field === F.graph.valueInfo) {
          this.valueInfos.push({ name: decodeValueInfo(this.payload(f)).name ?? '', range: f });
        } else {
          if (f.field === F.graph.input || f.field === F.graph.output) {
            const v = decodeValueInfo(this.payload(f));
            const tensorType = v.type?.tensorType;
            const value: GraphValue = {
              name: v.name ?? '',
              elemType: tensorType?.elemType,
              dims: tensorType?.shape ? (tensorType.shape.dim ?? []).map((d) => d.dimValue ?? d.dimParam ?? undefined) : undefined,
            };
            (f.field === F.graph.input ? this.inputs : this.outputs).push(value);
          }
          this.graphOther.push(f);
        }
      }
      for (const n of this.nodes) for (const name of [n.name, ...n.outputs]) this.names.add(name);
      for (const name of this.initializers.keys()) this.names.add(name);
      for (const v of this.inputs) this.names.add(v.name);
    } catch (err) {
      this.cursor.close();
      throw err;
    }
  }

  close(): void {
    this.cursor.close();
    for (const f of this.dataFiles.values()) f.close();
    if (this.spill) {
      closeSync(this.spill.fd);
      rmSync(this.spill.partial, { force: true });
      this.spill = undefined;
    }
  }

  /**
   * Names the file write() will produce, so that large tensors the passes make go straight to
   * its data file (`${path}_data`) instead of staying in memory.
   */
  setOutput(path: string): void {
    if (this.spill) throw new Error('setOutput: already set');
    const dataPath = `${path}_data`;
    const partial = `${dataPath}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
    this.spill = { path: dataPath, partial, fd: openSync(partial, 'w+'), end: 0 };
  }

  private payload(f: FieldRange): Buffer {
    return this.cursor.read(f.payload, f.end - f.payload);
  }

  private readInitializer(f: FieldRange): TensorInfo {
    // Everything but raw_data is decoded; raw_data is only located.
    let raw: { offset: number; length: number } | undefined;
    const headerParts: Buffer[] = [];
    for (const sub of this.cursor.fields(f.payload, f.end)) {
      if (sub.field === F.tensor.rawData && sub.wire === 2) raw = { offset: sub.payload, length: sub.end - sub.payload };
      else headerParts.push(this.cursor.read(sub.start, sub.end - sub.start));
    }
    const header = decodeTensor(Buffer.concat(headerParts));
    const info: TensorInfo = { name: header.name ?? '', dims: header.dims ?? [], dataType: header.dataType ?? 0, header, range: f };
    if (header.dataLocation === 1) {
      const entries = new Map((header.externalData ?? []).map((e) => [e.key, e.value]));
      const location = entries.get('location');
      if (!location) throw new Error(`${this.path}: initializer ${info.name} is external with no location`);
      const length = entries.get('length');
      info.external = { location, offset: Number(entries.get('offset') ?? 0), length: length === undefined ? undefined : Number(length) };
    } else if (raw) {
      info.raw = raw;
    }
    return info;
  }

  // --- reading values ---

  /** Byte size of a tensor's data, when its type has a fixed size. */
  byteLength(t: TensorInfo): number | undefined {
    const per = elemBytes(t.dataType);
    return per === undefined ? undefined : per * t.dims.reduce((a, b) => a * b, 1);
  }

  /** The tensor's values as little-endian bytes. */
  bytes(t: TensorInfo): Buffer {
    if (t.data) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (t.spilled && this.spill) {
      const out = Buffer.alloc(t.spilled.length);
      readSync(this.spill.fd, out, 0, out.length, t.spilled.offset);
      return out;
    }
    if (t.raw) return this.cursor.read(t.raw.offset, t.raw.length);
    if (t.external) {
      let file = this.dataFiles.get(t.external.location);
      if (!file) {
        file = new FileCursor(join(this.dir, t.external.location));
        this.dataFiles.set(t.external.location, file);
      }
      const length = t.external.length ?? this.byteLength(t);
      if (length === undefined) throw new Error(`external tensor ${t.name}: unknown length`);
      return file.read(t.external.offset, length);
    }
    const h = t.header ?? {};
    const count = t.dims.reduce((a, b) => a * b, 1);
    switch (t.dataType) {
      case ElemType.FLOAT:
        return Buffer.from(Float32Array.from(h.floatData ?? []).buffer);
      case ElemType.INT64:
        return Buffer.from(BigInt64Array.from((h.int64Data ?? []).map((v) => BigInt(v))).buffer);
      case ElemType.INT32:
        return Buffer.from(Int32Array.from(h.int32Data ?? []).buffer);
      case ElemType.DOUBLE:
        return Buffer.from(Float64Array.from(h.doubleData ?? []).buffer);
      case ElemType.INT8:
        return Buffer.from(Int8Array.from(h.int32Data ?? []).buffer);
      case ElemType.UINT8:
      case ElemType.BOOL:
        return Buffer.from(Uint8Array.from(h.int32Data ?? []).buffer);
      default:
        if (count === 0) return Buffer.alloc(0);
        throw new Error(`tensor ${t.name}: data type ${t.dataType} cannot be read`);
    }
  }

  /**
   * The values of a small constant (an initializer or a Constant node's value) as numbers, or
   * undefined when `name` is not a constant or is larger than `maxElements`.
   */
  constant(name: string, maxElements = 4096): { dims: number[]; dataType: number; values: number[] } | undefined {
    let t = this.initializers.get(name);
    if (!t) {
      const producer = this.producer(name);
      if (!producer || producer.opType !== 'Constant' || producer.domain !== '') return undefined;
      const value = getAttr(producer, 'value');
      if (value?.t) t = { name, dims: value.t.dims ?? [], dataType: value.t.dataType ?? 0, header: value.t, ...(value.t.rawData ? { data: value.t.rawData } : {}) };
      else if (getAttr(producer, 'value_float')) t = { name, dims: [], dataType: ElemType.FLOAT, data: new Uint8Array(Float32Array.of(getAttr(producer, 'value_float')!.f ?? 0).buffer) };
      else if (getAttr(producer, 'value_int')) t = { name, dims: [], dataType: ElemType.INT64, data: new Uint8Array(BigInt64Array.of(BigInt(getAttr(producer, 'value_int')!.i ?? 0)).buffer) };
      else if (getAttr(producer, 'value_ints')) {
        const ints = getAttr(producer, 'value_ints')!.ints ?? [];
        t = { name, dims: [ints.length], dataType: ElemType.INT64, data: new Uint8Array(BigInt64Array.from(ints.map(BigInt)).buffer) };
      } else return undefined;
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count > maxElements) return undefined;
    const bytes = this.bytes(t);
    const copy = new Uint8Array(bytes).buffer;
    let values: number[];
    switch (t.dataType) {
      case ElemType.FLOAT: values = [...new Float32Array(copy, 0, count)]; break;
      case ElemType.DOUBLE: values = [...new Float64Array(copy, 0, count)]; break;
      case ElemType.INT64: values = [...new BigInt64Array(copy, 0, count)].map(Number); break;
      case ElemType.INT32: values = [...new Int32Array(copy, 0, count)]; break;
      case ElemType.INT8: values = [...new Int8Array(copy, 0, count)]; break;
      case ElemType.UINT8: case ElemType.BOOL: values = [...new Uint8Array(copy, 0, count)]; break;
      default: return undefined;
    }
    return { dims: t.dims, dataType: t.dataType, values };
  }

  // --- the graph ---

  private index(): { producer: Map<string, Node>; consumers: Map<string, Node[]> } {
    if (this.indexed) return this.indexed;
    const producer = new Map<string, Node>();
    const consumers = new Map<string, Node[]>();
    for (const n of this.nodes) {
      for (const o of n.outputs) if (o) producer.set(o, n);
      for (const i of n.inputs) {
        if (!i) continue;
        const list = consumers.get(i);
        if (list) {
          if (!list.includes(n)) list.push(n);
        } else consumers.set(i, [n]);
      }
    }
    this.indexed = { producer, consumers };
    return this.indexed;
  }

  producer(name: string): Node | undefined {
    return this.index().producer.get(name);
  }

  consumers(name: string): Node[] {
    return this.index().consumers.get(name) ?? [];
  }

  isGraphOutput(name: string): boolean {
    return this.outputs.some((o) => o.name === name);
  }

  /** True when `name` is read by nothing but `node` (and is not a graph output). */
  onlyFeeds(name: string, node: Node): boolean {
    const c = this.consumers(name);
    return c.length === 1 && c[0] === node && !this.isGraphOutput(name);
  }

  /** A name not used in the graph, from `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Adds a tensor the rewrite made; returns its name. */
  addInitializer(base: string, dataType: number, dims: readonly number[], data: Uint8Array): string {
    const name = this.fresh(base);
    if (this.spill && data.byteLength >= EXTERNAL_MIN_BYTES) {
      const align = data.byteLength >= LARGE_TENSOR ? ALIGN_LARGE : ALIGN_SMALL;
      const offset = Math.ceil(this.spill.end / align) * align;
      if (offset > this.spill.end) writeFully(this.spill.fd, Buffer.alloc(offset - this.spill.end));
      writeFully(this.spill.fd, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      this.spill.end = offset + data.byteLength;
      this.initializers.set(name, { name, dims: [...dims], dataType, spilled: { offset, length: data.byteLength } });
    } else {
      this.initializers.set(name, { name, dims: [...dims], dataType, data });
    }
    return name;
  }

  addInt64(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.addInitializer(base, ElemType.INT64, dims, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
  }

  addFloat(base: string, values: ArrayLike<number>, dims: readonly number[]): string {
    return this.addInitializer(base, ElemType.FLOAT, dims, new Uint8Array(Float32Array.from(values).buffer));
  }

  /** Builds a node to add; `order` places it in the output (the node it replaces, usually). */
  node(opType: string, inputs: string[], outputs: string[], attrs: DecodedAttribute[], order: number, domain = ''): Node {
    return { name: this.fresh(`rewrite/${opType}`), opType, domain, inputs, outputs, attrs, order, hasSubgraph: false };
  }

  /**
   * Removes `removed` and adds `added`. Every output of a removed node must be produced by an
   * added node or read by nothing outside `removed` (throws otherwise: a pass checks this
   * before it rewrites, so a throw is a bug in the pass).
   */
  replace(removed: readonly Node[], added: readonly Node[]): void {
    const gone = new Set(removed);
    const made = new Set(added.flatMap((n) => n.outputs).filter(Boolean));
    for (const n of removed) {
      for (const o of n.outputs) {
        if (!o || made.has(o)) continue;
        const outside = this.consumers(o).filter((c) => !gone.has(c));
        if (outside.length > 0 || this.isGraphOutput(o)) throw new Error(`rewrite: ${o} (from ${n.opType} ${n.name}) is still read by ${outside[0]?.name ?? 'the graph outputs'}`);
      }
      for (const i of n.inputs) {
        if (this.initializers.has(i)) this.orphanCandidates.add(i);
        const p = this.producer(i);
        if (p && !gone.has(p)) this.deadCandidates.add(p);
      }
    }
    for (const n of added) for (const i of n.inputs) if (i && !this.initializers.has(i) && !this.producer(i) && !made.has(i) && !this.inputs.some((v) => v.name === i)) {
      throw new Error(`rewrite: ${n.opType} reads ${i}, which nothing produces`);
    }
    this.nodes = [...this.nodes.filter((n) => !gone.has(n)), ...added];
    this.indexed = undefined;
  }

  /** Removes nodes that lost their last consumer to a rewrite (shape computations for removed reshapes). */
  private sweep(): void {
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of [...this.deadCandidates]) {
        this.deadCandidates.delete(n);
        if (!this.nodes.includes(n) || n.hasSubgraph) continue;
        if (n.outputs.some((o) => o && (this.consumers(o).length > 0 || this.isGraphOutput(o)))) continue;
        this.replace([n], []);
        changed = true;
      }
    }
  }

  /** The opset version of the default domain. */
  get opset(): number {
    return this.opsets.get('') ?? 0;
  }

  // --- writing ---

  /**
   * Writes the rewritten model to `path` (and its new tensors to `${path}_data` when there
   * are any), both through temporary names, and returns the files written.
   */
  write(path: string, where: WriteLocations = {}): string[] {
    if (this.spill && this.spill.path !== `${path}_data`) throw new Error(`write: setOutput named ${this.spill.path}, not ${path}_data`);
    this.sweep();
    const order = topologicalOrder(this.nodes);
    const used = new Set(this.nodes.flatMap((n) => n.inputs));
    for (const o of this.outputs) used.add(o.name);
    const produced = new Set([...this.nodes.flatMap((n) => n.outputs), ...this.inputs.map((i) => i.name)]);

    const sourceLocation = where.source ?? basename(this.path);
    const relocate = where.data ?? new Map<string, string>();
    const dataPath = `${path}_data`;
    const dataLocation = basename(dataPath);
    let spilledUsed = false;

    type Part = Buffer | { start: number; end: number };
    const graphParts: Part[] = [];
    for (const f of this.graphOther) graphParts.push({ start: f.start, end: f.end });
    for (const v of this.valueInfos) if (produced.has(v.name)) graphParts.push({ start: v.range.start, end: v.range.end });
    for (const n of order) graphParts.push(n.raw ?? lengthDelimited(F.graph.node, encodeNode(n)));
    for (const t of this.initializers.values()) {
      const made = !t.range;
      if (!used.has(t.name) && (made || this.orphanCandidates.has(t.name))) continue;
      if (t.spilled) {
        spilledUsed = true;
        graphParts.push(lengthDelimited(F.graph.initializer, externalTensor(t, dataLocation, t.spilled.offset, t.spilled.length)));
      } else if (t.data) {
        graphParts.push(lengthDelimited(F.graph.initializer, TensorProto.encode({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.data }).finish()));
      } else if (t.raw && t.raw.length >= EXTERNAL_MIN_BYTES && !t.header?.segment) {
        graphParts.push(lengthDelimited(F.graph.initializer, externalTensor(t, sourceLocation, t.raw.offset, t.raw.length)));
      } else if (t.external && relocate.has(t.external.location)) {
        const length = t.external.length ?? this.byteLength(t);
        if (length === undefined) throw new Error(`external tensor ${t.name}: unknown length`);
        graphParts.push(lengthDelimited(F.graph.initializer, externalTensor(t, relocate.get(t.external.location)!, t.external.offset, length)));
      } else {
        graphParts.push({ start: t.range!.start, end: t.range!.end });
      }
    }
    const partLength = (p: Part): number => (Buffer.isBuffer(p) ? p.length : p.end - p.start);
    const graphLength = graphParts.reduce((sum, p) => sum + partLength(p), 0);

    const modelParts: Part[] = [];
    for (const f of this.modelFields) {
      if (f.field === F.model.graph) modelParts.push(Buffer.concat([varint((F.model.graph << 3) | 2), varint(graphLength)]), ...graphParts);
      else modelParts.push({ start: f.start, end: f.end });
    }
    const domains = new Set(this.nodes.map((n) => n.domain));
    for (const domain of domains) {
      if (!this.opsets.has(domain)) modelParts.push(lengthDelimited(F.model.opsetImport, OperatorSetIdProto.encode({ domain, version: 1 }).finish()));
    }

    const written: string[] = [];
    const partial = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
    const fd = openSync(partial, 'w');
    try {
      for (const p of modelParts) {
        if (Buffer.isBuffer(p)) writeFully(fd, p);
        else for (let at = p.start; at < p.end; at += 8 << 20) writeFully(fd, this.cursor.read(at, Math.min(8 << 20, p.end - at)));
      }
    } catch (err) {
      closeSync(fd);
      rmSync(partial, { force: true });
      throw err;
    }
    closeSync(fd);
    if (this.spill) {
      closeSync(this.spill.fd);
      if (spilledUsed) {
        renameSync(this.spill.partial, dataPath);
        written.push(dataPath);
      } else rmSync(this.spill.partial, { force: true });
      this.spill = undefined;
    }
    renameSync(partial, path);
    written.push(path);
    return written;
  }

  /** Locations of the external data files the model reads. */
  externalLocations(): string[] {
    return [...new Set([...this.initializers.values()].flatMap((t) => (t.external ? [t.external.location] : [])))];
  }
}

function externalTensor(t: TensorInfo, location: string, offset: number, length: number): Uint8Array {
  return TensorProto.encode({
    name: t.name,
    dims: t.dims,
    dataType: t.dataType,
    dataLocation: 1,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  }).finish();
}

function encodeNode(n: Node): Uint8Array {
  return NodeProto.encode({
    input: n.inputs,
    output: n.outputs,
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    attribute: n.attrs,
  }).finish();
}

function writeFully(fd: number, bytes: Buffer): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Nodes in an order where each comes after the producers of its inputs, keeping the given
 * order keys wherever the data flow allows (Kahn's algorithm, smallest key first).
 */
export function topologicalOrder(nodes: readonly Node[]): Node[] {
  const producer = new Map<string, Node>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const waiting = new Map<Node, number>();
  const dependents = new Map<Node, Node[]>();
  for (const n of nodes) {
    const deps = new Set<Node>();
    for (const i of n.inputs) {
      const p = i ? producer.get(i) : undefined;
      if (p && p !== n) deps.add(p);
    }
    waiting.set(n, deps.size);
    for (const d of deps) {
      const list = dependents.get(d);
      if (list) list.push(n);
      else dependents.set(d, [n]);
    }
  }
  const heap = new MinHeap<Node>((a, b) => a.order - b.order);
  for (const [n, count] of waiting) if (count === 0) heap.push(n);
  const out: Node[] = [];
  while (heap.size > 0) {
    const n = heap.pop()!;
    out.push(n);
    for (const d of dependents.get(n) ?? []) {
      const left = waiting.get(d)! - 1;
      waiting.set(d, left);
      if (left === 0) heap.push(d);
    }
  }
  if (out.length !== nodes.length) throw new Error('rewrite: the graph has a cycle');
  return out;
}

class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => number) {}
  get size(): number {
    return this.items.length;
  }
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.less(a[i]!, a[parent]!) >= 0) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
