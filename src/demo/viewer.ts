import { KafkaConsumer, kafkaCall, type KafkaConsumerType, type Message } from '../runtime/kafka/client.js';
import { librdkafkaConfig } from '../runtime/kafka/client-config.js';
import { loadConfig } from '../config/env.js';
import { branchTotalsConfig } from '../pipelines/branch-totals/branch-totals.config.js';
import { fraudTriggerConfig } from '../pipelines/fraud-trigger/fraud-trigger.config.js';

/**
 * The demo's terminal view: reads the outputs as any downstream consumer would
 * (read_committed, so only committed transactions) and redraws once a second.
 */
interface Alert {
  customer: string;
  count_transactions: number;
  total_online_payment_amount: number;
  total_in_store_payment_amount: number;
  last_transaction_time: string;
}
interface Total {
  branch: string;
  pay_amount_exact: string;
  count: number;
}
interface WindowTotal extends Total {
  window_end: string;
}

const app = loadConfig();
const fraud = fraudTriggerConfig(process.env);
const branch = branchTotalsConfig(process.env);
const ports = (process.env.DEMO_PORTS ?? String(app.service.httpPort)).split(',');

const alerts: Alert[] = [];
let alertCount = 0;
const totals = new Map<string, Total>();
const windows = new Map<string, WindowTotal>();
let dead = 0;
let late = 0;

function onMessage(m: Message): void {
  const text = m.value?.toString() ?? 'null';
  if (m.topic === `${fraud.inputTopic}.dlq` || m.topic === `${branch.inputTopic}.dlq`) return void dead++;
  if (m.topic === `${fraud.inputTopic}.late` || m.topic === `${branch.inputTopic}.late`) return void late++;
  if (m.topic === fraud.outputTopic) {
    alertCount++;
    alerts.unshift(JSON.parse(text) as Alert);
    alerts.length = Math.min(alerts.length, 8);
  } else if (m.topic === branch.totalsTopic) {
    const t = JSON.parse(text) as Total;
    totals.set(t.branch, t);
  } else if (m.topic === branch.windowedTopic) {
    const w = JSON.parse(text) as WindowTotal;
    windows.set(w.branch, w);
  }
}

function render(): void {
  const out: string[] = ['\x1b[2J\x1b[H'];
  out.push(`stream-template demo  ·  exactly-once  ·  Ctrl-C stops everything the demo started\n`);
  out.push(`metrics  ${ports.map((p) => `http://127.0.0.1:${p}/metrics`).join('  ')}`);
  out.push(`health   ${ports.map((p) => `http://127.0.0.1:${p}/health/ready`).join('  ')}`);
  out.push(`queries  ${ports.map((p) => `http://127.0.0.1:${p}/branches`).join('  ')}  (see README)\n`);
  out.push(`FRAUD ALERTS  (${alertCount} so far; latest first)`);
  out.push('  customer                      txns   online    in-store   window end');
  for (const a of alerts) {
    out.push(
      `  ${a.customer.padEnd(28).slice(0, 28)}  ${String(a.count_transactions).padStart(4)}  ${a.total_online_payment_amount.toFixed(2).padStart(8)}  ${a.total_in_store_payment_amount.toFixed(2).padStart(10)}   ${a.last_transaction_time}`,
    );
  }
  out.push(`\nBRANCH TOTALS  (running, exact)                 last closed minute`);
  out.push('  branch       payments          total        window end                total');
  for (const name of [...totals.keys()].sort()) {
    const t = totals.get(name)!;
    const w = windows.get(name);
    out.push(
      `  ${name.padEnd(10)} ${String(t.count).padStart(10)} ${Number(t.pay_amount_exact).toFixed(2).padStart(14)}        ${w ? `${w.window_end}  ${Number(w.pay_amount_exact).toFixed(2).padStart(10)}` : ''}`,
    );
  }
  out.push(`\ndead letters: ${dead}   late events: ${late}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const c = new KafkaConsumer({
    ...librdkafkaConfig({
      brokers: app.kafka.brokers,
      clientId: 'demo-viewer',
      security: app.kafka.security,
    }),
    'group.id': `demo-viewer-${process.pid}`,
    'enable.auto.commit': false,
    'isolation.level': 'read_committed',
    'auto.offset.reset': 'earliest',
  }) as KafkaConsumerType;
  await kafkaCall((cb) => c.connect({ timeout: 30_000 }, (err) => cb(err)));
  c.setDefaultConsumeTimeout(200);
  c.subscribe([
    fraud.outputTopic,
    branch.totalsTopic,
    branch.windowedTopic,
    `${fraud.inputTopic}.dlq`,
    `${branch.inputTopic}.dlq`,
    `${fraud.inputTopic}.late`,
    `${branch.inputTopic}.late`,
  ]);
  const timer = setInterval(render, 1000);
  let running = true;
  const stop = () => {
    running = false;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  while (running) {
    const batch = await kafkaCall<Message[]>((cb) => c.consume(500, cb)).catch(() => []);
    for (const m of batch) onMessage(m);
  }
  clearInterval(timer);
  await new Promise<void>((resolve) => c.disconnect(() => resolve()));
}

main().catch((err: unknown) => {
  console.error(`viewer: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
