/** Minimal leveled logger to stderr; silent in --quiet/--json modes except errors. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

export function createLogger(opts: { quiet?: boolean; verbose?: boolean } = {}): Logger {
  const quiet = !!opts.quiet;
  const verbose = !!opts.verbose || !!process.env.RESTORE_DEBUG;
  return {
    info: (m) => { if (!quiet) process.stderr.write(`${m}\n`); },
    warn: (m) => { if (!quiet) process.stderr.write(`warning: ${m}\n`); },
    debug: (m) => { if (verbose) process.stderr.write(`debug: ${m}\n`); },
  };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, debug: () => {} };
