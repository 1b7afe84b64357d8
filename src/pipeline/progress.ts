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
