# AgentState: the HTTP server (REST /api/v1 + MCP at /api/mcp) on 0.0.0.0:8080.
#   docker build -t agentstate .
#   docker run -p 127.0.0.1:8080:8080 -e AGENTSTATE_REDIS_URL=redis://host:6379/0 agentstate
# The image also holds the stdio MCP server and the admin command:
#   docker run --rm -e AGENTSTATE_REDIS_URL=… --entrypoint agentstate-admin agentstate create-project -name "My fleet"
# The toolchain go.mod names, so a rebuild next year builds the same thing.
FROM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries (no cgo) for the distroless runtime.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-http ./cmd/http-server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-mcp ./cmd/mcp-server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-admin ./cmd/admin \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-healthcheck ./cmd/healthcheck

# distroless/static: CA certificates and tzdata, no shell; runs as uid 65532 (nonroot).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
ENV AGENTSTATE_ADDR=0.0.0.0:8080
EXPOSE 8080
# No shell or curl in distroless: the probe is a binary of its own. Ready = Redis answers.
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/agentstate-healthcheck", "-url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/agentstate-http"]
