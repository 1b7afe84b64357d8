/** Progress on a TTY (frames, fps, ETA) via cli-progress; nothing when quiet, --json or not a TTY. */
import cliProgress from 'cli-progress';

export interface ProgressEvent {
  done: number;
  total: number;
  fps: number;
  phase?: string;
}

export interface ProgressSink {
  update(p: ProgressEvent): void;
  stop(): void;
}

export function createProgressBar(label: string, enabled: boolean): ProgressSink {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} frames | {fps} fps | ETA {eta_formatted} {phase}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) {
        bar.start(p.total, 0, { fps: '0.0', phase: '' });
        started = true;
      }
      if (p.total !== bar.getTotal()) bar.setTotal(p.total);
      bar.update(p.done, { fps: p.fps.toFixed(1), phase: p.phase ?? '' });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export interface QueueProgressEvent {
  videos: number;
  done: number;
  running: number;
  /** Waiting, or waiting for a retry after a failed try. */
  waiting: number;
  failed: number;
  /** Neither done nor in the queue (not enqueued yet, or its job was removed). */
  missing: number;
  etaS?: number;
  unreachable?: string;
}

/**
 * Progress over a queued batch: a bar of ended videos with done / running / waiting / failed and
 * an ETA on a TTY; elsewhere one line each time the counts change (nothing when not enabled).
 */
export function createQueueBar(label: string, enabled: boolean, write: (line: string) => void = (l) => process.stderr.write(l + '\n')): { update(p: QueueProgressEvent): void; stop(): void } {
  if (!enabled) return { update() {}, stop() {} };
  const text = (p: QueueProgressEvent) =>
    p.unreachable
      ? `queue unreachable (${p.unreachable}), retrying`
      : `${p.done} done, ${p.running} running, ${p.waiting} waiting, ${p.failed} failed${p.missing ? `, ${p.missing} not queued` : ''}`;
  const eta = (p: QueueProgressEvent) => (p.etaS === undefined ? '–' : p.etaS < 120 ? `${p.etaS} s` : `${Math.floor(p.etaS / 60)} min ${p.etaS % 60} s`);
  if (!process.stderr.isTTY) {
    let last = '';
    return {
      update(p) {
        const line = `${label}: ${p.done + p.failed + p.missing}/${p.videos} ended: ${text(p)}; ETA ${eta(p)}`;
        if (line.replace(/ETA .*/, '') !== last.replace(/ETA .*/, '')) write(line);
        last = line;
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} |{bar}| {value}/{total} ended | {counts} | ETA {etaText}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) {
        bar.start(p.videos, 0, { counts: '', etaText: '–' });
        started = true;
      }
      if (!p.unreachable) bar.setTotal(p.videos);
      bar.update(p.unreachable ? bar.getProgress() * bar.getTotal() : p.done + p.failed + p.missing, { counts: text(p), etaText: eta(p) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
