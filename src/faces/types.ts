/** Face data every face stage shares. Coordinates are in pixels of the frame they were found in. */
export interface Point {
  x: number;
  y: number;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Face {
  /** Stable across frames for the same person (set by tracking; -1 before tracking). */
  trackId: number;
  box: Box;
  /** Detector confidence 0..1. */
  score: number;
  /** BlazeFace keypoints: right eye, left eye, nose tip, mouth centre, right ear, left ear. */
  keypoints: Point[];
  /** Five points for alignment: right eye, left eye, nose tip, right mouth corner, left mouth corner. */
  five: Point[];
  /** 468 face-mesh points (x, y, z) in frame pixels, when landmarks ran. */
  mesh?: Float32Array;
  /** Face-mesh confidence 0..1. */
  landmarkScore?: number;
  /** True when this face was filled in from neighbouring frames of its track, not detected. */
  interpolated?: boolean;
}
