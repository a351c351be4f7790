/**
 * The parts of onnx.proto the rewriter decodes and encodes, and a reader that walks a model
 * file's protobuf fields by position without loading the weights.
 *
 * The rewriter never round-trips a whole ModelProto through a schema: a schema that lacks a
 * field drops it. It walks the wire format instead (tag, length, payload), copies every field
 * it does not change byte for byte, decodes only what it reads (nodes, graph inputs and
 * outputs, tensor headers) and encodes only what it adds. Field numbers are onnx.proto's.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import protobuf from 'protobufjs';

const descriptor = {
  nested: {
    onnx: {
      nested: {
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            // Subgraphs (If, Loop, Scan): only their presence matters here, so they stay bytes.
            g: { type: 'bytes', id: 6 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            graphs: { rule: 'repeated', type: 'bytes', id: 11 },
            refAttrName: { type: 'string', id: 21 },
            type: { type: 'int32', id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            segment: { type: 'bytes', id: 3 },
            floatData: { rule: 'repeated', type: 'float', id: 4 },
            int32Data: { rule: 'repeated', type: 'int32', id: 5 },
            int64Data: { rule: 'repeated', type: 'int64', id: 7 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
            doubleData: { rule: 'repeated', type: 'double', id: 10 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: { fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } } },
        TypeProtoTensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'TensorShapeDimension', id: 1 } } },
        TensorShapeDimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } } },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor);
export const NodeProto = root.lookupType('onnx.NodeProto');
export const TensorProto = root.lookupType('onnx.TensorProto');
export const ValueInfoProto = root.lookupType('onnx.ValueInfoProto');
export const OperatorSetIdProto = root.lookupType('onnx.OperatorSetIdProto');

/** onnx.proto field numbers the rewriter walks. */
export const F = {
  model: { opsetImport: 8, graph: 7 },
  graph: { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13, sparseInitializer: 15 },
  tensor: { rawData: 9, dataLocation: 14, segment: 3 },
} as const;

/** TensorProto.DataType values. */
export const ElemType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** Bytes per element of the fixed-size types (undefined: strings and the rest). */
export function elemBytes(type: number): number | undefined {
  return ({ 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 } as Record<number, number>)[type];
}

export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, GRAPHS: 10 } as const;

// Decoded shapes of the messages above (protobufjs `toObject` with longs as numbers).

export interface DecodedTensor {
  name?: string;
  dims?: number[];
  dataType?: number;
  segment?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  rawData?: Uint8Array;
  externalData?: { key: string; value: string }[];
  dataLocation?: number;
}

export interface DecodedAttribute {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: DecodedTensor;
  g?: Uint8Array;
  floats?: number[];
  ints?: number[];
  graphs?: Uint8Array[];
  refAttrName?: string;
}

export interface DecodedNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  attribute?: DecodedAttribute[];
  domain?: string;
}

export interface DecodedValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: number; dimParam?: string }[] } } };
}

const TO_OBJECT = { longs: Number, defaults: false, arrays: true } as const;

export function decodeNode(bytes: Uint8Array): DecodedNode {
  return NodeProto.toObject(NodeProto.decode(bytes), TO_OBJECT) as DecodedNode;
}

export function decodeTensor(bytes: Uint8Array): DecodedTensor {
  return TensorProto.toObject(TensorProto.decode(bytes), TO_OBJECT) as DecodedTensor;
}

export function decodeValueInfo(bytes: Uint8Array): DecodedValueInfo {
  return ValueInfoProto.toObject(ValueInfoProto.decode(bytes), TO_OBJECT) as DecodedValueInfo;
}

// --- the wire format ---

export function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A length-delimited field: tag, length, payload. */
export function lengthDelimited(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

/** Where one field of a message lies in the file: [start, end) covers tag, length and payload. */
export interface FieldRange {
  field: number;
  wire: number;
  start: number;
  /** Start of the payload (for length-delimited fields). */
  payload: number;
  end: number;
}

/** Positioned reads of a file through a window, so tags and small messages cost no syscall each. */
export class FileCursor {
  readonly fd: number;
  readonly size: number;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** `length` bytes at `position`, copied. */
  read(position: number, length: number): Buffer {
    if (position < 0 || position + length > this.size) throw new Error(`read past the end of ${this.path} (${position}+${length} > ${this.size})`);
    if (position >= this.windowStart && position + length <= this.windowStart + this.window.length) {
      return Buffer.from(this.window.subarray(position - this.windowStart, position - this.windowStart + length));
    }
    if (length > 1 << 20) return this.readDirect(position, length);
    this.windowStart = position;
    this.window = this.readDirect(position, Math.min(Math.max(length, 1 << 20), this.size - position));
    return Buffer.from(this.window.subarray(0, length));
  }

  private readDirect(position: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n === 0) throw new Error(`${this.path} ended early`);
      done += n;
    }
    return out;
  }

  /** The varint at `position` and the position after it. */
  varint(position: number): [number, number] {
    const bytes = this.read(position, Math.min(10, this.size - position));
    let value = 0;
    let scale = 1;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, position + i + 1];
      scale *= 128;
    }
    throw new Error(`${this.path}: malformed varint at byte ${position}`);
  }

  /** The fields of the message occupying [start, end). */
  fields(start: number, end: number): FieldRange[] {
    const out: FieldRange[] = [];
    let pos = start;
    while (pos < end) {
      const [tag, afterTag] = this.varint(pos);
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      let payload = afterTag;
      let next: number;
      if (wire === 0) next = this.varint(afterTag)[1];
      else if (wire === 1) next = afterTag + 8;
      else if (wire === 5) next = afterTag + 4;
      else if (wire === 2) {
        const [length, afterLength] = this.varint(afterTag);
        payload = afterLength;
        next = afterLength + length;
      } else throw new Error(`${this.path}: wire type ${wire} (groups) at byte ${pos} is not supported`);
      if (next > end) throw new Error(`${this.path}: field ${field} at byte ${pos} runs past its message`);
      out.push({ field, wire, start: pos, payload, end: next });
      pos = next;
    }
    return out;
  }
}
