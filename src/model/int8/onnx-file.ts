/**
 * A lossless editor of ONNX model files at the protobuf wire level, for the int8 rewrites.
 *
 * Every field of the model and of its graph is kept as the bytes it was read as; only what a
 * rewrite touches is decoded (node names, op types, inputs and outputs; initializers' names,
 * types, shapes and data) and only what it changes is encoded again (with the forge's message
 * descriptors, src/forge/onnx-proto.ts). So doc strings, value_info, attributes of any kind,
 * subgraphs, metadata and fields newer than this code all come out as they went in.
 *
 * External data (TensorProto data_location EXTERNAL) is read on demand from `dir`; a tensor a
 * rewrite replaces is written inline (raw_data), the others keep their references.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { GraphProto } from '../../forge/onnx-proto.ts';

/** TensorProto.DataType values the int8 rewrites read or write. */
export const TensorType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

/** Bytes per element of the types above (0: not a fixed-size type this code reads). */
function elementBytes(dataType: number): number {
  switch (dataType) {
    case TensorType.FLOAT: case TensorType.INT32: return 4;
    case TensorType.UINT8: case TensorType.INT8: return 1;
    case TensorType.INT64: return 8;
    case TensorType.FLOAT16: return 2;
    default: return 0;
  }
}

// ---- wire format ----------------------------------------------------------------------------

interface Field {
  field: number;
  wire: number;
  /** Where the field starts (its tag) and ends, in the buffer it was read from. */
  start: number;
  end: number;
  /** Wire type 2: the payload; wire type 0: the varint's value (low 53 bits). */
  valueStart: number;
  valueEnd: number;
  value: number;
  /** Wire type 0: the varint's low 32 bits as a signed int32 (int32 fields encode negatives in 10 bytes). */
  int32: number;
}

/** A varint: its value (exact below 2^53), the position after it, and its low 32 bits as a signed int32. */
function readVarint(buf: Uint8Array, pos: number): [value: number, next: number, int32: number] {
  let value = 0;
  let low = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos + i];
    if (b === undefined) throw new Error('truncated varint');
    value += (b & 0x7f) * scale;
    if (i < 5) low += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, pos + i + 1, (low % 2 ** 32) | 0];
  }
  throw new Error('varint longer than 10 bytes');
}

function scan(buf: Uint8Array, start = 0, end = buf.length): Field[] {
  const fields: Field[] = [];
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [tag, afterTag] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    let valueStart = afterTag;
    let valueEnd: number;
    let value = 0;
    let int32 = 0;
    switch (wire) {
      case 0: [value, valueEnd, int32] = readVarint(buf, afterTag); break;
      case 1: valueEnd = afterTag + 8; break;
      case 2: {
        const [length, afterLength] = readVarint(buf, afterTag);
        valueStart = afterLength;
        valueEnd = afterLength + length;
        break;
      }
      case 5: valueEnd = afterTag + 4; break;
      default: throw new Error(`unsupported protobuf wire type ${wire} at byte ${fieldStart}`);
    }
    if (valueEnd > end) throw new Error(`protobuf field ${field} runs past its message (byte ${fieldStart})`);
    fields.push({ field, wire, start: fieldStart, end: valueEnd, valueStart, valueEnd, value, int32 });
    pos = valueEnd;
  }
  return fields;
}

const utf8 = new TextDecoder();
const text = (buf: Uint8Array, f: Field): string => utf8.decode(buf.subarray(f.valueStart, f.valueEnd));

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A length-delimited field: tag, length, payload. */
function lengthDelimited(field: number, payload: Uint8Array): Uint8Array[] {
  return [Uint8Array.from([...varint(field * 8 + 2), ...varint(payload.length)]), payload];
}

// ---- nodes ------------------------------------------------------------------------------------

/** A graph node: what the rewrites read, and its original bytes for what they do not. */
export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** Attributes as the forge's encoder takes them, for nodes made here (read nodes keep theirs raw). */
  attributes?: { name: string; type: number; i?: number; f?: number; ints?: number[] }[];
  /** The NodeProto bytes as read; undefined for nodes made here. */
  readonly raw?: Uint8Array;
}

const NODE = { input: 1, output: 2, name: 3, opType: 4, domain: 7 } as const;

