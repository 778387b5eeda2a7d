#!/usr/bin/env node
// Writes kubeconform JSON schemas for the built-in Kubernetes kinds, offline, from the Go
// modules helm is built from (kubeconform's default schemas are downloaded from GitHub,
// which CI cannot reach).
//
//   node helm/ci/k8s-schemas.mjs <client-go module dir> <cli-runtime module dir> <out dir>
//
// Structure comes from client-go's structured-merge-diff schema of every built-in type
// (applyconfigurations/internal/internal.go): the field names and scalar types of the
// Kubernetes release that client-go version belongs to. It carries no required fields and
// no integer/number distinction, so those are taken from the OpenAPI document cli-runtime
// ships (artifacts/openapi/swagger.json, an older release) where the type exists there.
// Objects are closed (additionalProperties: false), as kubeconform's "-strict" schemas are.
// Files are named as kubeconform looks them up: <kind>[-<group prefix>]-<version>.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { parse } from 'yaml';

const [clientGoDir, cliRuntimeDir, outDir] = process.argv.slice(2);
if (!clientGoDir || !cliRuntimeDir || !outDir) {
  process.stderr.write('usage: k8s-schemas.mjs <client-go dir> <cli-runtime dir> <out dir>\n');
  process.exit(2);
}

const goSource = readFileSync(join(clientGoDir, 'applyconfigurations/internal/internal.go'), 'utf8');
const match = /typed\.YAMLObject\(`([\s\S]*?)`\)/.exec(goSource);
if (!match) throw new Error('no schema YAML in client-go applyconfigurations/internal/internal.go');
const types = new Map(parse(match[1]).types.map((t) => [t.name, t]));
const openapi = JSON.parse(
  readFileSync(join(cliRuntimeDir, 'artifacts/openapi/swagger.json'), 'utf8'),
).definitions;

// Scalars the structured-merge-diff schema leaves untyped.
const SPECIAL = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { type: ['string', 'integer'] },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { type: ['string', 'number'] },
  'io.k8s.apimachinery.pkg.apis.meta.v1.Time': { type: 'string', format: 'date-time' },
  'io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime': { type: 'string', format: 'date-time' },
};

/** JSON schema for an inline type reference; named types become $refs collected in `defs`. */
function convert(ref, defs, hint) {
  if (ref.namedType) {
    if (SPECIAL[ref.namedType]) return SPECIAL[ref.namedType];
    if (ref.namedType.startsWith('__untyped')) return {};
    define(ref.namedType, defs);
    return { $ref: `#/definitions/${ref.namedType}` };
  }
  if (ref.scalar) {
    if (ref.scalar === 'string') return { type: 'string' };
    if (ref.scalar === 'boolean') return { type: 'boolean' };
    if (ref.scalar === 'numeric') return { type: hint?.type === 'integer' ? 'integer' : 'number' };
    return {};
  }
  if (ref.list) return { type: 'array', items: convert(ref.list.elementType, defs, hint?.items) };
  if (ref.map) return convertMap(ref.map, defs, undefined);
  return {};
}

function convertMap(map, defs, name) {
  const api = name ? openapi[name] : undefined;
  const schema = { type: 'object' };
  if (map.fields) {
    schema.properties = {};
    for (const f of map.fields) schema.properties[f.name] = convert(f.type, defs, api?.properties?.[f.name]);
    const required = (api?.required ?? []).filter((r) => schema.properties[r]);
    if (required.length > 0) schema.required = required;
  }
  schema.additionalProperties = map.elementType ? convert(map.elementType, defs) : map.fields ? false : {};
  return schema;
}

function define(name, defs) {
  if (defs[name]) return;
  const t = types.get(name);
  if (!t) throw new Error(`type ${name} is referenced but not defined`);
  defs[name] = {}; // placeholder: recursive types refer back to it
  if (t.map) defs[name] = convertMap(t.map, defs, name);
  else if (t.list) defs[name] = convert({ list: t.list }, defs);
  else if (t.scalar) defs[name] = convert({ scalar: t.scalar }, defs);
}

// Kinds: top-level objects of the io.k8s.api.<group>.<version> packages.
const GROUP_PREFIX = { core: '', apiserverinternal: 'internal' };
mkdirSync(outDir, { recursive: true });
let written = 0;
for (const [name, t] of types) {
  const m = /^io\.k8s\.api\.([a-z0-9]+)\.(v[0-9a-z]+)\.([A-Za-z0-9]+)$/.exec(name);
  if (!m || !t.map?.fields) continue;
  const fields = new Set(t.map.fields.map((f) => f.name));
  if (!['apiVersion', 'kind', 'metadata'].every((f) => fields.has(f)) || m[3].endsWith('List')) continue;
  const [, pkg, version, kind] = m;
  const prefix = GROUP_PREFIX[pkg] ?? pkg;
  const defs = {};
  const root = convertMap(t.map, defs, name);
  const file = `${kind.toLowerCase()}${prefix ? `-${prefix}` : ''}-${version}.json`;
  writeFileSync(join(outDir, file), `${JSON.stringify({ ...root, definitions: defs })}\n`);
  written += 1;
}
process.stdout.write(`${written} schemas written to ${outDir}\n`);
