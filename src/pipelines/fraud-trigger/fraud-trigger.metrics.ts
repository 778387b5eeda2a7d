import { Counter, type Registry } from 'prom-client';

export interface FraudTriggerMetrics {
  alerts: Counter;
}

export function fraudTriggerMetrics(registry: Registry): FraudTriggerMetrics {
  return {
    alerts: new Counter({
      name: 'stream_fraud_alerts_total',
      help: 'Fraud alerts committed to the alerts topic.',
      registers: [registry],
    }),
  };
}
