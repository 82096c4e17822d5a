# Container image for virt-net-agent (first draft): compiles the TypeScript to dist/ and ships it on Debian 12 with nftables, iproute2 and passt.

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only dependency with a build step is the dev-only @unraid/libvirt (tests), which needs libvirt-dev.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY agent ./agent
COPY bindings ./bindings
COPY domain ./domain
COPY dhcp ./dhcp
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nftables iproute2 passt \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/virt-net-agent
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The hook sidecar loads KubeVirt's .proto files at run time, from proto/ next to dist/.
COPY proto ./proto
COPY LICENSE ./LICENSE
# Plumbing the pod network needs CAP_NET_ADMIN in the pod's network namespace; `plan` needs nothing.
ENTRYPOINT ["node", "/opt/virt-net-agent/dist/agent/cli.js"]
CMD ["help"]
