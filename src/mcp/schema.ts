/**
 * Tool arguments: declared with zod, checked by tessera.
 *
 * The SDK turns a tool's zod schema into the JSON Schema an assistant reads, and checks the
 * arguments against it before the tool runs: a value it refuses comes back in the SDK's words,
 * without a registry code. The tools take the values the HTTP API takes, and the parsers the
 * API uses (search/params.ts, search/query.ts, api/request.ts, ...) check them with the
 * registry's codes and wording. So each argument is declared with its real zod type, which
 * only becomes its JSON Schema (type, range, enum, description), and is accepted as any value
 * here; the tool hands it to the API's parser, and a bad value is the tool error
 * "SEARCH_PARAMETER_INVALID: k: expected an integer from 1 to 1000 but received 5000", as the
 * same value gets over HTTP. Unknown arguments are refused too (tools.ts), as the API refuses
 * unknown fields.
 */
import * as z from 'zod';

/** An argument: shown to the assistant as `type` with `description`, passed to the tool unchecked. */
export function arg(type: z.ZodType, description: string): z.ZodType<unknown> {
  const { $schema: _, ...schema } = z.toJSONSchema(type, { io: 'input', target: 'draft-7' });
  return z.unknown().meta({ ...schema, description });
}

/**
 * A tool's input: every argument optional to zod (a missing one is reported by the tool, with
 * its code), `required` and no others in the JSON Schema, unknown ones passed on to be refused.
 */
export function toolInput(args: Record<string, z.ZodType<unknown>>, required: readonly string[] = []) {
  const shape = Object.fromEntries(Object.entries(args).map(([name, schema]) => [name, schema.optional()]));
  return z.looseObject(shape).meta({ additionalProperties: false, ...(required.length > 0 && { required: [...required] }) });
}
