# Gateway image: Node 24 runs the TypeScript sources directly (type stripping); only the browser widget is built.
FROM node:24-slim AS widget
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build-widget.ts

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Production dependencies only; the image's own Node 24 replaces the node@24 dev dependency.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY mikro-orm.config.ts tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
COPY public ./public
COPY --from=widget /app/public/dist ./public/dist
USER node
EXPOSE 3000
# node directly, not npm: npm does not pass SIGTERM on, and graceful shutdown needs it.
CMD ["node", "src/server.ts"]
