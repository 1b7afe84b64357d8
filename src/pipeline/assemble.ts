/**
 * The report of one run: the notes about the input (rotation, frame rate, colour, pixel
 * shape), the note about stage timings, and the RunReport itself from what the run measured.
 */
import type { VideoInfo } from '../media/probe.js';
import { colourDifferences, describeColour } from '../media/colour.js';
import type { RunReport, Thumbnail, VideoSummary } from '../report/types.js';
import type { RestoreOptions, StageReport } from '../stages/types.js';

export const fpsString = (v: VideoInfo) => (v.fps.den === 1 ? `${v.fps.num}` : `${v.fps.num}/${v.fps.den}`);

function summaryOf(v: VideoInfo): VideoSummary {
  return {
    path: v.path,
    width: v.width,
    height: v.height,
    fps: fpsString(v),
    frames: v.frameCount,
    duration: +v.duration.toFixed(3),
    rotation: v.rotation,
    vfr: v.vfr,
    audioStreams: v.audio.length,
  };
}

/** What the reader should know about the input (and how the reference differs), before any frame. */
export function inputNotes(video: VideoInfo, reference?: VideoInfo): string[] {
  const notes: string[] = [];
  if (video.rotation) notes.push(`input has ${video.rotation}° rotation metadata: frames were decoded upright and the output is stored upright`);
  if (video.vfr) notes.push(`input has a variable frame rate: converted to a constant ${fpsString(video)} fps`);
  if (video.colour.assumed) notes.push(`input colour is not fully tagged: decoded and encoded as ${describeColour(video.colour)} (ffmpeg's assumption for untagged video)`);
  if (video.colour.bitDepth > 8) notes.push(`input is ${video.colour.bitDepth}-bit: decoded without clipping (range ${video.colour.range}) and written as 8-bit`);
  if (reference && colourDifferences(video.colour, reference.colour).length) {
    notes.push(`the output keeps the input's colour; the reference's tags differ (${colourDifferences(video.colour, reference.colour).join('; ')}): ffmpeg's filters compare the stored planes as they are`);
  }
  if (video.sar.num !== video.sar.den) notes.push(`input has non-square pixels (SAR ${video.sar.num}:${video.sar.den}), kept in the output`);
  return notes;
}

/** How to read the stage times, and whether the stages really ran at once. */
export function timingNote(stages: StageReport[], workers: number, wallPipelineMs: number): string | undefined {
  if (stages.filter((s) => s.ran).length <= 1) return undefined;
  const cpu = stages.reduce((a, s) => a + (s.ran ? s.ms : 0), 0);
  const critical = stages.reduce((a, s) => a + (s.timing?.criticalMs ?? 0), 0);
  return (
    `stage ms/frame is the CPU time of each stage's own work (main thread + its tasks in workers); timing.criticalMs is the wall time it held the pipeline. ` +
    (workers > 0 && cpu > wallPipelineMs
      ? `With ${workers} worker(s) the stages ran at once on different frames: their CPU times add up to ${Math.round(cpu)} ms, more than the ${Math.round(wallPipelineMs)} ms the run took; the critical-path times add up to ${Math.round(critical)} ms`
      : `The stages ran one at a time${workers > 0 ? '' : ' (--workers 0)'}: their times add up to at most the run's time`)
  );
}

export interface RunFacts {
  tool: RunReport['tool'];
  opts: RestoreOptions;
  video: VideoInfo;
  reference?: VideoInfo;
  targetSize?: { width: number; height: number };
  outSize: { width: number; height: number };
  frames: number;
  stages: StageReport[];
  wallMs: number;
  wallPipelineMs: number;
  /** Wall time of the metrics pass against the reference, when it ran. */
  scoringMs?: number;
  cpuPipeline: NodeJS.CpuUsage;
  /** CPU time of the run's ffprobe/ffmpeg children up to the encoded output (Linux only). */
  childCpuMs?: number;
  /** CPU time of the main thread from the first frame to the encoded output. */
  mainThreadLoopMs?: number;
  workers: number;
  metrics?: RunReport['metrics'];
  metricsSkipped?: string;
  perFrameValues: NonNullable<RunReport['perFrameValues']>;
  notes: string[];
  thumbnails: Thumbnail[];
  faceSheet?: RunReport['faceSheet'];
}

