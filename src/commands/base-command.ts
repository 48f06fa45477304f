import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { CapsuleError, ErrorCode, FieldError, messageOf } from "../domain/errors.js";
import type { EngineFlag } from "../engines/engine.js";
import { redact } from "../redact.js";
import { InterruptedError } from "../util/interruption.js";
import { OUTPUT_FORMATS, type OutputFormat, render } from "./render.js";

export { OUTPUT_FORMATS, type OutputFormat };

export interface CapsuleContext {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  colorDepth: number;
}

/** Exit codes (sysexits-style): a failure, a command line that is wrong, a bug. */
export const EXIT = { failure: 1, usage: 2, software: 70 } as const;

/**
 * Shared flags and error handling. Commands implement `execute()`. Every error the user can act on is one redacted
 * line on stderr that starts with its stable code (`capsule: CAPSULE_CONFIG: …`), so scripts and alerts can match
 * it: a `CapsuleError` exits 1, a `UsageError` (the command line is wrong) exits 2; anything else is a bug and keeps
 * its stack. With `-o json|yaml` the error is also a document on stdout (`{ "error": { "code", "message" } }`), so a
 * script reading stdout sees a failure as data, not as an empty result.
 */
export abstract class BaseCommand extends Command<CapsuleContext> {
  output = Option.String("-o,--output", "table", {
    description: "Output format: table, json or yaml",
    validator: t.isEnum(OUTPUT_FORMATS),
  });

  abstract run(): Promise<number | void>;

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0;
    } catch (error) {
      if (error instanceof InterruptedError) {
        // 130/143, as a shell reports a process its signal ended: scripts tell "stopped" from "failed".
        this.fail(error.code, error.message);
        return error.exitCode;
      }
      if (error instanceof FieldError) {
        const message = error.render((field) => this.fieldName(field));
        // A value given wrong (a port, a CA file) is the command line's fault; a refusal names its remedy.
        const badValue = error.code === ErrorCode.Config || error.code === ErrorCode.LocalFile;
        if (badValue && this.isFlag(error.field)) return this.usage(message);
        this.fail(error.code, message);
        return EXIT.failure;
      }
      if (error instanceof CapsuleError) {
        this.fail(error.code, error.message);
        return error.code === ErrorCode.Usage ? EXIT.usage : EXIT.failure;
      }
      if (error instanceof UsageError) return this.usage(error.message);
      // A bug: keep the stack, but never a secret.
      this.context.stderr.write(
        redact(
          `capsule: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        ),
      );
      return EXIT.software;
    }
  }

  /** One line on stderr (clipanion would print message + usage on stdout, where scripts read results). */
  private usage(message: string): number {
    const path = (this.constructor as typeof BaseCommand).paths?.[0]?.join(" ") ?? "";
    this.fail(ErrorCode.Usage, `${message} (see: capsule ${path} --help)`);
    return EXIT.usage;
  }

  /** The error line on stderr and, when a machine format was asked for, the same error as a document on stdout. */
  private fail(code: ErrorCode, message: string): void {
    this.context.stderr.write(errorLine(code, message));
    const format = this.output as OutputFormat | undefined;
    if (format === "json" || format === "yaml")
      this.print(render(format, { error: { code, message: redact(message) } }));
  }

  /** Whether a field comes from this command's flags: a bad one is then the command line's fault (exit 2). */
  protected isFlag(_field: string): boolean {
    return true;
  }

  /** How this command names a field an engine's error names: the flag that sets it (`toDatabase` is `--to-database`). */
  protected fieldName(field: string): string {
    return flagOf(field);
  }

  protected get env(): NodeJS.ProcessEnv {
    return this.context.env;
  }

  protected print(text: string): void {
    this.context.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }
}

/** The long flag clipanion fills a property from: `sseKmsKeyId` is `--sse-kms-key-id`. */
export function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Declares each engine flag on `command` as a clipanion option, described by `describe`. */
export function declareEngineFlags<F extends EngineFlag>(
  command: object,
  flags: Iterable<F>,
  describe: (flag: F) => string = (flag) => flag.description,
): void {
  for (const flag of flags) {
    const description = describe(flag);
    (command as Record<string, unknown>)[flag.field] =
      flag.kind === "boolean"
        ? Option.Boolean(flagOf(flag.field), false, { description })
        : Option.String(flagOf(flag.field), { description });
  }
}

/** A bad value caught while reading the command line, as the usage error it is, its fields named as flags. */
export function usageErrorOf(error: unknown): UsageError {
  return new UsageError(error instanceof FieldError ? error.render(flagOf) : messageOf(error));
}

/** capsule's one-line error: `capsule: <CODE>: <message>`, redacted. */
export function errorLine(code: ErrorCode, message: string): string {
  return redact(`capsule: ${code}: ${message}\n`);
}