function readNode(raw: Uint8Array): OnnxNode {
  const node: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], raw };
  for (const f of scan(raw)) {
    if (f.wire !== 2) continue;
    if (f.field === NODE.input) node.inputs.push(text(raw, f));
    else if (f.field === NODE.output) node.outputs.push(text(raw, f));
    else if (f.field === NODE.name) node.name = text(raw, f);
    else if (f.field === NODE.opType) node.opType = text(raw, f);
    else if (f.field === NODE.domain) node.domain = text(raw, f);
  }
  return node;
}

/** The graph's field 1 (node) for `node`: its raw bytes with inputs and outputs as they are now. */
function encodeNode(node: OnnxNode): Uint8Array[] {
  if (!node.raw) {
    return [GraphProto.encode({
      node: [{ name: node.name, opType: node.opType, input: node.inputs, output: node.outputs, attribute: node.attributes ?? [], ...(node.domain ? { domain: node.domain } : {}) }],
    }).finish()];
  }
  const original = readNode(node.raw);
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  if (same(original.inputs, node.inputs) && same(original.outputs, node.outputs)) return lengthDelimited(1, node.raw);
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const name of node.inputs) parts.push(...lengthDelimited(NODE.input, enc.encode(name)));
  for (const name of node.outputs) parts.push(...lengthDelimited(NODE.output, enc.encode(name)));
  for (const f of scan(node.raw)) {
    if (f.wire === 2 && (f.field === NODE.input || f.field === NODE.output)) continue;
    parts.push(node.raw.subarray(f.start, f.end));
  }
  const payload = Buffer.concat(parts);
  return lengthDelimited(1, payload);
}

// ---- tensors ----------------------------------------------------------------------------------

/** An initializer: shape, type and where its data is. */
export interface OnnxTensor {
  name: string;
  dataType: number;
  dims: number[];
  /** Set for tensors read from the file; undefined for tensors made or replaced here. */
  readonly raw?: Uint8Array;
  /** Element bytes, little-endian, for tensors made here. */
  data?: Uint8Array;
}

const TENSOR = { dims: 1, dataType: 2, floatData: 4, int32Data: 5, int64Data: 7, name: 8, rawData: 9, externalData: 13, dataLocation: 14 } as const;

interface TensorFields {
  name: string;
  dataType: number;
  dims: number[];
  rawData?: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: number[];
  external?: { location: string; offset: number; length?: number };
}

function readPacked(buf: Uint8Array, f: Field, out: number[], kind: 'varint' | 'int32' | 'float'): void {
  if (f.wire === 0) {
    out.push(kind === 'int32' ? f.int32 : f.value);
    return;
  }
  if (f.wire === 5) {
    out.push(new DataView(buf.buffer, buf.byteOffset + f.valueStart, 4).getFloat32(0, true));
    return;
  }
  if (kind === 'float') {
    const view = new DataView(buf.buffer, buf.byteOffset + f.valueStart, f.valueEnd - f.valueStart);
    for (let i = 0; i + 4 <= view.byteLength; i += 4) out.push(view.getFloat32(i, true));
    return;
  }
  let pos = f.valueStart;
  while (pos < f.valueEnd) {
    const [v, next, int32] = readVarint(buf, pos);
    out.push(kind === 'int32' ? int32 : v);
    pos = next;
  }
}

function readTensorFields(raw: Uint8Array): TensorFields {
  const t: TensorFields = { name: '', dataType: 0, dims: [], floatData: [], int32Data: [], int64Data: [] };
  let external: Record<string, string> | undefined;
  for (const f of scan(raw)) {
    switch (f.field) {
      case TENSOR.dims: readPacked(raw, f, t.dims, 'varint'); break;
      case TENSOR.dataType: t.dataType = f.value; break;
      case TENSOR.floatData: readPacked(raw, f, t.floatData, 'float'); break;
      case TENSOR.int32Data: readPacked(raw, f, t.int32Data, 'int32'); break;
      case TENSOR.int64Data: readPacked(raw, f, t.int64Data, 'varint'); break;
      case TENSOR.name: t.name = text(raw, f); break;
      case TENSOR.rawData: t.rawData = raw.subarray(f.valueStart, f.valueEnd); break;
      case TENSOR.externalData: {
        external ??= {};
        let key = '';
        let value = '';
        for (const e of scan(raw, f.valueStart, f.valueEnd)) {
          if (e.field === 1) key = text(raw, e);
          else if (e.field === 2) value = text(raw, e);
        }
        external[key] = value;
        break;
      }
      default: break;
    }
  }
  if (external?.location !== undefined) {
    t.external = { location: external.location, offset: Number(external.offset ?? 0), ...(external.length !== undefined ? { length: Number(external.length) } : {}) };
  }
  return t;
}

