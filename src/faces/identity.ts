/**
 * Identity photos (`--identity a.jpg [b.jpg ...]`): read, find exactly one face (or the one
 * chosen with --identity-face N), and turn them into one identity: descriptors averaged
 * (L2-normalized mean), plus the photo whose face the mesh swap warps.
 */
import sharp from 'sharp';
import { inputError } from '../errors.js';
import type { RgbFrame } from '../media/frame.js';
import type { FaceAnalyzer } from './analyzer.js';
import { meanEmbedding, type FaceDescriptor } from './descriptor.js';
import type { Face } from './types.js';

export interface IdentityPhoto {
  path: string;
  frame: RgbFrame;
  /** The chosen face (with its 468-point mesh when the landmarks were confident). */
  face: Face;
  /** Faces found in the photo. */
  facesFound: number;
}

export interface Identity {
  photos: IdentityPhoto[];
  /** Averaged, L2-normalized descriptor of all photos (by `descriptorLabel`). */
  descriptor: Float32Array;
  descriptorLabel: string;
  /** Per-photo descriptors (same model). */
  perPhoto: Float32Array[];
}

/** Decode an image file (EXIF orientation applied) to RGB24. One clear error when it is not an image. */
export async function readImage(file: string): Promise<RgbFrame> {
  try {
    const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw inputError(`identity photo ${file}: cannot read it as an image (${msg})`, 'give a JPEG or PNG photo of the person', e);
  }
}

const area = (f: Face) => f.box.width * f.box.height;

/**
 * Find the identity face in a photo. Faces are numbered by size (0 = largest). With one face it
 * is used; with several, `identityFace` must choose; with none, an input error.
 */
export async function findIdentityFace(file: string, frame: RgbFrame, analyzer: FaceAnalyzer, identityFace?: number): Promise<IdentityPhoto> {
  const faces = (await analyzer.analyze(frame)).sort((a, b) => area(b) - area(a));
  if (!faces.length) {
    throw inputError(`identity photo ${file}: no face found`, 'use a photo where the face is clearly visible, roughly frontal and at least 64 px wide');
  }
  let face: Face;
  if (identityFace !== undefined) {
    if (!Number.isInteger(identityFace) || identityFace < 0 || identityFace >= faces.length) {
      throw inputError(
        `identity photo ${file}: --identity-face ${identityFace} does not exist (${faces.length} face${faces.length > 1 ? 's' : ''} found, numbered 0..${faces.length - 1} by size)`,
        'pick a number in that range',
      );
    }
    face = faces[identityFace];
  } else if (faces.length > 1) {
    throw inputError(`identity photo ${file}: ${faces.length} faces found, which one is the identity?`, 'choose with --identity-face N (0 = largest face, numbered by size), or crop the photo to one face');
  } else {
    face = faces[0];
  }
  return { path: file, frame, face, facesFound: faces.length };
}

/** Read every identity photo, find its face, and average the descriptors. */
export async function loadIdentity(
  files: string[],
  deps: { analyzer: FaceAnalyzer; descriptor: FaceDescriptor; identityFace?: number },
): Promise<Identity> {
  if (!files.length) throw inputError('no identity photo given', 'pass --identity PHOTO');
  const photos: IdentityPhoto[] = [];
  for (const f of files) photos.push(await findIdentityFace(f, await readImage(f), deps.analyzer, deps.identityFace));
  const perPhoto: Float32Array[] = [];
  for (const p of photos) perPhoto.push(await deps.descriptor.describe(p.frame, p.face.five));
  return { photos, descriptor: meanEmbedding(perPhoto), descriptorLabel: deps.descriptor.label, perPhoto };
}
