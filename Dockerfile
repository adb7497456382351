# syntax=docker/dockerfile:1
# Build: the compiled single executable. Run: a slim image with only that binary, as a non-root
# user, the database on a volume.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json bunfig.toml ./
COPY scripts ./scripts
COPY src ./src
RUN npx --no-install bun scripts/build.ts

FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 hookd \
  && useradd --system --uid 10001 --gid hookd --home-dir /var/lib/hookd --shell /usr/sbin/nologin hookd \
  && mkdir -p /var/lib/hookd /etc/hookd \
  && chown hookd:hookd /var/lib/hookd
COPY --from=build /src/dist/hookd /usr/local/bin/hookd
COPY config.example.yaml /etc/hookd/config.example.yaml
COPY deploy/container.yaml /etc/hookd/hookd.yaml

USER hookd
WORKDIR /var/lib/hookd
VOLUME ["/var/lib/hookd"]
# Listens on 0.0.0.0:8080 with the database on the volume; mount another file and set HOOKD_CONFIG
# to change that (keep server.port 8080 or adjust the HEALTHCHECK).
ENV HOOKD_CONFIG=/etc/hookd/hookd.yaml
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hookd"]
CMD ["serve"]