function encodeTensor(t: OnnxTensor): Uint8Array[] {
  if (t.raw && !t.data) return lengthDelimited(5, t.raw);
  return [GraphProto.encode({ initializer: [{ name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.data ?? new Uint8Array(0) }] }).finish()];
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

// ---- the model --------------------------------------------------------------------------------

const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11 } as const;

export class OnnxFile {
  /** The graph's nodes, in order; rewrites edit, insert and remove entries. */
  nodes: OnnxNode[];
  private readonly tensors = new Map<string, OnnxTensor>();
  private readonly order: string[] = [];
  private readonly modelFields: Field[];
  private readonly graphFields: Field[];
  private readonly graphStart: number;
  /** Names of the graph's inputs (initializers listed there cannot change type here). */
  readonly graphInputs: Set<string>;

  private constructor(readonly bytes: Uint8Array, readonly dir: string | undefined) {
    this.modelFields = scan(bytes);
    const graphs = this.modelFields.filter((f) => f.field === MODEL_GRAPH && f.wire === 2);
    if (graphs.length !== 1) throw new Error(`expected one graph in the model, found ${graphs.length}`);
    const graph = graphs[0]!;
    this.graphStart = graph.valueStart;
    this.graphFields = scan(bytes, graph.valueStart, graph.valueEnd);
    this.nodes = [];
    this.graphInputs = new Set();
    for (const f of this.graphFields) {
      if (f.wire !== 2) continue;
      const payload = bytes.subarray(f.valueStart, f.valueEnd);
      if (f.field === GRAPH.node) this.nodes.push(readNode(payload));
      else if (f.field === GRAPH.initializer) {
        const t = readTensorFields(payload);
        this.tensors.set(t.name, { name: t.name, dataType: t.dataType, dims: t.dims, raw: payload });
        this.order.push(t.name);
      } else if (f.field === GRAPH.input) {
        const name = scan(payload).find((x) => x.field === 1 && x.wire === 2);
        if (name) this.graphInputs.add(text(payload, name));
      }
    }
  }

  /** Parses a model; `dir` is where its external data files are (the model's folder). */
  static parse(bytes: Uint8Array, dir?: string): OnnxFile {
    return new OnnxFile(bytes, dir);
  }

  initializer(name: string): OnnxTensor | undefined {
    return this.tensors.get(name);
  }

  initializerNames(): string[] {
    return this.order.filter((n) => this.tensors.has(n));
  }

  /** Adds or replaces an initializer (its data as little-endian element bytes). */
  setInitializer(name: string, dataType: number, dims: readonly number[], data: Uint8Array): void {
    const size = elementBytes(dataType);
    if (size > 0 && data.length !== elementCount(dims) * size) throw new Error(`initializer ${name}: ${data.length} bytes for dims [${dims}]`);
    if (this.graphInputs.has(name)) throw new Error(`initializer ${name} is also a graph input; changing it is not supported`);
    if (!this.tensors.has(name)) this.order.push(name);
    this.tensors.set(name, { name, dataType, dims: [...dims], data });
  }

  removeInitializer(name: string): void {
    this.tensors.delete(name);
  }

  /** A name no initializer, node output or graph input uses yet, from `base`. */
  freshName(base: string): string {
    const used = new Set([...this.tensors.keys(), ...this.graphInputs, ...this.nodes.flatMap((n) => n.outputs)]);
    if (!used.has(base)) return base;
    for (let k = 1; ; k++) if (!used.has(`${base}_${k}`)) return `${base}_${k}`;
  }

  /** The nodes that read `name`, with the input positions. */
  consumers(name: string): { node: OnnxNode; index: number }[] {
    const out: { node: OnnxNode; index: number }[] = [];
    for (const node of this.nodes) node.inputs.forEach((input, index) => { if (input === name) out.push({ node, index }); });
    return out;
  }

  producer(name: string): OnnxNode | undefined {
    return this.nodes.find((n) => n.outputs.includes(name));
  }

