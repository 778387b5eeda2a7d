import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generate } from '../../../src/generators/index.js';
import { malformedFraud, malformedPayment } from '../../../src/generators/malformed.js';
import { Rng } from '../../../src/generators/random.js';
import { transactionSchema } from '../../../src/pipelines/fraud-trigger/fraud-trigger.schema.js';
import { jsonDecoder } from '../../../src/runtime/codecs.js';
import {
  countKeyTokens,
  countMembers,
  duplicateKeyIn,
  findDuplicateKey,
} from '../../../src/runtime/json-keys.js';
import { InvalidRecordError } from '../../../src/runtime/records.js';

const dup = (text: string): string | undefined => duplicateKeyIn(text, JSON.parse(text));

describe('duplicate JSON keys', () => {
  it('finds a repeated key at the top, nested in objects and in arrays, with its path', () => {
    assert.equal(dup('{"a":1,"a":2}'), '"a" in value');
    assert.equal(dup('{"a":{"b":1,"c":{"d":1,"d":1}}}'), '"d" in a.c');
    assert.equal(dup('[{"x":1},{"y":[{"z":1,"z":2}]}]'), '"z" in [1].y[0]');
    assert.equal(dup(' { "a" : 1 , "b" : [ 1 , 2 ] , "a" : 3 } '), '"a" in value');
  });

  it('compares keys after unescaping, as JSON.parse does', () => {
    assert.equal(dup('{"amount":1,"\\u0061mount":1000000}'), '"amount" in value');
    assert.equal(dup('{"a\\"b":1,"a\\u0022b":2}'), '"a\\"b" in value');
  });

  it('accepts equal keys in different objects, and colons, quotes and braces inside strings', () => {
    assert.equal(dup('{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}'), undefined);
    assert.equal(dup('{"a":"x:y","b":"\\"a\\":1,{\\"a\\":2}","c":"\\\\","d":":::"}'), undefined);
    assert.equal(dup('{"a\\\\":1,"a":2}'), undefined);
    assert.equal(dup('[1,"a",null]'), undefined);
    assert.equal(dup('"text"'), undefined);
  });

  it('counts key tokens and parsed members alike when there is no duplicate', () => {
    const text = '{"a":"b:c","n":{"x":[{"y":1},{"y":"\\":"}],"z":{}},"e":[]}';
    assert.equal(countKeyTokens(text), 7);
    assert.equal(countMembers(JSON.parse(text)), 7);
    assert.equal(findDuplicateKey(text), undefined);
  });

  it('flags every generated duplicate-keys record and no valid one', () => {
    const rng = new Rng(7, 'dup');
    let n = 0;
    for (const r of generate('fraud', { count: 500, seed: 7 })) {
      const text = r.value.toString('utf8');
      assert.equal(dup(text), undefined, text);
      const tx = JSON.parse(text) as Parameters<typeof malformedFraud>[1];
      assert.notEqual(dup(malformedFraud('duplicate-keys', tx, rng).toString('utf8')), undefined);
      n++;
    }
    for (const r of generate('payments', { count: 500, seed: 8 })) {
      const text = r.value.toString('utf8');
      assert.equal(dup(text), undefined, text);
      const p = JSON.parse(text) as Parameters<typeof malformedPayment>[1];
      assert.notEqual(dup(malformedPayment('duplicate-keys', p, rng).toString('utf8')), undefined);
      n++;
    }
    assert.equal(n, 1000);
  });

  it('makes the decoder refuse the record with reason duplicate-key, naming the key', () => {
    const decode = jsonDecoder(transactionSchema);
    const good = {
      customer: 'ann',
      transaction_type: 'shopping',
      online_payment_amount: 0,
      in_store_payment_amount: 10,
      lat: 44.7,
      lon: 20.4,
      transaction_datetime: '2024-01-01T08:00:00Z',
    };
    const text = JSON.stringify(good).replace('{', '{"online_payment_amount":1000000,');
    // JSON.parse alone would accept it, with the last value.
    assert.equal((JSON.parse(text) as typeof good).online_payment_amount, 0);
    assert.throws(
      () => decode(Buffer.from(text)),
      (err: unknown) =>
        err instanceof InvalidRecordError &&
        err.reason === 'duplicate-key' &&
        err.message.includes('"online_payment_amount"'),
    );
    assert.deepEqual(decode(Buffer.from(JSON.stringify(good))), good);
  });

  it('refuses NaN, Infinity and non-finite integers through the schema', () => {
    const decode = jsonDecoder(transactionSchema);
    const base =
      '{"customer":"a","transaction_type":"shopping","in_store_payment_amount":1,"lat":44.7,"lon":20.4,' +
      '"transaction_datetime":"2024-01-01T08:00:00Z","online_payment_amount":';
    for (const [raw, reason] of [
      ['NaN', 'not-json'],
      ['Infinity', 'not-json'],
      ['1e999', 'schema'],
      ['-1e999', 'schema'],
    ] as const) {
      assert.throws(
        () => decode(Buffer.from(`${base}${raw}}`)),
        (err: unknown) => err instanceof InvalidRecordError && err.reason === reason,
        raw,
      );
    }
    const integer = jsonDecoder<{ n: number }>({
      type: 'object',
      required: ['n'],
      properties: { n: { type: 'integer' } },
    });
    // Infinity % 1 is NaN, so a lax integer check would let 1e999 through.
    assert.throws(() => integer(Buffer.from('{"n":1e999}')), /n must be integer/);
    assert.deepEqual(integer(Buffer.from('{"n":12}')), { n: 12 });
  });
});
