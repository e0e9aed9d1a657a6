# kv2 image: the one kv2 executable (etcd embedded) in a slim Debian, entrypoint kv2. Two targets:
#
#   docker build -t kv2:latest .                      # plain (about 230 MB): any role; no compilers
#   docker build --target judge -t kv2:judge .        # + gcc, g++, Python 3, a JDK (about 800 MB): executors
#
#   docker run -d --name kv2 -p 7000:7000 -v kv2-data:/var/lib/kv2 --stop-timeout 60 \
#     kv2:judge standalone --main-task-user-group kv2-task:kv2-task --module-print-log   # the whole system
#   docker run --rm kv2:latest judicator --help                                        # any role, any flag
#
# Volume: /var/lib/kv2, the work dir (etcd data, logs, task dirs): name it (-v kv2-data:/var/lib/kv2)
# to keep the tasks across containers, or remove the anonymous one with the container (docker rm -v).
# Health: `kv2 health` checks every role running in /var/lib/kv2. docs/operations.md has every
# procedure (single container, compose, swarm) and the privileges the task sandbox needs in a container.

# ---- build: the single executable, from the lock file, with Debian's etcd and etcdctl embedded ----
FROM node:20-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server etcd-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, so that a change of the sources does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# npm run build checks for etcd (present), a C compiler (gcc comes with this node image; it compiles the
# executor's step launcher) and the npm packages (installed), then builds ./kv2 and runs ./kv2 --version
# to prove that etcd is embedded.
RUN npm run build

# ---- base: the Debian packages and the task user every kv2 image has ----
FROM debian:bookworm-slim AS base
# bash runs the tasks' compile.sh and execute.sh; bubblewrap is the task sandbox (it needs namespaces:
# docs/isolation.md says which container privileges give which sandbox, and the executor says at start
# what it found); util-linux has setpriv (the user switch inside a sandbox that must run as root);
# procps gives the maintenance page's ps -ef; tini as PID 1 reaps the orphans of killed tasks and
# passes signals to kv2; ca-certificates for kv2 fetch mongod; libstdc++6 is what the Node runtime
# inside kv2 links against.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      bash ca-certificates bubblewrap util-linux procps tini libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
# A task user for --main-task-user-group kv2-task:kv2-task (kv2 swarm passes it). Without that flag the
# executor makes one user per slot (kv2-task-<slot>) at start, which keeps tasks apart: the default.
RUN groupadd --system kv2-task \
 && useradd --system --gid kv2-task --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "kv2 task user" kv2-task

# ---- toolchains: the usual judge toolchains, installed before kv2 so that a new kv2 reuses this layer ----
# C and C++ (gcc, g++ and the C library's headers), Python 3, Java (a headless JDK: javac and java):
# what an executor needs to run the usual tasks; judicators and gateways need none of it. The JDK's
# post-install scripts link its man pages into /usr/share/man/man1, which the slim base lacks.
FROM base AS toolchains
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc g++ libc6-dev python3 default-jdk-headless \
 && rm -rf /var/lib/apt/lists/*

# ---- judge: kv2 with the toolchains (docker build --target judge) ----
# The lines from COPY to CMD are the same in both images (test/integration/ops-packaging.test.ts checks).
FROM toolchains AS judge
COPY --from=build /src/kv2 /usr/local/bin/kv2
# Embedded programs (etcd, etcdctl) are extracted here on first use.
ENV KV2_CACHE_DIR=/var/cache/kv2
RUN mkdir -p /var/lib/kv2 /var/cache/kv2 \
 && kv2 --version
# The work dir: <role>/config, data (etcd data, pid files, task dirs), log, as in docs/operations.md;
# so `docker exec -it <container> kv2 maintain judicator/data/main.pid` works from the default directory.
WORKDIR /var/lib/kv2
VOLUME ["/var/lib/kv2"]
# etcd peer and client, judicator RPC, gateway HTTP (API, web UI, /metrics).
EXPOSE 2000 2001 4000 7000
# SIGTERM: the supervisor stops its modules in reverse order; an executor first lets running tasks
# finish (--drain-timeout) and a judicator leaves the cluster. Give docker stop a timeout above that
# (docker stop -t 60, --stop-timeout, stop_grace_period).
STOPSIGNAL SIGTERM
# Every role in the work dir running, and the judicator's and gateway's health routes answering.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 CMD ["kv2", "health", "--timeout", "10"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/kv2"]
CMD ["--help"]

# ---- runtime: the plain image, kv2 without the toolchains (the default target: the last stage) ----
FROM base AS runtime
COPY --from=build /src/kv2 /usr/local/bin/kv2
# Embedded programs (etcd, etcdctl) are extracted here on first use.
ENV KV2_CACHE_DIR=/var/cache/kv2
RUN mkdir -p /var/lib/kv2 /var/cache/kv2 \
 && kv2 --version
# The work dir: <role>/config, data (etcd data, pid files, task dirs), log, as in docs/operations.md;
# so `docker exec -it <container> kv2 maintain judicator/data/main.pid` works from the default directory.
WORKDIR /var/lib/kv2
VOLUME ["/var/lib/kv2"]
# etcd peer and client, judicator RPC, gateway HTTP (API, web UI, /metrics).
EXPOSE 2000 2001 4000 7000
# SIGTERM: the supervisor stops its modules in reverse order; an executor first lets running tasks
# finish (--drain-timeout) and a judicator leaves the cluster. Give docker stop a timeout above that
# (docker stop -t 60, --stop-timeout, stop_grace_period).
STOPSIGNAL SIGTERM
# Every role in the work dir running, and the judicator's and gateway's health routes answering.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 CMD ["kv2", "health", "--timeout", "10"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/kv2"]
CMD ["--help"]
