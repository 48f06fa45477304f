import { redact } from "./redact.js";

/**
 * The one logger: structured JSON lines on stderr (stdout belongs to command output), every line redacted.
 * Libraries do not log; `runtime/` and `commands/` decide what is worth a line.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const threshold =
    ORDER[options.level ?? (process.env["CAPSULE_LOG_LEVEL"] as LogLevel | undefined) ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < threshold) return;
    const record = { time: new Date().toISOString(), level, msg, ...options.base, ...fields };
    write(redact(JSON.stringify(record)));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}
