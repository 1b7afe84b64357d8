/** Escaping for the index report (HTML) and the JUnit file (XML). */

import { HTML_ESC } from '../report/escape.js';

export { escapeHtml, jsonForScript } from '../report/escape.js';

/**
 * Characters XML 1.0 does not allow at all (control characters other than tab/newline/CR,
 * lone surrogates, U+FFFE/U+FFFF). ffmpeg messages can carry them; a JUnit parser would reject
 * the whole file.
 */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escape text for XML content and attributes; drops characters XML cannot represent. */
export function escapeXml(s: unknown): string {
  return String(s ?? '')
    .replace(XML_INVALID, '\uFFFD')
    .replace(/[&<>"']/g, (c) => (c === "'" ? '&apos;' : HTML_ESC[c]!))
    .replace(/\r/g, '&#13;')
    .replace(/\n/g, '&#10;');
}

/** Text for XML element content (keeps newlines readable). */
export function escapeXmlText(s: unknown): string {
  return String(s ?? '')
    .replace(XML_INVALID, '\uFFFD')
    .replace(/[&<>]/g, (c) => HTML_ESC[c]!);
}

/** A relative link (folder/file names joined with '/') as a URL path with every segment encoded. */
export function hrefOf(rel: string): string {
  return rel
    .split(/[\\/]+/)
    .map((seg) => encodeURIComponent(seg))
    .join('/');
}

