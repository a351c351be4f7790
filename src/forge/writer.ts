/**
 * Streams a GraphBuilder to an .onnx file. protobufjs encodes every message except the
 * weights; each weight is generated, written and dropped in turn. This works because a
 * protobuf message is the concatenation of its fields in any order: the writer emits
 * ModelProto's own fields, then field 7 (graph) whose length it computes up front from the
 * tensor shapes, then GraphProto's own fields, then one field 5 (initializer) per tensor,
 * each a TensorProto header followed by field 9 (raw_data, little-endian).
 *
 * writeModelWithExternalData writes the other layout ONNX has, the one models over
 * protobuf's 2 GB limit need: the .onnx file holds the graph and, for each weight, only a
 * reference (data_location EXTERNAL, external_data location/offset/length) into a second
 * file, `<model>.onnx_data`, which receives the weights one after the other.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename } from 'node:path';
import { elementCount, type GraphBuilder, type ParamSpec, type TypedWeightSource } from './graph.ts';
import { DataLocation, DataType, FIELD, GraphProto, ModelProto, TensorProto } from './onnx-proto.ts';

export interface ModelInfo {
  producerName: string;
  producerVersion: string;
  docString: string;
  /** Written as ModelProto.metadata_props (readable through ONNX Runtime's model metadata). */
  metadata: Record<string, string>;
  opsetVersion: number;
  irVersion: number;
}

