/** Resolves on the first SIGTERM or SIGINT (Kubernetes stops a pod with SIGTERM). */
export function waitForShutdown(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", done);
      process.off("SIGINT", done);
      resolve(signal);
    };
    process.once("SIGTERM", done);
    process.once("SIGINT", done);
  });
}
