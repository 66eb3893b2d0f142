# The image is the binary: build it first with `make image` (CGO_ENABLED=0,
# statically linked), nothing is pulled.

# An empty directory to become /data: FROM scratch has no shell to mkdir or
# chown with, and the build context holds only bin/cairn (.dockerignore).
FROM scratch AS datadir
WORKDIR /data

FROM scratch
COPY bin/cairn /cairn
# /data belongs to the unprivileged user the member runs as. Docker fills a
# new named volume from the image's directory, ownership included, so the
# volume mounted there is writable too.
COPY --from=datadir --chown=65534:65534 /data /data
EXPOSE 2379 2380
VOLUME /data
ENV CAIRN_DATA_DIR=/data \
    CAIRN_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    CAIRN_LISTEN_PEER_URLS=http://0.0.0.0:2380
# nobody:nogroup by number: FROM scratch has no passwd file.
USER 65534:65534
# Healthy means ready (docs/operations.md): a leader known, caught up, and
# this member's client URL published. A restarted member reaches that only
# after replaying its log and catching up with the leader, so failures in
# the first minute do not count; the first success ends that period.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["/cairn", "health", "--endpoints", "http://127.0.0.1:2379"]
ENTRYPOINT ["/cairn"]
