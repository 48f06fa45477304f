/**
 * Progress of long transfers on a terminal: bytes, rate and (when the size is known) ETA, on stderr. Nothing at all
 * when stderr is not a TTY, so pipes and logs stay clean.
 */
import cliProgress from "cli-progress";
import type { Transfer } from "../storage/backup-store.js";
import { formatBytes } from "../util/format.js";

export interface Progress {
  readonly onTransfer: ((transfer: Transfer) => void) | undefined;
  stop(): void;
}

const NONE: Progress = { onTransfer: undefined, stop: () => undefined };

export function terminalProgress(stream: NodeJS.WriteStream): Progress {
  if (!stream.isTTY) return NONE;
  let bar: cliProgress.SingleBar | undefined;
  let direction: Transfer["direction"] | undefined;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    stop,
    onTransfer(transfer) {
      if (!bar || direction !== transfer.direction) {
        stop();
        direction = transfer.direction;
        started = performance.now();
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `${transfer.direction === "upload" ? "uploading  " : "downloading"} {bar} {done} of {size}  {rate}/s  {eta}`,
            hideCursor: true,
            clearOnComplete: true,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(transfer.total ?? 0, 0, { done: "0 B", size: "?", rate: "-", eta: "" });
      }
      const seconds = Math.max((performance.now() - started) / 1000, 0.001);
      const rate = transfer.bytes / seconds;
      const total = transfer.total && transfer.total >= transfer.bytes ? transfer.total : undefined;
      if (total) bar.setTotal(total);
      bar.update(transfer.bytes, {
        done: formatBytes(transfer.bytes),
        size: total ? formatBytes(total) : "?",
        rate: formatBytes(rate),
        eta: total ? `ETA ${Math.round((total - transfer.bytes) / Math.max(rate, 1))}s` : "",
      });
    },
  };
}
