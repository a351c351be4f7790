/**
 * A small ONNX graph builder. Nodes, inputs, outputs and small constants are held as plain
 * objects; weights ("params") are only declared here, with a name, a shape and how they are
 * initialised, and their data is produced by a weight source while the model is written, one
 * tensor at a time (see writer.ts), so a 900 MB model never sits in memory whole.
 */
import { AttributeType, DataType, type Attribute, type DataTypeValue, type Node, type ValueInfo } from './onnx-proto.ts';

/** A dimension: a fixed size, or a symbolic name such as "batch_size". */
export type Dim = number | string;

/**
 * What role a param plays, which decides its default initialisation: `weight` (matrices,
 * embeddings, tokens: random normal, or zero in hand-set models), `bias` (additive vectors,
 * LayerNorm shifts: zero in trained-from-scratch init; the random presets perturb them too so
 * tests notice a mis-wired bias), `scale` (LayerNorm gains: one).
 */
export type ParamInit = 'weight' | 'bias' | 'scale';

/** A float32 weight declared by a tower; its values come from a WeightSource at write time. */
export interface ParamSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly init: ParamInit;
  /** Element type when not float32 (the q8 variant's int8 weights, see quantize.ts). */
  readonly dataType?: DataTypeValue;
}

/** Produces the values of one param, row-major, `product(dims)` long. */
export type WeightSource = (param: ParamSpec) => Float32Array;

/** A weight source that may also produce int8 params (those declared with `dataType` INT8). */
export type TypedWeightSource = (param: ParamSpec) => Float32Array | Int8Array;

/** A constant whose values are known when the graph is built (shapes, axes, tables). */
export interface Constant {
  readonly name: string;
  readonly dims: readonly number[];
  readonly dataType: DataTypeValue;
  readonly data: Float32Array | BigInt64Array;
}

export type AttributeValue = Omit<Attribute, 'name'>;

export const attr = {
  int: (i: number): AttributeValue => ({ type: AttributeType.INT, i }),
  float: (f: number): AttributeValue => ({ type: AttributeType.FLOAT, f }),
  ints: (ints: readonly number[]): AttributeValue => ({ type: AttributeType.INTS, ints: [...ints] }),
  floats: (floats: readonly number[]): AttributeValue => ({ type: AttributeType.FLOATS, floats: [...floats] }),
  string: (s: string): AttributeValue => ({ type: AttributeType.STRING, s: new TextEncoder().encode(s) }),
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, d) => product * d, 1);
}

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly params: ParamSpec[] = [];
  readonly constants: Constant[] = [];

  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly constantCache = new Map<string, string>();
  private readonly scopes: string[] = [];

  constructor(readonly name: string) {}

  /** Runs `build` with node names prefixed by `scope` (readable names in profilers and errors). */
  scoped<T>(scope: string, build: () => T): T {
    this.scopes.push(scope);
    try {
      return build();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, elemType: DataTypeValue, dims: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares graph output `name`; it must be the output of a node added with that name. */
  output(name: string, elemType: DataTypeValue, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  param(name: string, dims: readonly number[], init: ParamInit, dataType?: DataTypeValue): string {
    this.claim(name);
    this.params.push(dataType === undefined ? { name, dims: [...dims], init } : { name, dims: [...dims], init, dataType });
    return name;
  }

  constFloat(name: string, dims: readonly number[], values: Float32Array | readonly number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    if (data.length !== elementCount(dims)) throw new Error(`constant ${name}: ${data.length} values for dims [${dims}]`);
    this.claim(name);
    this.constants.push({ name, dims: [...dims], dataType: DataType.FLOAT, data });
    return name;
  }

  /** An int64 constant (shapes, axes, indices); equal constants are shared. `dims` [] is a scalar. */
  constInt64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `${dims.join('x')}:${values.join(',')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = this.unique(`const_i64_${dims.length === 0 ? 'scalar_' : ''}${values.join('_').replace(/-/g, 'm')}`.slice(0, 60));
    this.claim(name);
    this.constants.push({ name, dims: [...dims], dataType: DataType.INT64, data: BigInt64Array.from(values, (v) => BigInt(v)) });
    this.constantCache.set(key, name);
    return name;
  }

  /** A float32 scalar constant; equal ones are shared. */
  constFloatScalar(value: number): string {
    const key = `f32:${Math.fround(value)}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = this.constFloat(this.unique(`const_f32_${this.constants.length}`), [], [value]);
    this.constantCache.set(key, name);
    return name;
  }

  /** Adds one node with one output and returns the output's name. */
  node(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    return this.nodeN(opType, inputs, 1, attributes, outputName ? [outputName] : undefined)[0]!;
  }

  /** Adds one node with `outputCount` outputs and returns their names. */
  nodeN(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attributes: Record<string, AttributeValue> = {},
    outputNames?: readonly string[],
  ): string[] {
    const nodeName = this.unique(`${this.scopes.length ? `/${this.scopes.join('/')}/` : '/'}${opType}`);
    const outputs = outputNames
      ? [...outputNames]
      : Array.from({ length: outputCount }, (_, k) => `${nodeName}_output_${k}`);
    for (const output of outputs) this.claim(output);
    this.nodes.push({
      name: nodeName,
      opType,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attributes).map(([name, value]) => ({ name, ...value })),
    });
    return outputs;
  }

  /** Throws unless every node input and graph output is produced by something in the graph. */
  validate(): void {
    const known = new Set(['', ...this.inputs.map((i) => i.name), ...this.params.map((p) => p.name), ...this.constants.map((c) => c.name)]);
    for (const node of this.nodes) {
      for (const input of node.input) {
        if (!known.has(input)) throw new Error(`graph ${this.name}: node ${node.name} reads ${input} before anything produces it`);
      }
      for (const output of node.output) known.add(output);
    }
    for (const output of this.outputs) {
      if (!known.has(output.name)) throw new Error(`graph ${this.name}: no node produces the output ${output.name}`);
    }
  }

  private unique(base: string): string {
    const count = this.counters.get(base) ?? 0;
    this.counters.set(base, count + 1);
    return count === 0 ? base : `${base}_${count}`;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: the name ${name} is used twice`);
    this.names.add(name);
  }
}

function valueInfo(name: string, elemType: DataTypeValue, dims: readonly Dim[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
