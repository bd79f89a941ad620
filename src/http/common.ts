/** Small pieces every HTTP route file uses: the client's address and path-parameter schemas. */
import type { FastifyRequest } from 'fastify';

/** The request's source address as rolecast leased or reserved it (IPv4, without the ::ffff: prefix). */
export function sourceAddress(req: FastifyRequest): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

/** A path parameter: printable ASCII, bounded (names, MACs, file names); anything else is a 400. */
const segment = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' } as const;

/** The params schema for these path parameters (`*`, a wildcard path, may be longer). */
export function pathParams(...names: string[]) {
  return {
    type: 'object',
    properties: Object.fromEntries(names.map((n) => [n, n === '*' ? { ...segment, maxLength: 1024 } : segment])),
    required: names,
  } as const;
}
