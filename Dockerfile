# Container image for virt-net-agent: builds dist/virt-net-agent.mjs + dist/chunks/ (tsc, then the esbuild bundle) and ships it on
# Debian 12 slim with Node 20, nftables, iproute2 and passt, running as KubeVirt's non-root launcher user (107).
# Not built on the development machine (it has no container engine): see README, "Not done or not possible here".

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only dependency with a build step is the dev-only @unraid/libvirt (tests), which needs
# libvirt-dev; esbuild's postinstall only checks its binary, which comes from @esbuild/linux-* anyway.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/bundle.mjs
COPY agent ./agent
COPY bindings ./bindings
COPY domain ./domain
COPY dhcp ./dhcp
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
# libcap2-bin only for setcap below, then removed.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nftables iproute2 passt libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/node)" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/virt-net-agent
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
# Runtime dependencies the bundle leaves outside: the native addon koffi, gRPC (sidecar), xmlbuilder2.
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/virt-net-agent.mjs ./dist/virt-net-agent.mjs
COPY --from=build /src/dist/chunks ./dist/chunks
# The hook sidecar loads KubeVirt's .proto files at run time, from proto/ next to dist/.
COPY proto ./proto
COPY LICENSE ./LICENSE
# The launcher side (serve, domain, sidecar, passt) runs as KubeVirt's non-root launcher user, qemu (107). serve binds
# UDP 67/547 with the file capability NET_BIND_SERVICE set on node above (KubeVirt grants its launcher the same one);
# the pod must keep that capability in its bounding set. setup/teardown plumb the pod network and need CAP_NET_ADMIN
# in the pod's network namespace: virt-handler runs them privileged (docker run --user 0 --cap-add NET_ADMIN … setup).
USER 107:107
ENTRYPOINT ["node", "/opt/virt-net-agent/dist/virt-net-agent.mjs"]
CMD ["help"]