export function assembleReport(f: RunFacts): RunReport {
  const ownCpuMs = (f.cpuPipeline.user + f.cpuPipeline.system) / 1000;
  const { opts, video, reference } = f;
  const inpaint = f.stages.find((s) => s.name === 'inpaint')?.facts;
  return {
    tool: f.tool,
    createdAt: new Date().toISOString(),
    input: summaryOf(video),
    output: { path: opts.out, width: f.outSize.width, height: f.outSize.height, fps: fpsString(video), frames: f.frames },
    ...(reference ? { reference: summaryOf(reference) } : {}),
    ...(opts.mask
      ? { mask: { source: opts.mask, ...(inpaint?.maskCoverage !== undefined ? { coverage: inpaint.maskCoverage } : {}), ...(inpaint?.maskFile ? { file: inpaint.maskFile } : {}) } }
      : {}),
    ...(opts.identity?.length ? { identity: opts.identity } : {}),
    colour: {
      input: describeColour(video.colour),
      output: describeColour({ ...video.colour, bitDepth: 8 }),
      assumed: video.colour.assumed,
      ...(reference && colourDifferences(video.colour, reference.colour).length ? { referenceDiffers: colourDifferences(video.colour, reference.colour) } : {}),
    },
    settings: {
      scale: opts.scale ?? null,
      size: opts.size ?? f.targetSize ?? null,
      crf: opts.crf,
      preset: opts.preset,
      device: opts.device,
      backends: opts.backends,
      maskDilate: opts.maskDilate ?? null,
      maxFrames: opts.maxFrames ?? null,
    },
    device: f.stages.some((s) => s.facts?.provider === 'cuda') ? 'cuda' : 'cpu',
    stages: f.stages,
    timing: {
      wallMs: Math.round(f.wallMs),
      fps: +(f.frames / (f.wallPipelineMs / 1000)).toFixed(2),
      pipelineMs: Math.round(f.wallPipelineMs),
      // the metrics pass (lock-step decode of output, reference and "before", PSNR/SSIM per
      // frame, ffmpeg's psnr/ssim filters alongside) after the encoded output
      ...(f.scoringMs !== undefined ? { scoringMs: Math.round(f.scoringMs), scoringShare: +(f.scoringMs / f.wallPipelineMs).toFixed(3) } : {}),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      workers: f.workers,
      // process CPU time (all threads) over wall time, up to the encoded output (before metrics)
      cpuPercent: Math.round((ownCpuMs / f.wallPipelineMs) * 100),
      // the same with the ffmpeg decoders and encoders the run started (the encoder's last
      // frames are encoded after the pipeline's own work ends)
      ...(f.childCpuMs !== undefined ? { cpuPercentWithFfmpeg: Math.round(((ownCpuMs + f.childCpuMs) / f.wallPipelineMs) * 100) } : {}),
      // the main thread is one thread: no number of cores runs the frames faster than 1000 / this
      ...(f.mainThreadLoopMs !== undefined && f.frames > 0 ? { mainThreadMsPerFrame: +(f.mainThreadLoopMs / f.frames).toFixed(2) } : {}),
    },
    ...(f.metrics ? { metrics: f.metrics } : {}),
    ...(f.metricsSkipped ? { metricsSkipped: f.metricsSkipped } : {}),
    ...(f.perFrameValues.length ? { perFrameValues: f.perFrameValues } : {}),
    notes: f.notes,
    thumbnails: f.thumbnails,
    ...(f.faceSheet ? { faceSheet: f.faceSheet } : {}),
  };
}
