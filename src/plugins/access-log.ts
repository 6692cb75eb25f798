import fp from 'fastify-plugin'

// One access-log line per request, written when the response is done, instead of Fastify's two (one on arrival,
// one on completion): at thousands of payments a second the log lines were a measurable share of the service's
// CPU (see README, "Performance and reliability"). Routes that set a higher logLevel (health checks) stay quiet.
export default fp(async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({
      req: { method: request.method, url: request.url, remoteAddress: request.ip },
      res: { statusCode: reply.statusCode },
      responseTime: reply.elapsedTime,
    }, 'request completed')
  })
}, { name: 'access-log' })
