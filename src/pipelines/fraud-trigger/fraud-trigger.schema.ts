import type { JSONSchemaType } from 'ajv';

/** One card transaction, the seed generator's fields (semantics.md section 1). */
export interface Transaction {
  customer: string;
  transaction_type: string;
  online_payment_amount: number;
  in_store_payment_amount: number;
  lat: number;
  lon: number;
  transaction_datetime: string;
}

export const TRANSACTION_TYPES = [
  'highway_toll',
  'petrol_station',
  'supermarket',
  'shopping',
  'mortgage',
  'city_service',
  'restaurant',
  'healthcare',
] as const;

export const transactionSchema: JSONSchemaType<Transaction> = {
  type: 'object',
  required: [
    'customer',
    'transaction_type',
    'online_payment_amount',
    'in_store_payment_amount',
    'lat',
    'lon',
    'transaction_datetime',
  ],
  properties: {
    customer: { type: 'string', minLength: 1, maxLength: 256 },
    transaction_type: { type: 'string', enum: [...TRANSACTION_TYPES] },
    online_payment_amount: { type: 'number', minimum: 0, maximum: 1e12 },
    in_store_payment_amount: { type: 'number', minimum: 0, maximum: 1e12 },
    lat: { type: 'number', minimum: -90, maximum: 90 },
    lon: { type: 'number', minimum: -180, maximum: 180 },
    transaction_datetime: { type: 'string', minLength: 10, maxLength: 40 },
  },
  additionalProperties: true,
};

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The seed writes ISO-8601 with "Z"; an instant without a zone would be read in local time, so it is refused. */
export function eventTime(tx: Transaction): number {
  return ISO_INSTANT.test(tx.transaction_datetime) ? Date.parse(tx.transaction_datetime) : Number.NaN;
}
