# moleshop: one image for every node; SERVICES picks what a container runs.

# --- build: install everything, compile TypeScript, keep production dependencies only
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json moleculer.config.ts ./
COPY platform platform
COPY contracts contracts
COPY services services
COPY cluster cluster
COPY scripts scripts
COPY types types
RUN npm run build && npm prune --omit=dev

# --- runtime: compiled code and production dependencies, as the unprivileged node user
FROM node:24-bookworm-slim
# The node flags of CMD: platform/node-process.ts says why.
ENV NODE_ENV=production \
    SERVICEDIR=dist/services
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# Without MONGO_URI a node keeps NeDB files here.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
# The gateway answers /health on PORT; other nodes on HEALTH_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--disable-warning=DEP0174", "node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"]
