# tokengate image: multi-stage (build with dev dependencies, run with production ones only),
# non-root, with a HEALTHCHECK on the operations listener. The config is read from
# /etc/tokengate/tokengate.yaml (mount yours there; the image carries the documented sample).
# Build: docker build -t tokengate .     Run: see docker-compose.yml and the README.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:22-slim
ENV NODE_ENV=production \
    TOKENGATE_CONFIG=/etc/tokengate/tokengate.yaml \
    TOKENGATE_LISTEN_HOST=0.0.0.0 \
    TOKENGATE_METRICS_HOST=0.0.0.0 \
    TOKENGATE_HEALTH_URL=http://127.0.0.1:9464/healthz
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config/tokengate.yaml /etc/tokengate/tokengate.yaml
# The files belong to root and are read-only to the process, which runs as the image's `node` user.
USER node
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.TOKENGATE_HEALTH_URL).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/tokengate.js"]
CMD ["serve"]
