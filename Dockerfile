# The image is the binary: build it first with `make image` (CGO_ENABLED=0,
# statically linked), nothing is pulled.
FROM scratch
COPY bin/cairn /cairn
EXPOSE 2379 2380
VOLUME /data
ENV CAIRN_DATA_DIR=/data \
    CAIRN_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    CAIRN_LISTEN_PEER_URLS=http://0.0.0.0:2380
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD ["/cairn", "health", "--endpoints", "http://127.0.0.1:2379"]
ENTRYPOINT ["/cairn"]