  /** The element bytes of an initializer, little-endian, whatever way the file stores them. */
  tensorBytes(name: string): Uint8Array {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no initializer ${name}`);
    if (t.data) return t.data;
    const f = readTensorFields(t.raw!);
    const count = elementCount(f.dims);
    const size = elementBytes(f.dataType);
    if (size === 0) throw new Error(`initializer ${name}: data type ${f.dataType} is not one the int8 rewrites read`);
    if (f.rawData) return f.rawData;
    if (f.external) return this.readExternal(name, f.external, count * size);
    const out = new Uint8Array(count * size);
    const view = new DataView(out.buffer);
    if (f.dataType === TensorType.FLOAT) f.floatData.forEach((v, i) => view.setFloat32(i * 4, v, true));
    else if (f.dataType === TensorType.INT64) f.int64Data.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    else if (f.dataType === TensorType.INT32) f.int32Data.forEach((v, i) => view.setInt32(i * 4, v, true));
    else if (f.dataType === TensorType.UINT8 || f.dataType === TensorType.INT8) f.int32Data.forEach((v, i) => { out[i] = v & 0xff; });
    else if (f.dataType === TensorType.FLOAT16) f.int32Data.forEach((v, i) => view.setUint16(i * 2, v, true));
    if (count > 0 && f.floatData.length + f.int32Data.length + f.int64Data.length !== count) throw new Error(`initializer ${name}: ${count} elements declared, data for ${f.floatData.length + f.int32Data.length + f.int64Data.length}`);
    return out;
  }

  /** float32 values of an initializer (a copy when the bytes are not 4-aligned). */
  floats(name: string): Float32Array {
    const b = this.tensorBytes(name);
    return b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, b.length / 4) : new Float32Array(new Uint8Array(b).buffer); // new Uint8Array(b) copies (a Buffer's slice would not)
  }

  /** Values of an 8-bit initializer as numbers: uint8 0..255 or int8 -128..127 as its type says. */
  int8Values(name: string): Int16Array {
    const t = this.tensors.get(name)!;
    const b = this.tensorBytes(name);
    const out = new Int16Array(b.length);
    if (t.dataType === TensorType.INT8) for (let i = 0; i < b.length; i++) out[i] = (b[i]! << 24) >> 24;
    else if (t.dataType === TensorType.UINT8) for (let i = 0; i < b.length; i++) out[i] = b[i]!;
    else throw new Error(`initializer ${name} is not 8-bit (data type ${t.dataType})`);
    return out;
  }

  private readExternal(name: string, ext: { location: string; offset: number; length?: number }, expected: number): Uint8Array {
    if (!this.dir) throw new Error(`initializer ${name} is in external data (${ext.location}) and the model's folder was not given`);
    if (isAbsolute(ext.location) || ext.location.split(/[\\/]/).includes('..')) throw new Error(`initializer ${name}: external data location ${ext.location} leaves the model's folder`);
    const length = ext.length ?? expected;
    const out = new Uint8Array(length);
    const fd = openSync(join(this.dir, ext.location), 'r');
    try {
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, ext.offset + done);
        if (n === 0) throw new Error(`initializer ${name}: external data ${ext.location} ends before byte ${ext.offset + length}`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  /** The model as chunks of bytes, in order (write them one after the other, or concatenate). */
  chunks(): Uint8Array[] {
    const graph: Uint8Array[] = [];
    for (const f of this.graphFields) {
      if (f.wire === 2 && (f.field === GRAPH.node || f.field === GRAPH.initializer)) continue;
      graph.push(this.bytes.subarray(f.start, f.end));
    }
    for (const node of this.nodes) graph.push(...encodeNode(node));
    for (const name of this.initializerNames()) graph.push(...encodeTensor(this.tensors.get(name)!));
    const graphBytes = graph.reduce((sum, c) => sum + c.length, 0);
    const out: Uint8Array[] = [];
    for (const f of this.modelFields) {
      if (f.field === MODEL_GRAPH && f.wire === 2 && f.valueStart === this.graphStart) {
        out.push(Uint8Array.from([...varint(MODEL_GRAPH * 8 + 2), ...varint(graphBytes)]), ...graph);
      } else {
        out.push(this.bytes.subarray(f.start, f.end));
      }
    }
    return out;
  }

  /** The model as one buffer (what InferenceSession.create takes). */
  toBytes(): Uint8Array {
    return Buffer.concat(this.chunks());
  }
}
