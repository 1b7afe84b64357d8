/**
 * A minimal read-only FlatBuffers accessor (tables, vtables, vectors, strings, unions), enough
 * to walk a TFLite model. Format facts: little-endian; the buffer starts with a uint32 offset
 * to the root table; a table starts with an int32 back-offset to its vtable; a vtable is
 * [uint16 vtable bytes, uint16 table bytes, uint16 field offsets...] with 0 = field absent;
 * reference fields hold a uint32 offset relative to the field's own position.
 */
export class FbTable {
  constructor(readonly view: DataView, readonly pos: number) {}

  private fieldOffset(id: number): number {
    const vt = this.pos - this.view.getInt32(this.pos, true);
    const vtSize = this.view.getUint16(vt, true);
    const slot = 4 + id * 2;
    if (slot >= vtSize) return 0;
    return this.view.getUint16(vt + slot, true);
  }

  has(id: number): boolean {
    return this.fieldOffset(id) !== 0;
  }

  private scalar<T>(id: number, def: T, read: (p: number) => T): T {
    const o = this.fieldOffset(id);
    return o ? read(this.pos + o) : def;
  }
  u8(id: number, def = 0): number { return this.scalar(id, def, (p) => this.view.getUint8(p)); }
  i8(id: number, def = 0): number { return this.scalar(id, def, (p) => this.view.getInt8(p)); }
  bool(id: number, def = false): boolean { return this.scalar(id, def, (p) => this.view.getUint8(p) !== 0); }
  i32(id: number, def = 0): number { return this.scalar(id, def, (p) => this.view.getInt32(p, true)); }
  u32(id: number, def = 0): number { return this.scalar(id, def, (p) => this.view.getUint32(p, true)); }
  f32(id: number, def = 0): number { return this.scalar(id, def, (p) => this.view.getFloat32(p, true)); }
  u64(id: number, def = 0n): bigint { return this.scalar(id, def, (p) => this.view.getBigUint64(p, true)); }

  /** Position the reference field points to, or 0 when absent. */
  private ref(id: number): number {
    const o = this.fieldOffset(id);
    if (!o) return 0;
    const p = this.pos + o;
    return p + this.view.getUint32(p, true);
  }

  table(id: number): FbTable | undefined {
    const p = this.ref(id);
    return p ? new FbTable(this.view, p) : undefined;
  }

  string(id: number): string | undefined {
    const p = this.ref(id);
    if (!p) return undefined;
    const len = this.view.getUint32(p, true);
    return new TextDecoder().decode(new Uint8Array(this.view.buffer, this.view.byteOffset + p + 4, len));
  }

  /** Vector of tables. */
  tables(id: number): FbTable[] {
    const p = this.ref(id);
    if (!p) return [];
    const n = this.view.getUint32(p, true);
    const out: FbTable[] = [];
    for (let i = 0; i < n; i++) {
      const e = p + 4 + i * 4;
      out.push(new FbTable(this.view, e + this.view.getUint32(e, true)));
    }
    return out;
  }

  /** Vector of int32 (copied). */
  i32s(id: number): number[] {
    const p = this.ref(id);
    if (!p) return [];
    const n = this.view.getUint32(p, true);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.view.getInt32(p + 4 + i * 4, true);
    return out;
  }

  /** Vector of float32 (copied). */
  f32s(id: number): number[] {
    const p = this.ref(id);
    if (!p) return [];
    const n = this.view.getUint32(p, true);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.view.getFloat32(p + 4 + i * 4, true);
    return out;
  }

  /** Vector of bytes, as a view into the underlying buffer (not copied). */
  bytes(id: number): Uint8Array | undefined {
    const p = this.ref(id);
    if (!p) return undefined;
    const n = this.view.getUint32(p, true);
    return new Uint8Array(this.view.buffer, this.view.byteOffset + p + 4, n);
  }
}

export function rootTable(buf: Uint8Array): FbTable {
  if (buf.byteLength < 8) throw new Error('flatbuffer too short');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return new FbTable(view, view.getUint32(0, true));
}

export function fileIdentifier(buf: Uint8Array): string {
  return buf.byteLength >= 8 ? String.fromCharCode(buf[4], buf[5], buf[6], buf[7]) : '';
}
