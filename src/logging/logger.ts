import type { Params } from 'nestjs-pino';
import { stdTimeFunctions } from 'pino';
import type { AppConfig } from '../config/env.js';

/** Paths pino masks in every log line, wherever a secret could ride along in an object we log. */
export const REDACT_PATHS = [
  '*.password',
  '*.*.password',
  '*["sasl.password"]',
  '*["ssl.key.password"]',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** JSON logs, one object a line, with service and instance on each so aggregated logs stay attributable. */
export function loggerParams(config: AppConfig): Params {
  return {
    pinoHttp: {
      level: config.service.logLevel,
      // Probes and scrapes would drown everything else.
      autoLogging: false,
      base: { service: config.service.name, instance: config.service.instanceId },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      messageKey: 'msg',
    },
  };
}
