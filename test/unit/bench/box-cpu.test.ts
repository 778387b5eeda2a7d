import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { busyTicks, cpuBetween, processTicks, readBoxCpu, serverPids } from '../../../bench/box-cpu.js';

describe('box CPU from /proc', () => {
  it('counts user, nice, system, irq and softirq of all cores, not idle, iowait or steal', () => {
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    const stat = 'cpu  100 2 30 9000 50 4 6 700 11 0\ncpu0 50 1 15 4500 25 2 3 350 5 0\n';
    assert.equal(busyTicks(stat), 100 + 2 + 30 + 4 + 6);
    assert.throws(() => busyTicks('intr 1 2 3\n'), /not the first line/);
  });

  it('takes utime and stime after the command, whatever parentheses or spaces the command holds', () => {
    const fields = (comm: string) =>
      `4242 (${comm}) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 30 0 100 1000000 5000`;
    assert.equal(processTicks(fields('java')), 1234 + 567);
    assert.equal(processTicks(fields('a) b (c')), 1234 + 567);
    assert.throws(() => processTicks('4242 (x) S'), /not a \/proc/);
  });

  it('reads this process and the machine, and differences two readings', () => {
    const a = readBoxCpu({ broker: process.pid, redis: null });
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += Math.sqrt(i);
    assert.ok(x > 0);
    const b = readBoxCpu({ broker: process.pid, redis: null });
    const d = cpuBetween(a, b);
    assert.equal(d.redis, null);
    assert.ok(d.broker! > 0, `own CPU ${d.broker}`);
    assert.ok(d.box >= d.broker! - 0.02, `machine ${d.box} against own ${d.broker}`);
    // The same counters the kernel shows for this process.
    assert.ok(processTicks(readFileSync('/proc/self/stat', 'utf8')) > 0);
  });

  it('a pid that is gone reads as unknown', () => {
    assert.equal(readBoxCpu({ broker: 2 ** 30, redis: null }).broker, null);
  });

  it('takes the pids from the environment, and only well-formed ones', () => {
    assert.deepEqual(serverPids({ INFRA_KAFKA_PID: '123', INFRA_REDIS_PID: '' }), {
      broker: 123,
      redis: null,
    });
    assert.deepEqual(serverPids({ INFRA_KAFKA_PID: 'x', INFRA_REDIS_PID: '-4' }), {
      broker: null,
      redis: null,
    });
    assert.deepEqual(serverPids({}), { broker: null, redis: null });
  });
});
