import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ERRORS, TesseraError, type ErrorCode } from '../errors.ts';
import type { ServerConfig } from './config.ts';

/** The body of every error answer: what was wrong, its registry code, and the request id for the log. */
export function errorBody(request: FastifyRequest, code: ErrorCode, detail: string) {
  return { detail, code, request_id: request.id };
}

type RawError = Error & { code?: string; statusCode?: number; headers?: Record<string, string> };

/** Maps TesseraErrors and Fastify's own request errors onto the registry, once for every route. */
export function installErrorHandlers(app: FastifyInstance, config: ServerConfig): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(ERRORS.NOT_FOUND.status)
      .send(errorBody(request, 'NOT_FOUND', `no route ${request.method} ${request.url}; see GET /v1/models, POST /v1/embeddings, POST /v1/classify, GET /v1/collections, and every route at GET /openapi.json and /docs`));
  });

  app.setErrorHandler((error: RawError, request, reply) => {
    if (error instanceof TesseraError) {
      if (error.headers) void reply.headers(error.headers);
      // 503s are outages the client is told to retry (the store or the inference thread is
      // gone for a while): one line each, not a stack per request under load.
      if (error.status === 503) {
        if (error.code !== 'NOT_READY' && error.code !== 'SHUTTING_DOWN') request.log.warn({ code: error.code, detail: error.message }, 'request failed');
      } else if (error.status >= 500) request.log.error({ err: error }, 'request failed');
      return reply.code(error.status).send(errorBody(request, error.code, error.message));
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(ERRORS.PAYLOAD_TOO_LARGE.status).send(errorBody(request, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${config['max-body-bytes']} bytes; send fewer or smaller items`));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(ERRORS.UNSUPPORTED_MEDIA_TYPE.status).send(errorBody(request, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON with Content-Type: application/json'));
    }
    // Schema failures are TesseraErrors already (validation.ts); one from a compiler of a
    // plugin's own still answers in the registry's shape, naming the part of the request.
    if (error.code === 'FST_ERR_VALIDATION') {
      return reply.code(ERRORS.REQUEST_INVALID.status).send(errorBody(request, 'REQUEST_INVALID', error.message));
    }
    if (error.statusCode === 400 || error.code?.startsWith('FST_ERR_CTP')) {
      return reply.code(ERRORS.REQUEST_INVALID.status).send(errorBody(request, 'REQUEST_INVALID', `the body is not valid JSON: ${error.message}`));
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(ERRORS.INTERNAL_ERROR.status).send(errorBody(request, 'INTERNAL_ERROR', 'internal error; the request id identifies it in the server log'));
  });
}
