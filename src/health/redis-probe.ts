/** Readiness asks Redis directly rather than trusting the last command's outcome: idle members have none. */
export abstract class RedisProbe {
  abstract ping(): Promise<void>;
}
