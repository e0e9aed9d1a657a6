# kv2 image: the one kv2 executable (etcd embedded) in a slim Debian, entrypoint kv2.
#
#   docker build -t kv2:latest .
#   docker run -d --name kv2 -p 7000:7000 kv2:latest standalone --module-print-log   # the whole system
#   docker run --rm kv2:latest judicator --help                                       # any role, any flag
#
# In a swarm: kv2 swarm up 3 1 2 (or docker stack deploy -c packaging/docker-stack.yml kv2); on one
# machine: docker compose -f packaging/compose.yml --profile standalone up -d. docs/operations.md has
# the procedures.

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

# ---- runtime ----
FROM debian:bookworm-slim
# bash runs the tasks' compile.sh and execute.sh; bubblewrap is the task sandbox (it needs user
# namespaces, which docker's default seccomp profile refuses: without them tasks run unsandboxed, and
# the executor says so); util-linux has setpriv (the user switch inside a sandbox that must run as
# root); procps gives the maintenance page's ps -ef; tini as PID 1 reaps the orphans of killed tasks
# and passes signals to kv2;
# ca-certificates for kv2 fetch mongod; libstdc++6 is what the Node runtime inside kv2 links against.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      bash ca-certificates bubblewrap util-linux procps tini libstdc++6 \
 && rm -rf /var/lib/apt/lists/*
# The executor's task user: tasks never run as root (the swarm and compose files pass
# --main-task-user-group kv2-task:kv2-task; do the same with docker run).
RUN groupadd --system kv2-task \
 && useradd --system --gid kv2-task --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "kv2 task user" kv2-task
COPY --from=build /src/kv2 /usr/local/bin/kv2
# Embedded programs (etcd, etcdctl) are extracted here on first use.
ENV KV2_CACHE_DIR=/var/cache/kv2
RUN mkdir -p /var/lib/kv2 /var/cache/kv2 \
 && kv2 --version
# The work dir: <role>/config, data (etcd data, pid files), log, as in docs/operations.md; so
# `docker exec -it <container> kv2 maintain judicator/data/main.pid` works from the default directory.
WORKDIR /var/lib/kv2
VOLUME ["/var/lib/kv2"]
# etcd peer and client, judicator RPC, gateway HTTP (API, web UI, /metrics).
EXPOSE 2000 2001 4000 7000
# SIGTERM: the supervisor stops its modules in reverse order; an executor first lets running tasks
# finish (--drain-timeout) and a judicator leaves the cluster. Give docker stop a timeout above that
# (docker stop -t 45, --stop-grace-period, stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/kv2"]
CMD ["--help"]
