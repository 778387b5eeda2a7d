import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';

import {
  FRAUD_MALFORMED_KINDS,
  generate,
  type GeneratorKind,
  HUGE_STRING_CHARS,
  OVERSIZED_VALUE_BYTES,
  PAYMENT_MALFORMED_KINDS,
  TRANSACTION_TYPES,
} from '../../../src/generators/index.js';

/** A strict reader's view of the input, after semantics.md sections 1-2: what it must reject. */
const MAX_VALUE_BYTES = 512 * 1024;
const MAX_STRING_CHARS = 1024;

const FRAUD_FIELDS: Record<string, 'string' | 'number'> = {
  customer: 'string',
  transaction_type: 'string',
  online_payment_amount: 'number',
  in_store_payment_amount: 'number',
  lat: 'number',
  lon: 'number',
  transaction_datetime: 'string',
};
const PAYMENT_FIELDS: Record<string, 'string' | 'number'> = {
  createTime: 'string',
  orderId: 'number',
  payAmount: 'number',
  payPlatform: 'number',
  branchId: 'number',
};

type Verdict =
  | 'ok'
  | 'too-large'
  | 'not-utf8'
  | 'not-json'
  | 'duplicate-key'
  | 'not-object'
  | 'missing'
  | 'extra'
  | 'type'
  | 'non-finite'
  | 'too-long'
  | 'date'
  | 'enum';

function check(kind: GeneratorKind, value: Buffer): Verdict {
  if (value.length > MAX_VALUE_BYTES) return 'too-large';
  if (!isUtf8(value)) return 'not-utf8';
  const text = value.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not-json';
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'not-object';
  const fields = kind === 'fraud' ? FRAUD_FIELDS : PAYMENT_FIELDS;
  // JSON.stringify escapes every quote inside strings, so `"name":` only occurs as a key.
  for (const name of Object.keys(fields)) {
    if (text.split(`${JSON.stringify(name)}:`).length > 2) return 'duplicate-key';
  }
  const obj = doc as Record<string, unknown>;
  for (const name of Object.keys(fields)) if (!(name in obj)) return 'missing';
  for (const name of Object.keys(obj)) if (!(name in fields)) return 'extra';
  for (const [name, type] of Object.entries(fields)) {
    const v = obj[name];
    if (typeof v !== type) return 'type';
    if (typeof v === 'number' && !Number.isFinite(v)) return 'non-finite';
    if (typeof v === 'string' && v.length > MAX_STRING_CHARS) return 'too-long';
  }
  if (kind === 'fraud') {
    const dt = obj.transaction_datetime as string;
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(dt) || Number.isNaN(Date.parse(dt)))
      return 'date';
    if (!(TRANSACTION_TYPES as readonly string[]).includes(obj.transaction_type as string)) return 'enum';
  } else {
    const ct = obj.createTime as string;
    if (
      !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(ct) ||
      Number.isNaN(Date.parse(`${ct.replace(' ', 'T')}Z`))
    ) {
      return 'date';
    }
    const branch = obj.branchId as number;
    if (!Number.isInteger(branch) || branch < 0 || branch > 9) return 'enum';
    if (obj.payPlatform !== 0 && obj.payPlatform !== 1) return 'enum';
  }
  return 'ok';
}

/** The verdicts each malformed kind may get; every kind must get a rejection that fits it. */
const EXPECTED: Record<string, readonly Verdict[]> = {
  'invalid-json': ['not-json'],
  'wrong-type': ['type'],
  'missing-field': ['missing'],
  nan: ['not-json'],
  infinity: ['non-finite'],
  'invalid-date': ['date'],
  'unknown-transaction-type': ['enum'],
  'unknown-branch': ['enum'],
  'huge-string': ['too-long'],
  'oversized-value': ['too-large'],
  binary: ['not-utf8'],
  'json-null': ['not-object'],
  'duplicate-keys': ['duplicate-key'],
};

describe('malformed records', () => {
  for (const kind of ['fraud', 'payments'] as const) {
    const kinds: readonly string[] = kind === 'fraud' ? FRAUD_MALFORMED_KINDS : PAYMENT_MALFORMED_KINDS;

    it(`${kind}: valid records pass the strict reader`, () => {
      for (const r of generate(kind, { count: 5000, seed: 3 })) assert.equal(check(kind, r.value), 'ok');
    });

    it(`${kind}: make up about the requested share`, () => {
      for (const share of [0.05, 0.5]) {
        const n = 20_000;
        // Counted, not collected: a twelfth of the malformed records are ~1 MB.
        let bad = 0;
        for (const r of generate(kind, { count: n, seed: 4, malformedShare: share })) if (r.malformed) bad++;
        // Binomial sd at 0.5 is ~71 records of 20000; 0.012 is over 3 sd at either share.
        assert.ok(Math.abs(bad / n - share) < 0.012, `share ${bad / n} for ${share}`);
      }
      assert.equal(
        [...generate(kind, { count: 1000, malformedShare: 0 })].filter((r) => r.malformed).length,
        0,
      );
    });

    it(`${kind}: every kind appears, and each record is invalid in the way its kind says`, () => {
      const seen = new Map<string, number>();
      for (const r of generate(kind, { count: 3000, seed: 5, malformedShare: 1, keyMode: 'entity' })) {
        assert.ok(r.malformed, 'share 1 replaces every record');
        assert.ok(kinds.includes(r.malformed), `unexpected kind ${r.malformed}`);
        seen.set(r.malformed, (seen.get(r.malformed) ?? 0) + 1);
        assert.ok(Buffer.isBuffer(r.value));
        const verdict = check(kind, r.value);
        assert.ok(EXPECTED[r.malformed]?.includes(verdict), `${r.malformed} got verdict ${verdict}`);
        assert.ok(Number.isInteger(r.timestamp));
      }
      assert.deepEqual([...seen.keys()].sort(), [...kinds].sort());
    });

    it(`${kind}: sizes and literals are the promised ones`, () => {
      for (const r of generate(kind, { count: 3000, seed: 6, malformedShare: 1 })) {
        const text = (): string => r.value.toString('utf8');
        switch (r.malformed) {
          case 'oversized-value':
            assert.ok(r.value.length <= OVERSIZED_VALUE_BYTES && r.value.length > OVERSIZED_VALUE_BYTES - 10);
            break;
          case 'huge-string':
            assert.ok(r.value.length > HUGE_STRING_CHARS);
            break;
          case 'json-null':
            assert.equal(text(), 'null');
            break;
          case 'nan':
            assert.match(text(), /:NaN[,}]/);
            break;
          case 'infinity':
            assert.match(text(), /:-?1e999[,}]/);
            break;
          case 'unknown-branch':
            assert.match(text(), /"branchId":42[,}]/);
            break;
          case 'binary':
            assert.equal(r.value[0], 0xff);
            break;
        }
      }
    });

    it(`${kind}: replacing records leaves the others and all timestamps unchanged`, () => {
      const clean = [...generate(kind, { count: 2000, seed: 8 })];
      const mixed = [...generate(kind, { count: 2000, seed: 8, malformedShare: 0.3 })];
      mixed.forEach((r, i) => {
        const c = clean[i];
        assert.ok(c);
        assert.equal(r.timestamp, c.timestamp);
        if (!r.malformed) assert.deepEqual(r.value, c.value);
      });
    });
  }
});
