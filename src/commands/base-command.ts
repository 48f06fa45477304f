import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { CapsuleError } from "../errors.js";
import { redact } from "../redact.js";
import { InterruptedError } from "../runtime/interruption.js";

export interface CapsuleContext {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  colorDepth: number;
}

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * Shared flags and error handling. Commands implement `execute()`; a `CapsuleError` becomes one redacted line on
 * stderr and exit code 1; anything else is a bug and keeps its stack.
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
        this.context.stderr.write(`capsule: ${redact(error.message)}\n`);
        return error.exitCode;
      }
      if (error instanceof CapsuleError) {
        this.context.stderr.write(`capsule: ${redact(error.message)}\n`);
        return 1;
      }
      if (error instanceof UsageError) {
        // One line on stderr (clipanion would print message + usage on stdout, where scripts read results).
        const path = (this.constructor as typeof BaseCommand).paths?.[0]?.join(" ") ?? "";
        this.context.stderr.write(redact(`capsule: ${error.message} (see: capsule ${path} --help)\n`));
        return 1;
      }
      // A bug: keep the stack, but never a secret.
      this.context.stderr.write(
        redact(
          `capsule: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        ),
      );
      return 70; // EX_SOFTWARE
    }
  }

  protected get env(): NodeJS.ProcessEnv {
    return this.context.env;
  }

  protected print(text: string): void {
    this.context.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }
}
