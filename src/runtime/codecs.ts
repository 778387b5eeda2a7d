import { Ajv, type JSONSchemaType, type ErrorObject } from 'ajv';
import { duplicateKeyIn } from './json-keys.js';
import { InvalidRecordError } from './records.js';
import type { Decoder } from './topology.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false });
/** Decoders whose value is JSON.parse of the record's text, unchanged (ajv neither coerces nor fills defaults here). */
const jsonDecoders = new WeakSet<Decoder<unknown>>();

/**
 * Whether a decoder's value is exactly the record's JSON: then a stage that passes the value on
 * unchanged may pass the bytes it came in instead of encoding it again.
 */
export const decodesJson = (decoder: Decoder<unknown>): boolean => jsonDecoders.has(decoder);

/**
 * JSON decoding for a source, validated by a JSON schema that ajv compiles to a function
 * once at startup: the hot path runs generated code, not a schema interpreter.
 * Bytes that are not UTF-8, not JSON, ambiguous JSON (a key twice in one object), or not of
 * the schema become dead letters, each with a reason a person can act on.
 */
export function jsonDecoder<T>(
  schema: JSONSchemaType<T>,
  check?: (value: T) => string | undefined,
): Decoder<T> {
  const validate = ajv.compile(schema);
  const decode = (bytes: Buffer): T => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new InvalidRecordError('value is not valid UTF-8', 'not-utf8');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidRecordError(`value is not JSON: ${(err as Error).message}`, 'not-json');
    }
    const duplicate = duplicateKeyIn(text, parsed);
    if (duplicate !== undefined)
      throw new InvalidRecordError(
        `duplicate key ${duplicate}: JSON parsers disagree on its value`,
        'duplicate-key',
      );
    if (!validate(parsed)) throw new InvalidRecordError(describe(validate.errors), 'schema');
    const problem = check?.(parsed);
    if (problem) throw new InvalidRecordError(problem, 'validation');
    return parsed;
  };
  jsonDecoders.add(decode);
  return decode;
}

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'does not match the schema';
  const where = e.instancePath === '' ? 'value' : e.instancePath.slice(1).replaceAll('/', '.');
  return `${where} ${e.message ?? 'is invalid'}`;
}
