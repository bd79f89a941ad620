/**
 * What rolecast adds to every rootfs it composes, so a box can send its changes back (issue 18):
 * /usr/sbin/rolecast-capture (busybox sh) and /etc/rolecast/manifest, the list of what this box
 * booted — the base image's paths with mode, owner and sha256, the machine's rendered files marked
 * as rolecast's own, and where to send (server, MAC, base version). The capture credential is one of
 * the machine's rendered secret files (render/hostfiles.ts), so it reaches only that machine.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { RenderedFile } from '../render/types.js';
import { formatManifestChunks, manifestOf, type ManifestHeader } from '../images/manifest.js';
import { normName, tarIndexOf, type FileVersion } from './tarindex.js';

export const CAPTURE_TOOL = resolve(import.meta.dirname, '../../images/capture/rolecast-capture');
export const TOOL_PATH = '/usr/sbin/rolecast-capture';
export const MANIFEST_PATH = '/etc/rolecast/manifest';

let tool: Promise<string> | undefined;

function parents(path: string): string[] {
  const parts = normName(path).split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** A file of the composed rootfs: rendered, or the manifest (chunks: it holds a line per path of the base). */
export type CaptureFile = Omit<RenderedFile, 'content'> & { content: string | Buffer | readonly Buffer[] };

/** The machine's files plus the capture tool and the manifest of (base + those files). `st`: the caller's stat of the base. */
export async function withCaptureFiles(basePath: string, files: readonly RenderedFile[], header: ManifestHeader, st?: FileVersion): Promise<CaptureFile[]> {
  tool ??= readFile(CAPTURE_TOOL, 'utf8');
  await tarIndexOf(basePath, st); // a base that is not a tar fails here, naming the byte offset (TarFormatError)
  const base = await manifestOf(basePath, st);
  const all: RenderedFile[] = [...files.filter((f) => f.path !== TOOL_PATH && f.path !== MANIFEST_PATH), { path: TOOL_PATH, mode: 0o755, content: await tool, secret: false }];
  const dirs = [...new Set([...all.map((f) => f.path), MANIFEST_PATH].flatMap(parents))];
  const generated = [...all.map((f) => ({ path: f.path, mode: f.mode, secret: f.secret, content: f.content })), { path: MANIFEST_PATH, mode: 0o644, secret: false }];
  const text = formatManifestChunks(base, header, generated, dirs);
  return [...all, { path: MANIFEST_PATH, mode: 0o644, content: text, secret: false }]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
