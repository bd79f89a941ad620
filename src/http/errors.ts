/**
 * The one HTTP error handler: a RolecastError becomes its catalogue status and the body
 * { code, message, fix, ...details }; fastify's own errors (schema validation, body too large) keep
 * their 4xx status with E_BAD_REQUEST; anything else is a 500 E_INTERNAL, logged with its stack.
 */
import type { FastifyInstance } from 'fastify';
import { ERRORS, RolecastError } from '../errors.js';

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: Error, req, reply) => {
    if (err instanceof RolecastError) {
      const status = err.status;
      if (status >= 500) req.log.error({ err, code: err.code }, 'request failed');
      else req.log.debug({ code: err.code, msg: err.message }, 'request refused');
      return reply.code(status).type('application/json').send({ code: err.code, message: err.message, fix: ERRORS[err.code].fix, ...err.details });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code = status >= 500 ? 'E_INTERNAL' : 'E_BAD_REQUEST';
    return reply.code(status).type('application/json').send({ code, message: err.message, fix: ERRORS[code].fix });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type('application/json').send({ code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}`, fix: ERRORS.E_NOT_FOUND.fix });
  });
}