/** Writes `graph` to `path` and returns the file's size in bytes. */
export async function writeModel(path: string, graph: GraphBuilder, weights: TypedWeightSource, info: ModelInfo): Promise<number> {
  if (endianness() !== 'LE') throw new Error('the forge writes raw_data straight from typed arrays and needs a little-endian machine');
  graph.validate();

  const graphFields = GraphProto.encode({
    name: graph.name,
    node: graph.nodes,
    input: graph.inputs,
    output: graph.outputs,
  }).finish();

  const constantTensors = graph.constants.map((c) =>
    TensorProto.encode({
      name: c.name,
      dims: c.dims,
      dataType: c.dataType,
      rawData: new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength),
    }).finish(),
  );

  const paramHeaders = graph.params.map((p) => {
    const dataType = p.dataType ?? DataType.FLOAT;
    const header = TensorProto.encode({ name: p.name, dims: p.dims, dataType }).finish();
    const rawBytes = paramBytes(p);
    const rawPrefix = concat([fieldTag(FIELD.tensorRawData), varint(rawBytes)]);
    return { header, rawPrefix, rawBytes, tensorBytes: header.length + rawPrefix.length + rawBytes };
  });

  const graphBytes =
    graphFields.length +
    constantTensors.reduce((sum, t) => sum + embeddedFieldBytes(t.length), 0) +
    paramHeaders.reduce((sum, p) => sum + embeddedFieldBytes(p.tensorBytes), 0);

  const modelFields = ModelProto.encode({
    irVersion: info.irVersion,
    producerName: info.producerName,
    producerVersion: info.producerVersion,
    docString: info.docString,
    opsetImport: [{ domain: '', version: info.opsetVersion }],
    metadataProps: Object.entries(info.metadata).map(([key, value]) => ({ key, value })),
  }).finish();

  const partial = `${path}.partial`;
  const file = new BufferedFile(await open(partial, 'w'));
  try {
    await file.write(modelFields);
    await file.write(concat([fieldTag(FIELD.modelGraph), varint(graphBytes)]));
    await file.write(graphFields);
    for (const tensor of constantTensors) {
      await file.write(concat([fieldTag(FIELD.graphInitializer), varint(tensor.length)]));
      await file.write(tensor);
    }
    for (const [index, param] of graph.params.entries()) {
      const { header, rawPrefix, rawBytes, tensorBytes } = paramHeaders[index]!;
      const data = weights(param);
      if (data.byteLength !== rawBytes) {
        throw new Error(`weight ${param.name}: ${data.length} values for dims [${param.dims}]`);
      }
      await file.write(concat([fieldTag(FIELD.graphInitializer), varint(tensorBytes), header, rawPrefix]));
      await file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await file.close();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
  const total = file.written;
  const expected = modelFields.length + embeddedFieldBytes(graphBytes);
  if (total !== expected) throw new Error(`internal error: wrote ${total} bytes to ${path}, expected ${expected}`);
  await rename(partial, path);
  return total;
}

export interface ExternalDataSizes {
  /** Bytes of the .onnx file (graph, constants, weight references). */
  model: number;
  /** Bytes of the `<model>.onnx_data` file (the weights). */
  data: number;
}

/**
 * Tensors of 1 MiB or more start on a 64 KiB boundary of the data file, as onnx's own
 * save_model(..., save_as_external_data=True) aligns them, so a runtime can map them
 * straight from the file; smaller ones only on 64 bytes.
 */
const ALIGN_LARGE = 1 << 16;
const ALIGN_SMALL = 64;
const LARGE_TENSOR = 1 << 20;

function paramBytes(p: ParamSpec): number {
  const dataType = p.dataType ?? DataType.FLOAT;
  return elementCount(p.dims) * (dataType === DataType.FLOAT ? 4 : dataType === DataType.INT64 ? 8 : 1);
}

/**
 * Writes `graph` to `path` with every param stored in `${path}_data` (the file name
 * transformers.js looks for when config.json says use_external_data_format) and the small
 * constants inline. Both files are written under temporary names and renamed at the end.
 */
export async function writeModelWithExternalData(path: string, graph: GraphBuilder, weights: TypedWeightSource, info: ModelInfo): Promise<ExternalDataSizes> {
  if (endianness() !== 'LE') throw new Error('the forge writes weights straight from typed arrays and needs a little-endian machine');
  graph.validate();
  const dataPath = `${path}_data`;
  const location = basename(dataPath);

  // The layout first: every offset is known before a single weight is made.
  let offset = 0;
  const layout = graph.params.map((p) => {
    const length = paramBytes(p);
    const align = length >= LARGE_TENSOR ? ALIGN_LARGE : ALIGN_SMALL;
    offset = Math.ceil(offset / align) * align;
    const entry = { offset, length };
    offset += length;
    return entry;
  });
  const dataBytes = offset;

  const initializer = [
    ...graph.constants.map((c) => ({
      name: c.name,
      dims: c.dims,
      dataType: c.dataType,
      rawData: new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength),
    })),
    ...graph.params.map((p, i) => ({
      name: p.name,
      dims: p.dims,
      dataType: p.dataType ?? DataType.FLOAT,
      dataLocation: DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(layout[i]!.offset) },
        { key: 'length', value: String(layout[i]!.length) },
      ],
    })),
  ];
  const model = ModelProto.encode({
    irVersion: info.irVersion,
    producerName: info.producerName,
    producerVersion: info.producerVersion,
    docString: info.docString,
    graph: { name: graph.name, node: graph.nodes, input: graph.inputs, output: graph.outputs, initializer },
    opsetImport: [{ domain: '', version: info.opsetVersion }],
    metadataProps: Object.entries(info.metadata).map(([key, value]) => ({ key, value })),
  }).finish();

  const partialData = `${dataPath}.partial`;
  const partialModel = `${path}.partial`;
  const file = new BufferedFile(await open(partialData, 'w'));
  try {
    for (const [index, param] of graph.params.entries()) {
      const { offset: start, length } = layout[index]!;
      if (start > file.written) await file.write(new Uint8Array(start - file.written));
      const data = weights(param);
      if (data.byteLength !== length) throw new Error(`weight ${param.name}: ${data.length} values for dims [${param.dims}]`);
      await file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await file.close();
    if (file.written !== dataBytes) throw new Error(`internal error: wrote ${file.written} bytes to ${dataPath}, expected ${dataBytes}`);
    const modelFile = new BufferedFile(await open(partialModel, 'w'));
    await modelFile.write(model);
    await modelFile.close();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(partialData, { force: true });
    await rm(partialModel, { force: true });
    throw err;
  }
  await rename(partialData, dataPath);
  await rename(partialModel, path);
  return { model: model.length, data: dataBytes };
}

/** Size of a length-delimited field (one-byte tag) holding `length` bytes. */
function embeddedFieldBytes(length: number): number {
  return 1 + varint(length).length + length;
}

/** Tag of a length-delimited (wire type 2) field; one byte for field numbers below 16. */
function fieldTag(field: number): Uint8Array {
  if (field >= 16) throw new Error('fieldTag handles field numbers below 16 only');
  return Uint8Array.of((field << 3) | 2);
}

function varint(value: number): Uint8Array {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Uint8Array.from(bytes);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** Gathers small writes into 1 MiB chunks; large ones go straight through. */
class BufferedFile {
  written = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(private readonly handle: FileHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.written += chunk.length;
    if (chunk.length >= 1 << 20) {
      await this.flush();
      await writeAll(this.handle, chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const chunk = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    await writeAll(this.handle, chunk);
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
