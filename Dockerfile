# tessera's container image: `tessera serve` (or any other command) on Debian bookworm with
# Node.js 20, FFmpeg and Poppler, as a non-root user, with the store and the model cache in the
# /data volume. See the README's "Container image"; test/container/image.test.ts builds and
# runs this file as it is.
#
#   docker build -t tessera .
#   docker run -p 8080:8080 -v tessera-data:/data tessera serve --model demo
#
# glibc base (not Alpine): sharp, onnxruntime-node and LanceDB ship prebuilt glibc binaries.
ARG NODE_IMAGE=node:20-bookworm-slim

# Build: every dependency (TypeScript compiles src/ to dist/), then only the production ones.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# .npmrc says onnxruntime-node-install=skip: its install script would otherwise download the
# CUDA libraries from api.nuget.org (the CPU build ships inside the package).
# Behind a proxy that re-signs TLS, hand npm its CA as a secret (nothing of it stays in a layer):
#   docker build --secret id=npm_ca,src=/path/to/ca-bundle.crt -t tessera .
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=secret,id=npm_ca --mount=type=cache,target=/root/.npm,sharing=locked \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
 && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-package.mjs scripts/
COPY bin bin
COPY src src
# onnxruntime-node carries its CPU build for every platform: keep this one's (about 220 MB less).
RUN node scripts/build-package.mjs \
 && npm prune --omit=dev --offline --no-audit --no-fund \
 && arch=$(node -p process.arch) \
 && for dir in node_modules/onnxruntime-node/bin/napi-v*/*; do [ "${dir##*/}" = linux ] || rm -rf "$dir"; done \
 && for dir in node_modules/onnxruntime-node/bin/napi-v*/linux/*; do [ "${dir##*/}" = "$arch" ] || rm -rf "$dir"; done

# Run: the compiled dist/ and the production node_modules; no sources, so bin/tessera runs dist/.
FROM ${NODE_IMAGE}
# FFmpeg (ffmpeg, ffprobe) for videos, Poppler (pdfinfo, pdftoppm, pdftotext) for PDFs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg poppler-utils ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 tessera \
 && useradd --system --uid 10001 --gid tessera --home-dir /home/tessera --create-home --shell /usr/sbin/nologin tessera \
 && mkdir /data \
 && chown tessera:tessera /data \
 && ln -s /app/bin/tessera /usr/local/bin/tessera
WORKDIR /app
# node_modules first: a change to the sources alone leaves that layer (about 500 MB) cached.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/bin bin
COPY --from=build /app/dist dist
# Listen on every interface of the container; the store (a LanceDB folder unless TESSERA_STORE
# is a postgres:// URL) and the Hugging Face cache (models downloaded once) live in /data.
ENV NODE_ENV=production \
    TESSERA_HOST=0.0.0.0 \
    TESSERA_PORT=8080 \
    TESSERA_STORE=/data/store \
    HF_HOME=/data/huggingface \
    XDG_CACHE_HOME=/data/cache
USER tessera
VOLUME /data
EXPOSE 8080
# /ready is 200 once every model is loaded and warmed up (the first start downloads
# jina-clip-v1, about 900 MB: hence the long start period), 503 while draining after SIGTERM.
# No curl in the image: node asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TESSERA_PORT||8080)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# bin/tessera runs the command in a watched child and forwards SIGTERM/SIGINT to it, so
# `docker stop` drains the server; it exits 128+N when a native crash kills the child.
ENTRYPOINT ["tessera"]
CMD ["serve"]
