import { LogController } from 'fastify'

// One access-log line per request, written when the response is done, instead of Fastify's two (one on arrival,
// one on completion): at thousands of payments a second the log lines were a measurable share of the service's
// CPU (docs/performance.md, "Other choices a profile and the bench pointed at"). Routes that set a higher logLevel
// (health checks) stay quiet.
export class AccessLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: Parameters<LogController['requestCompleted']>[1], reply: Parameters<LogController['requestCompleted']>[2]): void {
    if (error != null) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
